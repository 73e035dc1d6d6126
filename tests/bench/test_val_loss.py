"""bench/val_loss.py: the held-out velocity error it reports per noise level."""

import json
from types import SimpleNamespace

import pytest
import torch

from tenku.dit.model import DiT, DiTConfig


class _Set(SimpleNamespace):
    """What losses() reads of a LatentSet: three clips of one shape, captions of 3, 7 and 5 tokens."""

    def __len__(self):
        return len(self.latents)


def _data(lengths=(3, 7, 5)):
    g = torch.Generator().manual_seed(1)
    return _Set(buckets={(4, 2, 4, 4): list(range(len(lengths)))},
                latents=[torch.randn(4, 2, 4, 4, generator=g) for _ in lengths],
                captions=[(torch.randn(k, 8, generator=g), torch.randn(2, 8, generator=g)) for k in lengths])


def test_a_model_that_predicts_zero_scores_the_mean_squared_velocity(bench_module):
    mod = bench_module("val_loss")
    d = _data()

    class Zero(torch.nn.Module):
        def forward(self, x, sigma, ctx, mask):
            return torch.zeros_like(x)

    masks = [torch.zeros(2, 4, 4, dtype=torch.bool) for _ in range(3)]
    for m in masks:
        m[1, 2:, :2] = True  # four cells of the second latent frame
    got, objects = mod.losses(Zero(), d, [0.2, 0.8], masks=masks, seed=5)
    # v = noise - x0 whatever sigma is; clip i's noise comes from seed + i
    v = [torch.randn(x.shape, generator=torch.Generator().manual_seed(5 + i)) - x for i, x in enumerate(d.latents)]
    want = sum(float(x.pow(2).mean()) for x in v) / 3
    want_obj = sum(float(x[:, 1, 2:, :2].pow(2).mean()) for x in v) / 3
    assert abs(got[0] - want) < 1e-5 and abs(got[1] - want) < 1e-5
    assert abs(objects[0] - want_obj) < 1e-5 and abs(objects[1] - want_obj) < 1e-5


def test_figures_do_not_depend_on_the_batch_or_caption_padding(bench_module):
    mod = bench_module("val_loss")
    d = _data()
    torch.manual_seed(0)
    dit = DiT(DiTConfig(in_channels=4, dim=32, depth=1, heads=2, text_dim=8, freq_dim=32)).eval()
    with torch.no_grad():  # a fresh DiT's zero-initialised output layer would predict 0 whatever its inputs
        for p in dit.parameters():
            p.normal_(0, 0.2)
    (one, none), (three, _) = mod.losses(dit, d, [0.3, 0.9], batch=1), mod.losses(dit, d, [0.3, 0.9], batch=3)
    assert none is None  # no masks, no object-region figures
    assert one[0] != one[1]  # the inputs reach the output
    assert all(abs(a - b) < 2e-3 * a for a, b in zip(one, three)), (one, three)
    empty, _ = mod.losses(dit, d, [0.3, 0.9], empty=torch.zeros(2, 8))
    assert empty != one  # the empty prompt's states replace every caption


def test_object_masks_cover_the_boxes_of_the_frames_each_latent_frame_encodes(bench_module, tmp_path):
    mod = bench_module("val_loss")
    frames = 9  # latent frames: 0 <- frame 0, 1 <- frames 1-4, 2 <- frames 5-8
    boxes = [[None] * frames, [None] * frames]
    seen = [[False] * frames, [False] * frames]
    boxes[0][0], seen[0][0] = [0, 0, 5, 5], True  # object 0 in frame 0, top left
    boxes[1][6], seen[1][6] = [17, 9, 20, 12], True  # object 1 in frame 6, pixels x 17-20, y 9-12
    boxes[1][7] = [40, 40, 47, 47]  # in a frame where it is not visible: ignored
    gt = {"ground_truth": {"frames": frames, "bbox": boxes, "visible": seen}}
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "000000.json").write_text(json.dumps(gt))
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file": "videos/000000.mp4", "caption": "x", "ground_truth": "gt/000000.json"}) + "\n")
    m = mod.object_masks(tmp_path, ["0"], [(16, 3, 6, 6)], 4, 8)[0]
    assert m.shape == (3, 6, 6)
    assert m[0].nonzero().tolist() == [[0, 0]]
    assert not m[1].any()
    assert m[2].nonzero().tolist() == [[1, 2]]  # y 9-12 -> row 1, x 17-20 -> column 2
    with pytest.raises(ValueError, match="not a whole video"):
        mod.object_masks(tmp_path, ["0-1"], [(16, 3, 6, 6)], 4, 8)


def test_swap_words_replaces_every_shape_or_colour_word_and_nothing_else(bench_module):
    swap = bench_module("val_loss").swap_words
    got = swap("A red ball and two blue boxes; the rings, a donut, dots, a wedge and a star start. Blocked orbit, tiled.")
    assert got == "A red square and two blue triangles; the stars, a star, squares, a ring and a circle start. Blocked orbit, tiled."
    from tenku.lang.vocab import SHAPE_WORDS

    for word, shape in SHAPE_WORDS.items():  # each shape goes to another, the same one for every synonym
        assert swap(word) != shape and swap(word) == swap(shape)
    assert swap("A crimson ball, two snow white tiles, a lime green star; a navy blue sky.", "colour") == \
        "A yellow ball, two blue tiles, a pink star; a navy green sky."  # red -> yellow, white -> blue, green -> pink
    from tenku.lang.vocab import COLOR_WORDS

    for word, colour in COLOR_WORDS.items():
        assert swap(word, "colour") != colour and swap(word, "colour") == swap(colour, "colour")


def test_states_replace_each_clips_caption(bench_module):
    mod = bench_module("val_loss")
    d = _data()
    torch.manual_seed(0)
    dit = DiT(DiTConfig(in_channels=4, dim=32, depth=1, heads=2, text_dim=8, freq_dim=32)).eval()
    with torch.no_grad():
        for p in dit.parameters():
            p.normal_(0, 0.2)
    masks = [torch.ones(2, 4, 4, dtype=torch.bool) for _ in range(3)]
    own = mod.losses(dit, d, [0.5], masks=masks)
    same = mod.losses(dit, d, [0.5], masks=masks, states=[c[0] for c in d.captions])
    other = mod.losses(dit, d, [0.5], masks=masks, states=[-c[0] for c in d.captions])  # (a permutation would not do: attention ignores key order)
    assert own == same and other[1] != own[1]


def test_per_clip_errors_pair_two_captions_with_a_standard_error(bench_module, capsys):
    mod = bench_module("val_loss")
    d = _data()

    class Zero(torch.nn.Module):
        def forward(self, x, sigma, ctx, mask):
            return torch.zeros_like(x) + ctx.mean()  # the caption moves every prediction

    per, _ = mod.clip_losses(Zero(), d, [0.5], seed=5)
    assert per.shape == (1, 3) and mod.losses(Zero(), d, [0.5], seed=5)[0] == pytest.approx(per.mean(1).tolist())
    other, _ = mod.clip_losses(Zero(), d, [0.5], seed=5, states=[torch.full((2, 8), 3.0)] * 3)
    mean, se = mod.mean_se(other - per)
    gaps = (other - per)[0]
    assert mean[0] == pytest.approx(float(gaps.mean())) and se[0] == pytest.approx(float(gaps.std() / 3**0.5))
    mod._table("t", [0.5], [("m", mean, se)])
    assert f"{mean[0]:.4f} ± {se[0]:.4f}" in capsys.readouterr().out
