"""The spacetime-patch diffusion transformer: modules and weight init only.

A latent (C, T', H', W') becomes T'/pt * H'/ph * W'/pw tokens (Conv3d, kernel =
stride = patch) with 3D rotary codes. Each block: self-attention over all
spacetime tokens, cross-attention to text tokens, an MLP; adaLN modulation from
the noise level **per latent frame** (adaLN-single: one shared projection plus a
learned table per block). The residual stream (unless ``residual="weights"``), modulation,
norms and rotary maths are fp32, the matrix products and attention in the compute dtype (bf16 under autocast);
modulation and the output layer start at zero, so a fresh model outputs zeros.

Tokens are handled in groups that share a noise level: for a batch of one
shape a group is a frame of H'W' tokens; for a packed batch of mixed shapes
every token is its own group and attention is block-diagonal.

Other families' weights (Wan, tenku.wan) run through a few DiTConfig switches (qk_norm,
gelu, mlp_hidden, cross_norm, eps, residual) whose defaults are tenku's own model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tenku.dit.grounding import Grounding, GroundingInput, ObjectLayout, grounding_input
from tenku.dit.patches import unpatchify
from tenku.dit.rope import apply_rope, grid_positions, rope_angles, rope_freqs


@dataclass
class DiTConfig:
    in_channels: int = 16  # latent channels
    patch: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw)
    dim: int = 384
    depth: int = 12
    heads: int = 6
    mlp_ratio: float = 4.0
    text_dim: int = 384  # hidden size of the text encoder
    freq_dim: int = 256  # sinusoidal noise-level features
    rope_theta: float = 10000.0
    grounding: str = ""  # layout grounding (tenku.dit.grounding): "" none, "cross" or "self"
    grounding_dim: int = 64  # its attention's inner width
    # switches for other families' weights (tenku.wan); the defaults are tenku's own model
    qk_norm: str = "head"  # q/k RMSNorm over each head ("head") or over all heads at once ("across", Wan)
    gelu: str = "none"  # GELU of the text and block MLPs: exact ("none") or its tanh approximation ("tanh", Wan)
    mlp_hidden: int = 0  # the block MLP's width; 0: dim * mlp_ratio
    cross_norm: bool = True  # an affine LayerNorm before cross-attention (False: none)
    eps: float = 1e-6  # of every norm
    # the residual stream's dtype: "fp32" (tenku's), or "weights": the patch embedding's weight dtype,
    # so bf16 weights carry a bf16 stream as diffusers runs Wan (half its memory; tenku.wan sets it
    # for bf16 weights). The branch updates are computed in fp32 either way, then stored.
    residual: str = "fp32"


# One model class, a registry of sizes (DiT's DiT_models).
DIT_SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(dim=64, depth=2, heads=4),
    "S": dict(dim=384, depth=12, heads=6),
    "B": dict(dim=768, depth=12, heads=12),
    "L": dict(dim=1024, depth=24, heads=16),
    "XL": dict(dim=1152, depth=28, heads=16),
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x * (1 + scale) + shift in one pass."""
    return torch.addcmul(shift, x, 1 + scale)


