"""Generation: prompt -> text states -> flow sampling of latents with the DiT ->
the causal VAE decodes -> frames. Every mode (the modes issue) is built on the
one sampler here, through per-frame sigma: condition frames are clean latents.

A pipeline folder holds ``vae/`` and ``dit/`` (model folders) and
``pipeline.yaml`` (text encoder, defaults).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from tenku.config import load_config, save_config
from tenku.dit.model import DiT, load_dit, save_dit
from tenku.flow import GuidedModel, euler_sample, resolution_shift, sampling_sigmas
from tenku.io import to_uint8
from tenku.text import TextEncoder, load_text_encoder
from tenku.vae.model import VAE


@dataclass
class PipelineConfig:
    text_encoder: str = "minilm"
    max_text_tokens: int = 77
    fps: float = 8.0
    size: tuple[int, int] = (128, 128)  # default (width, height)
    frames: int = 33
    steps: int = 20
    guidance: float = 5.0
    base_tokens: int = 256  # sampling shift grows with tokens past this (flow.resolution_shift)
    max_shift: float = 3.0
    cond_sigma: float = 0.0  # noise level of condition frames (noise augmentation used in training)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when present, else cpu; 'cuda' without a GPU is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked, but no CUDA GPU is available (use auto or cpu)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda; got {name!r}")
    return torch.device(name)


class Pipeline:
    """Holds the VAE, the DiT and the text encoder; ``generate`` makes a video."""

    def __init__(self, vae: VAE, dit: DiT, text: TextEncoder, cfg: PipelineConfig, device: torch.device):
        if dit.cfg.in_channels != vae.cfg.latent_channels:
            raise ValueError(f"DiT expects {dit.cfg.in_channels} latent channels, VAE gives {vae.cfg.latent_channels}")
        if dit.cfg.text_dim != text.dim:
            raise ValueError(f"DiT expects text states of size {dit.cfg.text_dim}, encoder {cfg.text_encoder!r} gives {text.dim}")
        self.vae, self.dit, self.text, self.cfg, self.device = vae.eval(), dit.eval().to(device), text, cfg, device

    @classmethod
    def load(cls, folder: str | Path, device: str = "auto") -> "Pipeline":
        """Load a pipeline folder (vae/, dit/, pipeline.yaml)."""
        folder = Path(folder)
        if not (folder / "pipeline.yaml").exists():
            raise ValueError(f"{folder}: not a tenku pipeline folder (expected pipeline.yaml, vae/, dit/)")
        cfg = load_config(PipelineConfig, folder / "pipeline.yaml")
        dev = pick_device(device)
        return cls(VAE.load(folder / "vae"), load_dit(folder / "dit"), load_text_encoder(cfg.text_encoder, cfg.max_text_tokens), cfg, dev)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.vae.save(folder / "vae")
        save_dit(folder / "dit", self.dit)
        save_config(self.cfg, folder / "pipeline.yaml")

    # ---- what sizes the model can make ------------------------------------------------

    @property
    def size_multiple(self) -> int:
        """Width and height must be multiples of this (VAE downsampling x DiT patch)."""
        return self.vae.cfg.space_down * max(self.dit.cfg.patch[1], self.dit.cfg.patch[2])

    @property
    def frame_step(self) -> int:
        return self.vae.cfg.time_down * self.dit.cfg.patch[0]

    def fit_size(self, width: int, height: int) -> tuple[int, int]:
        """The nearest size the model can make (multiples of ``size_multiple``, at least one)."""
        m = self.size_multiple
        return max(m, round(width / m) * m), max(m, round(height / m) * m)

    def fit_frames(self, frames: int) -> int:
        """The nearest frame count of the form 1 + frame_step * k."""
        s = self.frame_step
        return 1 + max(0, round((frames - 1) / s)) * s

    # ---- sampling ------------------------------------------------------------------------

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        states, mask = self.text.encode(prompts)
        return states.to(self.device), mask.to(self.device)

    def _velocity(self, x: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self.dit(x, sigma, ctx, mask).float()

    @torch.no_grad()
    def sample_latents(self, prompt: str, seed: int, shape: tuple[int, int, int, int], steps: int | None = None,
                       guidance: float | None = None, cond: torch.Tensor | None = None,
                       cond_mask: torch.Tensor | None = None, x_start: torch.Tensor | None = None,
                       start_sigma: float = 1.0, callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Sample a normalised latent (1, C, T', H', W') for ``prompt``; ``cond``/``cond_mask``
        fix clean frames, ``x_start``/``start_sigma`` start from a noised latent (SDEdit)."""
        steps = steps or self.cfg.steps
        guidance = self.cfg.guidance if guidance is None else guidance
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn((1, *shape), generator=g).to(self.device)
        tokens = math.prod(shape[1:]) // math.prod(self.dit.cfg.patch)
        shift = resolution_shift(tokens, self.cfg.base_tokens, 1.0, 16 * self.cfg.base_tokens, self.cfg.max_shift)
        sigmas = sampling_sigmas(steps, shift, start_sigma)
        model = GuidedModel(self._velocity, self.encode_text([prompt]), self.encode_text([""]), guidance)
        dev = lambda t: None if t is None else t.to(self.device)  # noqa: E731
        return euler_sample(model, noise, sigmas, dev(cond), dev(cond_mask), self.cfg.cond_sigma, dev(x_start), callback)

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """Normalised latent (1, C, T', H', W') -> uint8 frames (T, H, W, 3)."""
        return to_uint8(self.vae.decode(latent.float().cpu()).clamp(-1, 1)[0])

    def generate(self, prompt: str, seed: int = 0, size: tuple[int, int] | None = None, frames: int | None = None,
                 fps: float | None = None, steps: int | None = None, guidance: float | None = None,
                 callback: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Text-to-video: uint8 frames (T, H, W, 3). ``size`` is (width, height); sizes and
        frame counts the model cannot make are a ValueError naming the nearest allowed ones."""
        w, h = size or self.cfg.size
        n = frames or self.cfg.frames
        if (w, h) != self.fit_size(w, h):
            fw, fh = self.fit_size(w, h)
            raise ValueError(f"size {w}x{h} is not a multiple of {self.size_multiple}; nearest: {fw}x{fh}")
        if n != self.fit_frames(n):
            raise ValueError(f"{n} frames: the model makes 1 + {self.frame_step}k frames; nearest: {self.fit_frames(n)}")
        shape = self.vae.latent_shape(n, h, w)
        z = self.sample_latents(prompt, seed, shape, steps, guidance, callback=callback)
        return self.decode(z)

    def describe(self) -> dict[str, Any]:
        """What went into a run, for sidecar files."""
        return {"dit": vars(self.dit.cfg) | {}, "vae": {"latent_channels": self.vae.cfg.latent_channels,
                "time_down": self.vae.cfg.time_down, "space_down": self.vae.cfg.space_down},
                "text_encoder": self.cfg.text_encoder}
