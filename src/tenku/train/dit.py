"""Train the diffusion transformer: ``tenku train dit --config configs/dit-world.yaml [key=value ...]``.

Reads top to bottom: config, setup (VAE, text encoder, latent cache), then
``train`` (the loop). Runs on one CPU with bf16 autocast; no torchrun needed.
Everything lands in ``cfg.out``:

    config.yaml     the resolved run config
    log.jsonl       one line per logged step; tb/ has the same as TensorBoard scalars
    samples/        sample videos of the EMA model for cfg.sample_prompts
    ckpt/           model.safetensors (raw weights), optim.safetensors, state.json
    pipeline/       a loadable pipeline folder (vae/, dit/ = EMA weights, pipeline.yaml)

Every random draw is a function of (seed, step), so a resumed run continues as
if it had never stopped.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tenku.config import ConfigError, load_config, save_config
from tenku.data.latents import LatentSet, build_cache, cache_key
from tenku.dit.model import DIT_SIZES, DiT, DiTConfig, save_dit
from tenku.flow import add_noise, logit_normal, velocity
from tenku.pipeline import Pipeline, PipelineConfig
from tenku.text import TextEncoder, load_text_encoder
from tenku.train.schedule import lr_at
from tenku.train.checkpoint import commit_folder, load_optimizer, save_optimizer, write_json
from tenku.train.conditions import ConditionConfig, draw_condition_masks
from tenku.vae.model import VAE

# ----------------------------------------------------------------------------- config


@dataclass
class TrainDiTConfig:
    out: str = "runs/dit"
    vae: str = ""  # VAE folder (e.g. models/tenku-world/vae or a VAE run's ckpt)
    data: list[str] = field(default_factory=list)  # dataset folders with metadata.jsonl
    cache: str = ""  # latent cache root; default: <out>/cache
    text_encoder: str = "minilm"
    size: str = "S"  # DIT_SIZES entry
    model: dict[str, Any] = field(default_factory=dict)  # DiTConfig overrides (dim, depth, heads, patch, ...)
    cond: ConditionConfig = field(default_factory=ConditionConfig)
    short_caption_prob: float = 0.25  # train on the short caption instead of the detailed one
    caption_dropout: float = 0.1  # empty prompt: the unconditional branch of guidance
    batch_size: int = 16
    steps: int = 20000
    lr: float = 3e-4
    min_lr: float = 3e-5
    warmup: int = 300
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.999
    logit_mean: float = 0.0
    logit_std: float = 1.0
    bf16: bool = True
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    sample_every: int = 1000
    sample_prompts: list[str] = field(default_factory=lambda: ["a red ball falls and bounces"])
    sample_steps: int = 20
    sample_guidance: float = 5.0
    sample_size: list[int] = field(default_factory=lambda: [128, 128])
    sample_frames: int = 33
    fps: float = 8.0


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainDiTConfig:
    cfg = load_config(TrainDiTConfig, path, overrides)
    if cfg.size not in DIT_SIZES:
        raise ConfigError(f"size: unknown DiT size {cfg.size!r}; allowed: {', '.join(DIT_SIZES)}")
    if not cfg.data:
        raise ConfigError("data: name at least one dataset folder (e.g. data=[data/world])")
    if not cfg.vae:
        raise ConfigError("vae: name the VAE folder (e.g. vae=models/tenku-world/vae)")
    return cfg


# ----------------------------------------------------------------------------- batches


def text_batch(data: LatentSet, idx: list[int], rng: np.random.Generator, cfg: TrainDiTConfig,
               empty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption states (B, L, D) and mask (B, L) for the samples, with short captions and dropout."""
    states = []
    for i in idx:
        u = rng.random()
        if u < cfg.caption_dropout:
            states.append(empty)
        else:
            detailed, short = data.captions[i]
            states.append(short if rng.random() < cfg.short_caption_prob else detailed)
    n = max(s.shape[0] for s in states)
    out = torch.zeros(len(idx), n, states[0].shape[1])
    mask = torch.zeros(len(idx), n, dtype=torch.bool)
    for b, s in enumerate(states):
        out[b, : s.shape[0]] = s.float()
        mask[b, : s.shape[0]] = True
    return out, mask


def flow_loss(model: DiT, x0: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor, cond: torch.Tensor,
              gen: torch.Generator, cfg: TrainDiTConfig) -> torch.Tensor:
    """Rectified-flow loss on the frames to generate; condition frames are (nearly) clean inputs."""
    b, _, t = x0.shape[:3]
    noise = torch.randn(x0.shape, generator=gen)
    sigma = logit_normal((b, 1), cfg.logit_mean, cfg.logit_std, gen).expand(b, t)
    aug = torch.rand((b, t), generator=gen) * cfg.cond.noise_aug
    sigma = torch.where(cond, aug, sigma)
    x = add_noise(x0, noise, sigma)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        v = model(x, sigma, ctx, ctx_mask)
    err = (v.float() - velocity(x0, noise)).pow(2).mean(dim=(1, 3, 4))  # (B, T')
    keep = (~cond).float()
    return (err * keep).sum() / keep.sum().clamp_min(1.0)


# ----------------------------------------------------------------------------- the loop


