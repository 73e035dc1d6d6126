"""Losses and metrics for training the video autoencoder. Nothing here downloads weights:
the structural term is SSIM (and optionally an FFT-magnitude term), the adversarial
critic is a small patch discriminator trained from scratch.

All functions take videos ``(B, C, T, H, W)`` in [-1, 1] and work frame by frame."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class LossConfig:
    """Weights of each term. ``gan_weight`` 0 turns the discriminator off entirely."""

    l1: float = 1.0
    ssim: float = 0.5  # weight of (1 - SSIM)
    freq: float = 0.0  # L1 between FFT magnitudes, per frame: sharpens edges without a loss network
    kl: float = 1e-6  # small: the latent should be informative; the KL only keeps it tame and smooth
    motion: float = 0.0  # L1 over the pixels that change between frames (moving objects, ``motion_mask``)
    edge: float = 0.0  # L1 over the pixels at the target's edges (``edge_mask``): small shapes' points and corners
    gan_weight: float = 0.0
    gan_start: int = 20000  # generator sees the adversarial term from this step (after reconstruction is good)
    disc_channels: int = 32
    disc_lr: float = 2e-4


def _frames(x: Tensor) -> Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W)."""
    return x.transpose(1, 2).flatten(0, 1)


def _gauss(window: int, sigma: float, device: torch.device) -> Tensor:
    g = torch.exp(-((torch.arange(window, device=device) - (window - 1) / 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5, reduce: bool = True) -> Tensor:
    """Structural similarity of videos in [-1, 1] (Wang et al. 2004: Gaussian 11x11, sigma
    1.5, K1 0.01, K2 0.03, data range 2), per frame and channel, valid region only.
    Returns the mean, or per-video means ``(B,)`` with ``reduce=False``."""
    B = x.shape[0]
    a, b = _frames(x.float()), _frames(y.float())  # (N, C, H, W)
    c = a.shape[1]
    g = _gauss(window, sigma, a.device)
    kh, kw = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(t: Tensor) -> Tensor:  # separable Gaussian, no padding (valid region)
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    mx, my = blur(a), blur(b)
    sxx, syy, sxy = blur(a * a) - mx * mx, blur(b * b) - my * my, blur(a * b) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))  # (N, C, H', W')
    return s.mean() if reduce else s.reshape(B, -1).mean(1)


def psnr(x: Tensor, y: Tensor, reduce: bool = True) -> Tensor:
    """Peak signal-to-noise ratio in dB of videos in [-1, 1] (peak-to-peak 2), per video."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1).clamp_min(1e-12)  # (B,)
    p = 10 * torch.log10(4.0 / mse)
    return p.mean() if reduce else p


def freq_loss(x: Tensor, y: Tensor) -> Tensor:
    """L1 between per-frame 2D FFT magnitudes (orthonormal), a cheap sharpness term."""
    fx = torch.fft.rfft2(_frames(x.float()), norm="ortho").abs()
    fy = torch.fft.rfft2(_frames(y.float()), norm="ortho").abs()
    return (fx - fy).abs().mean()


MOTION_THRESHOLD = 0.1  # of the [-1, 1] range (5% of full scale): a pixel that changes more is moving


def motion_mask(x: Tensor, threshold: float = MOTION_THRESHOLD) -> Tensor:
    """Pixels of ``x`` (B, C, T, H, W) that differ from the previous frame by more than
    ``threshold`` in any channel, grown by one pixel: (B, 1, T, H, W) float in {0, 1}. A moving
    object marks where it is and where it was; frame 0 takes frame 1's mask. Without a second
    frame nothing moves (all zeros)."""
    B, _, T, H, W = x.shape
    if T < 2:
        return x.new_zeros(B, 1, T, H, W)
    d = (x[:, :, 1:] - x[:, :, :-1]).abs().amax(1, keepdim=True) > threshold  # (B, 1, T-1, H, W)
    d = torch.cat([d[:, :, :1], d], 2).float()
    return F.max_pool3d(d, (1, 3, 3), 1, (0, 1, 1))


EDGE_THRESHOLD = 0.2  # of the [-1, 1] range (10% of full scale): a step to a neighbour this large is an edge


def edge_mask(x: Tensor, threshold: float = EDGE_THRESHOLD) -> Tensor:
    """Pixels of ``x`` (B, C, T, H, W) that differ from their right or lower neighbour by more
    than ``threshold`` in any channel, grown by one pixel: (B, 1, T, H, W) float in {0, 1}.
    A small star is a few % of the pixels, its points a few % of those: a plain mean lets the
    decoder round them off."""
    d = x.new_zeros(x.shape[0], 1, *x.shape[2:], dtype=torch.bool)
    d[..., :, :-1] |= (x[..., :, 1:] - x[..., :, :-1]).abs().amax(1, keepdim=True) > threshold
    d[..., :-1, :] |= (x[..., 1:, :] - x[..., :-1, :]).abs().amax(1, keepdim=True) > threshold
    return F.max_pool3d(d.float(), (1, 3, 3), 1, (0, 1, 1))


def _masked_l1(x: Tensor, recon: Tensor, m: Tensor) -> Tensor:
    return ((recon - x).abs() * m).sum() / (m.sum() * x.shape[1]).clamp_min(1.0)


def kl_loss(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, var) || N(0, 1)), summed over latent channels, averaged over positions."""
    return 0.5 * (mean.float().pow(2) + logvar.float().exp() - 1.0 - logvar.float()).sum(1).mean()


def reconstruction_loss(x: Tensor, recon: Tensor, mean: Tensor, logvar: Tensor, cfg: LossConfig) -> tuple[Tensor, dict[str, float]]:
    """The autoencoder's loss without the adversarial term; returns (loss, logged values)."""
    recon = recon.float()
    l1 = (recon - x).abs().mean()
    loss = cfg.l1 * l1
    logs = {"l1": l1.item()}
    if cfg.ssim:
        s = ssim(recon, x)
        loss = loss + cfg.ssim * (1 - s)
        logs["ssim"] = s.item()
    if cfg.freq:
        f = freq_loss(recon, x)
        loss = loss + cfg.freq * f
        logs["freq"] = f.item()
    if cfg.motion:
        # small moving objects are a few % of the pixels and everything a viewer (and the
        # benchmark) looks at; a plain mean lets them blur and lose their shape
        mo = _masked_l1(x, recon, motion_mask(x))
        loss = loss + cfg.motion * mo
        logs["motion"] = mo.item()
    if cfg.edge:
        e = _masked_l1(x, recon, edge_mask(x))
        loss = loss + cfg.edge * e
        logs["edge"] = e.item()
    kl = kl_loss(mean, logvar)
    loss = loss + cfg.kl * kl
    logs["kl"] = kl.item()
    return loss, logs


class PatchDiscriminator(nn.Module):
    """A per-frame PatchGAN (pix2pix style, 70x70 receptive field) with spectral norm instead
    of batch norm, so it is stable at the small batches a CPU affords. Input (B, C, T, H, W),
    output one logit per patch per frame."""

    def __init__(self, in_channels: int = 3, channels: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, c, 4, 2, 1), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(4 * c, 4 * c, 4, 1, 1)), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * c, 1, 4, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_frames(x))  # (B*T, 1, h, w)


def d_hinge_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge loss for the discriminator."""
    return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()


def g_hinge_loss(fake_logits: Tensor) -> Tensor:
    """Hinge loss for the generator (the decoder)."""
    return -fake_logits.float().mean()
