"""bench/latent_jitter.py: the two numbers it reports for a latent."""

import torch


def test_stats_are_the_spread_and_the_mean_jump_between_latent_frames(bench_module):
    mod = bench_module("latent_jitter")
    z = torch.zeros(1, 2, 3, 4, 4)
    z[:, :, 1] = 1.0  # frames 0, 1, 2 = 0, 1, 0: every adjacent pair differs by 1 everywhere
    sd, jump = mod.stats(z)
    assert jump == 1.0
    assert abs(sd - z.std().item()) < 1e-7
    still = torch.ones(1, 2, 3, 4, 4) * 0.5  # a latent that never changes does not jump
    assert mod.stats(still) == (0.0, 0.0)
