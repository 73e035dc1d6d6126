"""Grounding: the transformer told where each object is (a layout, tenku.layout) and what it is.

Every object that is visible in a latent frame becomes one grounding token: its phrase's text
states (MiniLM, mean-pooled over the phrase's tokens), its box in that frame (Fourier features)
and its depth, through an MLP. After every block the visual tokens read the grounding tokens
through an attention whose output enters the residual stream times ``tanh(gate)``, the gate a
scalar per block that starts at 0 (GLIGEN's gated pathway): a model with grounding switched on
computes exactly what it computed before until training opens the gates, and with no layout
the pathway is skipped. ``DiTConfig.grounding`` picks the attention:

- ``self``: GLIGEN's gated self-attention over [visual tokens; grounding tokens] of the same
  sample, with rotary codes at the token's cell and at the box's centre (the reference).
- ``cross``: each visual token attends only to the grounding tokens of its own latent frame
  whose box touches its cell, and to a learned null token: the place is given by
  the mask, the place within the box by the rotary codes. A few keys per token instead of the
  whole sequence, so it costs a few percent of a block where ``self`` costs a tenth or more.

Inner width ``grounding_dim`` (heads of 32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tenku.dit.rope import apply_rope, grid_positions, rope_angles, rope_freqs

GROUNDING_MODES = ("", "cross", "self")
FOURIER = 8  # frequencies per box coordinate: pi * 2^k, k = 0..7 (a 256th of the frame at the finest)
HEAD_DIM = 32
FEATURES = 4 + 8 * FOURIER + 1  # a token's inputs besides the phrase: the box, its Fourier features, the depth


@dataclass
class ObjectLayout:
    """One sample's layout as the model takes it: ``boxes`` (N, T', 4) normalised x0, y0, x1, y1
    per latent frame, NaN where the object is not visible; ``phrases`` (N, text_dim) pooled phrase
    states; ``depth`` (N,) (higher in front)."""

    boxes: torch.Tensor
    phrases: torch.Tensor
    depth: torch.Tensor


def box_features(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) -> (..., 4 + 4 * 2 * FOURIER): the coordinates and their sines and cosines."""
    freqs = math.pi * 2.0 ** torch.arange(FOURIER, dtype=torch.float32, device=boxes.device)
    a = boxes.float()[..., None] * freqs  # (..., 4, F)
    return torch.cat([boxes.float(), torch.sin(a).flatten(-2), torch.cos(a).flatten(-2)], dim=-1)


@dataclass
class GroundingInput:
    """Grounding features laid out for one forward: ``feats`` (R, M, F) per row of the token
    batch (a row: a sample, or a packed sequence of several), padded; ``key_mask`` (R, 1, L, M)
    which visual token may read which grounding token; ``rope_k`` (R, 1, M, hd/2) the grounding
    tokens' rotary codes, ``rope_q`` (L, hd/2) the visual tokens'; ``active`` (R, L, 1) 1 on
    the tokens of samples given a layout, 0 on the free ones (whose stream is left as it is).
    ``cross`` reads only the tokens some box covers (the rest see the null token alone, one
    vector for all): ``sel`` (S,) their flat indices into (R * L), ``sel_row`` (S,) their rows,
    ``sel_mask`` (S, 1, 1, M + 1) their keys (the null last), ``sel_rope`` (S, 1, 1, hd/2)."""

    feats: torch.Tensor
    key_mask: torch.Tensor
    rope_q: torch.Tensor
    rope_k: torch.Tensor
    active: torch.Tensor
    sel: torch.Tensor | None = None
    sel_row: torch.Tensor | None = None
    sel_mask: torch.Tensor | None = None
    sel_rope: torch.Tensor | None = None
    bounds: list[int] | None = None  # row r's covered tokens are sel[bounds[r]:bounds[r + 1]]


