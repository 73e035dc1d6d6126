"""Train the causal video autoencoder: ``tenku train vae --config configs/vae-world.yaml [key=value ...]``.

Reads top to bottom: config, data, checkpoints, then ``train`` (the loop) and its steps;
the held-out evaluation and samples are ``tenku.train.vae_eval``, the pixel clips
``tenku.data.frames``. Runs on a CPU with bf16 autocast; no torchrun needed. It shares the
transformer trainer's skeleton: ``parallelize``, the checkpoint layout, the bad-step guard
and the run log. Everything lands in ``cfg.out``:

    config.yaml         the resolved run config
    log.jsonl           one line per logged step (loss terms, lr, throughput) and per eval; tb/ the same
    samples/            side-by-side (input | reconstruction) mp4 and PNG contact sheets
    checkpoints/step-N/ a checkpoint per save (``tenku.train.checkpoint``): a loadable VAE folder
                        (model.safetensors + config.yaml with latent statistics + tenku.json) plus
                        optim.safetensors, RNG states and state.json (and disc*.safetensors with the
                        GAN); the newest ``keep_checkpoints`` are kept
    ckpt                a link to the newest complete checkpoint; re-running resumes it (an older
                        tenku's ckpt/ folder too)
    best/               the VAE folder with the best held-out PSNR so far (+ metrics.json):
                        the one to publish

Every random draw is a function of (seed, step), so a resumed run continues as if it had
never stopped. Under torchrun (``python -m torch.distributed.run --nproc_per_node=N -m
tenku.train vae ...`` or ``tenku train vae --nproc N``) the autoencoder and discriminator
are DistributedDataParallel replicas: each rank draws its own batch from (seed, step, rank)
(rank 0 draws exactly what a single process draws), gradients are averaged, and rank 0
alone evaluates, writes samples, logs and writes the checkpoints' files.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from tenku.config import ConfigError, apply_overrides, from_dict, read_yaml, save_config, to_dict
from tenku.data.frames import Clips, Item, scan_folder, whole_clip
from tenku.train.checkpoint import load_optimizer, load_rng, read_state, resolve_resume, save_checkpoint, save_optimizer
from tenku.train.distributed import Dist, ParallelConfig, init_distributed, parallelize
from tenku.train.loop import BadSteps, RunLog
from tenku.train.vae_eval import evaluate_and_keep_best, measure_latent_stats, write_samples
from tenku.train.schedule import lr_at
from tenku.vae.losses import LossConfig, PatchDiscriminator, d_hinge_loss, g_hinge_loss, psnr, reconstruction_loss
from tenku.vae.model import VAE, VAE_CONFIGS, VAEConfig
from tenku.weights import save_vae

# ----------------------------------------------------------------------------- config


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=list)  # folders: tenku datasets (metadata.jsonl) or any folder of videos/images
    val: str = ""  # held-out folder for PSNR/SSIM; empty: no evaluation
    val_count: int = 16  # held-out videos evaluated (whole length, 1 + time_down*k frames)
    crop: int = 64  # square crop side (multiple of space_down); videos smaller than this are skipped
    max_frames: int = 9  # longest training clip; a step draws T = 1 + time_down*k, k in 1..(max_frames-1)/time_down
    image_prob: float = 0.1  # share of steps that train on single frames (images, and frames of videos)
    batch_frames: int = 36  # frames per batch: B = max(1, batch_frames // T)
    flip: bool = True  # random horizontal flips (never vertical: gravity points down)
    cache_gb: float = 4.0  # decoded videos kept in memory


@dataclass
class TrainVAEConfig:
    out: str = "runs/vae"
    preset: str = "small"  # VAE_CONFIGS entry the ``model`` section starts from
    model: VAEConfig = field(default_factory=VAEConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    steps: int = 30000
    lr: float = 1e-3  # no norm layers: 3e-3 diverges
    min_lr: float = 1e-4
    warmup: int = 200
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    bf16: bool = True  # autocast to bf16 on CPU (avx512_bf16 here): about 2.5x faster than fp32
    threads: int = 0  # torch threads; 0 keeps torch's default
    device: str = "auto"  # auto (a GPU if any), cpu, cuda; under torchrun each rank takes its own GPU
    seed: int = 0
    log_every: int = 10
    sample_every: int = 1000
    eval_every: int = 1000
    ckpt_every: int = 500
    stats_clips: int = 16  # training clips whose latents set the per-channel normalisation
    resume: str = "auto"  # auto (newest complete checkpoint in out/; true also), none (false also), or a checkpoint folder
    keep_checkpoints: int = 3  # complete checkpoint folders kept (never fewer than 2)
    max_bad_steps: int = 20  # stop after this many non-finite losses/gradients in a row
    init: str = ""  # a VAE folder to start from (weights and latent statistics); ignored when resuming
    freeze_encoder: bool = False  # train the decoder only: the latent space (and its statistics) stays as in ``init``,
    # so a diffusion model trained on those latents keeps working with the better decoder
    best_on: str = "psnr"  # held-out metric that picks out/best: psnr, or psnr_moving (the pixels that move)


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainVAEConfig:
    """YAML file + ``key=value`` overrides -> config. ``model`` keys are applied on top of
    the ``preset`` registry entry, so a config file only names what it changes."""
    data = apply_overrides(read_yaml(path), overrides or [])
    preset = data.get("preset", TrainVAEConfig.preset)
    if preset not in VAE_CONFIGS:
        raise ConfigError(f"preset: unknown VAE size {preset!r}; known: {', '.join(VAE_CONFIGS)}")
    data["model"] = {**to_dict(VAE_CONFIGS[preset]), **(data.get("model") or {})}
    cfg = from_dict(TrainVAEConfig, data)
    cfg.model.validate()
    if cfg.data.crop % cfg.model.space_down:
        raise ConfigError(f"data.crop must be a multiple of model.space_down={cfg.model.space_down}; got {cfg.data.crop}")
    if cfg.data.max_frames < 1 + cfg.model.time_down:
        raise ConfigError(f"data.max_frames must be at least {1 + cfg.model.time_down}; got {cfg.data.max_frames}")
    if not cfg.data.train:
        raise ConfigError("data.train: name at least one folder of videos (e.g. data.train=[data/world])")
    if cfg.best_on not in ("psnr", "psnr_moving"):
        raise ConfigError(f"best_on: psnr or psnr_moving; got {cfg.best_on!r}")
    if cfg.keep_checkpoints < 2 or cfg.max_bad_steps < 1:
        raise ConfigError("keep_checkpoints must be >= 2 (one may be torn by a crash) and max_bad_steps >= 1")
    if cfg.freeze_encoder and not cfg.init:
        raise ConfigError("freeze_encoder=true needs init= (a trained VAE folder whose encoder to keep)")
    if cfg.init:
        load_init(cfg)
    return cfg


def load_init(cfg: TrainVAEConfig) -> VAE:
    """The VAE folder ``cfg.init``; ValueError if it is not one or its shape differs from ``cfg.model``."""
    start = VAE.load(cfg.init)
    shape = {k: v for k, v in to_dict(cfg.model).items() if k not in ("latent_mean", "latent_std")}
    wrong = [k for k, v in shape.items() if getattr(start.cfg, k) != v]
    if wrong:
        raise ConfigError(f"init={cfg.init} holds a VAE of another shape ({', '.join(f'{k}={getattr(start.cfg, k)}' for k in wrong)}); "
                          "set preset/model to match it")
    return start


# ----------------------------------------------------------------------------- data


def check_data(cfg: TrainVAEConfig) -> list[Item]:
    """The training items; ValueError (one line, for the CLI) if the folders cannot feed this config."""
    items = [it for folder in cfg.data.train for it in scan_folder(folder)]
    if cfg.data.val:
        scan_folder(cfg.data.val)
    need = 1 + cfg.model.time_down
    if not any(it.frames >= need and min(it.height, it.width) >= cfg.data.crop for it in items):
        raise ValueError(f"{', '.join(cfg.data.train)}: no video with >= {need} frames and sides >= data.crop={cfg.data.crop} px")
    return items


def save(out: Path, step: int, cfg: TrainVAEConfig, dist: Dist, model: VAE, opt: torch.optim.Optimizer,
         disc: PatchDiscriminator | None, dopt: torch.optim.Optimizer | None, best: float) -> None:
    """The checkpoint of ``step`` in the layout both trainers share (``tenku.train.checkpoint``):
    the VAE as a loadable model folder, its optimizer, the discriminator (with the GAN) and
    ``state.json``. Every rank calls it; rank 0 writes the model."""

    def parts(tmp: Path) -> None:
        if dist.main:
            save_vae(model, tmp)
            save_optimizer(opt, tmp / "optim.safetensors")
            if disc is not None and dopt is not None:
                save_file({k: v.contiguous() for k, v in disc.state_dict().items()}, str(tmp / "disc.safetensors"))
                save_optimizer(dopt, tmp / "disc_optim.safetensors")

    save_checkpoint(out, step, dist, cfg.keep_checkpoints, parts, {"world": dist.world, "best_psnr": best if math.isfinite(best) else None})


def resume(cfg: TrainVAEConfig, dist: Dist, model: VAE, opt: torch.optim.Optimizer, disc: PatchDiscriminator | None,
           dopt: torch.optim.Optimizer | None) -> tuple[int, float]:
    """Restore the checkpoint ``cfg.resume`` names (also an older tenku's ``out/ckpt/`` folder)
    into the model and optimizers; returns (step, best held-out metric) (0, -inf when fresh)."""
    src = resolve_resume(cfg.out, cfg.resume)
    if src is None:
        return 0, -math.inf
    saved = yaml.safe_load((src / "config.yaml").read_text())
    mine = {k: v for k, v in to_dict(cfg.model).items() if k not in ("latent_mean", "latent_std")}
    if any(saved.get(k) != v for k, v in mine.items()):
        raise ValueError(f"{src} holds a model with another config; use another out= or resume=none")
    model.load_state_dict(load_file(str(src / "model.safetensors")))
    model.set_latent_stats(saved["latent_mean"], saved["latent_std"])
    load_optimizer(opt, src / "optim.safetensors")
    if disc is not None and dopt is not None and (src / "disc.safetensors").is_file():
        disc.load_state_dict(load_file(str(src / "disc.safetensors")))
        load_optimizer(dopt, src / "disc_optim.safetensors")
    load_rng(src, dist.rank)
    state = read_state(src)
    return int(state["step"]), float(state.get("best_psnr") or -math.inf)


# ----------------------------------------------------------------------------- the loop


def train(cfg: TrainVAEConfig, progress: bool = True, stop_after: int | None = None) -> dict[str, float]:
    """Run (or resume) training to ``cfg.steps``; returns the last logged values (and eval
    metrics if any). ``stop_after`` ends this invocation after that many steps, with a
    checkpoint (time-boxed sessions; the schedule still spans ``cfg.steps``). Under torchrun
    every rank calls it."""
    dist = init_distributed(cfg.device)
    try:
        return _train(cfg, dist, progress and dist.main, stop_after)
    finally:
        dist.close()


def _train(cfg: TrainVAEConfig, dist: Dist, progress: bool, stop_after: int | None) -> dict[str, float]:
    dev, mc = dist.device, cfg.model
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    items = check_data(cfg)
    data = Clips(items, cfg.data.cache_gb)
    stat_clips, val = fixed_clips(cfg, dist, data)
    show = (val or stat_clips)[:2]

    # model, optimizer, the optional discriminator, resumed; then wrapped for this world
    torch.manual_seed(cfg.seed)
    model = VAE(mc)
    if cfg.init:
        start = load_init(cfg)
        model.load_state_dict(start.state_dict())
        model.set_latent_stats(start.cfg.latent_mean, start.cfg.latent_std)
    if cfg.freeze_encoder:
        model.encoder.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)  # type: ignore[arg-type]
    disc = dopt = None
    if cfg.loss.gan_weight > 0:
        disc = PatchDiscriminator(mc.in_channels, cfg.loss.disc_channels)
        dopt = torch.optim.AdamW(disc.parameters(), lr=cfg.loss.disc_lr, betas=(0.5, 0.9), weight_decay=0.0)
    step, best = resume(cfg, dist, model, opt, disc, dopt)
    net = parallelize(model.to(dev), ParallelConfig(), dist, unused_params=True)  # image batches skip temporal layers
    dnet = parallelize(disc.to(dev), ParallelConfig(), dist) if disc is not None else None
    if dist.main:
        save_config(cfg, out / "config.yaml")
        n_params = sum(p.numel() for p in model.parameters())
        print(f"VAE {n_params / 1e6:.2f}M params ({4 * n_params / 2**20:.1f} MiB fp32); {len(items)} training videos/images; "
              f"{len(val)} held-out; {dist.world} rank(s); {'resuming at step ' + str(step) if step else ('from ' + cfg.init if cfg.init else 'from scratch')} -> {out}")

    longest = max(it.frames for it in items if min(it.height, it.width) >= cfg.data.crop)
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    kmax = (min(cfg.data.max_frames, longest) - 1) // mc.time_down
    bar = tqdm(total=cfg.steps, initial=step, desc="train vae", unit="step", disable=not progress, dynamic_ncols=True)
    log = RunLog(out, dist.main, step)  # a stop (Ctrl-C) loses at most ckpt_every steps: re-run to resume
    bad = BadSteps(cfg.max_bad_steps)
    rate = {"clips/s": 0.0, "frames/s": 0.0}
    last: dict[str, float] = {}
    try:
        while step < end:
            t0 = time.perf_counter()
            rng = np.random.default_rng([cfg.seed, step])
            gen = torch.Generator(dev).manual_seed(cfg.seed * 1_000_003 + step + 7919 * dist.rank)
            frames = 1 if rng.random() < cfg.data.image_prob else 1 + mc.time_down * int(rng.integers(1, kmax + 1))
            brng = rng if dist.rank == 0 else np.random.default_rng([cfg.seed, step, dist.rank])  # each rank its own clips
            x = data.batch(brng, max(1, cfg.data.batch_frames // frames), frames, cfg.data.crop, cfg.data.flip).to(dev)
            lr = lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            loss, logs, recon, gnorm = autoencoder_step(cfg, net, disc, opt, trained, x, gen, step, bad, bar)
            if disc is not None and dnet is not None and dopt is not None and step >= cfg.loss.gan_start:
                logs["d"] = discriminator_step(cfg, disc, dnet, dopt, x, recon)

            step += 1
            dt = time.perf_counter() - t0
            a = 0.9 if rate["clips/s"] else 0.0  # EMA of throughput, so the bar is readable
            rate = {"clips/s": a * rate["clips/s"] + (1 - a) * x.shape[0] / dt, "frames/s": a * rate["frames/s"] + (1 - a) * x.numel() / 3 / x.shape[-1] / x.shape[-2] / dt}
            last = {"step": step, "loss": loss, **logs, "psnr": psnr(recon.detach().clamp(-1, 1), x).item(),
                    "gnorm": gnorm, "lr": lr, "T": frames, "B": x.shape[0], **rate}
            bar.set_postfix(loss=f"{last['loss']:.4f}", psnr=f"{last['psnr']:.1f}", clips_s=f"{rate['clips/s']:.2f}", frames_s=f"{rate['frames/s']:.1f}")
            bar.update()
            if step % cfg.log_every == 0 or step == cfg.steps:
                log.write({k: round(v, 6) if isinstance(v, float) else v for k, v in last.items()}, ("loss", "psnr", "lr"))

            model.eval()
            if dist.main and (step % cfg.sample_every == 0 or step == cfg.steps):
                write_samples(model, show, out / "samples" / f"step-{step:07d}")
            if dist.main and val and (step % cfg.eval_every == 0 or step == cfg.steps):
                best = evaluate_and_keep_best(cfg, model, val, stat_clips, step, best, log, bar, last)
            if step % cfg.ckpt_every == 0 or step == end:
                if dist.main and not cfg.freeze_encoder:  # a frozen encoder keeps init's statistics exactly
                    model.set_latent_stats(*measure_latent_stats(model, stat_clips))
                save(out, step, cfg, dist, model, opt, disc, dopt, best)
    finally:
        bar.close()
        log.close()
    return last


def fixed_clips(cfg: TrainVAEConfig, dist: Dist, data: Clips) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The training clips whose latents set the normalisation, and the held-out clips (on rank 0
    only: it alone measures, evaluates and samples)."""
    mc, dev, items = cfg.model, dist.device, data.items
    videos = [i for i, it in enumerate(items) if it.frames > mc.time_down and min(it.height, it.width) >= mc.space_down]
    usable = [v for v in (data.usable(i, mc.time_down + 1) for i in videos) if v is not None][: cfg.stats_clips] if dist.main else []
    stat_clips = [whole_clip(v, mc.time_down, mc.space_down).to(dev) for v in usable]
    val_items = [it for it in scan_folder(cfg.data.val) if min(it.height, it.width) >= mc.space_down] if cfg.data.val and dist.main else []
    held_out = Clips(val_items, 0.0)
    val = [whole_clip(v, mc.time_down, mc.space_down).to(dev) for v in (held_out.usable(i, 1) for i in range(len(val_items))) if v is not None][: cfg.data.val_count]
    return stat_clips, val


def autoencoder_step(cfg: TrainVAEConfig, net: torch.nn.Module, disc: PatchDiscriminator | None, opt: torch.optim.Optimizer,
                     trained: list[torch.nn.Parameter], x: torch.Tensor, gen: torch.Generator, step: int, bad: BadSteps,
                     bar: tqdm) -> tuple[float, dict[str, float], torch.Tensor, float]:
    """The network under bf16 autocast, the losses in fp32 (SSIM's variances need it), the
    generator's GAN term once it is on; the update unless it is not finite (``bad``). Returns
    (loss, logged terms, reconstruction, gradient norm)."""
    dev = x.device
    net.train()
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        recon, mean, logvar = net(x, sample=True, generator=gen)  # (B, 3, T, H, W), (B, z, T', h, w) x2
    loss, logs = reconstruction_loss(x, recon, mean, logvar, cfg.loss)
    if disc is not None and step >= cfg.loss.gan_start:
        disc.requires_grad_(False)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            g_loss = g_hinge_loss(disc(recon))
        loss = loss + cfg.loss.gan_weight * g_loss
        logs["g"] = g_loss.item()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = float(torch.nn.utils.clip_grad_norm_(trained, cfg.grad_clip))
    if bad.ok(step, loss.item(), gnorm, bar.write, f"lower lr (now {cfg.lr}) and resume from {Path(cfg.out) / 'ckpt'}"):
        opt.step()
    return loss.item(), logs, recon, gnorm


def discriminator_step(cfg: TrainVAEConfig, disc: PatchDiscriminator, dnet: torch.nn.Module, dopt: torch.optim.Optimizer,
                       x: torch.Tensor, recon: torch.Tensor) -> float:
    """One hinge step of the discriminator on the same batch; returns its loss."""
    disc.requires_grad_(True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        if dnet is disc:
            d_loss = d_hinge_loss(disc(x), disc(recon.detach()))
        else:  # one DDP forward per backward: real and fake in one batch (no batch statistics inside)
            real, fake = dnet(torch.cat([x, recon.detach()])).chunk(2)
            d_loss = d_hinge_loss(real, fake)
    dopt.zero_grad(set_to_none=True)
    d_loss.backward()
    dopt.step()
    return d_loss.item()
