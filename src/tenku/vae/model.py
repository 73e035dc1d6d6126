"""The causal 3D video autoencoder: modules and weight init only (losses live in losses.py).

Video ``(B, 3, T, H, W)`` in [-1, 1] with ``T = 1 + time_down * k`` becomes a latent
``(B, latent_channels, 1 + k, H / space_down, W / space_down)``. The first frame is encoded
on its own, so an image is a one-frame video.

Why it is shaped this way (CPU speed and exact streaming):

- Every spatial conv works on one frame at a time (kernel ``(1, 3, 3)``); time is mixed only
  by cheap causal ``(3, 1, 1)`` convs and by moving frames into channels when time is
  compressed. This is a (2+1)D factorisation of Wan's full 3x3x3 causal convs.
- No normalisation layers: nothing looks across time or across the frame, so chunk-by-chunk
  processing equals whole-video processing and tiles see no tile-dependent statistics
  (GroupNorm breaks both; per-pixel RMS norms kept that but stalled training). Zero-initialised
  residual branches keep the norm-free stack stable, and it saves a quarter of the time.
- Down/up-sampling carries a parameter-free shortcut (space/time-to-channel and channel
  averaging, as in DC-AE) so deep compression trains fast.
- Tensors are kept ``channels_last_3d``: oneDNN's fast convolution layout on CPU.

Streaming (``encode``/``decode``, cut into chunks with a cache and tiles) is the runtime in
``tenku.vae.stream``; the folder format is ``tenku.weights``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from tenku.config import ConfigError

CL = torch.channels_last_3d

Cache = dict[nn.Module, Tensor]


@dataclass
class VAEConfig:
    """Shape of the autoencoder. ``channels[i]`` is the width at 1/2**i resolution
    (level 0 is full resolution); levels beyond the list reuse its last width.
    ``enc_blocks``/``dec_blocks`` count residual blocks per level in the same order."""

    latent_channels: int = 16
    time_down: int = 4  # 1, 2 or 4
    space_down: int = 8  # 4, 8 or 16
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    enc_blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 2])
    dec_blocks: list[int] = field(default_factory=lambda: [1, 1, 2, 3])
    time_conv_min_level: int = 1  # residual blocks at this level and deeper mix time (full res is costly)
    in_channels: int = 3
    latent_mean: list[float] = field(default_factory=list)  # per channel, measured on data; empty = 0
    latent_std: list[float] = field(default_factory=list)  # per channel; empty = 1

    @property
    def levels(self) -> int:
        return int(math.log2(self.space_down)) + 1

    def width(self, level: int) -> int:
        return self.channels[min(level, len(self.channels) - 1)]

    def validate(self) -> None:
        """Raise ConfigError naming the field when the config cannot build a model."""
        if self.time_down not in (1, 2, 4):
            raise ConfigError(f"time_down must be 1, 2 or 4; got {self.time_down}")
        if self.space_down not in (4, 8, 16):
            raise ConfigError(f"space_down must be 4, 8 or 16; got {self.space_down}")
        if not 1 <= self.latent_channels <= 64:
            raise ConfigError(f"latent_channels must be in 1..64 (4 to 16 is the useful range); got {self.latent_channels}")
        if not self.channels or min(self.channels) < 4 or any(c % 4 for c in self.channels):
            raise ConfigError(f"channels must be multiples of 4 (>= 4); got {self.channels}")
        for name in ("enc_blocks", "dec_blocks"):
            v = getattr(self, name)
            if len(v) != self.levels or min(v) < 0:
                raise ConfigError(f"{name} needs {self.levels} counts >= 0 (one per level for space_down={self.space_down}); got {v}")
        for i in range(self.levels - 1):  # the parameter-free shortcuts split/repeat channels evenly
            a, b, r = self.width(i), self.width(i + 1), 4 * (2 if _time_level(self, i) else 1)
            if (a * r) % b:
                raise ConfigError(f"channels: widths {a} -> {b} do not divide evenly for the up/down shortcuts (x{r}); got {self.channels}")
        for name in ("latent_mean", "latent_std"):
            v = getattr(self, name)
            if v and len(v) != self.latent_channels:
                raise ConfigError(f"{name} needs {self.latent_channels} values (one per latent channel) or none; got {len(v)}")
        if self.latent_std and min(self.latent_std) <= 0:
            raise ConfigError("latent_std values must be > 0")


# One model class, a registry of sizes (as DiT_models). Tests use "tiny".
VAE_CONFIGS: dict[str, VAEConfig] = {
    "tiny": VAEConfig(latent_channels=4, channels=[8, 16, 16, 16], enc_blocks=[0, 1, 0, 1], dec_blocks=[0, 1, 0, 1]),
    "small": VAEConfig(),
    "base": VAEConfig(channels=[64, 128, 256, 256], enc_blocks=[1, 2, 2, 2], dec_blocks=[2, 2, 3, 3]),
}


def vae_config(name: str, **overrides: object) -> VAEConfig:
    """A copy of the registry config ``name`` with ``overrides`` applied."""
    if name not in VAE_CONFIGS:
        raise ConfigError(f"unknown VAE size {name!r}; known: {', '.join(VAE_CONFIGS)}")
    return dataclasses.replace(copy.deepcopy(VAE_CONFIGS[name]), **overrides)  # type: ignore[arg-type]


class FrameConv(nn.Conv2d):
    """A 2D conv applied to every frame: time is folded into the batch as a view (no copy),
    which keeps PyTorch on oneDNN's fast path (its Conv3d falls back to a slow kernel in fp32)."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        B, T = x.shape[0], x.shape[2]
        f = x.transpose(1, 2).flatten(0, 1)  # (B*T, C, H, W), channels_last when x is channels_last_3d
        y = super().forward(f)  # (B*T, C', H', W')
        return y.unflatten(0, (B, T)).transpose(1, 2)  # (B, C', T, H', W')


