"""The training terms beside the flow loss, kept out of the loop and out of the model: the
object weighting of the flow loss (``object_weight``) and the shape head's loss (``shape_head``),
both from the world's ground truth (``tenku.data.objects``). The loop asks this object for a
per-cell weight and an auxiliary loss each micro-step, and lets it step, log, save and load
beside the model; a new auxiliary term is added here, not in the loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tenku.config import ConfigError
from tenku.data.objects import ObjectMasks
from tenku.dit.model import DiT
from tenku.train.layouts import LayoutLog
from tenku.train.shape_head import ShapeHead


class Objectives:
    def __init__(self, object_weight: float, masks: ObjectMasks | None, device: torch.device) -> None:
        self.object_weight, self.masks, self.device = object_weight, masks, device
        self.head: ShapeHead | None = None
        self.split: LayoutLog | None = None  # a grounded run's loss with and without the layout

    def log_layout_split(self) -> None:
        """Log the flow loss apart for the samples trained with a layout and without."""
        self.split = LayoutLog()

    def observer(self, cond: torch.Tensor, sigma: torch.Tensor, inputs: dict[str, Any]
                 ) -> Callable[[torch.Tensor], None] | None:
        """What ``flow_loss_sum`` hands its per-frame errors to for this micro-batch (None: nothing)."""
        if self.split is None or inputs.get("layout") is None:
            return None
        split, grounded = self.split, [g is not None for g in inputs["layout"]]
        return lambda err: split.add(err, cond, sigma, grounded)

    def add_shape_head(self, model: DiT, weight: float, block: int, lr: float) -> None:
        """The shape head reads ``model``'s block ``block`` (a forward hook) and trains beside it."""
        if self.masks is None:
            raise ConfigError("shape_head: its labels come from the world's ground truth, and none was read")
        try:
            self.head = ShapeHead(model, weight, block, lr, self.device, len(self.masks.names))
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def weight(self, idx: list[int], t: int) -> torch.Tensor | None:
        """Per-cell weights (B, t, H', W') of the flow loss, or None for a plain mean."""
        if not self.object_weight or self.masks is None:
            return None
        return 1 + self.object_weight * self.masks.batch(idx, t).to(self.device)

    def loss_sum(self, idx: list[int], t: int, cond: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor | float:
        """The auxiliary losses of the last forward, summed like the flow loss (0.0 when there are none)."""
        if self.head is None or self.masks is None:
            return 0.0
        return self.head.loss_sum(self.masks.labels(idx, t).to(self.device), cond, sigma)

    def begin(self, lr: float) -> None:
        if self.head is not None:
            self.head.begin(lr)

    def step(self, ranks: int) -> None:
        if self.head is not None:
            self.head.step(ranks)

    def logged(self) -> dict[str, float]:
        """This rank's values since the last call: the shape head's, the layout split's."""
        out = self.head.logged() if self.head is not None else {}
        return {**out, **(self.split.logged() if self.split is not None else {})}

    def save(self, folder: Path, main: bool) -> None:
        if self.head is not None and main:
            self.head.save(folder)  # replicated on every rank: rank 0's copy

    def load(self, folder: Path, main: bool) -> None:
        if self.head is not None and not self.head.load(folder) and main:
            print(f"note: {folder} has no shape head: it starts afresh")

    def data_changed(self, folders: dict[str, str]) -> None:
        """More data joined the run (``folders``: cache folder -> data folder): check its ground truth."""
        if self.masks is not None:
            self.masks.folders.update(folders)
            self.masks.check()
