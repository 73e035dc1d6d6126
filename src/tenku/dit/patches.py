"""Spacetime patches as pure rearrangements (the Conv3d embedding uses the same order)."""

from __future__ import annotations

import torch
from einops import rearrange


def patchify(x: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, T'H'W', pt*ph*pw*C), tokens in (t, h, w) order."""
    pt, ph, pw = patch
    return rearrange(x, "b c (t pt) (h ph) (w pw) -> b (t h w) (pt ph pw c)", pt=pt, ph=ph, pw=pw)


def unpatchify(tokens: torch.Tensor, grid: tuple[int, int, int], patch: tuple[int, int, int], channels: int) -> torch.Tensor:
    """(B, T'H'W', pt*ph*pw*C) -> (B, C, T, H, W) for a token ``grid`` (T', H', W')."""
    (t, h, w), (pt, ph, pw) = grid, patch
    return rearrange(tokens, "b (t h w) (pt ph pw c) -> b c (t pt) (h ph) (w pw)",
                     t=t, h=h, w=w, pt=pt, ph=ph, pw=pw, c=channels)
