"""Where the objects are in a cached latent: the latent cells that any visible object's box
(a world render's ground truth) touches. Shape lives in the few cells at an object's edge
while the background fills the rest (objects cover about 14% of a guide latent), so training can weigh
those cells up (``object_weight``) and ``bench/val_loss.py --objects`` measures the error
there. Only whole videos at their native size map onto the boxes (the default clip policy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch


def box_mask(gt: dict[str, Any], shape: tuple[int, ...], time_down: int, space_down: int) -> torch.Tensor:
    """(T', H', W') bool for a latent of ``shape`` (C, T', H', W') encoding the video that the
    gt document ``gt`` (its ``ground_truth`` part: ``bbox``, ``visible``) describes. The causal
    VAE's first latent frame holds frame 0 alone, latent frame k the frames
    (k-1)*time_down + 1 .. k*time_down; a cell is set when a box (inclusive pixel bounds)
    touches it in any of them. The frames were cropped top-left to the latent's size, so
    boxes past it are cut."""
    _, t, h, w = shape
    out = np.zeros((t, h, w), dtype=bool)
    for boxes, seen in zip(gt["bbox"], gt["visible"]):
        for f, (box, v) in enumerate(zip(boxes, seen)):
            k = 0 if f == 0 else (f - 1) // time_down + 1
            if not v or box is None or k >= t:
                continue
            x0, y0, x1, y1 = (int(round(c)) for c in box)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w * space_down - 1), min(y1, h * space_down - 1)
            if x0 <= x1 and y0 <= y1:
                out[k, y0 // space_down : y1 // space_down + 1, x0 // space_down : x1 // space_down + 1] = True
    return torch.from_numpy(out)


def read_gt(folder: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """A record's ground truth (``tenku world render`` writes it beside the videos)."""
    if "ground_truth" not in record:
        raise ValueError(f"{folder}: record {record.get('id', record.get('file'))} has no ground truth (object "
                         f"boxes need a world render: tenku world render)")
    path = Path(folder) / record["ground_truth"]
    if not path.is_file():
        raise ValueError(f"{folder}: missing ground truth {record['ground_truth']} (object boxes need a world render)")
    return json.loads(path.read_text())["ground_truth"]


class ObjectMasks:
    """The object mask of each clip of a LatentSet, read from its data folder's ground truth on
    first use and kept. ``folders`` maps each cache folder of the set to its data folder."""

    def __init__(self, data: Any, folders: dict[str, str | Path], time_down: int, space_down: int):
        self.data, self.folders, self.td, self.sd = data, {str(k): v for k, v in folders.items()}, time_down, space_down
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.masks: dict[int, torch.Tensor] = {}
        self.check()

    def check(self) -> None:
        """Clear errors before training: every clip a whole video of a folder with ground truth."""
        from tenku.data.latents import read_records

        for cache, name in zip(self.data.sources, self.data.names):
            if "-" in name:
                raise ValueError(f"object weighting needs whole videos (the default clip policy); clip {name} of "
                                 f"{cache} is a window of one")
            if cache not in self.folders:
                raise ValueError(f"no data folder known for the cache {cache}")
            if cache not in self.records:
                self.records[cache] = read_records(self.folders[cache])
                read_gt(self.folders[cache], self.records[cache][int(name)])  # the first one's, as a probe

    def __getitem__(self, i: int) -> torch.Tensor:
        m = self.masks.get(i)
        if m is None:
            cache = self.data.sources[i]  # check() has read its records (at start and after data is taken up)
            gt = read_gt(self.folders[cache], self.records[cache][int(self.data.names[i])])
            m = self.masks[i] = box_mask(gt, self.data.shapes[i], self.td, self.sd)
        return m

    def batch(self, idx: list[int], t: int) -> torch.Tensor:
        """(B, t, H', W') float masks of the clips ``idx``, their first ``t`` latent frames."""
        return torch.stack([self[i][:t] for i in idx]).float()
