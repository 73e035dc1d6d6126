"""The arithmetic of the generation modes: which frames of a chunk are given, how long
videos split into chunks, how inputs are resized and checked, how an aspect ratio maps to a size.
Pure functions; ``Pipeline`` (pipeline.py) runs the sampler on the plans made here.

The causal VAE fixes the geometry. A chunk of ``L = 1 + 4m`` frames has latent frames
0 (frame 0 alone) and i >= 1 (frames 4i-3 .. 4i). A latent frame can be a clean
condition only if all of its frames are known:

* given frames at the **start** of a chunk (``q`` of them: extend forward, image-to-video,
  the A side of connect): latent frames ``0 .. (q-1)//4`` are conditions, encoded from the
  first ``1 + 4 ((q-1)//4)`` given frames, which the causal encoder sees exactly as in
  training (a clip's first frame alone);
* given frames at the **end** of a chunk (``q``: extend backward, the B side of connect):
  the last ``q // 4`` latent frames are conditions, encoded from the last ``4 (q//4)`` given
  frames with their first frame repeated in front (the causal encoder needs a first frame;
  the repeat is dropped).

Given frames of a chunk that fall in a latent frame that is not a condition are generated
with the rest, so any number of new frames is possible. In the output the given frames of
the chunk next to the seam (at most ``context_frames``, about a second) ``fade`` from the
input into what the chunk decoded for them; every other input frame comes back unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tenku import FPS_RANGE, MAX_ASPECT, SEED_MAX


@dataclass(frozen=True)
class Chunk:
    """One sampling call: ``given`` known frames (before the new ones for forward, after them
    for backward) plus ``new`` frames to generate; ``given + new`` is a valid frame count."""

    given: int
    new: int
    extra: int = 0  # generated only to make a valid count, then dropped (after the new frames
    #                 going forward, before them going backward)

    @property
    def frames(self) -> int:
        return self.given + self.new + self.extra


def start_latents(given: int, time_down: int = 4) -> int:
    """Condition latent frames from ``given`` known frames at a chunk's start."""
    return 0 if given <= 0 else 1 + (given - 1) // time_down


def end_latents(given: int, time_down: int = 4) -> int:
    """Condition latent frames from ``given`` known frames at a chunk's end."""
    return given // time_down


def _pick_given(new: int, most: int, least: int, step: int) -> int:
    """The largest ``q`` in [least, most] with ``q + new`` = 1 mod ``step`` (a valid frame count)."""
    for q in range(most, least - 1, -1):
        if (q + new) % step == 1 % step:
            return q
    raise ValueError(f"no way to place {new} new frames after {least}..{most} given ones")


def plan_rollout(new: int, context: int, chunk: int, overlap: int, step: int = 4, backward: bool = False) -> list[Chunk]:
    """Chunks that generate ``new`` frames next to ``context`` known frames (0: text-to-video;
    the first chunk then has no given frames and ``min(new, chunk)`` must be 1 + step k).

    ``chunk``: most frames per sampling call (1 + step k); ``overlap``: most known frames a
    chunk is conditioned on. Forward: each chunk continues the tail of what exists.
    Backward: each chunk ends at the head of what exists (needs >= ``step`` known frames)."""
    if new < 1:
        raise ValueError(f"need at least 1 new frame; got {new}")
    if (chunk - 1) % step:
        raise ValueError(f"chunk of {chunk} frames is not 1 + {step}k")
    least = step if backward else 1
    plan: list[Chunk] = []
    have, left = context, new
    while left > 0:
        most = min(have, overlap)
        if most == 0:  # text-to-video: a whole first chunk
            n = min(left, chunk)
            if (n - 1) % step:
                raise ValueError(f"{n} frames is not 1 + {step}k")
            plan.append(Chunk(0, n))
        elif most < least:
            raise ValueError(f"need at least {least} known frames to condition on; have {most}")
        elif left + most > chunk:  # a full chunk (chunk = 1 + step k, so any split is valid)
            plan.append(Chunk(most, chunk - most))
        else:  # the last chunk: exactly what is left
            try:
                plan.append(Chunk(_pick_given(left, most, least, step), left))
            except ValueError:  # too few known frames to choose from: make a few frames more
                plan.append(Chunk(most, left, (1 - most - left) % step))
        have += plan[-1].new
        left -= plan[-1].new
    return plan


def plan_connect(new: int, a: int, b: int, chunk: int, overlap: int, step: int = 4) -> tuple[list[Chunk], Chunk, int]:
    """A transition of ``new`` frames from clip A (``a`` frames) to clip B (``b`` frames).

    Returns (forward chunks from A, the final chunk, B frames in it): when the gap is longer
    than one chunk, a forward rollout from A comes first, then one chunk that is given the
    tail of what exists (``Chunk.given`` frames), makes ``Chunk.new`` and ends on B's head."""
    qa_most, qb_most = min(a, overlap), min(b, overlap)
    if qa_most < 1 or qb_most < step:
        raise ValueError(f"connect needs at least 1 frame of A and {step} of B; got {a} and {b}")
    room = chunk - qa_most - qb_most  # new frames that fit in one chunk beside both sides
    if room < 1:
        raise ValueError(f"a {chunk}-frame chunk has no room between {qa_most} + {qb_most} given frames")
    last = min(new, room)
    pre = plan_rollout(new - last, a, chunk, overlap, step) if new > last else []
    pairs = [(qa + qb, qb, qa) for qa in range(1, qa_most + 1) for qb in range(step, qb_most + 1)
             if (qa + last + qb) % step == 1 % step]
    if not pairs:
        raise ValueError(f"cannot place a {new}-frame transition between clips of {a} and {b} frames")
    _, qb, qa = max(pairs)
    return pre, Chunk(qa, last), qb


