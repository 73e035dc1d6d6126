"""The diffusion transformer: patches, rotary codes, packing, init, save/load."""

import pytest
import torch

from tenku.dit.model import DIT_SIZES, build_dit, load_dit, save_dit
from tenku.dit.patches import patchify, unpatchify
from tenku.dit.rope import apply_rope, grid_positions, rope_angles, rope_freqs


def randomised(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


@pytest.mark.parametrize("shape,patch", [((2, 3, 5, 6, 10), (1, 2, 2)), ((1, 4, 4, 6, 2), (2, 2, 1)), ((1, 1, 3, 3, 9), (1, 3, 3))])
def test_patchify_round_trip_odd_shapes(shape, patch):
    x = torch.randn(shape)
    tok = patchify(x, patch)
    grid = (shape[2] // patch[0], shape[3] // patch[1], shape[4] // patch[2])
    assert tok.shape == (shape[0], grid[0] * grid[1] * grid[2], patch[0] * patch[1] * patch[2] * shape[1])
    assert torch.equal(unpatchify(tok, grid, patch, shape[1]), x)


def test_conv_embedding_uses_the_patchify_token_order():
    m = build_dit("tiny", in_channels=3, text_dim=8)
    x = torch.randn(1, 3, 2, 4, 6)
    tok, grid = m._embed(x)
    w = m.patch_embed.weight.permute(0, 2, 3, 4, 1).reshape(m.cfg.dim, -1)  # (D, pt ph pw c)
    torch.testing.assert_close(tok, patchify(x, m.cfg.patch) @ w.T + m.patch_embed.bias, atol=1e-5, rtol=1e-5)


def test_rope_is_relative():
    hd, n = 24, 7
    q, k = torch.randn(1, 1, n, hd), torch.randn(1, 1, n, hd)
    pos = torch.rand(n, 3) * 10
    scores = []
    for shift in (torch.zeros(3), torch.tensor([3.0, -5.0, 11.0])):
        freqs = rope_freqs(rope_angles(pos + shift, hd))
        scores.append(apply_rope(q, freqs) @ apply_rope(k, freqs).transpose(-1, -2))
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)
    assert grid_positions(2, 3, 4).shape == (24, 3)


def test_rope_rotates_each_pair():
    hd, n = 12, 5
    x = torch.randn(2, 3, n, hd).bfloat16()
    ang = rope_angles(torch.rand(n, 3) * 10, hd)
    a, b = x.float()[..., 0::2], x.float()[..., 1::2]  # pairs (x[2i], x[2i+1])
    want = torch.stack([a * ang.cos() - b * ang.sin(), a * ang.sin() + b * ang.cos()], -1).flatten(-2)
    got = apply_rope(x, rope_freqs(ang))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_mixed_shape_batch_equals_each_sample_alone():
    m = randomised(build_dit("tiny", in_channels=4, text_dim=8))
    xs = [torch.randn(4, 3, 4, 6), torch.randn(4, 1, 6, 4), torch.randn(4, 2, 2, 2)]
    sig = [torch.rand(3), torch.rand(1), torch.tensor([0.0, 0.7])]
    ctx = [torch.randn(5, 8), torch.randn(3, 8), torch.randn(9, 8)]
    with torch.no_grad():
        packed = m.forward_packed(xs, sig, ctx)
        for x, s, c, p in zip(xs, sig, ctx, packed):
            alone = m(x[None], s[None], c[None])[0]
            assert alone.abs().mean() > 0.01
            torch.testing.assert_close(p, alone, atol=1e-5, rtol=1e-4)


def test_padding_mask_hides_padded_text_tokens():
    m = randomised(build_dit("tiny", in_channels=4, text_dim=8))
    x, s, c = torch.randn(1, 4, 2, 4, 4), torch.rand(1, 2), torch.randn(1, 3, 8)
    padded = torch.cat([c, torch.randn(1, 4, 8)], 1)
    mask = torch.tensor([[True] * 3 + [False] * 4])
    with torch.no_grad():
        torch.testing.assert_close(m(x, s, c), m(x, s, padded, mask), atol=1e-5, rtol=1e-4)


def test_sigma_is_per_frame():
    m = randomised(build_dit("tiny", in_channels=4, text_dim=8))
    x, c = torch.randn(1, 4, 3, 4, 4), torch.randn(1, 3, 8)
    with torch.no_grad():
        a = m(x, torch.tensor([[0.0, 0.5, 0.5]]), c)
        b = m(x, torch.tensor([[0.9, 0.5, 0.5]]), c)
    assert not torch.allclose(a, b)


def test_fresh_model_outputs_zeros():
    m = build_dit("tiny", in_channels=4, text_dim=8)
    out = m(torch.randn(2, 4, 3, 4, 6), torch.rand(2, 3), torch.randn(2, 5, 8))
    assert out.shape == (2, 4, 3, 4, 6) and torch.count_nonzero(out) == 0


def test_bad_latent_shape_is_a_clear_error():
    m = build_dit("tiny", in_channels=4, text_dim=8)
    with pytest.raises(ValueError, match="multiples"):
        m(torch.randn(1, 4, 3, 5, 6), torch.rand(1, 3), torch.randn(1, 5, 8))


def test_save_load_exact_and_refuses_foreign_folders(tmp_path):
    m = randomised(build_dit("tiny", in_channels=4, text_dim=8))
    save_dit(tmp_path / "m", m)
    m2 = load_dit(tmp_path / "m")
    assert m2.cfg == m.cfg
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.safetensors").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a tenku model folder"):
        load_dit(tmp_path / "junk")


def test_grad_checkpointing_gives_the_same_gradients():
    """Activation checkpointing (parallel.activation_checkpoint, applied from outside the model)."""
    import copy

    from tenku.train.distributed import Dist, ParallelConfig, parallelize

    torch.manual_seed(0)
    m = randomised(build_dit("tiny", in_channels=4, text_dim=8)).train()
    x, s, c = torch.randn(1, 4, 2, 4, 4), torch.rand(1, 2), torch.randn(1, 3, 8)
    grads = []
    for ckpt in (False, True):
        net = parallelize(copy.deepcopy(m), ParallelConfig(activation_checkpoint=ckpt), Dist())
        net(x, s, c).square().mean().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_size_registry_and_bf16_autocast():
    assert set(DIT_SIZES) >= {"tiny", "S", "B", "L", "XL"}
    n = sum(p.numel() for p in build_dit("S").parameters())
    assert 10e6 <= n <= 40e6
    m = randomised(build_dit("tiny", in_channels=4, text_dim=8))
    x, s, c = torch.randn(1, 4, 2, 4, 4), torch.rand(1, 2), torch.randn(1, 3, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        lo = m(x, s, c)
    with torch.no_grad():
        hi = m(x, s, c)
    assert lo.dtype == torch.float32
    assert (lo - hi).abs().max() < 0.05 * hi.abs().max()


def test_rope_angles_stay_on_the_positions_device():
    # a GPU run builds the positions on the GPU: nothing of the rotation may be left on the CPU
    ang = rope_angles(grid_positions(2, 3, 4).to("meta"), 12)
    assert ang.device.type == "meta" and ang.shape == (24, 6)
