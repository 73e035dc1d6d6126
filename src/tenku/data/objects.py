"""Where the objects are in a cached latent, and which shape each is: the latent cells that a
visible object's box (a world render's ground truth) touches. Shape lives in the few cells at an
object's edge while the background fills the rest (objects cover about 14% of a guide latent), so
training can weigh those cells up (``object_weight``) or ask the transformer's middle to name the
shape there (``shape_head``, tenku.train.shape_head), and ``bench/val_loss.py --objects``
measures the error there. Only whole videos at their native size map onto the boxes (the
default clip policy)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

SHARED = -1  # the label of a cell that several objects' boxes touch: whose shape it shows is unknown


def box_labels(gt: dict[str, Any], classes: list[int], shape: tuple[int, ...], time_down: int,
               space_down: int) -> torch.Tensor:
    """(T', H', W') int8 for a latent of ``shape`` (C, T', H', W') encoding the video that the
    gt document ``gt`` (its ``ground_truth`` part: ``bbox``, ``visible``) describes: ``classes[j]``
    (1..127) where object j's box alone touches the cell, 0 where no box does, ``SHARED`` where
    several do. The causal VAE's first latent frame holds frame 0 alone, latent frame k the
    frames (k-1)*time_down + 1 .. k*time_down; a box counts in a latent frame when it touches
    the cell in any of them. The frames were cropped top-left to the latent's size, so boxes
    past it are cut."""
    _, t, h, w = shape
    label = np.zeros((t, h, w), dtype=np.int8)
    count = np.zeros((t, h, w), dtype=np.int16)
    for cls, boxes, seen in zip(classes, gt["bbox"], gt["visible"]):
        mine = np.zeros((t, h, w), dtype=bool)
        for f, (box, v) in enumerate(zip(boxes, seen)):
            k = 0 if f == 0 else (f - 1) // time_down + 1
            if not v or box is None or k >= t:
                continue
            x0, y0, x1, y1 = (int(round(c)) for c in box)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w * space_down - 1), min(y1, h * space_down - 1)
            if x0 <= x1 and y0 <= y1:
                mine[k, y0 // space_down : y1 // space_down + 1, x0 // space_down : x1 // space_down + 1] = True
        count += mine
        label[mine] = cls
    label[count > 1] = SHARED
    return torch.from_numpy(label)


def box_mask(gt: dict[str, Any], shape: tuple[int, ...], time_down: int, space_down: int) -> torch.Tensor:
    """(T', H', W') bool: the cells any visible object's box touches (``box_labels``' layout)."""
    return box_labels(gt, [1] * len(gt["bbox"]), shape, time_down, space_down) != 0


def shape_classes(record: dict[str, Any], names: list[str]) -> list[int]:
    """1 + each object's index in ``names`` (the shape names the data was made with, recorded in
    its cache: ``tenku.data.latents.cache_labels``), in the order of the ground truth's boxes (a
    world record's ``spec``)."""
    try:
        return [1 + names.index(o["shape"]) for o in record["spec"]["objects"]]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"record {record.get('id', record.get('file'))} names no world shapes (spec.objects[].shape "
                         f"from {', '.join(names) or 'none recorded'}): shape labels need a world render") from None


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
    """The object cells of each clip of a LatentSet (``[i]``: (T', H', W') bool) and their
    shapes (``labels``: 1 + the index in ``names``, the shape names its caches record), read from
    its data folder's ground truth on first use and kept. ``folders`` maps each cache folder of
    the set to its data folder."""

    def __init__(self, data: Any, folders: dict[str, str | Path], time_down: int, space_down: int):
        self.data, self.folders, self.td, self.sd = data, {str(k): v for k, v in folders.items()}, time_down, space_down
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.cells: dict[int, torch.Tensor] = {}
        self.names: list[str] = []
        self.check()

    def check(self) -> None:
        """Clear errors before training: every clip a whole video of a folder with ground truth."""
        from tenku.data.latents import cache_labels, read_records

        for cache, name in zip(self.data.sources, self.data.names):
            if "-" in name:
                raise ValueError(f"object cells need whole videos (the default clip policy); clip {name} of "
                                 f"{cache} is a window of one")
            if cache not in self.folders:
                raise ValueError(f"no data folder known for the cache {cache}")
            if cache not in self.records:
                names = cache_labels(cache, self.folders[cache]).get("shapes", [])
                if self.names and names != self.names:
                    raise ValueError(f"the cache {cache} names other shapes ({', '.join(names)}) than the others "
                                     f"({', '.join(self.names)})")
                self.names = names
                self.records[cache] = read_records(self.folders[cache])
                first = self.records[cache][int(name)]  # the first one's, as a probe
                read_gt(self.folders[cache], first)
                shape_classes(first, self.names)

    def label(self, i: int) -> torch.Tensor:
        """(T', H', W') int8 shape labels of clip ``i`` (``box_labels`` with ``shape_classes``)."""
        m = self.cells.get(i)
        if m is None:
            cache = self.data.sources[i]  # check() has read its records (at start and after data is taken up)
            record = self.records[cache][int(self.data.names[i])]
            gt = read_gt(self.folders[cache], record)
            m = self.cells[i] = box_labels(gt, shape_classes(record, self.names), self.data.shapes[i], self.td, self.sd)
        return m

    def layout(self, i: int) -> Any:
        """Clip ``i``'s ``tenku.layout.Layout`` from its ground truth, its boxes normalised to the
        latent's extent (the frames were cropped top-left to it)."""
        from tenku.layout import from_ground_truth

        cache = self.data.sources[i]
        record = self.records[cache][int(self.data.names[i])]
        lay = from_ground_truth(read_gt(self.folders[cache], record), record["spec"])
        sx, sy = lay.width / (self.data.shapes[i][3] * self.sd), lay.height / (self.data.shapes[i][2] * self.sd)
        if (sx, sy) != (1.0, 1.0):
            lay.objects = [replace(o, boxes=[None if b is None else (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)
                                            for b in o.boxes]) for o in lay.objects]
        return lay

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.label(i) != 0

    def batch(self, idx: list[int], t: int) -> torch.Tensor:
        """(B, t, H', W') float masks of the clips ``idx``, their first ``t`` latent frames."""
        return torch.stack([self[i][:t] for i in idx]).float()

    def labels(self, idx: list[int], t: int) -> torch.Tensor:
        """(B, t, H', W') long shape labels of the clips ``idx``, their first ``t`` latent frames."""
        return torch.stack([self.label(i)[:t] for i in idx]).long()