def train(cfg: TrainDiTConfig, progress: bool = True, stop_after: int | None = None) -> dict[str, float]:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    torch.manual_seed(cfg.seed)
    vae = VAE.load(cfg.vae)
    text = load_text_encoder(cfg.text_encoder)
    cache_root = Path(cfg.cache or out / "cache") / cache_key(cfg.vae, cfg.text_encoder)
    caches = [build_cache(d, vae, text, cache_root / Path(d).resolve().name, progress) for d in cfg.data]
    data = LatentSet(caches)
    empty = text.encode([""])[0][0]

    mcfg = DiTConfig(**{**DIT_SIZES[cfg.size], "in_channels": vae.cfg.latent_channels, "text_dim": text.dim, **cfg.model})
    model = DiT(mcfg).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    step = 0
    ckpt = out / "ckpt"
    if (ckpt / "state.json").exists():  # resume
        from tenku.weights import load_state

        load_state(ckpt, model)
        load_state(ckpt / "ema", ema)
        load_optimizer(opt, ckpt / "optim.safetensors")
        step = json.loads((ckpt / "state.json").read_text())["step"]
    n_params = sum(p.numel() for p in model.parameters())
    tb = _tensorboard(out / "tb")
    log = open(out / "log.jsonl", "a")
    bar = tqdm(total=cfg.steps, initial=step, desc="train dit", unit="step", disable=not progress)
    last: dict[str, float] = {}
    t_log, seen, tokens = time.time(), 0, 0
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    while step < end:
        rng = np.random.default_rng([cfg.seed, step])
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x0, idx = data.batch(rng, cfg.batch_size)
        if x0.shape[2] > 1 and rng.random() < cfg.cond.image_prob:
            x0 = x0[:, :, :1]  # the causal VAE's first latent frame is the image alone
        cond = draw_condition_masks(rng, x0.shape[0], x0.shape[2], cfg.cond)
        ctx, ctx_mask = text_batch(data, idx, rng, cfg, empty)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss = flow_loss(model, x0, ctx, ctx_mask, cond, gen, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema, (1 + step) / (10 + step))  # fast EMA early on
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        step += 1
        seen += x0.shape[0]
        tokens += x0.shape[0] * math.prod(x0.shape[2:]) // math.prod(mcfg.patch)
        bar.update()
        if step % cfg.log_every == 0 or step == end:
            dt = time.time() - t_log
            last = {"step": step, "loss": float(loss.detach()), "grad_norm": float(gnorm), "lr": lr_at(step - 1, cfg),
                    "samples/s": seen / dt, "tokens/s": tokens / dt, "params": n_params}
            log.write(json.dumps(last) + "\n")
            log.flush()
            for k in ("loss", "grad_norm", "lr", "samples/s", "tokens/s"):
                tb.add_scalar(k, last[k], step) if tb else None
            bar.set_postfix(loss=f"{last['loss']:.4f}", sps=f"{seen / dt:.1f}")
            t_log, seen, tokens = time.time(), 0, 0
        if step % cfg.ckpt_every == 0 or step == end:
            save_checkpoint(out, step, model, ema, opt, vae, cfg, text.dim)
        if cfg.sample_every and (step % cfg.sample_every == 0 or step == end):
            write_samples(out, step, ema, vae, text, cfg)
    bar.close()
    log.close()
    if tb:
        tb.close()
    return last


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoard is optional: log.jsonl has the same scalars
        return None
    return SummaryWriter(str(path))


def pipeline_config(cfg: TrainDiTConfig) -> PipelineConfig:
    return PipelineConfig(text_encoder=cfg.text_encoder, fps=cfg.fps, size=tuple(cfg.sample_size),  # type: ignore[arg-type]
                          frames=cfg.sample_frames, steps=cfg.sample_steps, guidance=cfg.sample_guidance)


def save_checkpoint(out: Path, step: int, model: DiT, ema: DiT, opt: torch.optim.Optimizer, vae: VAE,
                    cfg: TrainDiTConfig, text_dim: int) -> None:
    """Write ckpt/ (resume state) and pipeline/ (EMA model, ready for `tenku generate --model`)."""
    tmp = out / "ckpt.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_dit(tmp, model)
    save_dit(tmp / "ema", ema)
    save_optimizer(opt, tmp / "optim.safetensors")
    write_json(tmp / "state.json", {"step": step})
    commit_folder(tmp, out / "ckpt")
    ptmp = out / "pipeline.tmp"
    shutil.rmtree(ptmp, ignore_errors=True)
    ptmp.mkdir()
    save_dit(ptmp / "dit", ema)
    vae.save(ptmp / "vae")
    save_config(pipeline_config(cfg), ptmp / "pipeline.yaml")
    commit_folder(ptmp, out / "pipeline")


def write_samples(out: Path, step: int, ema: DiT, vae: VAE, text: TextEncoder, cfg: TrainDiTConfig) -> None:
    from tenku.io import write_video

    pipe = Pipeline(vae, ema, text, pipeline_config(cfg), torch.device("cpu"))
    for i, prompt in enumerate(cfg.sample_prompts):
        frames = pipe.generate(prompt, seed=i)
        write_video(out / "samples" / f"step{step:07d}-{i}.mp4", frames, cfg.fps)
    ema.eval()
