"""The benchmark's fixed suites: prompts with the seed, size, length and intended scene of each.

An item's scene is what the world itself makes of its prompt: ``parse_prompt``
gives the stated attributes (hints), ``sample_scene`` with the item's seed draws
the rest, so the simulator renders the reference for the same prompt and seed.
Three kinds of item then *stage* the scene (a documented edit of positions and
velocities, the way ``sample_scene`` stages its own occlusions and collisions):

- ``occlusion``: the mover starts outside the frame at the height of the resting
  object and passes behind it (depth 0 < 1) or in front of it (depth 2);
- ``collision``: a mover aimed at a resting object, or two movers head-on,
  entering from outside the frame and meeting 1 to 2 seconds in;
- ``loop``: the bouncer moves horizontally with the speed that brings it back to
  its start after exactly ``frames / fps`` seconds, so the video loops.

A seed is kept only if its reference is judgeable: no two objects overlap at the
start, every object is seen whole in at least 6 frames, nothing collides in the
first half second (unless a collision is the point), and staged occlusions and
collisions happen. Otherwise the next candidate seed is tried (deterministically).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from tenku.lang.parse import parse_prompt
from tenku.world.render import render_scene
from tenku.world.sample import sample_scene
from tenku.world.spec import DIRECTIONS, SceneSpec

SUITES = ("world", "i2v", "extend", "loop", "connect", "long")
SUITE_VERSION = 2  # 2: generation seeds apart from the scenes' seeds (SuiteItem.gen_seed)
SIZES = [(128, 128), (224, 128), (128, 224)]  # 1:1, 16:9, 9:16
SIZE_MULTIPLE = 16  # rescaled widths are multiples of this (VAE downsampling x patch of the default models)
FRAMES, FPS = 33, 8.0
LONG_SECONDS = 60
SAMPLE_SEED_STRIDE = 1_000_003  # sample j of an item is generated with seed + (j + 1) * this (scene seeds stay < 10^6)
COND = 9  # frames given to extend / taken from each clip for connect
PAN_SPEED = 0.05  # units / s for "the camera pans ..."

NOUN = {"circle": "ball", "square": "box", "triangle": "triangle", "star": "star", "ring": "ring"}
COLORS = ["red", "green", "blue", "yellow", "orange", "purple", "cyan", "white", "pink"]
DIR_WORDS = {"left": "to the left", "right": "to the right", "up": "upward", "down": "downward",
             "up-left": "up and to the left", "up-right": "up and to the right",
             "down-left": "down and to the left", "down-right": "down and to the right"}
BACKDROPS = ["", "", "", " on a striped background", " on a navy and slate checkerboard", " on a black background",
             " on a grey gradient"]


@dataclass
class SuiteItem:
    """One benchmark case. ``hints[i]`` is what the prompt stated about ``spec.objects[i]``.

    ``mode``: t2v, i2v, extend_forward, extend_backward, loop or connect. ``cond``:
    frames given (extend) or taken from each clip (connect)."""

    id: str
    suite: str
    prompt: str
    seed: int
    width: int
    height: int
    frames: int
    fps: float
    spec: SceneSpec
    hints: list[dict[str, str]]
    mode: str = "t2v"
    cond: int = 0
    tags: list[str] = field(default_factory=list)
    sample: int = 0

    def key(self) -> str:
        """Cache key: everything that decides the generated video."""
        d = [self.prompt, self.gen_seed, self.width, self.height, self.frames, self.fps, self.mode, self.cond]
        return hashlib.sha1(json.dumps(d).encode()).hexdigest()[:16]

    @property
    def gen_seed(self) -> int:
        """The seed a generator draws sample ``sample`` with: never the scene's own ``seed``.

        The prompt expander draws its scene from ``default_rng([seed, 0])``, which numpy
        makes the very stream ``default_rng(seed)`` that drew this item's scene; with the
        item's seed, an expanded caption would describe the hidden reference (its backdrop,
        sizes and start positions) and inflate every score (suite version 1 did)."""
        return self.seed + SAMPLE_SEED_STRIDE * (self.sample + 1)

    @property
    def label(self) -> str:
        """The item's id, with its sample when there are several (file names, reports)."""
        return f"{self.id}-s{self.sample}" if self.sample else self.id

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SuiteItem":
        d = dict(d)
        d["spec"] = SceneSpec.from_dict(d["spec"])
        return cls(**d)

    def reference(self) -> tuple[np.ndarray, Any]:
        """The simulator's render of the intended scene: uint8 frames and ground truth."""
        return render_scene(self.spec, self.width, self.height, self.fps, self.frames)


# --- prompts --------------------------------------------------------------------------

