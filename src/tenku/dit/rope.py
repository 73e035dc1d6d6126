"""3D rotary position codes factorised over (t, h, w): no learned position
table, so any size, aspect ratio and duration is the same model."""

from __future__ import annotations

import torch


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Split a head's (even) rotary pairs over t, h, w: time gets the remainder."""
    pairs = head_dim // 2
    hw = pairs // 3
    return pairs - 2 * hw, hw, hw


def rope_angles(pos: torch.Tensor, head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """Angles (L, head_dim / 2) for integer-or-float positions ``pos`` (L, 3) = (t, h, w)."""
    out = []
    for axis, n in enumerate(axis_dims(head_dim)):
        if n == 0:
            continue
        freqs = theta ** (-torch.arange(n, dtype=torch.float64, device=pos.device) / n)
        out.append(pos[:, axis, None].double() * freqs[None])
    return torch.cat(out, dim=1).float()


def rope_freqs(ang: torch.Tensor) -> torch.Tensor:
    """Angles (L, head_dim / 2) -> unit complex rotations e^(i*angle) (L, head_dim / 2), complex64."""
    return torch.polar(torch.ones_like(ang), ang)


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[2i], x[2i+1]) of x (..., L, head_dim) by ``freqs`` (L, head_dim / 2) complex:
    one complex product in fp32, returned in fp32."""
    xc = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(xc * freqs).flatten(-2)


def grid_positions(t: int, h: int, w: int, t0: float = 0.0) -> torch.Tensor:
    """Positions (t*h*w, 3) of a token grid in (t, h, w) order, time starting at ``t0``."""
    tt, hh, ww = torch.meshgrid(torch.arange(t) + float(t0), torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    return torch.stack([tt, hh, ww], dim=-1).reshape(-1, 3).float()
