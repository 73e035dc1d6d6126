"""What one training step of the transformer draws and computes: every random draw is a
function of (seed, step) and the sample's place in the global batch (the per-sample streams,
the step's stream, the global batch's noise), the caption states of a batch, and the flow
matching loss. ``tenku.train.dit`` runs the loop around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tenku.flow import add_noise, logit_normal, velocity

if TYPE_CHECKING:
    from tenku.data.latents import LatentSet
    from tenku.train.dit import TrainDiTConfig


STEP_STREAM = 2**31 - 1  # the step's own draws: numpy seeds [seed, step] and [seed, step, 0] alike


def sample_rngs(cfg: TrainDiTConfig, step: int, n: int) -> list[np.random.Generator]:
    """One generator per position of the global batch: the same draws on any number of ranks."""
    return [np.random.default_rng([cfg.seed, step, j]) for j in range(n)]


def step_rng(cfg: TrainDiTConfig, step: int) -> np.random.Generator:
    """The draws of the whole step (image batch or not). Not ``default_rng([seed, step])``:
    numpy drops trailing zeros of a seed, so that is sample 0's stream, and the first sample
    of every image batch lost its caption (its dropout draw was the image draw, < 0.1)."""
    return np.random.default_rng([cfg.seed, step, STEP_STREAM])


def text_batch(data: LatentSet, idx: list[int], rngs: list[np.random.Generator], cfg: TrainDiTConfig,
               empty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption states (B, L, D) in the cache's dtype and mask (B, L) for the samples, with
    short captions and dropout."""
    states = []
    for i, rng in zip(idx, rngs):
        u = rng.random()
        if u < cfg.caption_dropout:
            states.append(empty)
        else:
            detailed, short = data.captions[i]
            states.append(short if rng.random() < cfg.short_caption_prob else detailed)
    return pad_states(states, states[0].dtype)


def pad_states(states: list[torch.Tensor], dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption states of different lengths (L_i, D) -> zero-padded (B, L, D) and mask (B, L)."""
    out = torch.nn.utils.rnn.pad_sequence(states, batch_first=True).to(dtype)
    lengths = torch.tensor([s.shape[0] for s in states])
    return out, torch.arange(out.shape[1]) < lengths[:, None]


def step_noise(rng: np.random.Generator, shape: tuple[int, ...], cond: torch.Tensor, cfg: TrainDiTConfig,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole global batch's noise (B, C, T', H', W') and noise levels (B, T'): logit-normal
    per sample, and U(0, noise_aug) on the condition frames of ``cond`` (B, T'). Drawn on the
    device by one generator seeded from the step's stream: a handful of kernels a step, where a
    generator per sample cost seven launches per sample (the host-bound GPU step). Every
    rank draws the global batch and takes its slice, so the update does not depend on the
    number of ranks."""
    gen = torch.Generator(device).manual_seed(int(rng.integers(2**62)))
    b, t = cond.shape
    noise = torch.randn(shape, generator=gen, device=device)
    sigma = logit_normal((b, 1), cfg.logit_mean, cfg.logit_std, gen).expand(b, t)
    aug = torch.rand((b, t), generator=gen, device=device) * cfg.cond.noise_aug
    return noise, torch.where(cond.to(device), aug, sigma)


def flow_loss_sum(model: torch.nn.Module, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor,
                  ctx_mask: torch.Tensor, cond: torch.Tensor, cfg: TrainDiTConfig,
                  weight: torch.Tensor | None = None, layout: list[Any] | None = None,
                  split: LayoutLog | None = None) -> torch.Tensor:
    """Summed squared velocity error over the frames to generate (each frame's mean over C, H, W,
    or with ``weight`` (B, T', H', W') its weighted mean over H, W: the object cells weighed up);
    condition frames (``cond``, (B, T')) are (nearly) clean inputs at their ``sigma``. ``layout``:
    each sample's grounding (``layout_batch``), logged apart in ``split``."""
    x = add_noise(x0, noise, sigma)
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        v = model(x, sigma, ctx, ctx_mask, layout) if layout is not None else model(x, sigma, ctx, ctx_mask)
    err = (v.float() - velocity(x0, noise)).pow(2).mean(dim=1)  # (B, T', H', W')
    if weight is None:
        err = err.mean(dim=(2, 3))
    else:
        err = (err * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
    if split is not None:
        split.add(err.detach(), cond, sigma, [g is not None for g in layout or []])
    return (err * (~cond).float()).sum()


@dataclass
class LayoutConfig:
    """Grounded training (a model with ``model.grounding``): each sample's layout from its world
    ground truth, left out for ``dropout`` of the samples so one checkpoint does both."""

    dropout: float = 0.3  # share of samples trained free (no layout)
    lr_mult: float = 1.0  # the grounding parameters' learning rate over the schedule's
    base_lr_mult: float = 1.0  # the rest of the transformer's (0: frozen, as GLIGEN trains; the free path stays the init's)


def layout_batch(masks: Any, idx: list[int], rngs: list[np.random.Generator], t: int, cfg: TrainDiTConfig,
                 phrases: Any, time_down: int, cache: dict[int, Any]) -> list[Any]:
    """Per sample its grounding (``tenku.layout.to_model``, the first ``t`` latent frames) or None
    (dropped: trained free), one draw from its own stream after the caption's."""
    from tenku.layout import to_model

    out = []
    for i, rng in zip(idx, rngs):
        if rng.random() < cfg.layout.dropout:
            out.append(None)
            continue
        if i not in cache:
            lay = masks.layout(i)
            cache[i] = to_model(lay, phrases([o.phrase for o in lay.objects]), time_down)
        g = cache[i]
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
            for key in ("loss_layout" if g else "loss_free",) + (("hi_layout" if g else "hi_free",) if float(sigma[b].max()) >= 0.8 else ()):
                acc = self.sums.setdefault(key, [0.0, 0.0])
                acc[0], acc[1] = acc[0] + e, acc[1] + n

    def logged(self) -> dict[str, float]:
        """The means since the last call (then reset)."""
        out = {k: s / n for k, (s, n) in self.sums.items() if n}
        self.sums = {}
        return out
