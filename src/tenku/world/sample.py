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
# Directions each motion can carry when a hint states one (free draws never give fall or throw one).
FALL_DRIFTS = ("left", "right", "down-left", "down-right")
THROW_DIRECTIONS = ("left", "right", "up", "up-left", "up-right")
# Staged interactions sample_scene can be asked for: hints[1] (the mover) hits hints[0] (the target),
# or passes behind ("occlusion") or in front of ("occlusion-front") it.
SCENARIOS = ("free", "collision", "occlusion", "occlusion-front")
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
        gravity = True
        y = float(rng.uniform(max(0.55, floor + r + 0.2), 0.95 - r))
        if d in FALL_DRIFTS:  # a stated sideways drift: "falls, drifting left"
            vx = DIRECTIONS[d][0] * float(rng.uniform(0.08, 0.18))
        else:
            d = "down"
            vx = 0.0 if rng.random() < 0.7 else float(rng.uniform(-0.1, 0.1))
    elif motion == "throw":
        gravity = True
        d = d if d in THROW_DIRECTIONS else _pick(rng, ("left", "right"))
        sgn = DIRECTIONS[d][0] and (1.0 if DIRECTIONS[d][0] > 0 else -1.0)  # 0 for a throw straight up
        if sgn > 0:
            x = float(rng.uniform(lo, lo + 0.25 * width))
        elif sgn < 0:
            x = float(rng.uniform(hi - 0.25 * width, hi))
        else:
            x = float(rng.uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo)))
        y = floor + r + float(rng.uniform(0.0, 0.2))
        vx = sgn * float(rng.uniform(0.25, 0.5))
        apex = float(rng.uniform(0.3, 0.8)) * (1 - r - y)  # stay under the ceiling
        vy = float(np.sqrt(2 * g * max(apex, 0.05)))
    return ObjectSpec(o["shape"], o["color"], o["size"], motion, x, y, vx, vy, d, gravity, walls, 0,
                      float(rng.uniform(-15, 15)) if o["shape"] != "circle" and rng.random() < 0.3 else 0.0)


def _fill_roles(rng: np.random.Generator, scenario: str, target: dict[str, Any], mover: dict[str, Any]) -> None:
    """Fill what the hints of a staged pair leave open so the interaction can happen."""
    if not target.get("motion"):
        target["motion"] = "rest"
    if not mover.get("motion"):
        mover["motion"] = "move"
    if scenario != "collision":  # whatever is behind must be smaller than what hides it
        back, front = (mover, target) if scenario == "occlusion" else (target, mover)
        if not front.get("size"):
            front["size"] = "large"
        if not front.get("shape"):  # solid shapes hide what passes behind them
            front["shape"] = _pick(rng, ["square", "circle"])
        if not back.get("size"):
            back["size"] = "small"
    if mover["motion"] == "move" and not mover.get("direction"):
        mover["direction"] = _pick(rng, ["left", "right"])


def _inside(o: ObjectSpec, x: float, y: float, width: float, floor: float) -> bool:
    return o.radius <= x <= width - o.radius and floor + o.radius <= y <= 1 - o.radius


def _aim(rng: np.random.Generator, m: ObjectSpec, t: ObjectSpec, width: float, floor: float, tol: float) -> None:
    """Put mover ``m`` on the line through target ``t`` along its velocity, a short way before it,
    at most ``tol`` off that line. ``floor``: the lowest a centre may go less the radius (0 lets a
    passer-by in front overlap the floor band)."""
    speed = float(np.hypot(m.vx, m.vy))
    if speed == 0:
        return
    ux, uy, rsum = m.vx / speed, m.vy / speed, m.radius + t.radius
    for k in range(40):
        if k and t.motion in ("rest", "bounce"):  # move the target if the first spot does not fit
            t.x = float(rng.uniform(t.radius + 0.02, width - t.radius - 0.02))
            if not t.gravity:
                t.y = float(rng.uniform(floor + t.radius + 0.02, 1 - t.radius - 0.02))
        dist = rsum + float(rng.uniform(0.05, 0.25))
        mx, my = t.x - ux * dist, t.y - uy * dist
        if uy == 0:  # level with the target (a resting target sits lower when it is smaller)
            my = float(np.clip(my, floor + m.radius + 0.005, 1 - m.radius - 0.005))
        if _inside(m, mx, my, width, floor) and abs(my - (t.y - uy * dist)) <= tol:
            m.x, m.y = float(mx), float(my)
            if dist / speed > 2.0:  # meet within two seconds
                m.vx, m.vy = ux * dist / 2.0, uy * dist / 2.0
            return


