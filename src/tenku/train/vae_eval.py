"""What the autoencoder's trainer measures and shows besides the loss: held-out PSNR/SSIM (and
``out/best``, the folder to publish), the latent statistics that normalise the latents, and
input | reconstruction samples. Rank 0 alone runs these."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tenku.io import from_uint8, save_contact_sheet, to_uint8, write_video
from tenku.train.checkpoint import commit_folder, write_json
from tenku.train.loop import RunLog
from tenku.vae.losses import motion_mask, psnr, ssim
from tenku.vae.model import VAE
from tenku.weights import save_vae

if TYPE_CHECKING:
    from tenku.train.vae import TrainVAEConfig


@torch.no_grad()
def measure_latent_stats(model: VAE, clips: list[torch.Tensor]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the raw posterior means over ``clips`` (each (1, 3, T, H, W))."""
    zs = [model.posterior(c)[0].transpose(0, 1).flatten(1) for c in clips]  # (C, N) each
    z = torch.cat(zs, 1).double()
    return z.mean(1).tolist(), z.std(1).clamp_min(1e-6).tolist()


@torch.no_grad()
def evaluate(model: VAE, clips: list[torch.Tensor]) -> dict[str, float]:
    """Mean per-video PSNR (dB) and SSIM of fp32 reconstructions, quantised to uint8 as written,
    and ``psnr_moving``: PSNR over the pixels of all videos that move (``motion_mask``), where
    small objects are, and where a whole-frame mean hides their errors."""
    p, s, se, n = [], [], 0.0, 0.0
    for x in clips:
        r = from_uint8(to_uint8(model.decode(model.encode(x))))[None]
        x8 = from_uint8(to_uint8(x))[None]
        p.append(psnr(r, x8).item())
        s.append(ssim(r, x8).item())
        m = motion_mask(x8)
        se += float(((r - x8) ** 2 * m).sum())
        n += float(m.sum()) * x8.shape[1]
    out = {"psnr": float(np.mean(p)), "ssim": float(np.mean(s))}
    if n:
        out["psnr_moving"] = float(10 * np.log10(4.0 / max(se / n, 1e-12)))
    return out


@torch.no_grad()
def write_samples(model: VAE, clips: list[torch.Tensor], out: Path, fps: float = 8.0) -> None:
    """input | reconstruction side by side: an mp4 of the first clip(s) and a PNG of 8 frames each."""
    rows = []
    for x in clips:
        both = torch.cat([x, model.decode(model.encode(x)).clamp(-1, 1)], dim=-1)  # (1, 3, T, H, 2W)
        rows.append(to_uint8(both))
    t, h, w = min(len(r) for r in rows), max(r.shape[1] for r in rows), max(r.shape[2] for r in rows)
    rows = [np.pad(r[:t], ((0, 0), (0, h - r.shape[1]), (0, w - r.shape[2]), (0, 0))) for r in rows]  # mixed sizes: crop, pad
    write_video(out.with_suffix(".mp4"), np.concatenate(rows, axis=1), fps)  # clips stacked vertically
    picks = [r[np.linspace(0, len(r) - 1, 8).round().astype(int)] for r in rows]
    save_contact_sheet(out.with_suffix(".png"), np.concatenate(picks), cols=4)




def evaluate_and_keep_best(cfg: TrainVAEConfig, model: VAE, val: list[torch.Tensor], stat_clips: list[torch.Tensor], step: int,
                           best: float, log: RunLog, bar: Any, last: dict[str, float]) -> float:
    """Held-out metrics into the log and ``last``; ``out/best`` (the folder to publish) when
    ``cfg.best_on`` beats ``best``. Returns the best value so far."""
    out = Path(cfg.out)
    metrics = evaluate(model, val)
    last.update({f"val_{k}": v for k, v in metrics.items()})
    log.write({"step": step, **{f"val_{k}": round(v, 4) for k, v in metrics.items()}})
    moving = f", moving pixels {metrics['psnr_moving']:.2f} dB" if "psnr_moving" in metrics else ""
    bar.write(f"step {step}: held-out PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f}{moving}")
    if metrics.get(cfg.best_on, -math.inf) > best:
        best = metrics[cfg.best_on]
        if not cfg.freeze_encoder:
            model.set_latent_stats(*measure_latent_stats(model, stat_clips))
        save_vae(model, out / "best.tmp")
        write_json(out / "best.tmp" / "metrics.json", {"step": step, **metrics})
        commit_folder(out / "best.tmp", out / "best")
    return best
