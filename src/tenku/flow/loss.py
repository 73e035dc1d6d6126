"""The training loss of the flow convention (``tenku.flow``): the squared error of the
predicted velocity ``v = noise - x0`` at ``x_sigma``, per latent frame, over the frames the
model must generate. The trainer supplies the model as a velocity function, so this file
knows nothing of text, layouts or parallelism."""

from __future__ import annotations

from collections.abc import Callable

import torch

from tenku.flow.path import add_noise, velocity

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_sigma (B, C, T', H', W'), sigma (B, T')) -> v


def flow_loss_sum(model: Velocity, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                  weight: torch.Tensor | None = None,
                  observe: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
    """Summed squared velocity error over the frames to generate (each frame's mean over C, H, W,
    or with ``weight`` (B, T', H', W') its weighted mean over H, W: e.g. object cells weighed up);
    condition frames (``cond`` (B, T') True) are (nearly) clean inputs at their ``sigma`` and
    add nothing. The sum, not the mean: the caller divides by the global batch's frame count.
    ``observe`` is handed the per-frame errors (B, T'), detached (e.g. to log them by kind of sample)."""
    v = model(add_noise(x0, noise, sigma), sigma)
    err = (v.float() - velocity(x0, noise)).pow(2).mean(dim=1)  # (B, T', H', W')
    if weight is None:
        err = err.mean(dim=(2, 3))
    else:
        err = (err * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
    if observe is not None:
        observe(err.detach())
    return (err * (~cond).float()).sum()
