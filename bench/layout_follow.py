"""Layout following on hand-written layouts the simulator never makes (issue 32's acceptance:
mean ADE below a quarter of the object size, no extra tracks in >= 90% of the videos).

24 layouts built here (128x128, 33 frames at 8 fps): circles, zig-zags, a figure eight, stops and
starts, two objects crossing, entering from the left, leaving at the top, growing (approaching),
shrinking, popping in and out (null boxes), vanishing and reappearing, orbits, three lanes...
each with a short prompt naming its objects over a named background. Every layout is generated
at each ``--sketch`` strength with the same seeds (paired), exactly as ``tenku generate PROMPT
--layout L --sketch S --no-expand`` makes it (``--expand``: expanded captions, as generate's
default; the expander invents motions of its own that contradict the layout), and scored by
``tenku.eval.follow`` (the benchmark's tracker; ADE in object sizes).

    OMP_NUM_THREADS=1 python bench/layout_follow.py --sketch 1 0.9 0.8 0.7 0.6 --seeds 2 --out /work/runs/layout-follow

Writes OUT/layouts/NAME.json, OUT/sS/NAME-seedK.mp4 (+ its sidecar, + NAME-seedK.follow.json,
the scores; a rerun reuses them) and OUT/results.json; prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tenku.layout import Box, Layout, LayoutObject, save
from tenku.world.spec import SIZES

W = H = 128
T, FPS = 33, 8.0
Route = Callable[[float], "tuple[float, float] | None"]  # time in [0, 1] -> box centre (normalised), None: not shown


def radius_of(phrase: str) -> float:
    """The world radius (frame heights) a phrase's size word names; medium without one."""
    return next((r for s, r in SIZES.items() if s in phrase.split()), SIZES["medium"])


def obj(phrase: str, path: Route, radius: float | Callable[[float], float] | None = None,
        depth: int | None = None) -> LayoutObject:
    """An object of ``phrase`` whose box is centred on ``path(u)`` at frame ``u * (T - 1)``,
    as large as the shape's outline at ``radius`` (default: the phrase's size word); boxes wholly
    outside the frame become null."""
    from tenku.sketch import appearance
    from tenku.world.spec import outline_extent

    ex0, ey0, ex1, ey1 = outline_extent(appearance(phrase)[0])
    boxes: list[Box | None] = []
    for k in range(T):
        u = k / (T - 1)
        p = path(u)
        r = radius(u) if callable(radius) else radius or radius_of(phrase)
        if p is None:
            boxes.append(None)
            continue
        hw, hh = (ex1 - ex0) * r * H / W / 2, (ey1 - ey0) * r / 2
        b = (p[0] - hw, p[1] - hh, p[0] + hw, p[1] + hh)
        boxes.append(b if b[2] > 0.005 and b[3] > 0.005 and b[0] < 0.995 and b[1] < 0.995 else None)
    return LayoutObject(phrase, boxes, depth)


def circle(cx: float, cy: float, rad: float, turns: float = 1.0, phase: float = 0.0) -> Route:
    """Round a circle (turns < 0: anticlockwise on screen)."""
    return lambda u: (cx + rad * math.cos(phase + 2 * math.pi * turns * u), cy + rad * math.sin(phase + 2 * math.pi * turns * u))


def through(*points: tuple[float, float, float]) -> Route:
    """Straight lines through (u, x, y) waypoints; before the first and after the last, held."""
    us = [p[0] for p in points]
    return lambda u: (float(np.interp(u, us, [p[1] for p in points])), float(np.interp(u, us, [p[2] for p in points])))


def shown(path: Route, *spans: tuple[float, float]) -> Route:
    """``path`` only within the (u0, u1) spans: null boxes elsewhere (popping in and out)."""
    return lambda u: path(u) if any(a - 1e-9 <= u <= b + 1e-9 for a, b in spans) else None


def zigzag(x0: float, y0: float, x1: float, y1: float, legs: int, amp: float) -> Route:
    """From (x0, y0) to (x1, y1) swinging ``amp`` to each side of the line, ``legs`` straight legs."""
    nx, ny = -(y1 - y0), x1 - x0
    n = math.hypot(nx, ny)
    pts = [(i / legs, x0 + (x1 - x0) * i / legs + amp * nx / n * (0 if i in (0, legs) else (-1) ** i),
            y0 + (y1 - y0) * i / legs + amp * ny / n * (0 if i in (0, legs) else (-1) ** i)) for i in range(legs + 1)]
    return through(*pts)


