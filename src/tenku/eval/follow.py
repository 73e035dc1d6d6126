"""Layout following: does a video put each object of a layout where its boxes say?

Issue 32's acceptance: on hand-written layouts (circles, zig-zags, stops, crossings, objects
entering and leaving) the mean ADE is below a quarter of the object size, and >= 90% of the
videos have no extra tracks. ``score(frames, layout)`` measures one video with the benchmark's
own tracker (``segment.detect`` on ``segment.color_labels``, ``tracking.link``; nothing here
tracks on its own):

- each layout object is matched to a significant track (``metrics.significant``) of its
  phrase's world colour (``tenku.sketch.appearance``), one track per object (Hungarian), the
  one that follows its boxes best: cost = mean distance in object sizes over the frames both
  have + the fraction of the object's visible frames the track misses;
- the object's reference point in a frame is where the tracker would see it if the video were
  the layout's own sketch: the area centroid of the phrase's shape drawn in its box as
  ``tenku.sketch`` draws it, of the part inside the frame and not hidden by objects in front
  (deeper ``depth`` first, as the sketch composites). For a circle or square fully in view that
  is the box centre; a triangle's lies below it, and a ball half out of the frame is half a
  ball. Frames where the object is wholly hidden or off frame have none;
- ADE: the mean distance between the track's area centroid and the reference point over the
  frames where the box is visible and the track has a detection, each frame's distance divided
  by that frame's box size (the mean of its width and height in pixels, the whole box even where
  it reaches past the frame): ADE in object sizes (``ade``; ``ade_px`` in pixels);
- extra tracks: significant tracks beyond the layout's object count, as ``evaluate`` counts them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from tenku.eval.metrics import significant
from tenku.eval.segment import color_labels, detect
from tenku.eval.tracking import Track, link
from tenku.layout import Layout
from tenku.world.spec import PALETTE

MIN_WEIGHT = 0.5  # pixels of visible coverage below which an object has no reference point (render.IN_FRAME_AREA)


def world_color(layout: Layout, i: int) -> str:
    """The palette colour object ``i``'s phrase names (as the sketch draws it); a ValueError when
    it names none, since the colour tracker could not see such an object."""
    from tenku.sketch import appearance

    rgb = appearance(layout.objects[i].phrase)[1]
    for name, v in PALETTE.items():
        if all(abs(c * 255 - p) < 1e-6 for c, p in zip(rgb, v)):
            return name
    raise ValueError(f"layout object {i} ({layout.objects[i].phrase!r}): its phrase names no world colour "
                     f"({', '.join(PALETTE)}), so the colour tracker cannot follow it")


def reference_points(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(points, sizes): each object's reference point per frame in pixels ``(N, T, 2)`` (x right,
    y down; NaN where it shows nothing) and its box size per frame ``(N, T)`` (the mean of the
    box's width and height in pixels; NaN where the box is null). See the module's docstring."""
    from tenku.sketch import draw_object, appearance

    W, H, T, N = layout.width, layout.height, layout.frames, len(layout.objects)
    order = sorted(range(N), key=lambda i: (layout.objects[i].depth or 0, i))  # back to front, as Sketch draws
    xs, ys = np.arange(W) + 0.5, np.arange(H) + 0.5
    points, sizes = np.full((N, T, 2), np.nan), np.full((N, T), np.nan)
    one = np.ones(3, np.float32)
    for t in range(T):
        front = np.zeros((H, W), np.float32)  # coverage of the objects drawn so far, front-most last
        alphas: dict[int, np.ndarray] = {}
        for i in reversed(order):  # front to back: each object is hidden by what lies in front of it
            b = layout.objects[i].boxes[t]
            if b is None:
                continue
            sizes[i, t] = ((b[2] - b[0]) * W + (b[3] - b[1]) * H) / 2
            canvas = np.zeros((H, W, 3), np.float32)
            draw_object(canvas, appearance(layout.objects[i].phrase)[0], one, (b[0] * W, b[1] * H, b[2] * W, b[3] * H))
            a = canvas[..., 0]
            alphas[i] = a * (1 - front)
            front = front + a * (1 - front)
        for i, w in alphas.items():
            total = float(w.sum())
            if total >= MIN_WEIGHT:
                points[i, t] = float((w.sum(0) * xs).sum()) / total, float((w.sum(1) * ys).sum()) / total
    return points, sizes


