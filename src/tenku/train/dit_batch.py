"""What one training step of the transformer draws: every random draw is a function of (seed,
step) and the sample's place in the global batch (the per-sample streams, the step's stream,
the global batch's noise), and the model's conditioning inputs of a batch (``conditioning``:
where a new input such as a layout joins the caption states). ``tenku.train.dit`` runs the
loop around them; the loss is ``tenku.flow.flow_loss_sum``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tenku.flow import logit_normal

if TYPE_CHECKING:
    from tenku.data.latents import LatentSet
    from tenku.train.dit import TrainDiTConfig
    from tenku.train.layouts import Layouts


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


def conditioning(data: LatentSet, idx: list[int], rngs: list[np.random.Generator], cfg: TrainDiTConfig,
                 empty: torch.Tensor, device: torch.device, layouts: Layouts | None = None,
                 t: int = 0) -> dict[str, Any]:
    """The model's inputs beside the latents and noise levels for the samples ``idx``, as
    keywords of ``DiT.forward``: the caption states ``context`` (B, L, D) float and ``ctx_mask``
    (B, L), and in a grounded run (``layouts``) each sample's ``layout`` over the first ``t``
    latent frames (None: trained free), drawn after its caption. A new conditioning input is
    drawn here and passed the same way."""
    ctx, ctx_mask = text_batch(data, idx, rngs, cfg, empty)
    inputs: dict[str, Any] = {"context": ctx.to(device).float(), "ctx_mask": ctx_mask.to(device)}
    if layouts is not None:
        inputs["layout"] = layouts.batch(idx, rngs, t)
    return inputs


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