def _stage(rng: np.random.Generator, scenario: str, t: ObjectSpec, m: ObjectSpec, width: float, floor: float,
           g: float) -> None:
    """Place mover ``m`` (and, where needed, target ``t``) so that the asked interaction happens."""
    if scenario != "collision":  # different depths pass behind / in front of each other
        t.depth, m.depth = 1, (0 if scenario == "occlusion" else 2)
    if scenario == "occlusion-front" and not floor and t.motion == "rest":
        t.gravity = False  # without a floor it may float, level with the larger passer-by
    if m.motion == "fall":  # drop it onto (or behind) the target
        m.x = float(np.clip(t.x + rng.uniform(-0.3, 0.3) * min(t.radius, m.radius), m.radius, width - m.radius))
        top = m.y - m.radius - t.radius - 0.1
        if not t.gravity and t.y > top and top > floor + t.radius:
            t.y = float(rng.uniform(floor + t.radius, top))
    elif m.motion == "throw" and m.vx:  # put the target where the arc comes down
        tt = (m.vy + np.sqrt(max(m.vy**2 + 2 * g * (m.y - t.y), 0.0))) / g
        t.x = float(np.clip(m.x + m.vx * tt, t.radius, width - t.radius))
    else:
        # a hit needs the discs to touch; hiding one needs the centres to line up
        tol = t.radius + m.radius - 0.01 if scenario == "collision" else 0.01
        if m.motion in ("move", "bounce"):
            _aim(rng, m, t, width, 0.0 if scenario == "occlusion-front" and not m.gravity else floor, tol)
        elif t.motion in ("move", "bounce"):  # a resting "mover": the target comes to it instead
            _aim(rng, t, m, width, floor, tol)


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
    scenario: str | None = None,
    max_objects: int = 4,
) -> SceneSpec:
    """Draw a scene ``width`` world units wide (the render's aspect ratio).

    ``objects``: hints, one dict per object with any of ``HINT_KEYS`` fixed;
    ``None`` draws 1 to ``max_objects`` (at most 4) objects freely. ``background``: any of
    ``BackgroundSpec``'s fields fixed (``floor_color`` too). With two or more
    free objects the scene sometimes stages a collision or an occlusion.

    ``scenario`` (one of ``SCENARIOS``) asks for one: the second object (the
    mover) is aimed so that it hits the first ("collision") or passes behind
    ("occlusion") or in front of ("occlusion-front") it. Hints are kept; what
    they leave open is filled to suit (the target rests, the mover moves
    sideways, an occluder is large). ``None`` keeps the random draw above.
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
    floor_color = _pick(rng, FLOOR_COLORS)
    floor_color = bg_hint.get("floor_color") or floor_color
    bg = BackgroundSpec(kind, (c1, c2), floor_on, floor_color, float(rng.choice([0.1, 0.125, 0.2])))
    floor = 0.1 if floor_on else 0.0

    free = objects is None
    if objects is None:
        counts = [1, 2, 3, 4][: max(1, min(max_objects, 4))]
        p = np.array([0.35, 0.3, 0.2, 0.15][: len(counts)])
        hints = [{} for _ in range(_pick(rng, counts, p / p.sum()))]
    else:
        hints = [dict(h) for h in objects]
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; allowed: {', '.join(SCENARIOS)}")
    if scenario is None:  # free draws of two or more objects sometimes stage an interaction
        scenario = _pick(rng, ["free", "collision", "occlusion"], [0.5, 0.25, 0.25]) if free and len(hints) >= 2 else "free"
    forced = scenario != "free"
    if forced:
        if len(hints) < 2:
            raise ValueError(f"scenario {scenario!r} needs at least two objects, got {len(hints)}")
        _fill_roles(rng, scenario, hints[0], hints[1])
    taken = {h["color"] for h in hints if h.get("color")}
    for h in hints:
        if not h.get("color"):
            h["color"] = _pick(rng, [c for c in PALETTE if c not in taken] or list(PALETTE))
            taken.add(h["color"])
        h["shape"] = h.get("shape") or _pick(rng, SHAPES)
        h["size"] = h.get("size") or _pick(rng, SIZES)
        h["motion"] = h.get("motion") or _pick(rng, MOTIONS, list(_MOTION_P.values()))
    specs: list[ObjectSpec] = []
    for i, h in enumerate(hints):
        for _ in range(50):
            o = _launch(rng, h, width, floor, g)
            if forced and i == 1:
                _stage(rng, scenario, specs[0], o, width, floor, g)
            if not _overlaps(o, specs):
                break
        else:
            if free:  # no room left for a free object: leave it out rather than start inside another
                continue
        specs.append(o)
    if pan is None:
        pan = float(rng.choice([-1, 1]) * rng.uniform(0.03, 0.08)) if rng.random() < 0.1 else 0.0
    spec = SceneSpec(width=float(width), objects=specs, background=bg, gravity=g, restitution=restitution, pan=pan)
    spec.validate()
    return spec