def layouts() -> list[tuple[str, str, list[LayoutObject]]]:
    """(name, prompt, objects) of every hand-written layout."""
    return [
        ("circle", "a large red ball moves around in a loop over a gray background",
         [obj("a large red ball", circle(0.5, 0.45, 0.25))]),
        ("circle-twice", "a blue block travels round and round over a charcoal background",
         [obj("a blue block", circle(0.5, 0.45, 0.2, turns=-2))]),
        ("zigzag-across", "a yellow star zig-zags from left to right over a navy background",
         [obj("a large yellow star", zigzag(0.15, 0.45, 0.85, 0.45, 6, 0.2))]),
        ("zigzag-down", "a green ball zig-zags down over a black background",
         [obj("a green ball", zigzag(0.5, 0.12, 0.5, 0.78, 4, 0.3))]),
        ("figure-eight", "an orange ball traces a figure eight over a slate background",
         [obj("an orange ball", lambda u: (0.5 + 0.3 * math.sin(2 * math.pi * u), 0.45 + 0.2 * math.sin(4 * math.pi * u)))]),
        ("stop-start", "a purple block moves to the right, stops, then moves on over a gray background",
         [obj("a purple block", through((0, 0.15, 0.5), (0.35, 0.45, 0.5), (0.65, 0.45, 0.5), (1, 0.85, 0.5)))]),
        ("stop-back", "a cyan ball moves right, pauses and comes back over a brown background",
         [obj("a large cyan ball", through((0, 0.2, 0.4), (0.4, 0.8, 0.4), (0.6, 0.8, 0.4), (1, 0.2, 0.4)))]),
        ("cross", "a red ball and a blue block pass each other over a charcoal background",
         [obj("a red ball", through((0, 0.15, 0.5), (1, 0.85, 0.5)), depth=1),
          obj("a blue block", through((0, 0.85, 0.5), (1, 0.15, 0.5)), depth=0)]),
        ("cross-diagonal", "a yellow ball and a green block cross paths over a navy background",
         [obj("a yellow ball", through((0, 0.15, 0.15), (1, 0.85, 0.8))),
          obj("a green block", through((0, 0.85, 0.15), (1, 0.15, 0.8)), depth=1)]),
        ("enter-left", "an orange block enters from the left over a gray background",
         [obj("an orange block", through((0, -0.1, 0.45), (0.7, 0.55, 0.45)))]),
        ("leave-top", "a pink ball rises and leaves through the top over a black background",
         [obj("a pink ball", through((0, 0.5, 0.75), (0.2, 0.5, 0.7), (0.85, 0.5, -0.1)))]),
        ("traverse", "a white ball crosses the whole frame from right to left over a maroon background",
         [obj("a white ball", through((0, 1.1, 0.4), (1, -0.1, 0.55)))]),
        ("approach", "a red ball grows as it comes closer over a slate background",
         [obj("a red ball", through((0, 0.5, 0.35), (1, 0.5, 0.5)), radius=lambda u: 0.04 + 0.12 * u)]),
        ("recede", "a blue ball shrinks into the distance over a gray background",
         [obj("a blue ball", through((0, 0.35, 0.6), (1, 0.6, 0.3)), radius=lambda u: 0.15 - 0.11 * u)]),
        ("pop-in-out", "a green star appears, drifts and disappears over a charcoal background",
         [obj("a large green star", shown(through((0, 0.3, 0.5), (1, 0.7, 0.4)), (0.25, 0.75)))]),
        ("vanish-reappear", "a yellow block vanishes and reappears elsewhere over a brown background",
         [obj("a yellow block", shown(through((0, 0.2, 0.3), (0.4, 0.4, 0.3), (0.6, 0.6, 0.65), (1, 0.8, 0.65)),
                                      (0, 0.38), (0.62, 1)))]),
        ("corners", "a purple ball goes around the four corners over a gray background",
         [obj("a purple ball", through((0, 0.25, 0.2), (0.25, 0.75, 0.2), (0.5, 0.75, 0.7), (0.75, 0.25, 0.7), (1, 0.25, 0.2)))]),
        ("spiral", "a cyan ball spirals in toward the centre over a navy background",
         [obj("a cyan ball", lambda u: (0.5 + 0.32 * (1 - 0.85 * u) * math.cos(3 * math.pi * u),
                                        0.45 + 0.3 * (1 - 0.85 * u) * math.sin(3 * math.pi * u)))]),
        ("bob-beside-rest", "an orange ball bobs up and down next to a resting blue block over a slate background",
         [obj("an orange ball", lambda u: (0.3, 0.45 + 0.25 * math.sin(4 * math.pi * u))),
          obj("a large blue block", lambda u: (0.7, 0.6))]),
        ("orbit-pair", "a red ball and a yellow ball orbit each other over a black background",
         [obj("a red ball", circle(0.5, 0.45, 0.22)), obj("a yellow ball", circle(0.5, 0.45, 0.22, phase=math.pi))]),
        ("three-lanes", "a red ball, a green block and a blue triangle move in three lanes over a gray background",
         [obj("a red ball", through((0, 0.1, 0.2), (1, 0.9, 0.2))),
          obj("a green block", through((0, 0.8, 0.45), (1, 0.3, 0.45))),
          obj("a blue triangle", through((0, 0.2, 0.72), (1, 0.6, 0.72)))]),
        ("dart", "a white star rests, then darts to the upper right over a charcoal background",
         [obj("a large white star", through((0, 0.3, 0.65), (0.55, 0.3, 0.65), (0.8, 0.75, 0.25), (1, 0.75, 0.25)))]),
        ("wave", "a pink ball moves right in a wave over a navy background",
         [obj("a pink ball", lambda u: (0.12 + 0.76 * u, 0.45 + 0.2 * math.sin(3 * math.pi * u)))]),
        ("ring-zigzag-up", "a white ring zig-zags upward over a brown background",
         [obj("a large white ring", zigzag(0.5, 0.75, 0.5, 0.2, 4, 0.25))]),
    ]


