"""The sketch: a layout drawn as the world would draw it, for the transformer to redraw.

With ``--plan`` or ``--layout`` and a sketch strength below 1, sampling does not start from
pure noise: each object of the layout is drawn in its box, in its phrase's colour and shape,
over the expanded scene's background, and that sketch, noised to the strength, is where
sampling starts (SDEdit; Meng et al. 2022). The model decides where objects are and what
outline they have above noise level 0.7 (docs/training-history.md), exactly where it fails;
a sketch hands it both, as PhysGen and GPT4Motion hand a simulator's render to theirs, and the
transformer redraws the rest under the caption. Strength 1 is plain sampling: the sketch is
noised away completely. A sketch from strength s takes ``sketch_steps`` of the request's steps
(s of them, as diffusers' image-to-image does: ``steps`` counts a full noise range's).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from tenku.layout import Layout
from tenku.world.spec import outline_extent

GREY = (0.5, 0.5, 0.5)  # an object whose phrase names no colour the world knows


def sketch_steps(steps: int, strength: float) -> int:
    """Sampling steps of a sketch from ``strength``: the share of ``steps`` (a full noise range's)
    that its shorter range covers, at least one. On 26 world items 8 steps from 0.4 scored as 20
    did (docs/layout.md)."""
    return max(1, round(steps * strength))


@lru_cache(maxsize=256)
def appearance(phrase: str) -> tuple[str, tuple[float, float, float]]:
    """The world shape and colour (RGB in [0, 1]) a phrase names ("a large navy blue block" ->
    square, blue), as the prompt parser reads it; a circle and grey where it names none."""
    from tenku.lang.parse import parse_prompt
    from tenku.world.spec import PALETTE, SHAPES

    objs = parse_prompt(phrase).objects
    o = objs[0] if objs else None
    shape = o.shape if o is not None and o.shape in SHAPES else "circle"
    rgb = tuple(c / 255 for c in PALETTE[o.color]) if o is not None and o.color in PALETTE else GREY
    return shape, rgb  # type: ignore[return-value]


def _unclip(box: tuple[float, float, float, float], aspect: float, w: int, h: int) -> tuple[float, float, float, float]:
    """A box in pixels cut by the frame's edge, grown past that edge back to the shape's own
    ``aspect`` (width / height), so that a half-visible ball is half a ball, not a squashed one."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if bw < aspect * bh:  # too narrow: cut at the left or right edge
        if x0 <= 0.5:
            x0 = x1 - aspect * bh
        elif x1 >= w - 0.5:
            x1 = x0 + aspect * bh
    elif bh < bw / aspect:  # too flat: cut at the top or bottom
        if y0 <= 0.5:
            y0 = y1 - bw / aspect
        elif y1 >= h - 0.5:
            y1 = y0 + bw / aspect
    return x0, y0, x1, y1


def draw_object(frame: np.ndarray, shape: str, rgb: np.ndarray, box: tuple[float, float, float, float],
                angle: float = 0.0) -> None:
    """Composite one shape, turned ``angle`` degrees anticlockwise, filling ``box`` (pixels) over
    ``frame`` (H, W, 3) float, in place."""
    from tenku.world.render import coverage

    h, w = frame.shape[:2]
    ex0, ey0, ex1, ey1 = outline_extent(shape, angle)
    x0, y0, x1, y1 = _unclip(box, (ex1 - ex0) / (ey1 - ey0), w, h)
    sx, sy = (x1 - x0) / (ex1 - ex0), (y1 - y0) / (ey1 - ey0)  # pixels per unit of the outline
    if sx <= 0 or sy <= 0:
        return
    cx, cy = x0 - ex0 * sx, y0 + ey1 * sy  # the outline's origin in pixels (y down)
    r = math.sqrt(sx * sy)  # coverage's anti-aliasing is in pixels of this radius
    X0, X1 = max(int(math.floor(x0)) - 1, 0), min(int(math.ceil(x1)) + 1, w)
    Y0, Y1 = max(int(math.floor(y0)) - 1, 0), min(int(math.ceil(y1)) + 1, h)
    if X0 >= X1 or Y0 >= Y1:
        return
    u = (np.arange(X0, X1) + 0.5 - cx)[None, :] * (r / sx)
    v = (cy - (np.arange(Y0, Y1) + 0.5))[:, None] * (r / sy)
    a = coverage(shape, u, v, r, angle)[..., None]
    frame[Y0:Y1, X0:X1] = frame[Y0:Y1, X0:X1] * (1 - a) + a * rgb


class Sketch:
    """The frames of a layout's sketch, drawn on demand (a minute of video is never held):
    ``frames(start, count)`` are output frames ``start .. start + count - 1`` (indices before
    the start or past the end as ``tenku.layout.window`` takes them). ``scene``: the expanded
    scene (``tenku.world.spec.SceneSpec``) whose background and camera pan the sketch has."""

    def __init__(self, layout: Layout, scene: Any, width: int, height: int):
        from tenku.world.render import View

        self.layout, self.scene, self.w, self.h = layout, scene, width, height
        self.view = View(scene, width, height)
        self._still: np.ndarray | None = None  # the background of the last frame drawn
        order = sorted(range(len(layout.objects)), key=lambda i: (layout.objects[i].depth or 0, i))
        self.objects = [(layout.objects[i], *appearance(layout.objects[i].phrase)) for i in order]  # back to front

    def frame(self, k: int) -> np.ndarray:
        """Output frame ``k`` (clamped to the layout), float (H, W, 3) in [0, 1]."""
        from tenku.world.render import background

        k = min(max(k, 0), self.layout.frames - 1)
        if self.scene.pan or self._still is None:  # a still camera's background is drawn once
            self._still = background(self.scene, self.view, self.scene.pan * k / self.layout.fps).astype(np.float32)
        img = self._still.copy()
        for obj, shape, rgb in self.objects:
            b = obj.boxes[k]
            if b is not None:
                draw_object(img, shape, np.asarray(rgb, np.float32), (b[0] * self.w, b[1] * self.h, b[2] * self.w, b[3] * self.h),
                            obj.angle or 0.0)
        return img

    def frames(self, start: int, count: int, wrap: bool = False) -> np.ndarray:
        """uint8 (count, H, W, 3); ``wrap``: indices past the end wrap onto the start (a loop)."""
        n = self.layout.frames
        idx = [(start + i) % n if wrap else start + i for i in range(count)]
        return (np.clip(np.stack([self.frame(k) for k in idx]), 0, 1) * 255 + 0.5).astype(np.uint8)
