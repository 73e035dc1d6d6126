"""Wan's causal video autoencoder (diffusers' ``AutoencoderKLWan``, an optional dependency:
``pip install "tenku[wan]"``) behind tenku's autoencoder interface: ``cfg`` (latent channels,
time and space compression), ``latent_shape``, ``encode``/``decode`` of normalised latents and
``decode_chunks``, which streams the video one latent frame at a time through the model's own
causal cache, so memory does not grow with length. Latents are normalised with the folder's
``latents_mean``/``latents_std`` exactly as WanPipeline does: ``z = (raw - mean) / std``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

INSTALL = 'pip install "tenku[wan]"'


def require_diffusers() -> None:
    """A ValueError naming the install command when diffusers is missing."""
    try:
        import diffusers  # noqa: F401
    except ImportError:
        raise ValueError(f"a Wan folder needs diffusers for its autoencoder: {INSTALL}") from None


def is_wan_vae(folder: str | Path) -> bool:
    """True for a diffusers ``AutoencoderKLWan`` folder, or a Wan pipeline folder (its ``vae/``)."""
    import json

    folder = Path(folder)
    for conf in (folder / "config.json", folder / "vae" / "config.json"):
        try:
            if json.loads(conf.read_text()).get("_class_name") == "AutoencoderKLWan":
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


@dataclass
class WanVAEConfig:
    """What the pipeline reads of an autoencoder (the names of tenku's ``VAEConfig``)."""

    latent_channels: int
    time_down: int
    space_down: int
    in_channels: int = 3


class WanVAE(nn.Module):
    """An ``AutoencoderKLWan`` with tenku's interface. ``tile``: frames larger than this many
    pixels on a side are decoded and encoded in overlapping tiles of half that size, a quarter of
    a tile overlapping (diffusers' tiling; at the default 512, its own 256-pixel tiles with a
    64-pixel overlap), which bounds memory at 720p; 0 never tiles."""

    def __init__(self, model: nn.Module, tile: int = 512, folder: str | Path | None = None):
        super().__init__()
        self.folder = None if folder is None else Path(folder)  # where it was read from (saving copies it)
        c = model.config
        self.model = model.eval().requires_grad_(False)
        self.cfg = WanVAEConfig(int(c.z_dim), int(c.scale_factor_temporal), int(c.scale_factor_spatial))
        z = self.cfg.latent_channels
        if len(c.latents_mean) != z or len(c.latents_std) != z:
            raise ValueError(f"the Wan autoencoder's latents_mean/latents_std must have {z} values (z_dim)")
        self.register_buffer("latent_shift", torch.tensor(c.latents_mean, dtype=torch.float32).view(1, z, 1, 1, 1), persistent=False)
        self.register_buffer("latent_scale", torch.tensor(c.latents_std, dtype=torch.float32).view(1, z, 1, 1, 1), persistent=False)
        self.tile = tile

    @classmethod
    def load(cls, folder: str | Path, dtype: torch.dtype = torch.float32, tile: int = 512) -> "WanVAE":
        """The autoencoder of a Wan folder's ``vae/``. fp32 is the default: Wan's own scripts
        decode in fp32, and the autoencoder is small beside the transformer."""
        require_diffusers()
        from diffusers import AutoencoderKLWan
        from diffusers.utils import logging

        logging.set_verbosity_error()  # no advice to install accelerate, no progress bars

        folder = Path(folder)
        if not (folder / "config.json").is_file() and (folder / "vae" / "config.json").is_file():
            folder = folder / "vae"  # a pipeline folder
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder}: not a diffusers autoencoder folder (no config.json)")
        return cls(AutoencoderKLWan.from_pretrained(folder, torch_dtype=dtype), tile, folder)

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T', H', W') of the latent of a ``frames x height x width`` video."""
        c = self.cfg
        if frames < 1 or (frames - 1) % c.time_down:
            raise ValueError(f"frame count must be 1 + {c.time_down}k; got {frames}")
        if height < 1 or width < 1 or height % c.space_down or width % c.space_down:
            raise ValueError(f"height and width must be multiples of {c.space_down}; got {height}x{width}")
        return c.latent_channels, 1 + (frames - 1) // c.time_down, height // c.space_down, width // c.space_down

    def _tiling(self, height: int, width: int) -> bool:
        """Switch diffusers' tiling on for frames larger than ``tile`` pixels, off otherwise."""
        on = bool(self.tile) and max(height, width) > self.tile
        self.model.use_tiling = on
        if on:
            half = self.tile // 2
            self.model.enable_tiling(half, half, half * 3 // 4, half * 3 // 4)
        return on

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Video ``(B, 3, T, H, W)`` in [-1, 1] -> normalised latent ``(B, C, T', H', W')`` (the
        posterior's mean, as Wan's image-to-video takes it)."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W); got {tuple(x.shape)}")
        self.latent_shape(*x.shape[2:])
        self._tiling(*x.shape[-2:])
        dtype = next(self.model.parameters()).dtype
        mean = self.model.encode(x.to(dtype)).latent_dist.mode().float()
        return (mean - self.latent_shift) / self.latent_scale

    def _raw(self, z: Tensor) -> Tensor:
        if z.ndim != 5 or z.shape[1] != self.cfg.latent_channels:
            raise ValueError(f"latent must be (B, {self.cfg.latent_channels}, T', H', W'); got {tuple(z.shape)}")
        return (z.float() * self.latent_scale + self.latent_shift).to(next(self.model.parameters()).dtype)

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Normalised latent ``(B, C, T', H', W')`` -> video ``(B, 3, 1 + time_down (T'-1), H, W)``
        in [-1, 1]: diffusers' decode (tiled when large), chunk by chunk in time inside it."""
        s = self.cfg.space_down
        if self._tiling(z.shape[-2] * s, z.shape[-1] * s):
            return self.model.decode(self._raw(z)).sample.float()
        return torch.cat(list(self.decode_chunks(z)), dim=2)

    @torch.no_grad()
    def decode_chunks(self, z: Tensor) -> Iterator[Tensor]:
        """Like ``decode`` (untiled), but yields the video one latent frame at a time (frame 0,
        then ``time_down`` frames each): the loop of diffusers' ``_decode``, with its cache."""
        from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

        m = self.model
        x = m.post_quant_conv(self._raw(z))
        m.clear_cache()
        try:
            for i in range(x.shape[2]):
                m._conv_idx = [0]
                out = m.decoder(x[:, :, i : i + 1], feat_cache=m._feat_map, feat_idx=m._conv_idx, first_chunk=i == 0)
                if m.config.patch_size is not None:
                    out = unpatchify(out, patch_size=m.config.patch_size)
                yield out.clamp(-1, 1).float()
        finally:
            m.clear_cache()