def grounding_input(rows: list[list[tuple[ObjectLayout | None, tuple[int, int, int], int]]], n_tokens: int,
                    patch: tuple[int, int, int], mode: str, device: torch.device) -> GroundingInput | None:
    """Lay out the layouts of a batch: ``rows[r]`` lists (layout, token grid (T, H, W), first
    token) of each sample in row r. None when no sample has a layout (the model then skips
    grounding: exactly the free model); a sample whose layout has no visible object is still
    grounded (on nothing: "no object here"). Temporal patches (pt > 1) take the boxes of their
    first latent frame."""
    pt = patch[0]
    feats, masks, poss, counts = [], [], [], []
    active = torch.zeros(len(rows), n_tokens, 1, device=device)
    for r, row in enumerate(rows):
        f_row, m_row, p_row = [], [], []
        for lay, (tg, hg, wg), start in row:
            if lay is None:
                continue
            active[r, start : start + tg * hg * wg] = 1.0
            if lay.boxes.numel() == 0:
                continue
            boxes = lay.boxes[:, ::pt].to(device).float()  # (N, T, 4)
            if boxes.shape[1] != tg:
                raise ValueError(f"a layout of {boxes.shape[1]} latent frames (after patching) for a latent of {tg}")
            n_idx, t_idx = torch.nonzero(~torch.isnan(boxes[..., 0]), as_tuple=True)
            if len(n_idx) == 0:
                continue
            b = boxes[n_idx, t_idx]  # (m, 4)
            f_row.append(torch.cat([lay.phrases.to(device).float()[n_idx], box_features(b),
                                    lay.depth.to(device).float()[n_idx, None]], dim=-1))
            p_row.append(torch.stack([t_idx.float(), (b[:, 1] + b[:, 3]) / 2 * hg - 0.5, (b[:, 0] + b[:, 2]) / 2 * wg - 0.5], -1))
            pos = grid_positions(tg, hg, wg).to(device)  # (l, 3): this sample's visual tokens
            mask = torch.zeros(n_tokens, len(b), dtype=torch.bool, device=device)
            if mode == "self":
                mask[start : start + len(pos)] = True
            else:
                inside = ((pos[:, None, 0] == t_idx[None].float())  # the cells the box touches, in its frame
                          & (pos[:, None, 2] + 1 > b[None, :, 0] * wg) & (pos[:, None, 2] < b[None, :, 2] * wg)
                          & (pos[:, None, 1] + 1 > b[None, :, 1] * hg) & (pos[:, None, 1] < b[None, :, 3] * hg))
                mask[start : start + len(pos)] = inside
            m_row.append(mask)
        feats.append(torch.cat(f_row) if f_row else None)
        masks.append(torch.cat(m_row, 1) if m_row else None)
        poss.append(torch.cat(p_row) if p_row else None)
        counts.append(0 if not f_row else feats[-1].shape[0])
    if not active.any():
        return None
    m, r = max(counts), len(rows)
    width = next(lay.phrases.shape[-1] for row in rows for lay, _, _ in row if lay is not None) + FEATURES
    feat_t = torch.zeros(r, m, width, device=device)
    mask_t = torch.zeros(r, 1, n_tokens, m, dtype=torch.bool, device=device)
    pos_t = torch.zeros(r, m, 3, device=device)
    for i, (f, k, p) in enumerate(zip(feats, masks, poss)):
        if f is not None:
            feat_t[i, : len(f)], mask_t[i, 0, :, : len(f)], pos_t[i, : len(f)] = f, k, p
    rope_k = rope_freqs(rope_angles(pos_t.view(-1, 3), HEAD_DIM)).view(r, 1, m, HEAD_DIM // 2)
    # the visual tokens' codes: each row's samples start at time 0 (as the model's own codes do)
    pos_q = torch.zeros(n_tokens, 3, device=device)
    for lay, grid, start in rows[0] if len(rows) == 1 else [(None, rows[0][0][1], 0)]:
        g = grid_positions(*grid).to(device)
        pos_q[start : start + len(g)] = g
    rope_q = rope_freqs(rope_angles(pos_q, HEAD_DIM))
    inp = GroundingInput(feat_t, mask_t, rope_q, rope_k, active)
    if mode == "cross":
        covered = mask_t[:, 0].any(-1).view(-1)  # (R * L)
        inp.sel = torch.nonzero(covered).view(-1)
        inp.sel_row = torch.div(inp.sel, n_tokens, rounding_mode="floor")
        inp.sel_mask = F.pad(mask_t[:, 0].reshape(r * n_tokens, m)[inp.sel], (0, 1), value=True)[:, None, None]
        inp.sel_rope = rope_q[inp.sel % n_tokens][:, None, None]
        inp.bounds = torch.searchsorted(inp.sel, torch.arange(r + 1, device=device) * n_tokens).tolist()
        inp.rope_k = F.pad(torch.view_as_real(rope_k), (0, 0, 0, 0, 0, 1), value=0.0)  # the null: no rotation
        inp.rope_k[..., -1, :, 0] = 1.0
        inp.rope_k = torch.view_as_complex(inp.rope_k)
    return inp


class GroundingBlock(nn.Module):
    """One gated attention from the visual tokens to the grounding tokens (see the module doc)."""

    def __init__(self, dim: int, gdim: int, mode: str):
        super().__init__()
        self.mode, self.heads = mode, gdim // HEAD_DIM
        self.q = nn.Linear(dim, gdim)
        self.kv = nn.Linear(dim, 2 * gdim)
        self.out = nn.Linear(gdim, dim)
        self.gate = nn.Parameter(torch.zeros(1))  # tanh(0) = 0: the pathway starts closed

    def forward(self, x: torch.Tensor, g: torch.Tensor, inp: GroundingInput, self_mask: torch.Tensor | None,
                null: torch.Tensor | None) -> torch.Tensor:
        if self.mode == "cross":
            return self._cross(x, g, inp, null)
        b, n, _ = x.shape
        h = F.layer_norm(x.float(), x.shape[-1:], eps=1e-6).to(g.dtype)
        q = self.q(h).view(b, n, self.heads, HEAD_DIM).transpose(1, 2)
        k, v = self.kv(g).view(b, g.shape[1], 2, self.heads, HEAD_DIM).permute(2, 0, 3, 1, 4)  # (B, h, M, hd)
        q, k = F.rms_norm(q.float(), (HEAD_DIM,)), F.rms_norm(k.float(), (HEAD_DIM,))
        q, k = apply_rope(q, inp.rope_q), apply_rope(k, inp.rope_k)
        mask = inp.key_mask
        if self.mode == "self":  # GLIGEN: the visual tokens are keys too
            kx, vx = self.kv(h).view(b, n, 2, self.heads, HEAD_DIM).permute(2, 0, 3, 1, 4)
            k, v = torch.cat([apply_rope(F.rms_norm(kx.float(), (HEAD_DIM,)), inp.rope_q), k], 2), torch.cat([vx, v], 2)
            vis = self_mask if self_mask is not None else torch.ones(1, 1, n, n, dtype=torch.bool, device=x.device)
            mask = torch.cat([vis.expand(b, 1, n, n), mask], -1)
        o = F.scaled_dot_product_attention(q.type_as(v), k.type_as(v), v, attn_mask=mask)
        return torch.addcmul(x, torch.tanh(self.gate.float()) * inp.active, self.out(o.transpose(1, 2).reshape(b, n, -1)).float())

    def _cross(self, x: torch.Tensor, g: torch.Tensor, inp: GroundingInput, null: torch.Tensor) -> torch.Tensor:
        """``cross``: a token no box covers reads the null token alone, whose output ``c`` is one
        vector; only the covered tokens (``inp.sel``) attend, each to its row's keys."""
        r, n, d = x.shape
        kv = self.kv(torch.cat([g, null.to(g.dtype).expand(r, 1, -1)], 1)).view(r, -1, 2, self.heads, HEAD_DIM)
        k = apply_rope(F.rms_norm(kv[:, :, 0].float(), (HEAD_DIM,)).transpose(1, 2), inp.rope_k)  # (R, h, M+1, hd)
        v = kv[:, :, 1].transpose(1, 2)
        c = self.out(v[0, :, -1].reshape(1, -1)).float()  # (1, D): the null's value, the same in every row
        gate = torch.tanh(self.gate.float())
        out = x + (gate * inp.active) * c
        if len(inp.sel) == 0:
            return out
        h = F.layer_norm(x.reshape(-1, d)[inp.sel], (d,), eps=1e-6).to(g.dtype)  # (S, D)
        q = self.q(h).view(-1, self.heads, HEAD_DIM).transpose(0, 1)[:, :, None]  # (h, S, 1, hd)
        q = apply_rope(F.rms_norm(q.float(), (HEAD_DIM,)), inp.sel_rope[:, 0]).type_as(v)
        o = torch.empty(self.heads, len(inp.sel), HEAD_DIM, dtype=v.dtype, device=x.device)
        for i, (a, b) in enumerate(zip(inp.bounds[:-1], inp.bounds[1:])):  # each row's covered tokens against its keys
            if b > a:
                o[:, a:b] = F.scaled_dot_product_attention(q[:, a:b, 0][None], k[i : i + 1].type_as(v), v[i : i + 1],
                                                           attn_mask=inp.sel_mask[a:b, 0, 0][None, None])[0]
        o = self.out(o.transpose(0, 1).reshape(len(inp.sel), -1)).float()
        return out.reshape(-1, d).index_add(0, inp.sel, gate * (o - c)).view(r, n, d)


class Grounding(nn.Module):
    """The grounding tokens' MLP and one gated attention per block."""

    def __init__(self, dim: int, depth: int, text_dim: int, gdim: int, mode: str):
        super().__init__()
        if mode not in GROUNDING_MODES[1:]:
            raise ValueError(f"grounding: {mode!r} is not a grounding mode; allowed: {', '.join(GROUNDING_MODES[1:])} "
                             f"(or empty: none)")
        if gdim < HEAD_DIM or gdim % HEAD_DIM:
            raise ValueError(f"grounding_dim must be a positive multiple of {HEAD_DIM}; got {gdim}")
        self.mode = mode
        width = text_dim + FEATURES
        self.embed = nn.Sequential(nn.Linear(width, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.null = nn.Parameter(torch.zeros(1, dim)) if mode == "cross" else None
        self.blocks = nn.ModuleList(GroundingBlock(dim, gdim, mode) for _ in range(depth))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def untouched(self) -> torch.Tensor:
        """0 times every parameter: added to a training forward's output, it puts them all in the
        backward (with zero gradients where unused) so DDP and FSDP ranks reduce the same set."""
        return sum(p.float().sum() for p in self.parameters()) * 0.0

    def tokens(self, inp: GroundingInput, dtype: torch.dtype) -> torch.Tensor:
        """The grounding tokens (R, M, dim) of a forward."""
        return self.embed(inp.feats.to(dtype))

    def apply(self, k: int, x: torch.Tensor, g: torch.Tensor, inp: GroundingInput,
              self_mask: torch.Tensor | None) -> torch.Tensor:
        """The residual stream after block ``k`` (0-based) and its gated grounding."""
        return self.blocks[k](x, g, inp, self_mask, self.null)
