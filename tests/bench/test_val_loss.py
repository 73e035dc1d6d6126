"""bench/val_loss.py: the held-out velocity error it reports per noise level."""

from types import SimpleNamespace

import torch

from tenku.dit.model import DiT, DiTConfig


def _data(lengths=(3, 7, 5)):
    g = torch.Generator().manual_seed(1)
    n = len(lengths)
    return SimpleNamespace(
        buckets={(4, 2, 4, 4): list(range(n))},
        latents=[torch.randn(4, 2, 4, 4, generator=g) for _ in range(n)],
        captions=[(torch.randn(k, 8, generator=g), torch.randn(2, 8, generator=g)) for k in lengths],
    )


class _Set(SimpleNamespace):
    def __len__(self):
        return len(self.latents)


def test_a_model_that_predicts_zero_scores_the_mean_squared_velocity(bench_module):
    mod = bench_module("val_loss")
    d = _Set(**vars(_data()))

    class Zero(torch.nn.Module):
        def forward(self, x, sigma, ctx, mask):
            return torch.zeros_like(x)

    got = mod.losses(Zero(), d, [0.2, 0.8], seed=5)
    # v = noise - x0 whatever sigma is; clip i's noise comes from seed + i
    want = sum(float((torch.randn(x.shape, generator=torch.Generator().manual_seed(5 + i)) - x).pow(2).mean())
               for i, x in enumerate(d.latents)) / 3
    assert abs(got[0] - want) < 1e-5 and abs(got[1] - want) < 1e-5


def test_figures_do_not_depend_on_the_batch_or_caption_padding(bench_module):
    mod = bench_module("val_loss")
    d = _Set(**vars(_data()))
    torch.manual_seed(0)
    dit = DiT(DiTConfig(in_channels=4, dim=32, depth=1, heads=2, text_dim=8, freq_dim=32)).eval()
    with torch.no_grad():  # a fresh DiT's zero-initialised output layer would predict 0 whatever its inputs
        for p in dit.parameters():
            p.normal_(0, 0.2)
    one, three = mod.losses(dit, d, [0.3, 0.9], batch=1), mod.losses(dit, d, [0.3, 0.9], batch=3)
    assert one[0] != one[1]  # the inputs reach the output
    assert all(abs(a - b) < 2e-3 * a for a, b in zip(one, three)), (one, three)
    empty = mod.losses(dit, d, [0.3, 0.9], empty=torch.zeros(2, 8))
    assert empty != one  # the empty prompt's states replace every caption
