"""Train the causal video autoencoder: ``tenku train vae --config configs/vae-world.yaml [key=value ...]``.

Reads top to bottom: config, data, helpers, then ``train`` (the loop). Runs on a CPU with
bf16 autocast; no torchrun needed. Everything lands in ``cfg.out``:

    config.yaml        the resolved run config
    log.jsonl          one line per logged step (loss terms, lr, throughput) and per eval
    samples/           side-by-side (input | reconstruction) mp4 and PNG contact sheets
    ckpt/              the latest checkpoint: a loadable VAE folder (model.safetensors +
                       config.yaml with latent statistics) plus optim.safetensors and
                       state.json (and disc*.safetensors with the GAN); re-running resumes it
    best/              the VAE folder with the best held-out PSNR so far (+ metrics.json):
                       the one to publish

Every random draw is a function of (seed, step), so a resumed run continues as if it had
never stopped. Under torchrun (``python -m torch.distributed.run --nproc_per_node=N -m
tenku.train vae ...`` or ``tenku train vae --nproc N``) the autoencoder and discriminator
are DistributedDataParallel replicas: each rank draws its own batch from (seed, step, rank)
(rank 0 draws exactly what a single process draws), gradients are averaged, and rank 0
alone evaluates, writes samples, logs and checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from tenku.config import ConfigError, apply_overrides, read_yaml, from_dict, save_config, to_dict
from tenku.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, from_uint8, probe_video, read_video, save_contact_sheet, to_uint8, write_video
from tenku.train.schedule import lr_at
from tenku.train.checkpoint import commit_folder, load_optimizer, save_optimizer, write_json
from tenku.train.distributed import Dist, init_distributed
from tenku.vae.losses import (LossConfig, PatchDiscriminator, d_hinge_loss, g_hinge_loss, motion_mask, psnr, reconstruction_loss,
                              ssim)
from tenku.vae.model import VAE, VAE_CONFIGS, VAEConfig, save_vae

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
    resume: bool = True
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


@dataclass
class Item:
    path: Path
    frames: int
    height: int
    width: int


def scan_folder(folder: str | Path) -> list[Item]:
    """Videos of a tenku dataset folder (DIR/metadata.jsonl), else every video and image under it.
    Files that are missing or cannot be probed are left out with a warning (never fatal)."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root}: no such data folder")
    meta = root / "metadata.jsonl"
    if meta.is_file():
        recs = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
        paths = [(root / r["file"], r) for r in recs]
    else:
        paths = [(p, {}) for p in sorted(root.rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES and not p.name.startswith(".")]
    items = []
    for p, r in paths:
        if all(k in r for k in ("frames", "height", "width")) and p.is_file():
            items.append(Item(p, int(r["frames"]), int(r["height"]), int(r["width"])))
            continue
        try:
            info = probe_video(p)
            items.append(Item(p, int(info["frames"]), int(info["height"]), int(info["width"])))
        except (ValueError, FileNotFoundError) as e:
            print(f"skipping {str(e).split(';')[0]}")
    return items


class Clips:
    """Random clips from a list of videos: decoded once, kept in memory up to a budget."""

    def __init__(self, items: list[Item], cache_gb: float) -> None:
        self.items, self.cache, self.budget, self.used = items, {}, cache_gb * 2**30, 0
        self.bad: dict[int, str] = {}  # videos that failed to decode (or decode short): left out from then on

    def usable(self, i: int, frames: int) -> np.ndarray | None:
        """Video ``i`` if it decodes to at least ``frames`` frames, else None; one that fails to decode is marked bad."""
        if i in self.bad:
            return None
        try:
            v = self.video(i)
        except (ValueError, FileNotFoundError) as e:
            self.bad[i] = str(e).split(";")[0]
            print(f"skipping {self.bad[i]}")
            return None
        return v if len(v) >= frames else None

    def video(self, i: int) -> np.ndarray:
        if i in self.cache:
            return self.cache[i]
        v = read_video(self.items[i].path)[0]  # uint8 (F, H, W, 3)
        it = self.items[i]
        if len(v) < 0.95 * it.frames - 1:  # truncated: train on the frames that decode
            print(f"truncated {it.path}: {len(v)} of {it.frames} declared frames decode; using those")
            it.frames = len(v)
        if self.used + v.nbytes <= self.budget:
            self.cache[i], self.used = v, self.used + v.nbytes
        return v

    def batch(self, rng: np.random.Generator, batch: int, frames: int, crop: int, flip: bool) -> torch.Tensor:
        """(batch, 3, frames, crop, crop) in [-1, 1]: random videos, start frames, crops, flips."""
        ok = [i for i, it in enumerate(self.items) if it.frames >= frames and min(it.height, it.width) >= crop and i not in self.bad]
        if not ok:
            raise ValueError(f"no training video has >= {frames} frames and sides >= {crop} px")
        out = []
        for i in rng.choice(ok, size=batch):
            at, v = ok.index(int(i)), self.usable(int(i), frames)
            for k in range(1, len(ok)):  # a bad video: the next usable one in the list stands in (no extra draws)
                if v is not None:
                    break
                v = self.usable(ok[(at + k) % len(ok)], frames)
            if v is None:
                raise ValueError(f"no training video with >= {frames} frames decodes ({len(self.bad)} bad)")
            t0 = int(rng.integers(0, len(v) - frames + 1))
            y0, x0 = int(rng.integers(0, v.shape[1] - crop + 1)), int(rng.integers(0, v.shape[2] - crop + 1))
            c = v[t0 : t0 + frames, y0 : y0 + crop, x0 : x0 + crop]
            out.append(from_uint8(np.ascontiguousarray(c[:, :, ::-1] if flip and rng.random() < 0.5 else c)))
        return torch.stack(out)


def whole_clip(v: np.ndarray, time_down: int, space_down: int) -> torch.Tensor:
    """(1, 3, T, H, W): the longest 1 + time_down*k prefix, centre-cropped to multiples of space_down."""
    t = 1 + (len(v) - 1) // time_down * time_down
    h, w = v.shape[1] // space_down * space_down, v.shape[2] // space_down * space_down
    y0, x0 = (v.shape[1] - h) // 2, (v.shape[2] - w) // 2
    return from_uint8(np.ascontiguousarray(v[:t, y0 : y0 + h, x0 : x0 + w]))[None]


def check_data(cfg: TrainVAEConfig) -> list[Item]:
    """The training items; ValueError (one line, for the CLI) if the folders cannot feed this config."""
    items = [it for folder in cfg.data.train for it in scan_folder(folder)]
    if cfg.data.val:
        scan_folder(cfg.data.val)
    need = 1 + cfg.model.time_down
    if not any(it.frames >= need and min(it.height, it.width) >= cfg.data.crop for it in items):
        raise ValueError(f"{', '.join(cfg.data.train)}: no video with >= {need} frames and sides >= data.crop={cfg.data.crop} px")
    return items


# ----------------------------------------------------------------------------- helpers


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


def save_checkpoint(out: Path, step: int, model: VAE, opt: torch.optim.Optimizer,
                    disc: PatchDiscriminator | None, dopt: torch.optim.Optimizer | None, best: float) -> None:
    tmp = out / "ckpt.tmp"
    save_vae(model, tmp)
    save_optimizer(opt, tmp / "optim.safetensors")
    if disc is not None and dopt is not None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in disc.state_dict().items()}, str(tmp / "disc.safetensors"))
        save_optimizer(dopt, tmp / "disc_optim.safetensors")
    write_json(tmp / "state.json", {"step": step, "best_psnr": best if math.isfinite(best) else None})
    commit_folder(tmp, out / "ckpt")