def _errors(track: Track, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, distances in pixels) where the object has a reference point and the track a detection."""
    fr = np.array([f for f in track.frames if f < len(points) and not np.isnan(points[f, 0])], dtype=int)
    if not len(fr):
        return fr, np.zeros(0)
    xy = np.array([(track.dets[f].x, track.dets[f].y) for f in fr])
    return fr, np.linalg.norm(xy - points[fr], axis=1)


def score(frames: np.ndarray, layout: Layout) -> dict[str, Any]:
    """Score how well uint8 ``frames`` (T, H, W, 3) follow ``layout`` (same frame count and size).

    Returns ``{"objects": [...], "tracks", "extra_tracks", "ade", "found"}``: per object its
    ``phrase``, ``color``, ``found`` (a track was matched), ``track`` (its id), ``ade`` (object
    sizes), ``ade_px``, ``size_px`` (mean box size), ``visible`` (frames with a reference point),
    ``compared`` (of those, frames the track was seen), ``coverage`` (compared / visible);
    per video ``ade``, the mean over found objects (NaN if none), and ``found``, the fraction of
    objects found. A ValueError (one line) for frames that do not fit the layout.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3); got {frames.dtype} {tuple(frames.shape)}")
    T, H, W = frames.shape[:3]
    if (T, H, W) != (layout.frames, layout.height, layout.width):
        raise ValueError(f"frames are {T} x {W}x{H} but the layout is {layout.frames} x {layout.width}x{layout.height}")
    colors = [world_color(layout, i) for i in range(len(layout.objects))]
    tracks = link(detect(frames, color_labels(frames)), H)
    cand = significant(tracks, T)
    points, sizes = reference_points(layout)
    visible = (~np.isnan(points[..., 0])).sum(1)
    cost = np.full((len(colors), len(cand)), 1e9)
    for i, c in enumerate(colors):
        for j, tr in enumerate(cand):
            if tr.color != c:
                continue
            fr, d = _errors(tr, points[i])
            if len(fr):
                cost[i, j] = float((d / sizes[i, fr]).mean()) + 1 - len(fr) / visible[i]
    matched: list[Track | None] = [None] * len(colors)
    if cand and colors:
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] < 1e9:
                matched[i] = cand[j]
    rows: list[dict[str, Any]] = []
    for i, (o, c, tr) in enumerate(zip(layout.objects, colors, matched)):
        seen = ~np.isnan(sizes[i])
        row: dict[str, Any] = {"phrase": o.phrase, "color": c, "found": tr is not None, "track": None,
                               "ade": math.nan, "ade_px": math.nan,
                               "size_px": float(sizes[i][seen].mean()) if seen.any() else math.nan,
                               "visible": int(visible[i]), "compared": 0, "coverage": 0.0}
        if tr is not None:
            fr, d = _errors(tr, points[i])
            row.update(track=tr.id, ade=float((d / sizes[i, fr]).mean()), ade_px=float(d.mean()), compared=len(fr),
                       coverage=len(fr) / int(visible[i]))
        rows.append(row)
    found = [r["ade"] for r in rows if r["found"]]
    return {"objects": rows, "tracks": len(tracks), "extra_tracks": max(0, len(cand) - len(rows)),
            "ade": float(np.mean(found)) if found else math.nan,
            "found": sum(r["found"] for r in rows) / len(rows) if rows else 1.0}


__all__ = ["reference_points", "score", "world_color"]
