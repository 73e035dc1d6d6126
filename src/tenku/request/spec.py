"""A generation request as every front end states it (``tenku generate`` flags, the server's
JSON, ``Pipeline.stream`` arguments, an eval suite item), its inputs, and the one error type
a request that cannot be made raises. ``tenku.request.resolve`` settles it against a model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tenku import FPS_RANGE, SEED_MAX
from tenku.modes.frames import as_frames, cover_resize, resample_fps, resample_stream, resampled_length


class RequestError(ValueError):
    """A request that cannot be made: one line that says what is allowed. ``code`` (the API's
    error code) and ``param`` (the request field at fault) let the server answer a 400 with the
    same message the CLI prints as a usage error; Python callers catch it as a ValueError."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.param, self.code = param, code


# How each front end names a request field in its messages (the API's names are its own).
CLI_NAMES = {"video": "--video", "image": "--image", "connect": "--connect", "loop": "--loop", "extend": "--extend",
             "strength": "--strength", "size": "--size", "aspect": "--aspect", "frames": "--frames",
             "seconds": "--seconds", "preview": "--preview", "prompt": "a prompt", "width": "--width",
             "height": "--height", "layout": "--layout", "plan": "--plan",
             "sketch": "--sketch"}
API_NAMES = {"video": "a video input_reference", "image": "an image input_reference", "prompt": "prompt"}
PYTHON_NAMES = {"video": "a video", "image": "an image"}


@dataclass
class Input:
    """An input image or video: its size, frame count and rate (known before it is decoded, from
    a probe, so a server can check a request without reading the file), and the frames, given
    or read from ``path`` when the request runs (a file: frame by frame, at the output's size)."""

    width: int
    height: int
    count: int
    fps: float | None = None
    path: Path | None = None
    array: np.ndarray | None = None
    still: bool = False
    _fitted: Any = field(default=None, repr=False, compare=False)  # (fps, size, complete, frames) last made

    @classmethod
    def of_array(cls, x: Any, what: str, still: bool = False, fps: float | None = None) -> "Input":
        """Frames given in memory, checked: uint8 RGB (T, H, W, 3), or (H, W, 3) for an image."""
        try:
            a = as_frames(x, what, still)
        except ValueError as e:
            raise RequestError(str(e), what, "invalid_file") from None
        return cls(a.shape[2], a.shape[1], len(a), None if still else fps, array=a, still=still)

    @classmethod
    def read(cls, path: str | Path, what: str, still: bool = False) -> "Input":
        """An image or video file, decoded now; a file that does not decode is a RequestError."""
        from tenku.io import IMAGE_SUFFIXES, read_image, read_video

        p = Path(path)
        if not p.is_file():
            raise RequestError(f"{what} {path}: no such file", what, "invalid_file")
        try:
            if p.suffix.lower() in IMAGE_SUFFIXES:
                frames, fps = read_image(p)[None], None
            else:
                frames, fps = read_video(p)
        except ValueError as e:
            raise RequestError(f"{what}: {e}", what, "invalid_file") from None
        frames = frames[:1] if still else frames
        return cls(frames.shape[2], frames.shape[1], len(frames), None if still else fps, p, frames, still)

    def length(self, fps: float) -> int:
        """Frames after resampling to ``fps`` (as ``frames(fps)`` will have)."""
        return 1 if self.still else resampled_length(self.count, self.fps, fps)

    def frames(self, fps: float, size: tuple[int, int] | None = None, count: int | None = None) -> np.ndarray:
        """The frames, resampled to ``fps`` (an image: one frame), each fitted to ``size`` (width,
        height; ``modes.cover_resize``) when given, the first ``count`` of them when given. A
        file not yet read is decoded frame by frame, each frame fitted as soon as it is decoded
        and the decoding stopped after the last frame needed: a 9 KB upload of 300 black
        1024x1024 frames never takes the 900 MB (and 3.6 GB as floats) it would whole. The last
        result is kept, so asking again (the caption, then the run) decodes nothing."""
        key = (float(fps), None if size is None else tuple(size))
        kept = self._fitted
        if kept is not None and kept[0] == key and (kept[1] or (count is not None and len(kept[2]) >= count)):
            return kept[2] if count is None else kept[2][:count]
        if self.array is not None:  # in memory already (the CLI, Python callers)
            out = self.array if self.still else resample_fps(self.array, self.fps, fps)
            out = out if size is None else cover_resize(out, *size)
            out = out if count is None else out[:count]
        else:
            out = self._decode(fps, key[1], count)
        self._fitted = (key, count is None or len(out) < count, out)
        return out

    def _decode(self, fps: float, size: tuple[int, int] | None, count: int | None) -> np.ndarray:
        """``frames`` of ``path``: decoded, resampled and fitted one frame at a time."""
        from tenku.io import iter_video

        assert self.path is not None
        src, decoded = iter_video(self.path)
        if not self.still:
            self.fps = src  # the rate the decoder reports is the one resampling is from
        out: list[np.ndarray] = []
        last: tuple[int, np.ndarray] | None = None  # a frame shown twice (a raised fps) is fitted once
        picked = enumerate(decoded) if self.still else resample_stream(decoded, src, fps)
        for j, f in picked:
            if last is None or last[0] != j:  # only frames shown are converted from the decoder's
                rgb = f()  # a copy of the fitted frame: the view cover_resize returns holds on to its work buffers
                last = (j, rgb if size is None else cover_resize(rgb[None], *size)[0].copy())
            out.append(last[1])
            if self.still or (count is not None and len(out) >= count):
                break
        if not out:
            raise ValueError(f"{self.path}: video has no frames")
        return np.stack(out)


