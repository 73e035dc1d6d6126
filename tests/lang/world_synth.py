"""Hand-made scenes and synthetic ground truth for the caption and parser tests
(no simulator: positions, boxes and events are written directly)."""

from __future__ import annotations

import numpy as np

from tenku.world.spec import (BACKGROUND_KINDS, BACKGROUNDS, DIRECTIONS, FLOOR_COLORS, MOTIONS, PALETTE, SHAPES,
                              SIZES, BackgroundSpec, Event, GroundTruth, ObjectSpec, SceneSpec)

W = H = 64
FRAMES, FPS = 17, 8.0


def make_gt(spec: SceneSpec, events: list[Event], outside: set[int] = frozenset()) -> GroundTruth:
    """Ground truth holding every object still at its start; ``outside`` objects start out of frame."""
    n, scale = len(spec.objects), max(W / spec.width, H)
    pos, bbox, reason = [], [], []
    for i, o in enumerate(spec.objects):
        px, py, r = (o.x - spec.width / 2) * scale + W / 2, H / 2 - (o.y - 0.5) * scale, o.radius * scale
        box = [max(px - r, 0.0), max(py - r, 0.0), min(px + r, W), min(py + r, H)]
        out = i in outside
        pos.append([[o.x, o.y]] * FRAMES)
        bbox.append([None if out else box] * FRAMES)
        reason.append(["out_of_frame" if out else None] * FRAMES)
    return GroundTruth(
        fps=FPS, frames=FRAMES, width=W, height=H, position=pos, velocity=[[[0.0, 0.0]] * FRAMES for _ in range(n)],
        visible=[[r is None for r in row] for row in reason], reason=reason,
        visible_fraction=[[0.0 if r else 1.0 for r in row] for row in reason], bbox=bbox,
        events=sorted(events, key=lambda e: e.t))


def obj(shape: str, color: str, size: str = "medium", motion: str = "rest", direction: str | None = None,
        x: float = 0.5, y: float = 0.5, depth: int = 0) -> ObjectSpec:
    return ObjectSpec(shape, color, size, motion, x, y, direction=direction,
                      gravity=motion in ("fall", "throw"), depth=depth)


def random_scene(rng: np.random.Generator, identical: bool = False) -> tuple[SceneSpec, GroundTruth]:
    """1-4 objects of distinct colours (or, with ``identical``, two alike), random background,
    and plausible random events."""
    n = int(rng.integers(1, 5))
    colors = list(rng.choice(list(PALETTE), n, replace=False))
    objs = []
    for c in colors:
        motion = str(rng.choice(MOTIONS))
        d = {"rest": None, "fall": rng.choice([None, "down", "left", "right"]),
             "throw": rng.choice(["left", "right", "up-left", "up-right", "up"])}.get(
            motion, rng.choice(list(DIRECTIONS)))
        objs.append(obj(str(rng.choice(SHAPES)), str(c), str(rng.choice(list(SIZES))), motion,
                        None if d is None else str(d), float(rng.uniform(0.05, 0.95)), float(rng.uniform(0.15, 0.9)),
                        int(rng.integers(0, 2))))
    if identical:
        o = objs[0]
        objs.append(obj(o.shape, o.color, o.size, "move", "right", 0.8, 0.8, o.depth))
    kind = str(rng.choice(BACKGROUND_KINDS))
    c0 = str(rng.choice(list(BACKGROUNDS)))
    c1 = c0 if kind == "solid" else str(rng.choice([c for c in BACKGROUNDS if c != c0]))
    bg = BackgroundSpec(kind, (c0, c1), bool(rng.random() < 0.5), str(rng.choice(list(FLOOR_COLORS))))
    spec = SceneSpec(1.0, objs, bg, pan=float(rng.choice([0.0, 0.0, -0.05, 0.05])))
    spec.validate()
    events: list[Event] = []
    outside = set()
    t = lambda: float(rng.uniform(0, 2))  # noqa: E731
    sides = ["left", "right", "top", "bottom"]
    for i, o in enumerate(objs):
        if o.motion in ("fall", "throw"):
            events += [Event(t(), "floor_bounce", [i], where="bottom") for _ in range(int(rng.integers(0, 4)))]
            if rng.random() < 0.5:
                events.append(Event(2.0, "settle", [i]))
        if o.motion in ("bounce", "move", "throw") and rng.random() < 0.6:
            k = int(rng.integers(1, 5))
            events += [Event(t(), "wall_bounce", [i], where=str(rng.choice(sides))) for _ in range(k)]
        if o.motion == "move" and rng.random() < 0.4:
            outside.add(i)
            events.append(Event(0.3, "enter_frame", [i], where=str(rng.choice(sides))))
        if o.motion == "move" and rng.random() < 0.4:
            events.append(Event(1.5, "leave_frame", [i], where=str(rng.choice(sides))))
    for _ in range(int(rng.integers(0, 3))) if len(objs) > 1 else []:
        i, j = (int(v) for v in rng.choice(len(objs), 2, replace=False))
        if rng.random() < 0.5:
            events.append(Event(t(), "collision", [i, j]))
        else:
            t0 = t()
            events.append(Event(t0, "occlusion_start", [i, j if rng.random() < 0.9 else -1]))
            if rng.random() < 0.7:
                events.append(Event(t0 + 0.3, "occlusion_end", [i, events[-1].objects[1]]))
    return spec, make_gt(spec, events, outside)


def expected_direction(o: ObjectSpec) -> str | None:
    """The direction a caption states (and so the parser must recover) for an object."""
    if o.motion == "rest" or (o.motion == "fall" and o.direction in (None, "down")):
        return None
    return o.direction


def spec_objects(spec: SceneSpec) -> list[tuple]:
    return sorted((o.size, o.color, o.shape, o.motion, expected_direction(o) or "") for o in spec.objects)


def parsed_objects(parsed) -> list[tuple]:
    return sorted((o.size, o.color, o.shape, o.motion, o.direction or "") for o in parsed.objects
                  for _ in range(o.count))
