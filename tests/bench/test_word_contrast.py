"""bench/word_contrast.py: the latent difference a shape or colour word can decide, blurred."""

from types import SimpleNamespace

import numpy as np
import torch


def test_blur_keeps_a_constant_and_smooths_an_edge(bench_module):
    blur = bench_module("word_contrast").blur
    flat = torch.full((3, 8, 8), 2.0)
    assert torch.allclose(blur(flat, 1.0), flat) and blur(flat, 0.0) is flat
    edge = torch.zeros(1, 8, 8)
    edge[:, :, 4:] = 1.0
    soft = blur(edge, 1.0)
    assert soft.shape == edge.shape and 0 < soft[0, 0, 3] < 0.5 < soft[0, 0, 4] < 1


class PoolVAE:
    """An 'autoencoder' whose latent is the frame average-pooled 8x: enough to compare renders."""

    cfg = SimpleNamespace(space_down=8, time_down=4)

    def encode(self, x):  # (1, 3, T, H, W) in [-1, 1] -> (1, 3, T, H/8, W/8)
        return torch.nn.functional.avg_pool3d(x, (1, 8, 8))


def test_changed_scenes_differ_and_blur_shrinks_the_difference(bench_module):
    mod = bench_module("word_contrast")
    from tenku.world.sample import sample_scene

    specs = [sample_scene(np.random.default_rng(s), width=1.0) for s in range(3)]
    for spec in specs:
        for kind, field in (("shape", "shape"), ("colour", "color")):
            assert all(getattr(a, field) != getattr(b, field) for a, b in zip(spec.objects, mod.changed(spec, kind).objects))
    records = [{"spec": s.to_dict(), "width": 64, "height": 64, "fps": 8.0} for s in specs]
    out = mod.contrast(PoolVAE(), records)
    for kind in ("shape", "colour"):
        means = [np.mean(out[(kind, b)]) for b in mod.BLURS]
        assert means[0] > 0 and all(a >= b for a, b in zip(means, means[1:])), (kind, means)