# ----------------------------------------------------------------------------- the loop


def train(cfg: TrainVAEConfig, progress: bool = True, stop_after: int | None = None) -> dict[str, float]:
    """Run (or resume) training to ``cfg.steps``; returns the last logged values (and eval
    metrics if any). ``stop_after`` ends this invocation early at that step, with a
    checkpoint (time-boxed sessions; the schedule still spans ``cfg.steps``). Under torchrun
    every rank calls it."""
    dist = init_distributed(cfg.device)
    try:
        return _train(cfg, dist, progress and dist.main, stop_after)
    finally:
        dist.close()


def _train(cfg: TrainVAEConfig, dist: Dist, progress: bool, stop_after: int | None) -> dict[str, float]:
    dev = dist.device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    mc = cfg.model

    # data: training clips, fixed clips for latent statistics, held-out clips
    items = check_data(cfg)
    data = Clips(items, cfg.data.cache_gb)
    videos = [i for i, it in enumerate(items) if it.frames > mc.time_down and min(it.height, it.width) >= mc.space_down]
    usable = [v for v in (data.usable(i, mc.time_down + 1) for i in videos) if v is not None][: cfg.stats_clips] if dist.main else []
    stat_clips = [whole_clip(v, mc.time_down, mc.space_down).to(dev) for v in usable]
    val_items = [it for it in scan_folder(cfg.data.val) if min(it.height, it.width) >= mc.space_down] if cfg.data.val and dist.main else []
    held_out = Clips(val_items, 0.0)
    val = [whole_clip(v, mc.time_down, mc.space_down).to(dev) for v in (held_out.usable(i, 1) for i in range(len(val_items))) if v is not None][: cfg.data.val_count]
    show = (val or stat_clips)[:2]

    # model, optimizer, and the optional discriminator
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

    # resume
    step, best = 0, -math.inf
    ck = out / "ckpt"
    if cfg.resume and (ck / "state.json").is_file():
        saved = yaml.safe_load((ck / "config.yaml").read_text())
        mine = {k: v for k, v in to_dict(mc).items() if k not in ("latent_mean", "latent_std")}
        if any(saved.get(k) != v for k, v in mine.items()):
            raise ValueError(f"{ck} holds a model with another config; use another out= or resume=false")
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(ck / "model.safetensors")))
        model.set_latent_stats(saved["latent_mean"], saved["latent_std"])
        load_optimizer(opt, ck / "optim.safetensors")
        if disc is not None and dopt is not None and (ck / "disc.safetensors").is_file():
            disc.load_state_dict(load_file(str(ck / "disc.safetensors")))
            load_optimizer(dopt, ck / "disc_optim.safetensors")
        state = json.loads((ck / "state.json").read_text())
        step, best = int(state["step"]), float(state.get("best_psnr") or -math.inf)
    model.to(dev)
    net, dnet = model, disc  # what training calls: DDP replicas when there are several ranks
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [dev.index] if dev.type == "cuda" else None
        net = DDP(model, device_ids=ids, find_unused_parameters=True, broadcast_buffers=False)  # image batches skip temporal layers
        if disc is not None:
            dnet = DDP(disc.to(dev), device_ids=ids, broadcast_buffers=False)
    elif disc is not None:
        disc.to(dev)
    if dist.main:
        save_config(cfg, out / "config.yaml")
    n_params = sum(p.numel() for p in model.parameters())
    if dist.main:
            print(f"VAE {n_params / 1e6:.2f}M params ({4 * n_params / 2**20:.1f} MiB fp32); {len(items)} training videos/images; "
              f"{len(val)} held-out; {dist.world} rank(s); {'resuming at step ' + str(step) if step else ('from ' + cfg.init if cfg.init else 'from scratch')} -> {out}")

    longest = max(it.frames for it in items if min(it.height, it.width) >= cfg.data.crop)
    end = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
    kmax = (min(cfg.data.max_frames, longest) - 1) // mc.time_down
    bar = tqdm(total=cfg.steps, initial=step, desc="train vae", unit="step", disable=not progress, dynamic_ncols=True)
    log = open(out / "log.jsonl" if dist.main else os.devnull, "a")  # a stop (Ctrl-C) loses at most ckpt_every steps: re-run to resume
    rate = {"clips/s": 0.0, "frames/s": 0.0}
    last: dict[str, float] = {}
    skipped = 0
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

            # autoencoder step: the network under bf16 autocast, the losses in fp32 (SSIM's variances need it)
            model.train()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                recon, mean, logvar = net(x, sample=True, generator=gen)  # (B, 3, T, H, W), (B, z, T', h, w) x2
            loss, logs = reconstruction_loss(x, recon, mean, logvar, cfg.loss)
            gan_on = disc is not None and step >= cfg.loss.gan_start
            if gan_on:
                disc.requires_grad_(False)  # type: ignore[union-attr]
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    g_loss = g_hinge_loss(disc(recon))  # type: ignore[misc]
                loss = loss + cfg.loss.gan_weight * g_loss
                logs["g"] = g_loss.item()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(trained, cfg.grad_clip)
            if torch.isfinite(gnorm):
                opt.step()
            else:  # an unattended run skips a bad batch instead of poisoning the weights; many in a row is a real fault
                skipped += 1
                bar.write(f"step {step}: non-finite loss or gradient, update skipped ({skipped} so far)")
                if skipped > 20:
                    raise RuntimeError(f"{skipped} non-finite updates: lower lr (now {cfg.lr}) and resume from {ck}")

            # discriminator step (hinge), on the same batch
            if gan_on:
                disc.requires_grad_(True)  # type: ignore[union-attr]
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    if dnet is disc:
                        d_loss = d_hinge_loss(disc(x), disc(recon.detach()))  # type: ignore[misc]
                    else:  # one DDP forward per backward: real and fake in one batch (no batch statistics inside)
                        real, fake = dnet(torch.cat([x, recon.detach()])).chunk(2)  # type: ignore[misc]
                        d_loss = d_hinge_loss(real, fake)
                dopt.zero_grad(set_to_none=True)  # type: ignore[union-attr]
                d_loss.backward()
                dopt.step()  # type: ignore[union-attr]
                logs["d"] = d_loss.item()

            step += 1
            dt = time.perf_counter() - t0
            a = 0.9 if rate["clips/s"] else 0.0  # EMA of throughput, so the bar is readable
            rate = {"clips/s": a * rate["clips/s"] + (1 - a) * x.shape[0] / dt, "frames/s": a * rate["frames/s"] + (1 - a) * x.numel() / 3 / x.shape[-1] / x.shape[-2] / dt}
            last = {"step": step, "loss": loss.item(), **logs, "psnr": psnr(recon.detach().clamp(-1, 1), x).item(),
                    "gnorm": float(gnorm), "lr": lr, "T": frames, "B": x.shape[0], **rate}
            bar.set_postfix(loss=f"{last['loss']:.4f}", psnr=f"{last['psnr']:.1f}", clips_s=f"{rate['clips/s']:.2f}", frames_s=f"{rate['frames/s']:.1f}")
            bar.update()
            if step % cfg.log_every == 0 or step == cfg.steps:
                log.write(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in last.items()}) + "\n")
                log.flush()

            model.eval()
            if not dist.main:
                continue
            if step % cfg.sample_every == 0 or step == cfg.steps:
                write_samples(model, show, out / "samples" / f"step-{step:07d}")
            if val and (step % cfg.eval_every == 0 or step == cfg.steps):
                metrics = evaluate(model, val)
                last.update({f"val_{k}": v for k, v in metrics.items()})
                log.write(json.dumps({"step": step, **{f"val_{k}": round(v, 4) for k, v in metrics.items()}}) + "\n")
                log.flush()
                moving = f", moving pixels {metrics['psnr_moving']:.2f} dB" if "psnr_moving" in metrics else ""
                bar.write(f"step {step}: held-out PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f}{moving}")
                if metrics.get(cfg.best_on, -math.inf) > best:  # out/best: the model folder to publish
                    best = metrics[cfg.best_on]
                    if not cfg.freeze_encoder:
                        model.set_latent_stats(*measure_latent_stats(model, stat_clips))
                    save_vae(model, out / "best.tmp")
                    write_json(out / "best.tmp" / "metrics.json", {"step": step, **metrics})
                    commit_folder(out / "best.tmp", out / "best")
            if step % cfg.ckpt_every == 0 or step == end:
                if not cfg.freeze_encoder:  # a frozen encoder keeps init's statistics exactly
                    model.set_latent_stats(*measure_latent_stats(model, stat_clips))
                save_checkpoint(out, step, model, opt, disc, dopt, best)
    finally:
        bar.close()
        log.close()
    return last
