"""Conversions on the straight path between data and noise. Sigma is (B, T'),
broadcast over a latent (B, C, T', H, W)."""

from __future__ import annotations

import torch


def _frames(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, T') -> (B, 1, T', 1, 1), in x's dtype."""
    return sigma.to(x.dtype)[:, None, :, None, None]


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_sigma = (1 - sigma) x0 + sigma noise."""
    s = _frames(sigma, x0)
    return (1 - s) * x0 + s * noise


def velocity(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The training target v = noise - x0 (independent of sigma)."""
    return noise - x0


def x0_from_v(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Clean estimate from a noisy sample and its velocity: x0 = x - sigma v."""
    return x - _frames(sigma, x) * v


def noise_from_v(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Noise estimate: noise = x + (1 - sigma) v."""
    return x + (1 - _frames(sigma, x)) * v