@dataclass
class Request:
    """What to make, as asked. None means the model's default. ``frames``/``seconds`` count the
    new frames of an extension or transition and the whole video otherwise. A video with
    ``extend`` is extended, with ``strength`` edited (SDEdit); ``preview`` makes a half-size
    draft; ``conditioning`` carries extra conditioning inputs (named tensors or objects) that
    sampling is given as they are, except ``layout`` (a ``tenku.layout.Layout`` or its JSON
    document, over the whole output video), which resolving checks and retimes; ``plan`` asks
    the simulator for the layout (``tenku.request.layout``); ``sketch``: with a layout, the
    noise level sampling starts from, the layout drawn (``tenku.sketch``; 1: pure noise; None:
    the model's). ``label``: the mode's name in the sidecar, when a front end
    has its own (remix, upscale)."""

    prompt: str | None = None
    image: Input | None = None
    video: Input | None = None
    connect: tuple[Input, Input] | None = None
    extend: str | None = None
    loop: bool = False
    strength: float | None = None
    size: tuple[int, int] | str | None = None  # (width, height) or "WxH"
    aspect: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    seconds: float | None = None
    fps: float | None = None
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str | None = None
    sampler: str | None = None
    expand: bool = True
    preview: bool = False
    label: str | None = None
    conditioning: dict[str, Any] = field(default_factory=dict)
    plan: bool = False
    sketch: float | None = None


@dataclass(frozen=True)
class Limits:
    """A front end's limits beyond the model's: pixels (None: the model's ``max_pixels``; 0: no
    limit, as for Python callers), seconds of the whole output, steps, frames of an input after
    it is resampled to the request's fps, and ``max_work``: the one budget the others multiply
    into, in frames sampled x pixels x steps (``Resolved.work``); None: no limit. ``where``
    names who refuses."""

    max_pixels: int | None = None
    max_seconds: float | None = None
    max_steps: int | None = None
    max_input_frames: int | None = None
    max_work: float | None = None
    where: str = "this model"


def _count(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v >= 1


def check_types(r: Request) -> None:
    """A request's prompt, seed, step count, guidance scale and (when given) frame count, fps
    and (width, height), or a RequestError that says what is allowed (Python callers can pass
    anything)."""
    if not isinstance(r.prompt, str):
        raise RequestError(f"prompt must be a string; got {type(r.prompt).__name__}", "prompt")
    if r.frames is not None and not _count(r.frames):
        raise RequestError(f"frames must be an integer >= 1 (or None: the model's length); got {r.frames!r}", "frames")
    fps = r.fps
    if fps is not None and not (isinstance(fps, (int, float, np.number)) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise RequestError(f"fps must be a number from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}; got {fps!r}", "fps")
    if r.size is not None and not (isinstance(r.size, (tuple, list)) and len(r.size) == 2 and all(map(_count, r.size))):
        raise RequestError(f"size must be (width, height), two integers >= 1; got {r.size!r}", "size", "invalid_size")
    if isinstance(r.seed, bool) or not isinstance(r.seed, (int, np.integer)) or not 0 <= r.seed <= SEED_MAX:
        raise RequestError(f"seed must be an integer in [0, {SEED_MAX}]; got {r.seed!r}", "seed")
    if r.steps is not None and not _count(r.steps):
        raise RequestError(f"steps must be an integer >= 1; got {r.steps!r}", "steps")
    if r.guidance is not None and not (0 <= r.guidance < math.inf):
        raise RequestError(f"guidance must be a finite number >= 0; got {r.guidance!r}", "guidance")