def _np(rng: np.random.Generator, color: str, shape: str, size: bool = False) -> str:
    s = f"{rng.choice(['small', 'large'])} " if size else ""
    body = f"{s}{color} {NOUN[shape]}"
    return ("an " if body[0] in "aeiou" else "a ") + body


def _clause(rng: np.random.Generator, motion: str, color: str, shape: str, size: bool = False) -> str:
    np_ = _np(rng, color, shape, size)
    if motion == "move":
        return f"{np_} moves {DIR_WORDS[str(rng.choice(list(DIR_WORDS)))]}"
    if motion == "bounce":
        return f"{np_} {rng.choice(['bounces around', 'bounces off the walls'])}"
    if motion == "fall":
        return f"{np_} {rng.choice(['falls', 'drops', 'falls onto the floor'])}"
    if motion == "throw":
        return f"{np_} is {rng.choice(['thrown', 'tossed'])} to the {rng.choice(['left', 'right'])}"
    return f"{np_} {rng.choice(['rests on the floor', 'sits still', 'floats still'])}"


def _world_prompts() -> list[tuple[str, str, list[str]]]:
    """(prompt, staging, tags) of the world suite, drawn once from a fixed generator."""
    rng = np.random.default_rng(2024)
    shapes = list(NOUN)
    out: list[tuple[str, str, list[str]]] = []
    for d in DIR_WORDS:  # every direction of motion, twice
        for _ in range(2):
            c, s = rng.choice(COLORS), rng.choice(shapes)
            out.append((f"{_np(rng, c, s, rng.random() < 0.3)} moves {DIR_WORDS[d]}{rng.choice(BACKDROPS)}", "",
                        ["single", "motion:move"]))
    for motion, n in (("bounce", 8), ("fall", 10), ("throw", 8), ("rest", 8)):
        for _ in range(n):
            c, s = rng.choice(COLORS), rng.choice(shapes)
            out.append((_clause(rng, motion, c, s, rng.random() < 0.3) + str(rng.choice(BACKDROPS)), "",
                        ["single", f"motion:{motion}"]))
    for k in range(24):  # two or three objects of distinct colours
        cols = rng.choice(COLORS, 2 + (k % 3 == 0), replace=False)
        motions = [str(rng.choice(["move", "bounce", "fall", "throw", "rest"])) for _ in cols]
        parts = [_clause(rng, m, c, rng.choice(shapes)) for m, c in zip(motions, cols)]
        text = " and ".join(parts) if len(parts) == 2 else f"{parts[0]}, {parts[1]} and {parts[2]}"
        out.append((text, "", ["multi"] + [f"motion:{m}" for m in sorted(set(motions))]))
    for count, motion in (("two", "bounce"), ("two", "rest"), ("three", "bounce"), ("two", "fall"), ("three", "rest"),
                          ("two", "move")):
        c, s = rng.choice(COLORS), rng.choice(shapes)
        verb = {"bounce": "bounce around", "rest": "rest on the floor", "fall": "fall",
                "move": f"move {DIR_WORDS[str(rng.choice(['left', 'right']))]}"}[motion]
        noun = NOUN[s] + ("es" if NOUN[s] == "box" else "s")
        out.append((f"{count} {c} {noun} {verb}", "", ["count", f"motion:{motion}"]))
    for k in range(10):  # a small mover passes behind or in front of a large resting object
        c1, c2 = rng.choice(COLORS, 2, replace=False)
        where = "behind it" if k % 3 else "in front of it"
        d = rng.choice(["left", "right"])
        out.append((f"a large {c1} {rng.choice(['box', 'ball'])} {rng.choice(['sits still', 'floats still'])} and a small "
                    f"{c2} {NOUN[rng.choice(shapes[:4])]} moves {DIR_WORDS[d]} {where}", "occlusion",
                    ["occlusion", "multi", "motion:move", "motion:rest"]))
    for k in range(10):  # aimed at a resting object, or head-on
        c1, c2 = rng.choice(COLORS, 2, replace=False)
        s1, s2 = rng.choice(shapes[:4], 2)
        if k % 2:
            text = f"a {c1} {NOUN[s1]} moves to the right and hits a resting {c2} {NOUN[s2]}"
        else:
            text = f"{_np(rng, c1, s1)} moves to the right and {_np(rng, c2, s2)} moves to the left"
        out.append((text, "collision", ["collision", "multi", "motion:move"] + (["motion:rest"] if k % 2 else [])))
    for k in range(4):
        c, s = rng.choice(COLORS), rng.choice(shapes)
        clause = _clause(rng, ["rest", "bounce"][k // 2], c, s).split(" ", 3)  # "a red ball rests ..."
        out.append((f"the camera pans {['left', 'right'][k % 2]} over {' '.join(clause[:3])} that {clause[3]}",
                    "", ["pan", "single"]))
    return out


def _mode_prompts(n: int, salt: int, motions: tuple[str, ...] = ("move", "bounce", "fall", "throw")) -> list[str]:
    rng = np.random.default_rng(salt)
    out = []
    for k in range(n):
        c1, c2 = rng.choice(COLORS, 2, replace=False)
        first = _clause(rng, motions[k % len(motions)], c1, rng.choice(list(NOUN)))
        out.append(first if k % 2 else f"{first} and {_clause(rng, 'rest', c2, rng.choice(list(NOUN)))}")
    return out


# --- scenes ---------------------------------------------------------------------------------

def _stage(spec: SceneSpec, staging: str, frames: int, fps: float, rng: np.random.Generator) -> None:
    objs, dur = spec.objects, frames / fps
    if staging.startswith("occlusion"):
        occ = next(o for o in objs if o.motion == "rest")
        mov = next(o for o in objs if o.motion == "move")
        occ.gravity, occ.y = False, float(rng.uniform(0.35, 0.65))
        occ.x = float(rng.uniform(0.4, 0.6)) * spec.width
        sgn = 1.0 if mov.vx > 0 else -1.0
        mov.y, mov.vy = occ.y, 0.0
        mov.x = -1.3 * mov.radius if sgn > 0 else spec.width + 1.3 * mov.radius
        need = abs(occ.x - mov.x) + occ.radius + 1.5 * mov.radius  # clear of it with a second to spare
        mov.vx = sgn * max(abs(mov.vx), need / (dur - 1.0))
        occ.depth, mov.depth = 1, (2 if "front" in staging else 0)
    elif staging == "collision":  # movers enter from outside and meet 1-2 s in, whatever the aspect ratio
        a, b = objs[0], objs[1]
        y, t_hit = float(rng.uniform(0.4, 0.7)), float(rng.uniform(1.0, 2.0))
        for o in (a, b):
            o.gravity, o.walls, o.y, o.vy, o.depth = False, False, y, 0.0, 0
        a.x = -1.3 * a.radius
        if b.motion == "rest":
            b.x, b.vx = float(rng.uniform(0.45, 0.6)) * spec.width, 0.0
            if spec.width < 1:  # a portrait frame: as far right as it fits, so the mover is seen first
                b.x = spec.width - b.radius - 0.02
            a.vx = max(0.15, (b.x - a.x - a.radius - b.radius) / t_hit)
        else:
            b.x = spec.width + 1.3 * b.radius
            a.vx = max(0.15, (b.x - a.x - a.radius - b.radius) / t_hit / 2)
            b.vx = -a.vx
    elif staging == "loop":
        o = next(o for o in objs if o.motion == "bounce")
        o.y, o.vy, o.gravity, o.walls, o.direction = 0.7, 0.0, False, True, "right"
        o.vx = 2 * (spec.width - 2 * o.radius) / dur  # two wall bounces: back where it started
        for r in objs:
            if r is not o:  # rest on the floor, out of the bouncer's way
                r.gravity, r.y, r.vx, r.vy = True, spec.floor_y + r.radius, 0.0, 0.0


def _judgeable(spec: SceneSpec, width: int, height: int, frames: int, fps: float, staging: str) -> bool:
    objs = spec.objects
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            if np.hypot(objs[i].x - objs[j].x, objs[i].y - objs[j].y) < objs[i].radius + objs[j].radius + 0.01:
                return False
    h = 64
    w = max(2, int(round(width * h / height / 2)) * 2)
    _, gt = render_scene(spec, w, h, fps, frames)
    vf = np.asarray(gt.visible_fraction)
    if (np.sum(vf >= 0.999, axis=1) < 6).any():
        return False
    early = [e for e in gt.events if e.type == "collision" and e.t < 0.5]
    if staging != "collision" and early:
        return False
    if staging == "collision":  # it must happen, after the movers were seen whole in 3 frames
        hits = [e.frame for e in gt.events if e.type == "collision"]
        if not hits or any(np.sum(vf[i, : hits[0]] >= 0.999) < 3 for i, o in enumerate(objs) if o.motion == "move"):
            return False
    if staging == "occlusion-behind":  # it must disappear and come back
        ends = [e for e in gt.events if e.type == "occlusion_end"]
        return bool(ends) and any(e.type == "occlusion_start" for e in gt.events)
    return True


def make_item(item_id: str, suite: str, prompt: str, size: tuple[int, int], frames: int = FRAMES, fps: float = FPS,
              staging: str = "", mode: str = "t2v", cond: int = 0, tags: list[str] | None = None,
              base_seed: int = 0) -> SuiteItem:
    """Parse ``prompt``, draw its scene (``sample_scene`` with the first judgeable candidate
    seed from ``base_seed``), stage it, and wrap it as an item."""
    parsed = parse_prompt(prompt)
    if parsed.unknown or not parsed.objects:
        raise ValueError(f"suite prompt {prompt!r} does not parse cleanly: unknown {parsed.unknown}")
    hints = parsed.object_hints()
    pan = {"left": -PAN_SPEED, "right": PAN_SPEED}.get(parsed.background.pan or "", 0.0)
    w, h = size
    for k in range(60):
        seed = base_seed + 7919 * k
        rng = np.random.default_rng(seed)
        spec = sample_scene(rng, width=w / h, objects=hints, background=parsed.background_hint(), pan=pan)
        if staging == "occlusion":
            staging = "occlusion-front" if "in front" in prompt else "occlusion-behind"
        _stage(spec, staging, frames, fps, rng)
        spec.validate()
        if _judgeable(spec, w, h, min(frames, 49), fps, staging):
            return SuiteItem(item_id, suite, prompt, seed, w, h, frames, fps, spec, hints, mode, cond, tags or [])
    raise ValueError(f"no judgeable scene for {prompt!r} in 60 seeds")


def suite_prompts(name: str) -> list[dict[str, Any]]:
    """The recipe of a suite: one dict per item with prompt, staging, mode, cond, frames, tags."""
    if name == "world":
        return [dict(prompt=p, staging=s, tags=t) for p, s, t in _world_prompts()]
    if name == "i2v":
        return [dict(prompt=p, mode="i2v", tags=["i2v"]) for p in _mode_prompts(12, 11)]
    if name == "extend":
        return [dict(prompt=p, mode=("extend_forward" if k % 2 == 0 else "extend_backward"), cond=COND,
                     tags=["extend"]) for k, p in enumerate(_mode_prompts(12, 12))]
    if name == "loop":
        rng = np.random.default_rng(13)
        out = []
        for k in range(8):
            c1, c2 = rng.choice(COLORS, 2, replace=False)
            text = f"a {c1} {NOUN[rng.choice(list(NOUN))]} bounces off the left and right walls"
            if k % 2:
                text += f" and a {c2} {NOUN[rng.choice(list(NOUN))]} rests on the floor"
            out.append(dict(prompt=text, staging="loop", mode="loop", tags=["loop"]))
        return out
    if name == "connect":
        return [dict(prompt=p, mode="connect", cond=COND, tags=["connect"]) for p in _mode_prompts(8, 14, ("move", "bounce"))]
    if name == "long":
        return [dict(prompt=p, frames=int(LONG_SECONDS * FPS) + 1, tags=["long"]) for p in (
            "a red ball bounces around",  # motions that last: every window is judged against the prompt
            "two white balls bounce around on a striped background",
            "a yellow star bounces off the walls and a green ring bounces around")]
    raise ValueError(f"unknown suite {name!r}; suites: {', '.join(SUITES)}")


def build_suite(name: str, limit: int | None = None, height: int | None = None,
                multiple: int = SIZE_MULTIPLE, samples: int = 1) -> list[SuiteItem]:
    """The first ``limit`` items of suite ``name`` (every one by default). With ``height``,
    sizes are rescaled to that height and widths rounded to a multiple of ``multiple`` (what
    a model can make; the scene's world width follows the rounded aspect ratio). With
    ``samples`` > 1, every item is repeated with samples 1, 2, ... (other generation seeds),
    all items' sample 0 first, so a run cut short still covers the whole suite once."""
    recipes = suite_prompts(name)[:limit]
    items = []
    for k, r in enumerate(recipes):
        w, h = SIZES[k % len(SIZES)]
        if height:
            w, h = max(multiple, int(round(w * height / h / multiple)) * multiple), height
        aspect = {0: "1:1", 1: "16:9", 2: "9:16"}[k % len(SIZES)]
        items.append(make_item(f"{name}-{k:03d}", name, r["prompt"], (w, h), r.get("frames", FRAMES), FPS,
                               r.get("staging", ""), r.get("mode", "t2v"), r.get("cond", 0),
                               list(r.get("tags", [])) + [f"aspect:{aspect}"], base_seed=1000 * SUITES.index(name) + k))
    return [replace(it, sample=j) for j in range(samples) for it in items]


def directions_agree(spec: SceneSpec, hints: list[dict[str, str]]) -> bool:
    """Every stated direction matches the object's initial velocity within 1 degree (a suite check)."""
    for o, h in zip(spec.objects, hints):
        d = h.get("direction")
        if d and o.motion in ("move", "bounce") and np.hypot(o.vx, o.vy) > 0:
            ux, uy = DIRECTIONS[d]
            if (o.vx * ux + o.vy * uy) / np.hypot(o.vx, o.vy) < np.cos(np.radians(1)):
                return False
    return True


__all__ = ["SUITES", "SuiteItem", "build_suite", "directions_agree", "make_item", "suite_prompts"]
