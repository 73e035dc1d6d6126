"""Grounded training (a model with ``model.grounding``, docs/layout.md): each sample's layout
from its world ground truth, drawn beside its caption (``tenku.train.dit_batch.conditioning``),
left out for ``layout.dropout`` of the samples so one checkpoint does free and grounded
generation, and the flow loss logged apart with and without a layout (``LayoutLog``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tenku.data.objects import ObjectMasks


@dataclass
class LayoutConfig:
    """The layout settings of a grounded run (ignored without ``model.grounding``)."""

    dropout: float = 0.3  # share of samples trained free (no layout)
    lr_mult: float = 1.0  # the grounding parameters' learning rate over the schedule's
    base_lr_mult: float = 1.0  # the rest of the transformer's (0: frozen, as GLIGEN trains; the free path stays the init's)

    def check(self) -> str | None:
        """The one-line complaint about these settings, or None when they are sound."""
        if not (0 <= self.dropout <= 1 and self.lr_mult > 0 and self.base_lr_mult >= 0):
            return (f"layout.dropout must be in [0, 1], layout.lr_mult > 0 and layout.base_lr_mult >= 0; got "
                    f"{self.dropout}, {self.lr_mult}, {self.base_lr_mult}")
        return None


class Layouts:
    """The layouts of a run's clips as the model reads them (``tenku.layout.to_model``), each
    object's phrase pooled once by the run's text encoder and each clip's layout kept."""

    def __init__(self, cfg: LayoutConfig, masks: ObjectMasks, text_encoder: str, max_tokens: int, time_down: int) -> None:
        from tenku.text import load_text_encoder

        self.cfg, self.masks, self.time_down = cfg, masks, time_down
        self.text = load_text_encoder(text_encoder, max_tokens)
        self.pooled: dict[str, Any] = {}
        self.cache: dict[int, Any] = {}

    def batch(self, idx: list[int], rngs: list[np.random.Generator], t: int) -> list[Any]:
        """Per sample its grounding (the first ``t`` latent frames) or None (dropped: trained
        free), one draw from its own stream after the caption's."""
        from tenku.layout import pool_phrases, to_model

        out = []
        for i, rng in zip(idx, rngs):
            if rng.random() < self.cfg.dropout:
                out.append(None)
                continue
            if i not in self.cache:
                lay = self.masks.layout(i)
                self.cache[i] = to_model(lay, pool_phrases(self.text, [o.phrase for o in lay.objects], self.pooled),
                                         self.time_down)
            g = self.cache[i]
            out.append(type(g)(g.boxes[:, :t], g.phrases, g.depth))
        return out


@dataclass
class LayoutLog:
    """The flow loss of the logged steps split by layout given or not, and at noise >= 0.8
    (where shape and place are decided)."""

    sums: dict[str, list[float]] = field(default_factory=dict)

    def add(self, err: torch.Tensor, cond: torch.Tensor, sigma: torch.Tensor, grounded: list[bool]) -> None:
        """``err`` (B, T') per-frame errors, ``cond`` (B, T') condition frames, ``sigma`` (B, T')."""
        keep = (~cond).float()
        for b, g in enumerate(grounded):
            e, n = float((err[b] * keep[b]).sum()), float(keep[b].sum())
            hi = ("hi_layout" if g else "hi_free",) if float(sigma[b].max()) >= 0.8 else ()
            for key in ("loss_layout" if g else "loss_free",) + hi:
                acc = self.sums.setdefault(key, [0.0, 0.0])
                acc[0], acc[1] = acc[0] + e, acc[1] + n

    def logged(self) -> dict[str, float]:
        """The means since the last call (then reset)."""
        out = {k: s / n for k, (s, n) in self.sums.items() if n}
        self.sums = {}
        return out


def lr_groups(named: list[tuple[str, torch.nn.Parameter]], cfg: LayoutConfig) -> tuple[list[dict[str, Any]], list[float]]:
    """The optimizer's parameter groups and their learning-rate multipliers: with grounding, the
    transformer's own parameters at ``base_lr_mult`` and the grounding's at ``lr_mult`` (from the
    config, also on resume: a run may change them); without, one group at 1."""
    base = [p for n, p in named if not n.startswith("grounding.")]
    ground = [p for n, p in named if n.startswith("grounding.")]
    if not ground:
        return [{"params": base}], [1.0]
    return [{"params": base}, {"params": ground}], [cfg.base_lr_mult, cfg.lr_mult]
