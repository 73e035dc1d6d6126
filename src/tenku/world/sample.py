"""Random scenes, deterministic for a seed, optionally pinned by hints (what a
prompt said): whatever a hint leaves open is drawn from the generator."""

from __future__ import annotations

from typing import Any

import numpy as np

from tenku.world.spec import (
    BACKGROUND_KINDS,
    BACKGROUNDS,
    DIRECTIONS,
    FLOOR_COLORS,
    MOTIONS,
    PALETTE,
    SHAPES,
    SIZES,
    BackgroundSpec,
    ObjectSpec,
    SceneSpec,
)

HINT_KEYS = ("shape", "color", "size", "motion", "direction")
_MOTION_P = {"rest": 0.14, "move": 0.26, "bounce": 0.2, "fall": 0.22, "throw": 0.18}
_DIAGONALS = ("up-left", "up-right", "down-left", "down-right")


def _pick(rng: np.random.Generator, options: Any, p: Any = None) -> Any:
    options = list(options)
    return options[int(rng.choice(len(options), p=p))]


def _launch(rng: np.random.Generator, o: dict[str, Any], width: float, floor: float, g: float) -> ObjectSpec:
    """Initial position and velocity for an object's motion kind."""
    r = SIZES[o["size"]]
    motion, d = o["motion"], o.get("direction")
    lo, hi = r + 0.02, width - r - 0.02
    x, y, vx, vy = float(rng.uniform(lo, hi)), float(rng.uniform(floor + r + 0.05, 0.95 - r)), 0.0, 0.0
    gravity, walls = False, True
    if motion == "rest":
        gravity = bool(floor > 0 or rng.random() < 0.5)
        if gravity:
            y = floor + r
        d = None
    elif motion == "move":
        # movers ignore walls (they leave the frame) but never pass through a visible floor
        d = d or _pick(rng, [k for k, (_, uy) in DIRECTIONS.items() if not (floor and uy < 0)])
        speed = float(rng.uniform(0.15, 0.35))
        ux, uy = DIRECTIONS[d]
        vx, vy, walls = speed * ux, speed * uy, False
        if rng.random() < 0.4:  # enter from outside, on the side it comes from
            if ux:
                x = -1.3 * r if ux > 0 else width + 1.3 * r
            if uy and not floor:
                y = -1.3 * r if uy > 0 else 1 + 1.3 * r
    elif motion == "bounce":
        d = d or _pick(rng, _DIAGONALS)
        speed = float(rng.uniform(0.3, 0.6))
        vx, vy = speed * DIRECTIONS[d][0], speed * DIRECTIONS[d][1]
    elif motion == "fall":
        gravity, d = True, "down"
        y = float(rng.uniform(max(0.55, floor + r + 0.2), 0.95 - r))
        vx = 0.0 if rng.random() < 0.7 else float(rng.uniform(-0.1, 0.1))
    elif motion == "throw":
        gravity = True
        d = d if d in ("left", "right") else _pick(rng, ("left", "right"))
        sgn = 1.0 if d == "right" else -1.0
        x = float(rng.uniform(lo, lo + 0.25 * width)) if sgn > 0 else float(rng.uniform(hi - 0.25 * width, hi))
        y = floor + r + float(rng.uniform(0.0, 0.2))
        vx = sgn * float(rng.uniform(0.25, 0.5))
        apex = float(rng.uniform(0.3, 0.8)) * (1 - r - y)  # stay under the ceiling
        vy = float(np.sqrt(2 * g * max(apex, 0.05)))
    return ObjectSpec(o["shape"], o["color"], o["size"], motion, x, y, vx, vy, d, gravity, walls, 0,
                      float(rng.uniform(-15, 15)) if o["shape"] != "circle" and rng.random() < 0.3 else 0.0)


def _overlaps(a: ObjectSpec, others: list[ObjectSpec]) -> bool:
    return any(
        b.depth == a.depth and np.hypot(a.x - b.x, a.y - b.y) < a.radius + b.radius + 0.02 for b in others
    )


