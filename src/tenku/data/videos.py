"""Real video folders: any folder of mp4/webm/mov/... files with captions in
``metadata.jsonl`` (the world format: ``file``, ``caption``, optional ``short_caption``),
cut into training clips by one stated policy (``ClipPolicy``):

1. Frame rate: with ``fps`` set, keep every ``round(source_fps / fps)``-th frame (never
   fewer than every frame); 0 keeps the native rate.
2. Length: a clip has ``frames`` frames (a ``1 + time_down * k`` count); a video shorter
   than that gives one clip of its longest ``1 + time_down * k`` prefix; ``frames = 0``
   takes the whole video that way. Clips shorter than ``min_frames`` are skipped.
3. Count: up to ``clips_per_video`` non-overlapping clips, evenly spaced from the first
   frame to the last.
4. Size: with ``sizes`` (a list of [height, width] buckets), each video is scaled to cover
   the bucket nearest its aspect ratio (bilinear, antialiased) and centre-cropped to it;
   without, the native size is cropped to multiples of the VAE's downsampling (top-left,
   as the world data was always cached).

Frames are decoded as a stream and only the ones a clip needs are kept, so a long video
never sits in memory whole. A file that cannot be opened or decoded, or that decodes to
clearly fewer frames than its container declares (truncated), raises ``BadVideo`` with the
reason; the cache builder lists it and goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tenku.io import probe_video


class BadVideo(ValueError):
    """A video that cannot feed training (unreadable, truncated, too short)."""


@dataclass
class ClipPolicy:
    frames: int = 0  # frames per clip (1 + time_down*k); 0: the whole video
    fps: float = 0.0  # target frame rate (frame striding); 0: native
    sizes: list[list[int]] = field(default_factory=list)  # [height, width] buckets; empty: native size
    clips_per_video: int = 1  # non-overlapping clips per video, evenly spaced
    min_frames: int = 1  # shorter clips are skipped

    def is_default(self) -> bool:
        return self == ClipPolicy()

    def tag(self) -> str:
        """A short hash naming this policy in cache folder names ('' for the default)."""
        if self.is_default():
            return ""
        doc = json.dumps([self.frames, self.fps, self.sizes, self.clips_per_video, self.min_frames])
        return hashlib.sha256(doc.encode()).hexdigest()[:8]

    def validate(self, time_down: int, space_down: int) -> None:
        if self.frames and (self.frames - 1) % time_down:
            raise ValueError(f"clips.frames must be 1 + {time_down}*k for this VAE; got {self.frames}")
        for hw in self.sizes:
            if len(hw) != 2 or hw[0] % space_down or hw[1] % space_down or min(hw) < space_down:
                raise ValueError(f"clips.sizes entries are [height, width], multiples of {space_down}; got {hw}")
        if self.clips_per_video < 1 or self.fps < 0:
            raise ValueError("clips.clips_per_video must be >= 1 and clips.fps >= 0")


def nearest_size(h: int, w: int, sizes: list[list[int]]) -> tuple[int, int]:
    """The [height, width] bucket closest to the aspect ratio w/h (ties: the larger area)."""
    best = min(sizes, key=lambda s: (abs(math.log(s[1] / s[0]) - math.log(w / h)), -s[0] * s[1]))
    return int(best[0]), int(best[1])


def clip_windows(n: int, policy: ClipPolicy, time_down: int) -> list[tuple[int, int]]:
    """(start, length) of each clip over ``n`` frames (after frame-rate striding)."""
    longest = 1 + (n - 1) // time_down * time_down if n >= 1 else 0
    length = min(policy.frames, longest) if policy.frames else longest
    if length < max(1, policy.min_frames):
        return []
    c = max(1, min(policy.clips_per_video, n // length))
    starts = [round(i * (n - length) / (c - 1)) for i in range(c)] if c > 1 else [0]
    return [(s, length) for s in starts]


def _fit(frame: np.ndarray, target: tuple[int, int] | None, space_down: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if target is None:  # native size, top-left crop to the VAE's grid
        return frame[: h // space_down * space_down, : w // space_down * space_down]
    th, tw = target
    s = max(th / h, tw / w)
    nh, nw = max(th, math.ceil(h * s - 1e-6)), max(tw, math.ceil(w * s - 1e-6))
    img = Image.fromarray(frame)
    if (nh, nw) != (h, w):
        img = img.resize((nw, nh), Image.BILINEAR)  # Pillow filters over the whole footprint: antialiased
    y0, x0 = (nh - th) // 2, (nw - tw) // 2
    return np.asarray(img)[y0 : y0 + th, x0 : x0 + tw]


def load_clips(path: str | Path, policy: ClipPolicy, time_down: int, space_down: int) -> list[np.ndarray]:
    """The clips of one video by ``policy``: uint8 (T, H, W, 3) each. Raises ``BadVideo``."""
    path = Path(path)
    try:
        info = probe_video(path)
    except (ValueError, FileNotFoundError) as e:
        raise BadVideo(f"unreadable: {e}") from None
    declared, src_fps = int(info.get("frames") or 0), float(info.get("fps") or 0)
    stride = max(1, round(src_fps / policy.fps)) if policy.fps and src_fps else 1
    h, w = int(info["height"] or 0), int(info["width"] or 0)
    if min(h, w) < space_down:
        raise BadVideo(f"too small: {w}x{h}")
    target = nearest_size(h, w, policy.sizes) if policy.sizes else None
    kept: list[np.ndarray] = []
    decoded = 0
    try:
        if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
            from tenku.io import read_image

            kept, decoded = [_fit(read_image(path), target, space_down)], 1
        else:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                # the windows are planned over the declared length; frames past it are ignored
                plan = clip_windows(math.ceil(declared / stride), policy, time_down) if declared else None
                need = {s + i for s, n in plan for i in range(n)} if plan is not None else None
                for frame in container.decode(stream):
                    j, r = divmod(decoded, stride)
                    if r == 0 and (need is None or j in need):
                        kept.append(_fit(frame.to_ndarray(format="rgb24"), target, space_down))
                    decoded += 1
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        raise BadVideo(f"cannot decode after {decoded} frames: {e}") from None
    if decoded == 0:
        raise BadVideo("no frames decode")
    if declared and decoded < 0.95 * declared - 1:
        raise BadVideo(f"truncated: {decoded} of {declared} declared frames decode")
    if not declared:  # no count in the container: all frames kept, cut them now
        plan = clip_windows(len(kept), policy, time_down)
        kept_idx = {s + i for s, n in plan for i in range(n)}
        kept = [f for i, f in enumerate(kept) if i in kept_idx]
    if not plan:
        raise BadVideo(f"too short: {math.ceil(decoded / stride)} frames at the policy's rate, need {max(1, policy.min_frames)}")
    if len(kept) < sum(n for _, n in plan):
        raise BadVideo(f"truncated: {decoded} of {declared} declared frames decode")
    clips, at = [], 0
    for _, n in plan:  # kept holds the frames of each window in order
        clips.append(np.stack(kept[at : at + n]))
        at += n
    return clips
