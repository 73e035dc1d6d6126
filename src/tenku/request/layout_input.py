"""Planning from an input's frames (``--plan`` with an image, an extension or a connect): the
objects the benchmark's colour tracker finds in the given frames start the simulation where
they are, so the physics carries across the seam.

A first version (docs/layout.md says what is left): the seam is the last given frame before
the new ones (the image of image-to-video or of a loop, the last frame of a video extended
forward, the last frame of clip A of a connect, which is also planned back in time from clip B and
blended into it across the transition). Each object tracked there is matched to an
object of the expanded scene by colour (then shape); it starts at its tracked place, with the
velocity its track had over the last given frames (an image has none: the scene's own
velocity stays), and objects the prompt does not name but the input shows join the scene as
they are. One simulation runs from the seam to the end of the video; the given frames before
the seam keep their tracked boxes. A backward extension (the given frames come after the new
ones) is planned the same way in reversed time: the video played backward is tracked, its first
frame is the seam, the simulation runs from there into the past (ballistic motion under gravity
reverses exactly; a bounce's lost energy is not given back), and the plan is played forward.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

VELOCITY_FRAMES = 3  # given frames the seam velocity is measured over (fewer when fewer are given)


def _given(req: Any) -> np.ndarray | None:
    """The given frames before the seam, fitted to the output size (a backward extension's video
    played backward): None where there are none (text-to-video, an edit)."""
    from tenku.modes import cover_resize

    w, h = req.size
    src = req.image if req.mode in ("image-to-video", "loop") else req.video if req.mode.startswith("extend") \
        else req.connect[0] if req.mode == "connect" else None
    if src is None:
        return None
    frames = cover_resize(src.frames(req.fps), w, h)
    return frames[::-1] if req.mode == "extend-backward" else frames


def _size_name(area_px: float, shape: str, scale: float) -> str:
    """The world size whose shape area is nearest the tracked one."""
    from tenku.world.spec import SIZES, shape_area

    return min(SIZES, key=lambda s: abs(math.log(max(area_px, 1.0) / (shape_area(shape, SIZES[s]) * scale**2))))


def seam_scene(spec: Any, frames: np.ndarray, fps: float) -> tuple[Any, list[Any], int]:
    """``spec`` with its objects where the input's last frame shows them: (the scene, simulated
    from the seam on; per object of it the input's ``Track`` or None; the seam's frame index)."""
    from tenku.eval.tracking import PixelMap, centroid_offset, track_video
    from tenku.world.spec import ObjectSpec

    h = frames.shape[1]
    pm = PixelMap(spec, frames.shape[2], h, fps)
    _, tracks = track_video(frames, scale=pm.scale)
    s = len(frames) - 1
    live = sorted((tr for tr in tracks if s in tr.dets), key=lambda tr: -tr.dets[s].area)
    objects, owner = list(spec.objects), [None] * len(spec.objects)
    for tr in live:
        d = tr.dets[s]
        free = [i for i, o in enumerate(objects) if owner[i] is None and o.color == d.color]
        i = next((i for i in free if objects[i].shape == d.shape), free[0] if free else None)
        if i is None:  # shown but not named: it joins the scene as it is
            if len(objects) >= 8:
                continue
            objects.append(ObjectSpec(d.shape, d.color, _size_name(d.area, d.shape, pm.scale), "rest", 0.0, 0.0))
            owner.append(None)
            i = len(objects) - 1
        o = objects[i]
        if d.clean:  # the size it shows, not the one the expander guessed
            o = replace(o, size=_size_name(d.area, o.shape, pm.scale))
        x, y = pm.to_world(d.x, d.y, s)
        dx, dy = centroid_offset(o.shape, o.radius, o.angle)
        x, y = float(x) - dx - spec.pan * s / fps, float(y) - dy  # the new simulation's camera starts at 0
        vx, vy = o.vx, o.vy
        back = [f for f in tr.frames if s - VELOCITY_FRAMES <= f < s]
        if back:  # measured: the track's mean velocity over the last given frames, world units / s
            a = tr.dets[back[0]]
            (x0, y0), (x1, y1) = pm.to_world(a.x, a.y, back[0]), pm.to_world(d.x, d.y, s)
            vx, vy = float(x1 - x0) * fps / (s - back[0]), float(y1 - y0) * fps / (s - back[0])
            if o.motion == "rest" and math.hypot(vx, vy) > 0.05:
                o = replace(o, motion="move")
        objects[i] = replace(o, x=x, y=y, vx=vx, vy=vy)
        owner[i] = tr
    return replace(spec, objects=objects), owner, s


def from_input(req: Any, spec: Any) -> Any:
    """The layout of the whole output video continued from the request's given frames (the
    module's docstring), or None when the request gives none before its new frames. A connect
    is planned from both clips (``_connect``)."""
    frames = _given(req)
    if frames is None:
        return None
    lay = _continued(req, spec, frames, reverse=req.mode == "extend-backward")
    if req.mode == "connect":
        from tenku.modes import cover_resize

        b = cover_resize(req.connect[1].frames(req.fps), *req.size)[::-1]
        lay = _connect(lay, _continued(req, spec, b, reverse=True), len(frames), req.frames)
    return lay


def _continued(req: Any, spec: Any, frames: np.ndarray, reverse: bool) -> Any:
    """The layout of the whole output seeded by ``frames`` (in simulation order: the seam is the
    last), simulated on from the seam; ``reverse``: ``frames`` are played backward (the seam is
    the output's first given frame) and so is the plan, into the output's order."""
    from tenku.layout import Layout, from_scene

    w, h = req.size
    scene, owner, s = seam_scene(spec, frames, req.fps)
    after = from_scene(scene, w, h, req.fps, req.total - s)  # frame s is the seam, in both
    objects = []
    for o, tr in zip(after.objects, owner):
        before = [None] * s
        for f, d in ([] if tr is None else tr.dets.items()):
            if f < s:
                x0, y0, x1, y1 = d.bbox
                before[f] = (x0 / w, y0 / h, x1 / w, y1 / h)
        boxes = before + o.boxes
        objects.append(replace(o, boxes=boxes[::-1] if reverse else boxes))
    return Layout(req.fps, req.total, w, h, objects)


def _hand_over(p: Any, q: Any, u: float) -> Any:
    """One frame's box handed over from plan ``p`` to plan ``q`` at weight ``u`` on ``q``: the
    blend of the two where both show the object near each other (centres within two box sizes),
    else the box (or absence) of the plan that weighs more: an object that leaves on one side
    and comes back on the other is not dragged across the frame."""
    if p is None or q is None:
        return p if u < 0.5 else q
    size = max(p[2] - p[0], p[3] - p[1], q[2] - q[0], q[3] - q[1])
    if math.hypot((p[0] + p[2] - q[0] - q[2]) / 2, (p[1] + p[3] - q[1] - q[3]) / 2) > 2 * size:
        return p if u < 0.5 else q
    return tuple(float((1 - u) * x + u * y) for x, y in zip(p, q))


def _connect(fwd: Any, back: Any, a: int, n: int) -> Any:
    """A connect's plan: ``fwd`` (continued from clip A, ``a`` frames) through A and the ``n``
    transition frames, ``back`` (run back in time from clip B) through B, and across the
    transition a hand-over from the one to the other (``_hand_over``, weight ``(k + 1) / (n + 1)``
    on ``back`` at transition frame k), so each seam continues its own clip's motion. The objects of
    the expanded scene come first in both (in the same order) and blend; objects only one clip
    shows keep that plan's boxes."""
    from tenku.layout import Layout

    shared = min(len(fwd.objects), len(back.objects))
    shared = next((i for i in range(shared) if fwd.objects[i].phrase != back.objects[i].phrase), shared)
    objects = []
    for i in range(shared):
        f, b = fwd.objects[i].boxes, back.objects[i].boxes
        boxes = list(f[: a]) + [None] * n + list(b[a + n:])
        for k in range(n):
            boxes[a + k] = _hand_over(f[a + k], b[a + k], (k + 1) / (n + 1))
        objects.append(replace(fwd.objects[i], boxes=boxes))
    only = lambda o, keep: replace(o, boxes=[x if keep(k) else None for k, x in enumerate(o.boxes)])  # noqa: E731
    objects += [only(o, lambda k: k < a + n) for o in fwd.objects[shared:]]  # one clip's own: not in the other
    objects += [only(o, lambda k: k >= a) for o in back.objects[shared:]]
    return Layout(fwd.fps, fwd.frames, fwd.width, fwd.height, objects)


def periodic(req: Any, lay: Any, spec: Any) -> Any:
    """A loop's plan that closes on itself: over its second half, ``lay`` hands over (weight
    ``(k + 1) / (m + 1)`` at the k-th of those m frames, ``_hand_over``) to the plan run back in
    time from its first frame (the scene's start, or where a loop's image shows the objects), so
    the last frame flows into the first as the video does."""
    from tenku.layout import Layout, from_scene

    w, h = req.size
    n = lay.frames
    m = n - n // 2
    start = spec if req.image is None else seam_scene(spec, _given(req), req.fps)[0]
    back_scene = replace(start, objects=[replace(o, vx=-o.vx, vy=-o.vy) for o in start.objects], pan=-start.pan)
    back = from_scene(back_scene, w, h, req.fps, m + 1)  # frame j: time -j before the loop's first frame
    objects = []
    for i, o in enumerate(lay.objects):
        if i >= len(back.objects) or back.objects[i].phrase != o.phrase:
            objects.append(o)
            continue
        boxes = list(o.boxes)
        for k in range(m):
            f = n - m + k
            boxes[f] = _hand_over(boxes[f], back.objects[i].boxes[n - f], (k + 1) / (m + 1))
        objects.append(replace(o, boxes=boxes))
    return Layout(lay.fps, n, lay.width, lay.height, objects)
