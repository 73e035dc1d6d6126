"""Pixel clips for training the autoencoder: the videos (and images) of data folders, decoded
once and kept in memory up to a budget, and random crops of them (``Clips.batch``). The
transformer trains on latents instead (``tenku.data.latents``); both read the same folders
(DIR/metadata.jsonl, or any folder of videos)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tenku.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, from_uint8, probe_video, read_video


@dataclass
class Item:
    path: Path
    frames: int
    height: int
    width: int


def scan_folder(folder: str | Path) -> list[Item]:
    """Videos of a tenku dataset folder (DIR/metadata.jsonl), else every video and image under it.
    Files that are missing or cannot be probed are left out with a warning (never fatal)."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root}: no such data folder")
    meta = root / "metadata.jsonl"
    if meta.is_file():
        recs = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
        paths = [(root / r["file"], r) for r in recs]
    else:
        paths = [(p, {}) for p in sorted(root.rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES and not p.name.startswith(".")]
    items = []
    for p, r in paths:
        if all(k in r for k in ("frames", "height", "width")) and p.is_file():
            items.append(Item(p, int(r["frames"]), int(r["height"]), int(r["width"])))
            continue
        try:
            info = probe_video(p)
            items.append(Item(p, int(info["frames"]), int(info["height"]), int(info["width"])))
        except (ValueError, FileNotFoundError) as e:
            print(f"skipping {str(e).split(';')[0]}")
    return items


class Clips:
    """Random clips from a list of videos: decoded once, kept in memory up to a budget."""

    def __init__(self, items: list[Item], cache_gb: float) -> None:
        self.items, self.cache, self.budget, self.used = items, {}, cache_gb * 2**30, 0
        self.bad: dict[int, str] = {}  # videos that failed to decode (or decode short): left out from then on

    def usable(self, i: int, frames: int) -> np.ndarray | None:
        """Video ``i`` if it decodes to at least ``frames`` frames, else None; one that fails to decode is marked bad."""
        if i in self.bad:
            return None
        try:
            v = self.video(i)
        except (ValueError, FileNotFoundError) as e:
            self.bad[i] = str(e).split(";")[0]
            print(f"skipping {self.bad[i]}")
            return None
        return v if len(v) >= frames else None

    def video(self, i: int) -> np.ndarray:
        if i in self.cache:
            return self.cache[i]
        v = read_video(self.items[i].path)[0]  # uint8 (F, H, W, 3)
        it = self.items[i]
        if len(v) < 0.95 * it.frames - 1:  # truncated: train on the frames that decode
            print(f"truncated {it.path}: {len(v)} of {it.frames} declared frames decode; using those")
            it.frames = len(v)
        if self.used + v.nbytes <= self.budget:
            self.cache[i], self.used = v, self.used + v.nbytes
        return v

    def batch(self, rng: np.random.Generator, batch: int, frames: int, crop: int, flip: bool) -> torch.Tensor:
        """(batch, 3, frames, crop, crop) in [-1, 1]: random videos, start frames, crops, flips."""
        ok = [i for i, it in enumerate(self.items) if it.frames >= frames and min(it.height, it.width) >= crop and i not in self.bad]
        if not ok:
            raise ValueError(f"no training video has >= {frames} frames and sides >= {crop} px")
        out = []
        for i in rng.choice(ok, size=batch):
            at, v = ok.index(int(i)), self.usable(int(i), frames)
            for k in range(1, len(ok)):  # a bad video: the next usable one in the list stands in (no extra draws)
                if v is not None:
                    break
                v = self.usable(ok[(at + k) % len(ok)], frames)
            if v is None:
                raise ValueError(f"no training video with >= {frames} frames decodes ({len(self.bad)} bad)")
            t0 = int(rng.integers(0, len(v) - frames + 1))
            y0, x0 = int(rng.integers(0, v.shape[1] - crop + 1)), int(rng.integers(0, v.shape[2] - crop + 1))
            c = v[t0 : t0 + frames, y0 : y0 + crop, x0 : x0 + crop]
            out.append(from_uint8(np.ascontiguousarray(c[:, :, ::-1] if flip and rng.random() < 0.5 else c)))
        return torch.stack(out)


def whole_clip(v: np.ndarray, time_down: int, space_down: int) -> torch.Tensor:
    """(1, 3, T, H, W): the longest 1 + time_down*k prefix, centre-cropped to multiples of space_down."""
    t = 1 + (len(v) - 1) // time_down * time_down
    h, w = v.shape[1] // space_down * space_down, v.shape[2] // space_down * space_down
    y0, x0 = (v.shape[1] - h) // 2, (v.shape[2] - w) // 2
    return from_uint8(np.ascontiguousarray(v[:t, y0 : y0 + h, x0 : x0 + w]))[None]
