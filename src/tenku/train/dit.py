"""Train the diffusion transformer: ``tenku train dit --config configs/dit-world.yaml [key=value ...]``.

Reads top to bottom: config, then ``train`` (the loop); what surrounds the loop (latent
caches, model, EMA, optimizer, resume, checkpoints, samples) is ``tenku.train.dit_run``. Runs on one CPU with bf16 autocast exactly as it runs on many GPUs under
``torchrun`` (``python -m torch.distributed.run --nproc_per_node=N -m tenku.train dit ...``
or ``tenku train dit --nproc N``): distribution is applied from outside the model by
``tenku.train.distributed.parallelize`` (DDP by default, FSDP2 with ``parallel.mode=fsdp``).
``batch_size`` is the global batch: each of the N ranks takes ``batch_size / (N *
parallel.grad_accum)`` samples per micro-step, so a run's result does not depend on N.
Everything lands in ``cfg.out``:

    config.yaml         the resolved run config
    log.jsonl           one line per logged step; tb/ has the same as TensorBoard scalars (if installed)
    samples/            sample videos of the EMA model for cfg.sample_prompts (settings: cfg.sample)
    checkpoints/step-N/ a checkpoint per save (``tenku.train.checkpoint``, the layout both trainers
                        share): weights, EMA, optimizer (safetensors; torch.distributed.checkpoint
                        shards under sharded/ with FSDP), step, data position, RNG states; the newest
                        ``keep_checkpoints`` are kept
    ckpt                a link to the newest complete checkpoint (``resume=auto`` resumes it)
    pipeline/           a loadable pipeline folder (vae/, transformer/ = EMA weights, pipeline.yaml)

Every random draw is a function of (seed, step) and the sample's place in the global batch:
the batch from the bucket sampler, per sample its condition mask and caption choice, and the
global batch's noise levels and noise, drawn together on the device (``tenku.train.dit_batch``).
A resumed run continues as if it had never stopped, and the same global batch gives the same
update on any number of ranks.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from tenku.config import ConfigError, apply_overrides, from_dict, read_yaml, typed_overrides
from tenku.data.sampler import BucketSampler
from tenku.data.videos import ClipPolicy
from tenku.dit.model import DIT_SIZES, DiTConfig
from tenku.flow import flow_loss_sum
from tenku.pipeline import PipelineConfig
from tenku.text import MAX_TOKENS, check_max_tokens
from tenku.train.conditions import ConditionConfig, sample_condition_masks
from tenku.train.dit_batch import conditioning, sample_rngs, step_noise, step_rng
from tenku.train.dit_run import DiTRun, cache_dir, save, setup, steer_run, write_samples
from tenku.train.distributed import Dist, ParallelConfig, grad_norm_clip, init_distributed, sync_gradients
from tenku.train.layouts import LayoutConfig
from tenku.train.loop import RunLog
from tenku.train.schedule import lr_at
from tenku.train.throughput import dit_train_flops, peak_flops

__all__ = ["TrainDiTConfig", "cache_dir", "load_train_config", "train"]

# ----------------------------------------------------------------------------- config


@dataclass
class TrainDiTConfig:
    out: str = "runs/dit"
    vae: str = ""  # VAE folder (e.g. models/tenku-world/vae or a VAE run's ckpt)
    data: list[str] = field(default_factory=list)  # dataset folders with metadata.jsonl (world data or any videos)
    cache: str = ""  # latent cache root; default: <out>/cache
    clips: ClipPolicy = field(default_factory=ClipPolicy)  # how videos become training clips (tenku.data.videos)
    preload_gb: float = 16.0  # caches up to this size are held in memory; larger ones are read from the shards per batch
    text_encoder: str = "minilm"
    max_text_tokens: int = MAX_TOKENS  # caption tokens kept; longer captions are cut (half the world's detailed ones at 77)
    size: str = "S"  # DIT_SIZES entry
    model: dict[str, Any] = field(default_factory=dict)  # DiTConfig fields over the size's (dim, depth, heads, patch, ...)
    cond: ConditionConfig = field(default_factory=ConditionConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # ddp/fsdp, grad_accum, activation checkpointing
    device: str = "auto"  # auto (a GPU if any), cpu, cuda
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    short_caption_prob: float = 0.25  # train on the short caption instead of the detailed one
    caption_dropout: float = 0.1  # empty prompt: the unconditional branch of guidance
    object_weight: float = 0.0  # extra loss weight on the latent cells objects cover (world ground truth); 0: plain mean
    shape_head: float = 0.0  # weight of the shape head's loss (tenku.train.shape_head; world ground truth); 0: no head
    shape_head_block: int = 0  # the block whose output the head reads; 0: the middle one
    layout: LayoutConfig = field(default_factory=LayoutConfig)  # grounded training (model.grounding; docs/layout.md)
    batch_size: int = 16  # the global batch (all ranks and micro-steps together)
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
    keep_checkpoints: int = 3  # complete checkpoint folders kept (never fewer than 2)
    resume: str = "auto"  # auto (newest complete checkpoint in out/), none, or a checkpoint folder
    init: str = ""  # start weights when not resuming: a checkpoint or transformer folder (its EMA if any); step 0, new optimizer
    max_bad_steps: int = 20  # stop after this many non-finite losses/gradients in a row
    peak_tflops: float = 0.0  # per-device bf16 peak for MFU; 0: known GPU table or a measurement
    sample_every: int = 1000
    sample_prompts: list[str] = field(default_factory=lambda: ["a red ball falls and bounces"])
    # how samples are made and what the exported pipeline/ does by default (its text encoder is the run's)
    sample: PipelineConfig = field(default_factory=PipelineConfig)


# flat keys of older configs -> their place in ``sample`` (still read; configs/ uses the new ones)
OLD_SAMPLE_KEYS = {"sample_steps": "steps", "sample_guidance": "guidance", "sample_context_guidance": "context_guidance",
                   "sample_size": "size", "sample_frames": "frames", "fps": "fps"}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """An older config's keys in today's places, each said once on stderr: the flat sample_*
    keys (and fps) go under ``sample``, ``model.grad_checkpoint`` is ``parallel.activation_checkpoint``."""
    data = dict(data)
    old = [k for k in OLD_SAMPLE_KEYS if k in data]
    if old:
        sample = dict(data.get("sample") or {})
        for k in old:
            sample.setdefault(OLD_SAMPLE_KEYS[k], data.pop(k))
        data["sample"] = sample
        _deprecated(f"{', '.join(old)}: now sample.{{{', '.join(OLD_SAMPLE_KEYS[k] for k in old)}}}")
    model = data.get("model")
    if isinstance(model, dict) and "grad_checkpoint" in model:
        model = dict(model)
        on = model.pop("grad_checkpoint")
        data["model"], data["parallel"] = model, {"activation_checkpoint": on, **(data.get("parallel") or {})}
        _deprecated("model.grad_checkpoint: now parallel.activation_checkpoint")
    return data


def _deprecated(what: str) -> None:
    warnings.warn(f"old config keys {what}", FutureWarning, stacklevel=3)


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainDiTConfig:
    """YAML file + ``key=value`` overrides -> config; older keys are moved (``migrate``), ``model``
    is checked against DiTConfig's fields and types, and every value against the run's needs."""
    cfg = from_dict(TrainDiTConfig, migrate(apply_overrides(read_yaml(path), overrides or [])))
    cfg.model = typed_overrides(DiTConfig, cfg.model, "model.")
    if cfg.init and (Path(cfg.init) / "model_index.json").is_file():
        from_wan_folder(cfg)
    if cfg.size not in DIT_SIZES:
        raise ConfigError(f"size: unknown DiT size {cfg.size!r}; allowed: {', '.join(DIT_SIZES)}")
    if not cfg.data:
        raise ConfigError("data: name at least one dataset folder (e.g. data=[data/world])")
    if not cfg.vae:
        raise ConfigError("vae: name the VAE folder (e.g. vae=models/tenku-world/vae)")
    if cfg.init and not Path(cfg.init).is_dir():
        raise ConfigError(f"init={cfg.init}: no such folder (a DiT checkpoint, transformer or pipeline folder)")
    if cfg.keep_checkpoints < 2:
        raise ConfigError(f"keep_checkpoints must be at least 2 (one may be torn by a crash); got {cfg.keep_checkpoints}")
    if cfg.parallel.mode not in ("ddp", "fsdp"):
        raise ConfigError(f"parallel.mode: ddp or fsdp; got {cfg.parallel.mode!r}")
    if cfg.parallel.grad_accum < 1 or cfg.batch_size < 1 or cfg.max_bad_steps < 1:
        raise ConfigError("batch_size, parallel.grad_accum and max_bad_steps must be >= 1")
    if (bad := cfg.layout.check()) is not None:
        raise ConfigError(bad)
    try:
        check_max_tokens(cfg.max_text_tokens)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for key, off in (("object_weight", "every latent cell alike"), ("shape_head", "no shape head")):
        value = getattr(cfg, key)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{key} must be >= 0 (0: {off}); got {value}")
        if value and not cfg.clips.is_default():
            raise ConfigError(f"{key} maps the world's object boxes onto whole videos at their native size: "
                              "it needs the default clips policy (no clips.frames, fps or sizes)")
    return cfg


def from_wan_folder(cfg: TrainDiTConfig) -> None:
    """``init`` names a diffusers Wan folder (docs/wan.md): a full fine-tune of its transformer on
    its own autoencoder and text encoder. Unset keys take the folder's: ``vae``, ``text_encoder``
    and 512 caption tokens (Wan's padding), ``model`` = its transformer's config."""
    import dataclasses
    import json

    from tenku.wan.transformer import dit_config_from_wan

    init = Path(cfg.init)
    try:
        wan = dataclasses.asdict(dit_config_from_wan(json.loads((init / "transformer" / "config.json").read_text())))
    except (OSError, ValueError) as e:
        raise ConfigError(f"init={init}: not a Wan folder tenku reads ({e})") from None
    cfg.vae = cfg.vae or str(init)
    if cfg.text_encoder == "minilm":
        cfg.text_encoder = str(init / "text_encoder")
        cfg.max_text_tokens = 512 if cfg.max_text_tokens == MAX_TOKENS else cfg.max_text_tokens
    cfg.model = {**wan, **cfg.model}


# ----------------------------------------------------------------------------- the loop


Steer = Callable[[int], "dict[str, Any] | None"]


def train(cfg: TrainDiTConfig, progress: bool = True, stop_after: int | None = None,
          steer: Steer | None = None) -> dict[str, float]:
    """Run (or resume) training to ``cfg.steps`` in this process; under torchrun every rank
    calls it. Returns the last logged values. ``stop_after`` ends this invocation after that
    many steps, with a checkpoint.

    ``steer`` (one process only) is called before every step with the step number and may
    return ``{"steps": N}``, a new total (the cosine follows; e.g. planned from the step time
    so far, during the warm-up), and ``{"data": [folders]}``, data folders whose latent caches
    another process has completed, trained on from this step on (``bench/train_gpu.py`` renders
    beside the trainer this way). A run steered so is not resumed exactly. Returning None
    changes nothing, so ``steer`` is also where a caller watches a run step by step."""
    dist = init_distributed(cfg.device, cfg.parallel.timeout_s)
    try:
        if steer is not None and dist.active:
            raise ConfigError("steer works on one process only (its answers could differ between ranks)")
        return _train(cfg, dist, progress, stop_after, steer)
    finally:
        dist.close()


def _train(cfg: TrainDiTConfig, dist: Dist, progress: bool, stop_after: int | None,
           steer: Steer | None = None) -> dict[str, float]:
    """The loop: a step (``train_step``), its update unless it is not finite, the EMA, the log,
    checkpoints and samples. Everything it works on is built by ``dit_run.setup``."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = setup(cfg, dist, progress)
    log = RunLog(run.out, dist.main, run.step)
    peak = peak_flops(dist.device, cfg.peak_tflops) * dist.world
    bar = tqdm(total=cfg.steps, initial=run.step, desc="train dit", unit="step", disable=not (progress and dist.main))
    last: dict[str, float] = {}
    busy, seen, tokens, flops = 0.0, 0, 0, 0.0  # throughput counts training time, not checkpoints or samples
    first = run.step
    end = lambda: cfg.steps if stop_after is None else min(cfg.steps, first + stop_after)  # noqa: E731 (steer may move it)
    while run.step < end():
        if steer is not None and (said := steer(run.step)):
            steer_run(run, said, bar.write)
            bar.total = cfg.steps
        t0 = time.perf_counter()
        loss, gnorm, n, n_tok, ctx_len = train_step(run)
        if run.bad.ok(run.step, loss, gnorm, bar.write if dist.main else None,
                      f"lower lr (now {cfg.lr}) and resume from {run.out / 'ckpt'}"):
            run.opt.step()
            run.objectives.step(dist.world)
            run.ema.update(run.step)
        run.step += 1
        seen, tokens = seen + n, tokens + n * n_tok
        flops += n * dit_train_flops(run.n_params, n_tok, run.mcfg.depth, run.mcfg.dim, ctx_len)
        busy += time.perf_counter() - t0
        bar.update()
        step = run.step
        if log.active and (step % cfg.log_every == 0 or step == end()):
            dt = max(busy, 1e-9)
            last = {"step": step, "loss": loss, "grad_norm": gnorm, "lr": lr_at(step - 1, cfg), "samples/s": seen / dt,
                    "tokens/s": tokens / dt, "mfu": flops / dt / peak, "params": run.n_params, "skipped": run.bad.skipped}
            last.update(run.objectives.logged())  # e.g. the shape head's cross-entropy and accuracy (this rank's)
            log.write(last, ("loss", "grad_norm", "lr", "samples/s", "tokens/s", "mfu"))
            bar.set_postfix(loss=f"{loss:.4f}", sps=f"{seen / dt:.1f}", tps=f"{tokens / dt:.0f}", mfu=f"{100 * flops / dt / peak:.1f}%")
            busy, seen, tokens, flops = 0.0, 0, 0, 0.0
        if step % cfg.ckpt_every == 0 or step == end():
            save(run)
        if cfg.sample_every and (step % cfg.sample_every == 0 or step == end()):
            write_samples(run)
    bar.close()
    log.close()
    return last


def train_step(run: DiTRun) -> tuple[float, float, int, int, int]:
    """One optimizer step's forward and backward passes (its update is the caller's): draws the
    global batch, its condition masks, noise levels and noise, runs this rank's micro-steps and
    returns the global mean loss, the clipped gradient norm, the batch size, tokens per sample
    and caption tokens. The flow loss and the objectives' terms meet here, in one backward."""
    cfg, dist, data, step = run.cfg, run.dist, run.data, run.step
    accum, world = cfg.parallel.grad_accum, dist.world
    rng = step_rng(cfg, step)
    idx = run.sampler.global_batch(step)
    frames = data.shapes[idx[0]][1]
    t = 1 if frames > 1 and rng.random() < cfg.cond.image_prob else frames  # the causal VAE's first latent frame is the image alone
    rngs = sample_rngs(cfg, step, len(idx))
    cond = sample_condition_masks(rngs, t, cfg.cond)  # (B, t) for the whole global batch
    keep = float((~cond).sum().clamp_min(1))  # the loss is a mean over the global batch's generated frames
    for g, mult in zip(run.opt.param_groups, run.lr_mults):
        g["lr"] = lr_at(step, cfg) * mult
    run.opt.zero_grad(set_to_none=True)
    run.objectives.begin(lr_at(step, cfg))
    local = torch.zeros((), dtype=torch.float64, device=dist.device)
    c, _, h, w = data.shapes[idx[0]]
    cond_dev = cond.to(dist.device)
    noise, sigma = step_noise(rng, (len(idx), c, t, h, w), cond_dev, cfg, dist.device)
    for micro in range(accum):
        sl = BucketSampler.split(len(idx), dist.rank, world, accum, micro)
        # moved in the cache's bf16 and widened there: half the copy, and no conversion on the host
        x0 = torch.stack([data.latents[i] if t == frames else data.latents[i][:, :t] for i in idx[sl]])
        x0 = x0.to(dist.device).float()
        inputs = conditioning(data, idx[sl], rngs[sl], cfg, run.empty, dist.device, run.layouts, t)

        def velocity(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                return run.model(x, s, **inputs)

        with sync_gradients(run.model, micro == accum - 1):
            part = flow_loss_sum(velocity, x0, noise[sl], sigma[sl], cond_dev[sl], run.objectives.weight(idx[sl], t),
                                 run.objectives.observer(cond_dev[sl], sigma[sl], inputs))
            aux = run.objectives.loss_sum(idx[sl], t, cond_dev[sl], sigma[sl])
            ((part + aux) * (world / keep)).backward()  # DDP/FSDP average over ranks: this makes it the global mean
        local += part.detach().double()
    loss = float(dist.sum(local)) / keep
    gnorm = float(grad_norm_clip(run.model, cfg.grad_clip))
    n_tok = math.prod(x0.shape[2:]) // math.prod(run.mcfg.patch)
    return loss, gnorm, len(idx), n_tok, inputs["context"].shape[1]