def build(out: Path) -> list[tuple[str, str, Layout]]:
    """Every layout, checked (``tenku.layout.from_dict``), saved to OUT/layouts/NAME.json; each
    prompt must name exactly its layout's objects (colour and shape), or the run stops."""
    from tenku.lang.parse import parse_prompt
    from tenku.layout import canonical
    from tenku.sketch import appearance
    from tenku.world.spec import PALETTE

    (out / "layouts").mkdir(parents=True, exist_ok=True)
    made = []
    for name, prompt, objs in layouts():
        lay = canonical(Layout(FPS, T, W, H, objs))
        said = sorted((o.color, o.shape) for o in parse_prompt(prompt).objects)
        want = sorted((next(c for c, v in PALETTE.items() if tuple(x / 255 for x in v) == appearance(o.phrase)[1]),
                       appearance(o.phrase)[0]) for o in objs)
        if said != want:
            sys.exit(f"layout {name}: the prompt names {said}, the layout has {want}")
        save(lay, out / "layouts" / f"{name}.json")
        made.append((name, prompt, lay))
    return made


def generate(pipe: Any, model: str, prompt: str, lay: Layout, seed: int, sketch: float, expand: bool, steps: int | None,
             video: Path) -> tuple[np.ndarray, float]:
    """The video ``tenku generate PROMPT --layout L --sketch S --seed K`` makes, written to
    ``video`` with its sidecar; returns its frames (as sampled, before the mp4's compression) and
    their mean absolute difference (0-255) from the layout's sketch over the same background: how
    much of the video the model redrew rather than kept."""
    from tenku.sketch import Sketch
    from tenku.request import Limits, Request, resolve
    from tenku.request.make import expand as expand_req, make, stream

    req = resolve(Request(prompt, seed=seed, size=(W, H), frames=T, fps=FPS, steps=steps, expand=expand,
                          conditioning={"layout": lay}, sketch=sketch), pipe.geometry, Limits(max_pixels=0))
    expansion = expand_req(req)
    blocks: list[np.ndarray] = []
    make(pipe, req, video, expansion, stream(pipe, req, expansion), watch=blocks.append, model=model)
    frames = np.concatenate(blocks)
    drawn = Sketch(req.conditioning["layout"], req.scene, W, H).frames(0, T)
    return frames, float(np.abs(frames.astype(np.float32) - drawn).mean())


def mean_se(xs: list[float]) -> tuple[float, float]:
    a = np.asarray([x for x in xs if not math.isnan(x)], dtype=float)
    if not len(a):
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else math.nan


