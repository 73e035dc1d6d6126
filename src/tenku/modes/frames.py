"""Frame operations of the modes: inputs resampled to the output's fps and resized to its size
(the one policy for every input image and video), and the fades and ramps that join given and
new frames at a seam (``tenku.modes.plans`` says why a seam's given frames are re-decoded)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F



def _resample_index(n: int, src: float | None, fps: float) -> np.ndarray | None:
    """Which of ``n`` frames made at ``src`` fps are shown at ``fps`` (None: all, unchanged)."""
    if not src or abs(src - fps) / fps < 0.01:
        return None
    idx = np.round(np.arange(0, n * fps / src) * src / fps).astype(int)
    return idx[idx < n]


def resample_fps(frames: np.ndarray, src: float | None, fps: float) -> np.ndarray:
    """Frames of a video made at ``src`` fps, to be shown at ``fps``: the frame nearest each new
    time (so motion keeps its speed). Unknown or equal (within 1%) rates leave it as it is."""
    idx = _resample_index(len(frames), src, fps)
    return frames if idx is None else frames[idx]


def resample_stream(frames: Iterator[Any], src: float | None, fps: float) -> Iterator[tuple[int, Any]]:
    """``resample_fps`` over frames that come one at a time (anything: arrays, or functions
    that decode one): (source index, frame) for each output frame, in order (a frame shown
    twice comes twice), never looking ahead."""
    if not src or abs(src - fps) / fps < 0.01:
        yield from enumerate(frames)
        return
    want = 0  # the next output frame, shown at source index round(want * src / fps) (as _resample_index)
    for j, f in enumerate(frames):
        while round(want * src / fps) == j:
            yield j, f
            want += 1


def resampled_length(n: int, src: float | None, fps: float) -> int:
    """``len(resample_fps(frames, src, fps))`` for ``n`` frames, without the frames (a server
    checks an upload's length from its probe)."""
    idx = _resample_index(n, src, fps)
    return n if idx is None else len(idx)


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


def as_frames(x: Any, what: str, still: bool = False) -> np.ndarray:
    """An input checked: uint8 RGB (T, H, W, 3), or (H, W, 3) for an image (-> 1 frame)."""
    x = np.asarray(x)
    if still and x.ndim == 3:
        x = x[None]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3 or min(x.shape[:3]) < 1:
        want = "(H, W, 3)" if still else "(T, H, W, 3)"
        raise ValueError(f"{what} must be a uint8 RGB array {want}; got shape {x.shape}, dtype {x.dtype}")
    return x[-1:] if still else x