def loop_split(frames: int, room: int, step: int = 4) -> int:
    """Frames of the clip a loop starts with (1 + step k, about half, and long enough that the
    transition back to its start fits in ``room`` new frames of one chunk when it can)."""
    return 1 + step * math.ceil(max((frames - 1) / 2, frames - 1 - room) / step)


def resample_fps(frames: np.ndarray, src: float | None, fps: float) -> np.ndarray:
    """Frames of a video made at ``src`` fps, to be shown at ``fps``: the frame nearest each new
    time (so motion keeps its speed). Unknown or equal (within 1%) rates leave it as it is."""
    if not src or abs(src - fps) / fps < 0.01:
        return frames
    idx = np.round(np.arange(0, len(frames) * fps / src) * src / fps).astype(int)
    return frames[idx[idx < len(frames)]]


def fade(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """uint8 frames that go linearly from ``src`` (first frame exactly) to ``dst`` (last frame
    exactly); one frame gives ``dst``. Used at seams: given frames next to new ones fade into
    their autoencoder round trip, as decoded with the new frames, so no frame-to-frame jump
    of the round-trip error is left at the seam."""
    if src.shape != dst.shape:
        raise ValueError(f"fade needs frames of one shape; got {src.shape} and {dst.shape}")
    n = len(src)
    w = np.linspace(0.0, 1.0, n)[:, None, None, None] if n > 1 else np.ones((1, 1, 1, 1))
    return np.round((1 - w) * src + w * dst).astype(np.uint8)


def fade_into(v: np.ndarray, decoded: np.ndarray) -> list[np.ndarray]:
    """``v`` whose last ``len(decoded)`` frames fade into ``decoded`` (a seam after ``v``), as
    frame blocks, none empty (all of ``v`` may sit at the seam)."""
    q = len(decoded)
    return [b for b in (v[: len(v) - q], fade(v[len(v) - q :], decoded)) if len(b)]


def fade_from(decoded: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """``v`` whose first ``len(decoded)`` frames fade from ``decoded`` (a seam before ``v``), as
    frame blocks, none empty."""
    q = len(decoded)
    return [b for b in (fade(decoded, v[:q]), v[q:]) if len(b)]


def ramp(frames: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Generated uint8 frames between two fixed neighbours, plus two correction images that
    ramp linearly: ``start`` (neighbour before minus what the chunk decoded for it) weighs
    n/(n+1) on the first frame and fades out; ``end`` (neighbour after minus its decoding)
    fades in to n/(n+1) on the last. So a transition joins the frames around it as smoothly
    as it joined its own decoding of them (a loop's end meets its start)."""
    n = len(frames)
    w = (np.arange(1, n + 1, dtype=np.float32) / (n + 1))[:, None, None, None]
    x = frames.astype(np.float32) + (1 - w) * start.astype(np.float32) + w * end.astype(np.float32)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def cover_resize(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize uint8 (T, H, W, 3) to cover ``width x height`` keeping the aspect ratio
    (antialiased bilinear), then crop the centre: the policy for every input image and video."""
    t, h, w, _ = frames.shape
    if (w, h) == (width, height):
        return frames
    s = max(width / w, height / h)
    nh, nw = max(height, round(h * s)), max(width, round(w * s))
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - height) // 2, (nw - width) // 2
    x = x[:, :, top : top + height, left : left + width]
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


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


# ---- a request's inputs, checked ----------------------------------------------------------------

def as_frames(x: Any, what: str, still: bool = False) -> np.ndarray:
    """An input checked: uint8 RGB (T, H, W, 3), or (H, W, 3) for an image (-> 1 frame)."""
    x = np.asarray(x)
    if still and x.ndim == 3:
        x = x[None]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3 or min(x.shape[:3]) < 1:
        want = "(H, W, 3)" if still else "(T, H, W, 3)"
        raise ValueError(f"{what} must be a uint8 RGB array {want}; got shape {x.shape}, dtype {x.dtype}")
    return x[-1:] if still else x


def _count(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v >= 1


def check_request(prompt: Any, seed: Any, steps: Any, guidance: Any, frames: Any = None, fps: Any = None,
                  size: Any = None) -> None:
    """A request's prompt, seed, step count, guidance scale and (when given) frame count, fps
    and (width, height), or a ValueError that says what is allowed."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string; got {type(prompt).__name__}")
    if frames is not None and not _count(frames):
        raise ValueError(f"frames must be an integer >= 1 (or None: the model's length); got {frames!r}")
    if fps is not None and not (isinstance(fps, (int, float, np.number)) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise ValueError(f"fps must be a number from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}; got {fps!r}")
    if size is not None and not (isinstance(size, (tuple, list)) and len(size) == 2 and all(map(_count, size))):
        raise ValueError(f"size must be (width, height), two integers >= 1; got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an integer in [0, {SEED_MAX}]; got {seed!r}")
    if not _count(steps):
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    if guidance is not None and not (0 <= guidance < math.inf):
        raise ValueError(f"guidance must be a finite number >= 0; got {guidance!r}")
