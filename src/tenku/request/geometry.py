"""What sizes and lengths a loaded model makes: one ``Geometry`` value (size multiple, frame
step, default size, length and fps, pixel limit, chunk and context frames) that every front
end resolves requests against, and the size arithmetic behind it (aspect ratios, input sizes)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tenku import MAX_ASPECT


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H), both positive; anything else is a ValueError (what the model makes is
    ``Geometry.check_size``'s to say)."""
    m = re.fullmatch(r"(\d{1,5})x(\d{1,5})", text.strip().lower())
    if not m or min(int(m[1]), int(m[2])) < 1:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 128x128, 224x128)")
    return int(m[1]), int(m[2])


def parse_aspect(text: str) -> float:
    """'16:9' -> 16/9; errors say what is allowed."""
    try:
        a, b = (float(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"aspect must look like 16:9 or 9:16; got {text!r}") from None
    if not (a > 0 and b > 0) or not 1 / MAX_ASPECT <= a / b <= MAX_ASPECT:
        raise ValueError(f"aspect {text!r}: both sides positive, ratio between 1:{MAX_ASPECT} and {MAX_ASPECT}:1")
    return a / b


def check_aspect(width: int, height: int) -> None:
    """A ValueError for a size wider than ``MAX_ASPECT``:1 or taller than 1:``MAX_ASPECT`` (the
    scene it would hold is far outside the 1:1, 16:9 and 9:16 the model was trained on)."""
    if not 1 / MAX_ASPECT <= width / height <= MAX_ASPECT:
        raise ValueError(f"size {width}x{height}: the aspect ratio must lie between 1:{MAX_ASPECT} and "
                         f"{MAX_ASPECT}:1 (e.g. 224x128 for 16:9, 128x224 for 9:16)")


def fit_multiple(v: float, multiple: int) -> int:
    """``v`` rounded to the nearest multiple of ``multiple``, at least one multiple."""
    return max(multiple, round(v / multiple) * multiple)


def size_for_aspect(aspect: float, multiple: int, short: int, width: int | None = None,
                    height: int | None = None) -> tuple[int, int]:
    """The size for an aspect ratio (width / height). A given width or height is kept (rounded
    to ``multiple``); otherwise the short side is ``short``. The other side is the given one
    times the ratio, rounded to the nearest multiple of ``multiple`` (at least one)."""
    fit = lambda v: fit_multiple(v, multiple)  # noqa: E731
    if width is not None and height is not None:
        raise ValueError("give --width or --height with --aspect, not both")
    if height is not None:
        return fit(height * aspect), fit(height)
    if width is not None:
        return fit(width), fit(width / aspect)
    return (fit(short * aspect), fit(short)) if aspect >= 1 else (fit(short), fit(short / aspect))


def input_size(width: int, height: int, multiple: int, default: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """The output size an input video of ``width`` x ``height`` defaults to: its own (rounded to
    ``multiple``) while that is at most ``max_pixels``; a larger input (a phone's 1920x1080) is
    made at the model's scale instead, its aspect kept: the short side is the default's short
    side, as ``size_for_aspect`` gives (1920x1080 -> 224x128 for a 128x128 model)."""
    fit = lambda v: fit_multiple(v, multiple)  # noqa: E731
    if fit(width) * fit(height) <= max_pixels:
        return fit(width), fit(height)
    w, h = size_for_aspect(width / height, multiple, min(default))
    if w * h > max_pixels:  # a strip thinner than 1:16: keep the area within the limit instead
        s = (max_pixels / (width * height)) ** 0.5
        w, h = max(multiple, int(width * s) // multiple * multiple), max(multiple, int(height * s) // multiple * multiple)
    return w, h



@dataclass(frozen=True)
class Geometry:
    """The sizes and lengths one loaded model makes, and its request defaults.

    ``size_multiple``: width and height are multiples of it (VAE downsampling x DiT patch);
    ``frame_step``: frame counts are ``1 + frame_step k``; ``size``/``frames``/``fps``: the
    defaults, ``frames`` also the chunk length of long videos; ``context_frames``: most given
    frames a chunk is conditioned on; ``steps``/``strength``: sampling defaults; ``grounding``:
    the model takes a layout; ``sketch``: the default sketch strength; ``clean_frames_refused``: see the field."""

    size_multiple: int
    frame_step: int
    size: tuple[int, int]
    frames: int
    fps: float
    context_frames: int
    steps: int = 20
    strength: float = 0.6
    grounding: bool = False  # the transformer follows layouts (tenku.request.layout)
    sketch: float = 1.0  # with a layout, the noise level sampling starts from, its sketch drawn (tenku.sketch)
    # why the model cannot keep given frames clean ("" when it can): every mode that gives it
    # clean frames (image-to-video, extend, loop, connect, videos longer than one chunk) is refused
    clean_frames_refused: str = ""

    @property
    def max_pixels(self) -> int:
        """The largest width x height made by default: 16x the default size's area (512x512 for a
        128x128 model), far beyond the sizes it was trained at and minutes a video on a CPU already."""
        return 16 * self.size[0] * self.size[1]

    @property
    def overlap(self) -> int:
        """Given frames a chunk is conditioned on (at most one less than a chunk)."""
        return min(self.context_frames, self.frames - 1)

    def fit_size(self, width: int, height: int) -> tuple[int, int]:
        """The nearest size the model can make (multiples of ``size_multiple``, at least one)."""
        return fit_multiple(width, self.size_multiple), fit_multiple(height, self.size_multiple)

    def fit_frames(self, frames: int) -> int:
        """The nearest frame count of the form 1 + frame_step * k."""
        s = self.frame_step
        return 1 + max(0, round((frames - 1) / s)) * s

    def input_size(self, width: int, height: int, max_pixels: int | None = None) -> tuple[int, int]:
        """The output size for an input video of this size (``input_size`` with this model's numbers)."""
        return input_size(width, height, self.size_multiple, self.size, max_pixels or self.max_pixels)

    def check_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """``size`` if the model makes it, else a ValueError naming the nearest size it makes."""
        w, h = size
        if (w, h) != self.fit_size(w, h):
            fw, fh = self.fit_size(w, h)
            raise ValueError(f"size {w}x{h}: width and height must be multiples of {self.size_multiple}; nearest: {fw}x{fh}")
        check_aspect(w, h)
        return w, h

    def check_frames(self, n: int) -> int:
        """``n`` if it is 1 + frame_step k, else a ValueError naming the nearest count."""
        if n != self.fit_frames(n):
            raise ValueError(f"{n} frames: the model makes 1 + {self.frame_step}k frames; nearest: {self.fit_frames(n)}")
        return n

    def usable_frames(self, n: int) -> int:
        """The longest valid frame count within ``n`` frames (what an edit of an n-frame video keeps)."""
        return 1 + self.frame_step * ((n - 1) // self.frame_step)