def conv2d(cin: int, cout: int) -> FrameConv:
    """3x3 conv applied to each frame independently."""
    return FrameConv(cin, cout, 3, padding=1)


class CausalTimeConv(nn.Module):
    """Kernel (3, 1, 1) over time, left-padded: output t sees inputs t-2..t only. With a
    cache it keeps the last two input frames, so chunked == whole; without one (or on the
    first chunk) the past is zeros."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(c, c, (3, 1, 1))

    def forward(self, x: Tensor, cache: Cache | None) -> Tensor:
        past = cache.get(self) if cache is not None else None
        if past is None:
            past = x.new_zeros(x.shape[0], x.shape[1], 2, *x.shape[3:])
        xp = torch.cat([past.to(x.dtype), x], 2).contiguous(memory_format=CL)  # (B, C, T+2, H, W)
        if cache is not None:
            cache[self] = xp[:, :, -2:].clone()
        return self.conv(xp)  # (B, C, T, H, W)


class ResBlock(nn.Module):
    """silu -> 3x3 -> (causal time conv) -> silu -> 3x3, plus the input. No norm layer: per-pixel
    norms (the only kind that keeps chunks and tiles exact) erase brightness, which left the
    model stuck at the mean colour; the zero-initialised last conv keeps the stack stable."""

    def __init__(self, c: int, time_conv: bool) -> None:
        super().__init__()
        self.conv1 = conv2d(c, c)
        self.tconv = CausalTimeConv(c) if time_conv else None
        self.conv2 = conv2d(c, c)
        nn.init.zeros_(self.conv2.weight)  # each block starts as identity: deep stacks train from step 0
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, cache: Cache | None) -> Tensor:
        h = self.conv1(F.silu(x))  # (B, C, T, H, W)
        if self.tconv is not None:
            h = self.tconv(h, cache)  # (B, C, T, H, W): (2+1)D, mixes frames t-2..t
        h = self.conv2(F.silu(h))  # (B, C, T, H, W)
        return x + h


class Downsample(nn.Module):
    """Halve H and W (and T when ``time``): a stride-2 conv after optional time-to-channel,
    plus a parameter-free shortcut (space/time-to-channel, then average channel groups)."""

    def __init__(self, cin: int, cout: int, time: bool) -> None:
        super().__init__()
        self.tt = 2 if time else 1
        self.conv = FrameConv(cin * self.tt, cout, 3, stride=2)
        self.group = cin * self.tt * 4 // cout
        assert self.group * cout == cin * self.tt * 4, "channel widths must divide evenly"

    def forward(self, x: Tensor, cache: Cache | None) -> Tensor:
        if self.tt == 2:
            if cache is None or self not in cache:  # first chunk: frame 0 is paired with itself
                x = torch.cat([x[:, :, :1], x], 2)  # (B, C, 2 + 2k, H, W)
                if cache is not None:
                    cache[self] = x.new_zeros(())
            x = rearrange(x, "b c (t r) h w -> b (c r) t h w", r=2)  # (B, 2C, T/2, H, W)
        skip = rearrange(x, "b c t (h p) (w q) -> b (c p q) t h w", p=2, q=2)  # (B, 4C', T, H/2, W/2)
        skip = skip.unflatten(1, (-1, self.group)).mean(2)  # (B, cout, T, H/2, W/2)
        h = self.conv(F.pad(x, (0, 1, 0, 1)).contiguous(memory_format=CL))  # (B, cout, T, H/2, W/2)
        return (h + skip).contiguous(memory_format=CL)


class Upsample(nn.Module):
    """Double H and W (and T when ``time``): a conv at low resolution to ``cout * 4 (* 2)``
    channels, then depth-to-space; shortcut repeats channels the same way. On the first chunk
    the frame before frame 0 (the pair partner Downsample invented) is dropped."""

    def __init__(self, cin: int, cout: int, time: bool) -> None:
        super().__init__()
        self.tt = 2 if time else 1
        r = 4 * self.tt
        self.conv = conv2d(cin, cout * r)
        self.repeat = cout * r // cin
        assert self.repeat * cin == cout * r, "channel widths must divide evenly"
        with torch.no_grad():  # ICNR: every sub-position starts with the same kernel (= nearest upsampling, no checkerboard)
            w = self.conv.weight[::r].clone()
            self.conv.weight.copy_(w.repeat_interleave(r, 0))
            self.conv.bias.zero_()

    def forward(self, x: Tensor, cache: Cache | None) -> Tensor:
        h = self.conv(x) + x.repeat_interleave(self.repeat, 1)  # (B, cout * r, T, H, W)
        h = rearrange(h, "b (c r p q) t h w -> b c (t r) (h p) (w q)", r=self.tt, p=2, q=2)  # (B, cout, T*tt, 2H, 2W)
        if self.tt == 2 and (cache is None or self not in cache):
            h = h[:, :, 1:]  # (B, cout, 1 + 2(T-1), 2H, 2W)
            if cache is not None:
                cache[self] = h.new_zeros(())
        return h.contiguous(memory_format=CL)


def _time_level(cfg: VAEConfig, level: int) -> bool:
    """Does the resampling between ``level`` and ``level + 1`` touch time? The deepest ones do."""
    return level >= cfg.levels - 1 - int(math.log2(cfg.time_down))


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        L = cfg.levels
        self.conv_in = conv2d(cfg.in_channels, cfg.width(0))
        self.stages = nn.ModuleList()
        for i in range(L):
            c = cfg.width(i)
            stage = nn.ModuleList(ResBlock(c, i >= cfg.time_conv_min_level) for _ in range(cfg.enc_blocks[i]))
            if i < L - 1:
                stage.append(Downsample(c, cfg.width(i + 1), _time_level(cfg, i)))
            self.stages.append(stage)
        self.conv_out = conv2d(cfg.width(L - 1), 2 * cfg.latent_channels)
        with torch.no_grad():  # start with a small posterior std (e^-3): at the default init the sampling
            z = cfg.latent_channels  # noise is as large as the means, the decoder learns to ignore the
            self.conv_out.weight[z:].zero_()  # latent, and the log-variance takes thousands of steps to fall
            self.conv_out.bias[z:].fill_(-6.0)

    def forward(self, x: Tensor, cache: Cache | None = None) -> Tensor:
        h = self.conv_in(x)  # (B, c0, T, H, W)
        for stage in self.stages:
            for layer in stage:
                h = layer(h, cache)  # down to (B, cL, T', H/s, W/s)
        return self.conv_out(F.silu(h)).float()  # (B, 2 * latent, T', H/s, W/s)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        L = cfg.levels
        self.conv_in = conv2d(cfg.latent_channels, cfg.width(L - 1))
        self.stages = nn.ModuleList()
        for i in reversed(range(L)):
            c = cfg.width(i)
            stage = nn.ModuleList(ResBlock(c, i >= cfg.time_conv_min_level) for _ in range(cfg.dec_blocks[i]))
            if i > 0:
                stage.append(Upsample(c, cfg.width(i - 1), _time_level(cfg, i - 1)))
            self.stages.append(stage)
        self.conv_out = conv2d(cfg.width(0), cfg.in_channels)

    def forward(self, z: Tensor, cache: Cache | None = None) -> Tensor:
        h = self.conv_in(z)  # (B, cL, T', h, w)
        for stage in self.stages:
            for layer in stage:
                h = layer(h, cache)  # up to (B, c0, T, H, W)
        return self.conv_out(F.silu(h)).float()  # (B, 3, T, H, W)


class VAE(nn.Module):
    """Causal video autoencoder with a diagonal Gaussian latent. See the module docstring."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = copy.deepcopy(cfg)  # set_latent_stats writes to it; never to the caller's (or the registry's) config
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        for mod in self.modules():  # oneDNN's preferred weight layouts
            if isinstance(mod, (nn.Conv2d, nn.Conv3d)):
                fmt = torch.channels_last if mod.weight.ndim == 4 else CL
                mod.weight.data = mod.weight.data.contiguous(memory_format=fmt)
        self.set_latent_stats(cfg.latent_mean, cfg.latent_std)

    # --- training path (whole clips, raw latents) ------------------------------------------
    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Video ``(B, 3, T, H, W)`` -> raw (unnormalised) posterior mean and log-variance."""
        self._check_video(x)
        mean, logvar = self.encoder(x.contiguous(memory_format=CL)).chunk(2, 1)  # (B, z, T', h, w) each
        return mean, logvar.clamp(-30.0, 20.0)

    def forward(self, x: Tensor, sample: bool = True, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruct ``x`` in one pass (no chunking): returns (recon, mean, logvar)."""
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator, device=mean.device) if sample else mean
        return self.decoder(z.contiguous(memory_format=CL)), mean, logvar  # (B, 3, T, H, W)

    # --- inference path (normalised latents, streamed) -------------------------------------
    def set_latent_stats(self, mean: list[float], std: list[float]) -> None:
        """Store per-channel latent mean/std (in the config too), so that encode() gives unit-scale latents."""
        self.cfg.latent_mean, self.cfg.latent_std = [float(v) for v in mean], [float(v) for v in std]
        self.cfg.validate()
        z = self.cfg.latent_channels
        m = torch.tensor(self.cfg.latent_mean or [0.0] * z).view(1, z, 1, 1, 1)
        s = torch.tensor(self.cfg.latent_std or [1.0] * z).view(1, z, 1, 1, 1)
        self.register_buffer("latent_shift", m, persistent=False)
        self.register_buffer("latent_scale", s, persistent=False)

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T', H', W') of the latent of a ``frames x height x width`` video."""
        self._check_dims(frames, height, width)
        c = self.cfg
        return c.latent_channels, 1 + (frames - 1) // c.time_down, height // c.space_down, width // c.space_down

    def encode(self, x: Tensor, sample: bool = False, generator: torch.Generator | None = None,
               chunk: int = 2, tile: int | None = None, overlap: int = 64) -> Tensor:
        """Video ``(B, 3, T, H, W)`` in [-1, 1] -> normalised latent ``(B, C, T', H', W')``, streamed
        chunk by chunk with a causal cache and tiled when large (``tenku.vae.stream.encode``)."""
        from tenku.vae.stream import encode

        return encode(self, x, sample, generator, chunk, tile, overlap)

    def decode(self, z: Tensor, chunk: int = 2, tile: int | None = None, overlap: int = 64) -> Tensor:
        """Normalised latent ``(B, C, T', H', W')`` -> video ``(B, 3, 1 + time_down (T'-1), H, W)``
        in [-1, 1] (not clamped), streamed (``tenku.vae.stream.decode``)."""
        from tenku.vae.stream import decode

        return decode(self, z, chunk, tile, overlap)

    def decode_chunks(self, z: Tensor, chunk: int = 2, tile: int | None = None, overlap: int = 64) -> Iterator[Tensor]:
        """Like ``decode``, but yields the video chunk by chunk (``tenku.vae.stream.decode_chunks``)."""
        from tenku.vae.stream import decode_chunks

        return decode_chunks(self, z, chunk, tile, overlap)

    def _check_dims(self, frames: int, height: int, width: int) -> None:
        c = self.cfg
        if frames < 1 or (frames - 1) % c.time_down:
            raise ValueError(f"frame count must be 1 + {c.time_down}k (1, {1 + c.time_down}, {1 + 2 * c.time_down}, ...); got {frames}")
        if height % c.space_down or width % c.space_down or height < 1 or width < 1:
            raise ValueError(f"height and width must be multiples of {c.space_down}; got {height}x{width}")

    def _check_video(self, x: Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"video must be (B, {self.cfg.in_channels}, T, H, W); got {tuple(x.shape)}")
        self._check_dims(*x.shape[2:])

    # --- files (tenku.weights: one model-folder format) -----------------------------------
    def save(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write a model folder (``model.safetensors``, ``config.yaml`` with the latent statistics,
        ``tenku.json``); loads back bit-exact (``dtype=torch.bfloat16`` stores half the bytes)."""
        from tenku.weights import save_vae

        return save_vae(self, folder, dtype)

    @classmethod
    def load(cls, folder: str | Path) -> VAE:
        """Load a VAE folder (today's or an older tenku's); anything else is a ValueError that says why."""
        from tenku.weights import load_vae

        return load_vae(folder)
