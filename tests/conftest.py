"""Shared tiny fixtures: a world dataset, a random tiny VAE, a tiny pipeline."""

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
