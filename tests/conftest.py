"""Shared tiny fixtures: a world dataset, a random tiny VAE, a tiny pipeline, a synthetic clip."""

import numpy as np
import pytest
import torch

from tenku.world.dataset import render_dataset


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """8 captioned world videos, 64x64, 9 frames."""
    out = tmp_path_factory.mktemp("world") / "data"
    render_dataset(out, 8, [(64, 64)], 9, 8.0, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_vae(tmp_path_factory):
    from tenku.vae.model import VAE, vae_config

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vae") / "vae"
    VAE(vae_config("tiny")).save(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, tiny_vae):
    """A pipeline folder with a random (non-zero) tiny DiT, the tiny VAE and MiniLM."""
    from tenku.dit.model import build_dit
    from tenku.pipeline import Pipeline, PipelineConfig
    from tenku.text import load_text_encoder
    from tenku.vae.model import VAE

    vae = VAE.load(tiny_vae)
    dit = build_dit("tiny", in_channels=vae.cfg.latent_channels, text_dim=384)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in dit.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    cfg = PipelineConfig(size=(64, 64), frames=9, steps=3, guidance=3.0)
    folder = tmp_path_factory.mktemp("pipe") / "pipeline"
    Pipeline(vae, dit, load_text_encoder(), cfg, torch.device("cpu")).save(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_grounded_pipeline(tmp_path_factory, tiny_vae):
    """The tiny pipeline's kind with a transformer that follows layouts (``grounding: cross``,
    gates open, so a layout changes the video)."""
    from tenku.dit.model import build_dit
    from tenku.pipeline import Pipeline, PipelineConfig
    from tenku.text import load_text_encoder
    from tenku.vae.model import VAE

    vae = VAE.load(tiny_vae)
    dit = build_dit("tiny", in_channels=vae.cfg.latent_channels, text_dim=384, grounding="cross", grounding_dim=32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in dit.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for b in dit.grounding.blocks:
            b.gate.fill_(0.5)
    cfg = PipelineConfig(size=(64, 64), frames=9, steps=2, guidance=3.0)
    folder = tmp_path_factory.mktemp("gpipe") / "pipeline"
    Pipeline(vae, dit, load_text_encoder(), cfg, torch.device("cpu")).save(folder)
    return folder


def _clip(n, seed=0, w=64, h=64):
    """A smooth synthetic clip (a moving bright square), not noise, so round trips mean something."""
    y, x = np.mgrid[0:h, 0:w]
    frames = []
    for t in range(n):
        cx, cy = 10 + 2 * t + seed, h / 2
        f = np.full((h, w, 3), 40, np.uint8)
        f[(np.abs(x - cx) < 8) & (np.abs(y - cy) < 8)] = (220, 60, 60)
        frames.append(f)
    return np.stack(frames)


@pytest.fixture(scope="session")
def clip():
    """``clip(n, seed=0, w=64, h=64)``: uint8 frames of a red square moving right."""
    return _clip
