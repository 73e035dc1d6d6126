"""Tiny models and a tiny world dataset (built with the world sampler and renderer, so the
tests do not depend on the captioned dataset writer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tenku.io import write_video
from tenku.vae import VAE, vae_config


def make_world_folder(root: Path, count: int = 4, size: int = 64, frames: int = 9, seed: int = 0) -> Path:
    """DIR/metadata.jsonl + DIR/videos/*.mp4, the tenku dataset format (captions left empty)."""
    from tenku.world.render import render_scene
    from tenku.world.sample import sample_scene

    (root / "videos").mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(count):
        spec = sample_scene(np.random.default_rng([seed, i]))
        video, _ = render_scene(spec, size, size, 8.0, frames)
        write_video(root / "videos" / f"{i:06d}.mp4", video, 8.0)
        recs.append({"id": f"{i:06d}", "file": f"videos/{i:06d}.mp4", "width": size, "height": size, "fps": 8.0, "frames": frames, "caption": ""})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_world_folder(tmp_path_factory.mktemp("world"))


def random_vae(seed: int = 0, **overrides: object) -> VAE:
    """A tiny VAE whose zero-initialised convs are perturbed, so every path carries signal."""
    torch.manual_seed(seed)
    model = VAE(vae_config("tiny", **overrides)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model