class RMSNorm(nn.Module):
    """RMSNorm computed and returned in fp32 (the caller casts back after the rotary codes)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), self.weight.shape, self.weight.float(), self.eps)


def layer_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Affine-free LayerNorm in fp32."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=eps)


class Attention(nn.Module):
    """Self- (context None) or cross-attention with q/k RMSNorm, through SDPA. ``across``: the
    RMSNorm runs over all heads of a token at once (Wan), not over each head."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None, across: bool = False, eps: float = 1e-6):
        super().__init__()
        self.heads, self.cross, self.across = heads, kv_dim is not None, across
        hd = dim // heads
        if self.cross:
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(kv_dim, 2 * dim)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)  # fused: one matrix product
        self.q_norm, self.k_norm = RMSNorm(dim if across else hd, eps), RMSNorm(dim if across else hd, eps)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                rope: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        if self.cross:
            q, (k, v) = self.q(x), self.kv(context).view(b, -1, 2, d).unbind(2)  # (B, L, D) each
        else:
            q, k, v = self.qkv(x).view(b, n, 3, d).unbind(2)  # (B, L, D) each
        # one at a time, so only one of q, k is ever in fp32 (norm and rotary codes), then the compute dtype
        q = self._norm_rope(q, self.q_norm, rope, v.dtype)
        k = self._norm_rope(k, self.k_norm, rope, v.dtype)
        o = F.scaled_dot_product_attention(q, k, self._heads(v), attn_mask=mask)  # (B, h, L, hd)
        return self.out(o.transpose(1, 2).reshape(b, n, d))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, h, L, hd), a view."""
        return t.view(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)

    def _norm_rope(self, t: torch.Tensor, norm: RMSNorm, rope: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """q or k (B, L, D) -> RMSNorm over each head (or all heads, ``across``) and rotary codes in
        fp32 -> (B, h, L, hd) in ``dtype``."""
        t = self._heads(norm(t)) if self.across else norm(self._heads(t))
        return (t if rope is None else apply_rope(t, rope)).to(dtype)


class Block(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.dim
        across = cfg.qk_norm == "across"
        self.attn = Attention(d, cfg.heads, across=across, eps=cfg.eps)
        self.cross = Attention(d, cfg.heads, kv_dim=d, across=across, eps=cfg.eps)
        self.norm_cross = nn.LayerNorm(d, eps=cfg.eps) if cfg.cross_norm else nn.Identity()
        hidden = cfg.mlp_hidden or int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate=cfg.gelu), nn.Linear(hidden, d))
        self.eps = cfg.eps
        self.table = nn.Parameter(torch.randn(6, d) / math.sqrt(d))  # per-block offset of the shared modulation

    def forward(self, x: torch.Tensor, mod: torch.Tensor, context: torch.Tensor, ctx_mask: torch.Tensor | None,
                self_mask: torch.Tensor | None, rope: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        g, dt = mod.shape[1], x.dtype  # the gated updates promote to fp32: stored back in the stream's dtype
        m = (self.table[None, None].float() + mod.float()).unbind(2)  # 6 x (B, G, D), fp32
        shift1, scale1, gate1, shift2, scale2, gate2 = (t[:, :, None] for t in m)  # (B, G, 1, D)
        xg = x.view(b, g, n // g, d)  # tokens grouped by noise level
        h = modulate(layer_norm(xg, self.eps), shift1, scale1).to(context.dtype).view(b, n, d)
        x = torch.addcmul(xg, gate1, self.attn(h, mask=self_mask, rope=rope).view(b, g, -1, d)).to(dt).view(b, n, d)
        del xg, h  # the old stream and the attention's input: freed before the cross-attention's peak
        x = x + self.cross(self.norm_cross(x).to(context.dtype), context, ctx_mask)  # the norm's fp32 out, not kept
        xg = x.view(b, g, n // g, d)
        h = modulate(layer_norm(xg, self.eps), shift2, scale2).to(context.dtype)
        return torch.addcmul(xg, gate2, self.mlp(h)).to(dt).view(b, n, d)


def timestep_features(sigma: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of 1000 * sigma: (...,) -> (..., dim), fp32."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=sigma.device) / half)
    a = 1000.0 * sigma.float()[..., None] * freqs
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


class DiT(nn.Module):
    """Velocity predictor v(x_sigma, sigma per frame, text)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        if cfg.qk_norm not in ("head", "across") or cfg.gelu not in ("none", "tanh") or cfg.residual not in (
                "fp32", "weights"):
            raise ValueError(f"DiTConfig: qk_norm must be 'head' or 'across' (got {cfg.qk_norm!r}), gelu 'none' or "
                             f"'tanh' (got {cfg.gelu!r}), residual 'fp32' or 'weights' (got {cfg.residual!r})")
        self.cfg = cfg
        d, pt, ph, pw = cfg.dim, *cfg.patch
        self.patch_embed = nn.Conv3d(cfg.in_channels, d, kernel_size=cfg.patch, stride=cfg.patch)
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate=cfg.gelu), nn.Linear(d, d))
        self.t_embed = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.t_mod = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.final_table = nn.Parameter(torch.randn(2, d) / math.sqrt(d))
        self.final = nn.Linear(d, pt * ph * pw * cfg.in_channels)
        self.reset_parameters()
        # after the base init, so the base weights draw what they drew without grounding
        self.grounding = Grounding(d, cfg.depth, cfg.text_dim, cfg.grounding_dim, cfg.grounding) if cfg.grounding else None

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.t_embed[0].weight, std=0.02)
        nn.init.normal_(self.t_embed[2].weight, std=0.02)
        for zero in (self.t_mod[1], self.final):  # adaLN modulation and output start at zero
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)

    def forward_tokens(self, tokens: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor,
                       ctx_mask: torch.Tensor | None, rope: torch.Tensor,
                       self_mask: torch.Tensor | None = None, ground: GroundingInput | None = None) -> torch.Tensor:
        """Transformer on embedded tokens (B, L, D); sigma (B, G) per token group -> (B, L, patch_out);
        ``ground``: the layout's grounding (``grounding_input``), read after every block."""
        b, n, d = tokens.shape
        emb = self.t_embed(timestep_features(sigma, self.cfg.freq_dim))  # (B, G, D)
        mod = self.t_mod(emb).view(b, emb.shape[1], 6, d)  # (B, G, 6, D)
        ctx = self.text_proj(context)  # (B, Lc, D)
        # the residual stream (fp32, or the weights' dtype); blocks cast their branch inputs to ctx's dtype
        x = tokens.float() if self.cfg.residual == "fp32" else tokens.to(self.patch_embed.weight.dtype)
        g = self.grounding.tokens(ground, ctx.dtype) if ground is not None else None
        for k, blk in enumerate(self.blocks):
            x = blk(x, mod, ctx, ctx_mask, self_mask, rope)  # (B, L, D)
            if g is not None:
                x = self.grounding.apply(k, x, g, ground, self_mask)
        g = emb.shape[1]
        shift, scale = (self.final_table[None, None].float() + emb.float()[:, :, None]).unbind(2)  # (B, G, D)
        h = modulate(layer_norm(x.view(b, g, -1, d), self.cfg.eps), shift[:, :, None], scale[:, :, None]).to(tokens.dtype)
        out = self.final(h.view(b, n, d))  # (B, L, pt*ph*pw*C)
        if self.grounding is not None and self.training:  # every grounding parameter in every rank's backward
            out = out + self.grounding.untouched()  # (a batch may have no layout: DDP and FSDP need them all)
        return out

    # ---- latents in, latents out -------------------------------------------------

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Patchify (B, C, T, H, W) -> tokens (B, L, D) in (t, h, w) order and the token grid."""
        pt, ph, pw = self.cfg.patch
        _, c, t, h, w = x.shape
        if c != self.cfg.in_channels or t % pt or h % ph or w % pw:
            raise ValueError(f"latent {tuple(x.shape[1:])} does not fit {self.cfg.in_channels} channels "
                             f"and patch {self.cfg.patch}: T, H, W must be multiples of it")
        tok = self.patch_embed(x.to(self.patch_embed.weight.dtype))  # (B, D, T', H', W')
        return tok.flatten(2).transpose(1, 2), tuple(tok.shape[2:])  # (B, L, D)

    def _unembed(self, out: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(B, L, pt*ph*pw*C) -> (B, C, T, H, W)."""
        return unpatchify(out, grid, self.cfg.patch, self.cfg.in_channels)

    def _rope(self, grid: tuple[int, int, int], device: torch.device) -> torch.Tensor:
        """Rotary codes (L, head_dim / 2), complex, for a token grid."""
        return rope_freqs(rope_angles(grid_positions(*grid).to(device), self.cfg.dim // self.cfg.heads, self.cfg.rope_theta))

    def _frame_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """(B, T) per latent frame -> (B, T') per temporal patch (the mean over the patch)."""
        pt = self.cfg.patch[0]
        return sigma.view(sigma.shape[0], -1, pt).mean(-1) if pt > 1 else sigma

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor,
                ctx_mask: torch.Tensor | None = None, layout: list[ObjectLayout | None] | None = None) -> torch.Tensor:
        """x (B, C, T, H, W) at noise ``sigma`` (B, T); text ``context`` (B, Lc, text_dim) with
        ``ctx_mask`` (B, Lc) bool (True = a real token); ``layout`` per sample (None: free) for a
        model with grounding. Returns the velocity, shaped like x."""
        tokens, grid = self._embed(x)  # (B, L, D)
        rope = self._rope(grid, x.device)
        cm = ctx_mask[:, None, None, :] if ctx_mask is not None else None  # (B, 1, 1, Lc)
        ground = self._ground([[(lay, grid, 0)] for lay in layout], tokens.shape[1], x.device) if layout else None
        out = self.forward_tokens(tokens, self._frame_sigma(sigma), context.to(tokens.dtype), cm, rope, ground=ground)
        return self._unembed(out, grid).to(x.dtype)

    def _ground(self, rows: list, n: int, device: torch.device) -> GroundingInput | None:
        if self.grounding is None:
            raise ValueError("this transformer has no grounding (DiTConfig.grounding): it cannot follow a layout")
        return grounding_input(rows, n, self.cfg.patch, self.cfg.grounding, device)

    def forward_packed(self, xs: list[torch.Tensor], sigmas: list[torch.Tensor], contexts: list[torch.Tensor],
                       ctx_masks: list[torch.Tensor] | None = None,
                       layouts: list[ObjectLayout | None] | None = None) -> list[torch.Tensor]:
        """Samples of different shapes in one sequence: xs[i] (C, T_i, H_i, W_i), sigmas[i] (T_i,),
        contexts[i] (Lc_i, text_dim). Attention is block-diagonal, so each output equals
        the sample run alone."""
        toks, grids, sig, rope, seg, cseg, ctx = [], [], [], [], [], [], []
        for i, (x, s, c) in enumerate(zip(xs, sigmas, contexts)):
            tok, grid = self._embed(x[None])
            n, per_frame = tok.shape[1], grid[1] * grid[2]
            toks.append(tok[0])
            grids.append(grid)
            sig.append(self._frame_sigma(s[None])[0].repeat_interleave(per_frame))  # one group per token
            rope.append(self._rope(grid, x.device))
            seg.append(torch.full((n,), i, device=x.device))
            valid = ctx_masks[i] if ctx_masks is not None else torch.ones(c.shape[0], dtype=torch.bool, device=x.device)
            cseg.append(torch.where(valid, i, -1))
            ctx.append(c)
        seg_t, cseg_t = torch.cat(seg), torch.cat(cseg)
        self_mask = (seg_t[:, None] == seg_t[None, :])[None, None]  # (1, 1, L, L) block-diagonal
        cross_mask = (seg_t[:, None] == cseg_t[None, :])[None, None]  # (1, 1, L, Lc)
        tokens = torch.cat(toks)[None]
        starts = [0, *torch.tensor([g[0] * g[1] * g[2] for g in grids]).cumsum(0).tolist()]
        ground = self._ground([list(zip(layouts, grids, starts))], tokens.shape[1], tokens.device) if layouts else None
        out = self.forward_tokens(tokens, torch.cat(sig)[None], torch.cat(ctx)[None].to(tokens.dtype),
                                  cross_mask, torch.cat(rope), self_mask, ground)[0]
        res, start = [], 0
        for x, grid in zip(xs, grids):
            n = grid[0] * grid[1] * grid[2]
            res.append(self._unembed(out[start:start + n][None], grid)[0].to(x.dtype))
            start += n
        return res


def build_dit(size: str = "S", **overrides: object) -> DiT:
    """A DiT of a registered size (see DIT_SIZES) with config overrides."""
    if size not in DIT_SIZES:
        raise ValueError(f"unknown DiT size {size!r}; allowed: {', '.join(DIT_SIZES)}")
    return DiT(DiTConfig(**{**DIT_SIZES[size], **overrides}))  # type: ignore[arg-type]


def save_dit(folder: str, model: DiT, dtype: torch.dtype | None = None) -> None:
    """Save as a tenku model folder (safetensors + config); ``dtype=torch.bfloat16`` halves it."""
    from tenku.weights import save_weights

    save_weights(folder, model, model.cfg, "dit", dtype=dtype)


def load_dit(folder: str) -> DiT:
    """Load a folder written by ``save_dit``; a folder that is not a tenku DiT is a ValueError."""
    from tenku.weights import load_config_file, load_state, read_marker

    read_marker(folder, "dit")
    return load_state(folder, DiT(load_config_file(folder, DiTConfig))).eval()