def sample_scene(
    rng: np.random.Generator,
    width: float = 1.0,
    objects: list[dict[str, Any]] | None = None,
    background: dict[str, Any] | None = None,
    pan: float | None = None,
) -> SceneSpec:
    """Draw a scene ``width`` world units wide (the render's aspect ratio).

    ``objects``: hints, one dict per object with any of ``HINT_KEYS`` fixed;
    ``None`` draws 1 to 4 objects freely. ``background``: any of
    ``BackgroundSpec``'s fields fixed. With two or more free objects the scene
    sometimes stages a collision or an occlusion.
    """
    g, restitution = 1.5, float(rng.uniform(0.6, 0.85))
    bg_hint = dict(background or {})
    kind = bg_hint.get("kind") or _pick(rng, BACKGROUND_KINDS)
    c1 = bg_hint.get("colors", [None])[0] if bg_hint.get("colors") else None
    c1 = c1 or _pick(rng, BACKGROUNDS)
    c2 = c1 if kind == "solid" else _pick(rng, [c for c in BACKGROUNDS if c != c1])
    if bg_hint.get("colors") and len(bg_hint["colors"]) > 1:
        c2 = bg_hint["colors"][1]
    sinks = any(h.get("motion") == "move" and DIRECTIONS.get(h.get("direction") or "", (0, 0))[1] < 0 for h in objects or [])
    floor_on = bg_hint["floor"] if bg_hint.get("floor") is not None else bool(rng.random() < 0.5) and not sinks
    bg = BackgroundSpec(kind, (c1, c2), floor_on, _pick(rng, FLOOR_COLORS), float(rng.choice([0.1, 0.125, 0.2])))
    floor = 0.1 if floor_on else 0.0

    free = objects is None
    hints = [dict(h) for h in objects] if objects is not None else [{} for _ in range(_pick(rng, [1, 2, 3, 4], [0.35, 0.3, 0.2, 0.15]))]
    taken = {h["color"] for h in hints if h.get("color")}
    for h in hints:
        if not h.get("color"):
            h["color"] = _pick(rng, [c for c in PALETTE if c not in taken] or list(PALETTE))
            taken.add(h["color"])
        h["shape"] = h.get("shape") or _pick(rng, SHAPES)
        h["size"] = h.get("size") or _pick(rng, SIZES)
        h["motion"] = h.get("motion") or _pick(rng, MOTIONS, list(_MOTION_P.values()))
    scenario = _pick(rng, ["free", "collision", "occlusion"], [0.5, 0.25, 0.25]) if free and len(hints) >= 2 else "free"
    if scenario == "occlusion":  # a smaller mover passes behind (or in front of) a larger resting object
        hints[0].update(size="large", motion="rest")
        hints[1].update(size=_pick(rng, ["small", "medium"]), motion="move", direction=_pick(rng, ["left", "right"]))

    specs: list[ObjectSpec] = []
    for i, h in enumerate(hints):
        for _ in range(50):
            o = _launch(rng, h, width, floor, g)
            if scenario == "occlusion" and i == 1:
                front = specs[0]
                o.y, o.x = front.y, (-1.3 * o.radius if o.vx > 0 else width + 1.3 * o.radius)
                o.depth = 0 if rng.random() < 0.7 else 2
                front.depth = 1
            if scenario == "collision" and i == 1:
                a = specs[0]  # aim straight at the first object
                speed = float(rng.uniform(0.3, 0.5))
                dx, dy = a.x - o.x, a.y - o.y
                norm = float(np.hypot(dx, dy)) or 1.0
                o.vx, o.vy = speed * dx / norm, (0.0 if o.gravity else speed * dy / norm)
                o.direction = "right" if dx > 0 else "left"
            if not _overlaps(o, specs):
                break
        specs.append(o)
    if pan is None:
        pan = float(rng.choice([-1, 1]) * rng.uniform(0.03, 0.08)) if rng.random() < 0.1 else 0.0
    spec = SceneSpec(width=float(width), objects=specs, background=bg, gravity=g, restitution=restitution, pan=pan)
    spec.validate()
    return spec