def summary(rows: list[dict[str, Any]], base: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One setting's numbers over its videos; ``base``: the first setting's, paired by layout and seed."""
    ade, se = mean_se([r["ade"] for r in rows])
    objs = [o for r in rows for o in r["objects"]]
    out = {"videos": len(rows), "ade": ade, "ade_se": se,
           "no_extra": float(np.mean([r["extra_tracks"] == 0 for r in rows])),
           "extra_tracks": float(np.mean([r["extra_tracks"] for r in rows])),
           "found": sum(o["found"] for o in objs) / len(objs), "objects": len(objs),
           "ade_below_quarter": float(np.mean([r["ade"] < 0.25 for r in rows])),
           "sketch_mae": float(np.mean([r["sketch_mae"] for r in rows])),
           "seconds": float(np.mean([r["seconds"] for r in rows]))}
    if base is not None:
        d = [r["ade"] - b["ade"] for r, b in zip(rows, base) if not (math.isnan(r["ade"]) or math.isnan(b["ade"]))]
        out["ade_change"], out["ade_change_se"] = mean_se(d)
        out["ade_change_pairs"] = len(d)
    return out


def table(results: dict[str, Any]) -> str:
    lines = ["| sketch | videos | mean ADE (object sizes) | paired change | videos with ADE < 1/4 | no extra tracks "
             "| extra tracks / video | objects found | MAE to the sketch |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s, r in results["settings"].items():
        ch = f"{r['ade_change']:+.3f} +- {r['ade_change_se']:.3f}" if "ade_change" in r else "(base)"
        lines.append(f"| {s} | {r['videos']} | {r['ade']:.3f} +- {r['ade_se']:.3f} | {ch} | {r['ade_below_quarter']:.2f} "
                     f"| {r['no_extra']:.2f} | {r['extra_tracks']:.2f} | {r['found']:.2f} ({r['objects']}) | {r['sketch_mae']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/tenku-world", help="pipeline folder (a grounded model)")
    p.add_argument("--sketch", type=float, nargs="+", default=[1.0, 0.8, 0.6], help="sketch strengths, the first the base")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0 .. N-1 for every layout and setting")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    p.add_argument("--expand", action="store_true", help="expand the prompts (tenku generate's default)")
    p.add_argument("--limit", type=int, default=None, help="only the first N layouts")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="/work/runs/layout-follow")
    a = p.parse_args()
    if any(not 0 < s <= 1 for s in a.sketch):
        sys.exit("--sketch strengths are in (0, 1] (1: no sketch)")
    import torch

    from tenku.eval.follow import score
    from tenku.pipeline import Pipeline

    torch.set_num_threads(a.threads)
    out = Path(a.out)
    made = build(out)[: a.limit]
    pipe = Pipeline.load(a.model, device="cpu")
    if not pipe.dit.cfg.grounding:
        sys.exit(f"{a.model}: this model has no grounding; it cannot follow a layout")
    per: dict[str, list[dict[str, Any]]] = {}
    for s in a.sketch:
        key, folder = f"{s:g}", out / f"s{s:g}"
        folder.mkdir(parents=True, exist_ok=True)
        per[key] = []
        for name, prompt, lay in made:
            for seed in range(a.seeds):
                stem = folder / f"{name}-seed{seed}"
                cached = stem.with_suffix(".follow.json")
                if cached.is_file():
                    per[key].append(json.loads(cached.read_text()))
                    continue
                t0 = time.time()
                frames, mae = generate(pipe, a.model, prompt, lay, seed, s, a.expand, a.steps, stem.with_suffix(".mp4"))
                row = {"layout": name, "seed": seed, "sketch": s, **score(frames, lay), "sketch_mae": round(mae, 2),
                       "seconds": round(time.time() - t0, 1)}
                cached.write_text(json.dumps(row, indent=1))
                per[key].append(row)
                print(f"sketch {key} {name} seed {seed}: ADE {row['ade']:.3f}, extra {row['extra_tracks']}, "
                      f"found {row['found']:.2f} ({row['seconds']:.0f}s)", flush=True)
    keys = list(per)
    results = {"model": str(Path(a.model).resolve()), "layouts": len(made), "seeds": a.seeds, "expand": a.expand,
               "steps": a.steps, "settings": {k: summary(per[k], None if k == keys[0] else per[keys[0]]) for k in keys},
               "videos": {k: [{"layout": r["layout"], "seed": r["seed"], "ade": r["ade"], "extra_tracks": r["extra_tracks"],
                               "found": r["found"], "sketch_mae": r["sketch_mae"]} for r in per[k]] for k in keys}}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
