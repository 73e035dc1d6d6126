from __future__ import annotations

import math

import torch

from tenku.vae.losses import (
    LossConfig,
    PatchDiscriminator,
    d_hinge_loss,
    edge_mask,
    freq_loss,
    g_hinge_loss,
    kl_loss,
    motion_mask,
    psnr,
    reconstruction_loss,
    ssim,
)


def test_metrics_known_values() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.tensor(1.0), atol=1e-5)
    assert ssim(x, torch.rand_like(x) * 2 - 1) < 0.1  # unrelated noise
    assert math.isclose(psnr(x, x + 0.1).item(), 10 * math.log10(4 / 0.01), rel_tol=1e-4)
    assert psnr(x, x + 0.1, reduce=False).shape == (2,)
    assert freq_loss(x, x).item() == 0.0 and freq_loss(x, x.flip(-1) * 0.5) > 0
    assert kl_loss(torch.zeros(1, 4, 2, 3, 3), torch.zeros(1, 4, 2, 3, 3)).item() == 0.0
    # KL of N(1, 1) against N(0, 1) is 1/2 per channel, summed over 4 channels
    assert math.isclose(kl_loss(torch.ones(1, 4, 2, 3, 3), torch.zeros(1, 4, 2, 3, 3)).item(), 2.0, rel_tol=1e-6)


def test_reconstruction_loss_terms() -> None:
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    z = torch.zeros(1, 4, 2, 2, 2)
    loss, logs = reconstruction_loss(x, x.clone(), z, z, LossConfig(freq=0.1))
    assert loss.item() < 1e-5 and set(logs) == {"l1", "ssim", "freq", "kl"}
    loss2, _ = reconstruction_loss(x, x + 0.2, z, z, LossConfig())
    assert loss2 > loss


def test_motion_mask_marks_where_a_moving_square_is_and_was() -> None:
    x = -torch.ones(1, 3, 3, 16, 16)
    for t, x0 in enumerate((2, 6, 10)):  # a 3x3 white square moving right by 4 px a frame
        x[0, :, t, 5:8, x0 : x0 + 3] = 1.0
    m = motion_mask(x)
    assert m.shape == (1, 1, 3, 16, 16)
    assert m[0, 0, 1, 6, 3] == 1 and m[0, 0, 1, 6, 7] == 1  # where it was and where it is, frame 1
    assert m[0, 0, 1, 4, 5] == 1 and m[0, 0, 1, 0, 0] == 0  # grown by one pixel; the still background is not
    assert torch.equal(m[:, :, 0], m[:, :, 1])  # frame 0 takes frame 1's mask
    assert not motion_mask(x[:, :, :1]).any()  # an image: nothing moves
    assert not motion_mask(x + 0.05 * (torch.arange(3).view(1, 1, 3, 1, 1))).ne(m).any()  # slow fades stay below the threshold


def test_motion_term_weighs_errors_on_moving_pixels_only() -> None:
    x = -torch.ones(1, 3, 5, 16, 16)
    for t in range(5):
        x[0, :, t, 4:8, 2 * t : 2 * t + 4] = 1.0
    z = torch.zeros(1, 4, 2, 2, 2)
    m = motion_mask(x).bool().expand_as(x)
    on, off = x.clone(), x.clone()
    on[m] -= 0.5
    off[~m] += 0.5
    cfg = LossConfig(ssim=0.0, l1=0.0, kl=0.0, motion=1.0)
    assert math.isclose(reconstruction_loss(x, on, z, z, cfg)[1]["motion"], 0.5, rel_tol=1e-6)
    assert reconstruction_loss(x, off, z, z, cfg)[0].item() == 0.0


def test_discriminator_and_hinge() -> None:
    d = PatchDiscriminator(3, 8)
    logits = d(torch.zeros(2, 3, 3, 64, 64))
    assert logits.shape[:2] == (6, 1) and logits.shape[-1] == logits.shape[-2] == 6
    ones = torch.ones(4)
    assert d_hinge_loss(ones, -ones).item() == 0.0  # confident and right: no loss
    assert d_hinge_loss(-ones, ones).item() == 4.0
    assert g_hinge_loss(ones).item() == -1.0


def test_edge_term_weighs_errors_at_the_targets_edges_only() -> None:
    x = -torch.ones(1, 3, 2, 16, 16)
    x[0, :, :, 5:9, 5:9] = 1.0  # a still 4x4 white square: no motion, but four edges
    x[0, 0, :, :, 12:] += 0.1  # a faint step (0.1) stays below the threshold
    m = edge_mask(x)
    assert m.shape == (1, 1, 2, 16, 16)
    assert m[0, 0, 0, 5, 5] == 1 and m[0, 0, 0, 4, 6] == 1 and m[0, 0, 0, 8, 9] == 1  # the edges, grown a pixel
    assert m[0, 0, 0, 0, 0] == 0 and m[0, 0, 0, 6, 6] == 0 and not m[0, 0, 0, :, 11:].any()  # flat areas are not
    z = torch.zeros(1, 4, 1, 2, 2)
    corner, flat = x.clone(), x.clone()
    corner[0, :, :, 5, 5] = -1.0  # a corner rounded off
    flat[0, :, :, 0, 0] = 1.0  # the same error in the flat background
    _, lc = reconstruction_loss(x, corner, z, z, LossConfig(edge=1.0))
    _, lf = reconstruction_loss(x, flat, z, z, LossConfig(edge=1.0))
    assert lc["edge"] > 0 and lf["edge"] == 0.0 and math.isclose(lc["l1"], lf["l1"], rel_tol=1e-6)
