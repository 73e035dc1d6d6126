"""Noise levels: logit-normal for training, shifted linear grids for sampling."""

from __future__ import annotations

import math

import torch


def logit_normal(shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Training sigmas: sigmoid of a normal (SD3), dense in the middle of the path; drawn on
    the generator's device."""
    device = generator.device if generator is not None else None
    return torch.sigmoid(mean + std * torch.randn(shape, generator=generator, device=device))


def shift_sigmas(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """Time shift sigma' = s sigma / (1 + (s - 1) sigma): s > 1 spends more steps at high noise."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def resolution_shift(tokens: int, base_tokens: int = 256, base_shift: float = 1.0,
                     max_tokens: int = 4096, max_shift: float = 3.0) -> float:
    """Shift for a sequence of ``tokens``: more tokens, more shift (linear in log tokens, clamped)."""
    if tokens <= base_tokens:
        return base_shift
    k = min(math.log(tokens / base_tokens) / math.log(max_tokens / base_tokens), 1.0)
    return base_shift + k * (max_shift - base_shift)


def sampling_sigmas(steps: int, shift: float = 1.0, start: float = 1.0) -> torch.Tensor:
    """``steps + 1`` sigmas from ``start`` (1 = pure noise; < 1 for SDEdit) down to exactly 0."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < start <= 1.0:
        raise ValueError(f"start sigma must be in (0, 1], got {start}")
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    sig = shift_sigmas(grid, shift)
    # map the shifted grid onto [0, start]: sigma = start is where sampling begins
    sig = sig * start
    sig[-1] = 0.0
    return sig


# The sigma grids of diffusers' flow schedulers, reproduced exactly (same arithmetic, same dtypes),
# so a model folder that names one (a Wan folder's scheduler/) samples on the very sigmas its
# authors' pipeline uses. ``resolution``: tenku's own grid (``sampling_sigmas``, shift by tokens).
GRIDS = ("resolution", "flow-match-euler", "unipc")


def scheduler_sigmas(grid: str, steps: int, shift: float, train_timesteps: int = 1000,
                     start: float = 1.0) -> torch.Tensor:
    """``steps + 1`` sigmas ending at 0 as diffusers' scheduler of that ``grid`` makes them
    (``flow-match-euler``: FlowMatchEulerDiscreteScheduler with a fixed ``shift``; ``unipc``:
    UniPCMultistepScheduler with ``use_flow_sigmas`` and ``flow_shift``), in float32. ``start``
    < 1 (SDEdit) maps the grid onto [0, start] as ``sampling_sigmas`` does."""
    import numpy as np

    if grid not in GRIDS[1:]:
        raise ValueError(f"unknown sigma grid {grid!r}; allowed: {', '.join(GRIDS[1:])}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < start <= 1.0:
        raise ValueError(f"start sigma must be in (0, 1], got {start}")
    n = train_timesteps
    if grid == "flow-match-euler":
        train = torch.from_numpy(np.linspace(1, n, n, dtype=np.float32)[::-1].copy()) / n  # the scheduler's init
        train = shift * train / (1 + (shift - 1) * train)
        t = np.linspace(train[0].item() * n, train[-1].item() * n, steps)
        s = t / n
        s = shift * s / (1 + (shift - 1) * s)
        sig = torch.cat([torch.from_numpy(s).to(torch.float32), torch.zeros(1)])
    else:
        s = np.linspace(1, 1 / n, steps + 1)[:-1]
        s = shift * s / (1 + (shift - 1) * s)
        if abs(s[0] - 1) < 1e-6:  # UniPC keeps its first sigma just below 1
            s[0] -= 1e-6
        sig = torch.from_numpy(np.concatenate([s, [0.0]]).astype(np.float32))
    return sig * start if start < 1 else sig
