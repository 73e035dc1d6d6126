"""Train the diffusion transformer: ``tenku train dit --config configs/dit-world.yaml [key=value ...]``.

Reads top to bottom: config, setup (distribution, latent cache, model), then ``train``
(the loop). Runs on one CPU with bf16 autocast exactly as it runs on many GPUs under
``torchrun`` (``python -m torch.distributed.run --nproc_per_node=N -m tenku.train dit ...``
or ``tenku train dit --nproc N``): distribution is applied from outside the model by
``tenku.train.distributed.parallelize`` (DDP by default, FSDP2 with ``parallel.mode=fsdp``).
``batch_size`` is the global batch: each of the N ranks takes ``batch_size / (N *
parallel.grad_accum)`` samples per micro-step, so a run's result does not depend on N.
Everything lands in ``cfg.out``:

    config.yaml         the resolved run config
    log.jsonl           one line per logged step; tb/ has the same as TensorBoard scalars (if installed)
    samples/            sample videos of the EMA model for cfg.sample_prompts
    checkpoints/step-N/ a checkpoint per save, written under a temporary name and renamed when
                        complete: weights, EMA, optimizer (safetensors; torch.distributed.checkpoint
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

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from tenku.config import ConfigError, load_config, save_config
from tenku.data.latents import LatentSet, build_cache, cache_complete, cache_key, empty_states, finish_cache, read_records
from tenku.data.objects import ObjectMasks
from tenku.data.sampler import BucketSampler
from tenku.data.videos import ClipPolicy
from tenku.dit.model import DIT_SIZES, DiT, DiTConfig, save_dit
from tenku.pipeline import Pipeline, PipelineConfig, save_pipeline
from tenku.text import MAX_TOKENS, TextEncoder, check_max_tokens, load_text_encoder
from tenku.train.checkpoint import (begin_step_folder, commit_folder, commit_step_folder, load_optimizer, resolve_resume,
                                    save_optimizer, write_json)
from tenku.train.conditions import ConditionConfig, sample_condition_masks
from tenku.train.dit_batch import (LayoutConfig, LayoutLog, flow_loss_sum, layout_batch, sample_rngs, step_noise, step_rng,
                                   text_batch)
from tenku.train.dit_weights import gather_ema, load_init, load_sharded, sharded_state
from tenku.train.distributed import (Dist, ParallelConfig, clean_name, grad_norm_clip, init_distributed, is_sharded,
                                     parallelize, sync_gradients, unwrap)
from tenku.train.schedule import lr_at
from tenku.train.shape_head import ShapeHead
from tenku.train.throughput import dit_train_flops, peak_flops
from tenku.vae.model import VAE

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
    model: dict[str, Any] = field(default_factory=dict)  # DiTConfig overrides (dim, depth, heads, patch, ...)
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
    sample_steps: int = 20
    sample_guidance: float = 5.0
    sample_context_guidance: float | None = None  # the exported pipeline's context_guidance (extend, connect)
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
    if cfg.init and not Path(cfg.init).is_dir():
        raise ConfigError(f"init={cfg.init}: no such folder (a DiT checkpoint, transformer or pipeline folder)")
    if cfg.keep_checkpoints < 2:
        raise ConfigError(f"keep_checkpoints must be at least 2 (one may be torn by a crash); got {cfg.keep_checkpoints}")
    if cfg.parallel.mode not in ("ddp", "fsdp"):
        raise ConfigError(f"parallel.mode: ddp or fsdp; got {cfg.parallel.mode!r}")
    if cfg.parallel.grad_accum < 1 or cfg.batch_size < 1 or cfg.max_bad_steps < 1:
        raise ConfigError("batch_size, parallel.grad_accum and max_bad_steps must be >= 1")
    if not (0 <= cfg.layout.dropout <= 1 and cfg.layout.lr_mult > 0 and cfg.layout.base_lr_mult >= 0):
        raise ConfigError(f"layout.dropout must be in [0, 1], layout.lr_mult > 0 and layout.base_lr_mult >= 0; got "
                          f"{cfg.layout.dropout}, {cfg.layout.lr_mult}, {cfg.layout.base_lr_mult}")
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


# ----------------------------------------------------------------------------- setup


def prepare_data(cfg: TrainDiTConfig, vae: VAE, dist: Dist, progress: bool) -> tuple[LatentSet, list[Path]]:
    """Build (or reuse) the latent caches of every data folder, shards spread over the ranks."""
    try:
        cfg.clips.validate(vae.cfg.time_down, vae.cfg.space_down)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    text, caches = None, []
    for d in cfg.data:
        cdir = cache_dir(cfg, d)
        if not cache_complete(d, cdir):
            text = text or load_text_encoder(cfg.text_encoder, cfg.max_text_tokens)
            build_cache(d, vae, text, cdir, progress and dist.main, cfg.clips, dist.rank, dist.world)
            dist.barrier()
            if dist.main:
                finish_cache(d, cdir, len(read_records(d)), text)
            dist.barrier()
        caches.append(cdir)
    data = LatentSet(caches, cfg.preload_gb)
    if data.skipped and dist.main:
        print(f"{len(data.skipped)} videos skipped (listed in {', '.join(str(c / 'skipped.jsonl') for c in caches)}), "
              f"e.g. {data.skipped[0]['file']}: {data.skipped[0]['reason']}")
    return data, caches


def cache_dir(cfg: TrainDiTConfig, folder: str) -> Path:
    """Where the latent cache of data folder ``folder`` lives for this run's VAE, text encoder and clips."""
    tag = cfg.clips.tag()
    root = Path(cfg.cache or Path(cfg.out) / "cache") / cache_key(cfg.vae, cfg.text_encoder, cfg.max_text_tokens)
    return root / (Path(folder).resolve().name + (f"-{tag}" if tag else ""))


def take_up(cfg: TrainDiTConfig, data: LatentSet, folders: list[str]) -> int:
    """Add the data folders not yet in ``cfg.data`` to a running set; their caches must be
    complete (a steering hook hands over what another process has encoded). Returns the clips added."""
    new = [str(d) for d in folders if str(d) not in cfg.data]
    for d in new:
        if not cache_complete(d, cache_dir(cfg, d)):
            raise ConfigError(f"data folder {d}: its latent cache {cache_dir(cfg, d)} is not complete; only "
                              f"complete caches can join a running run")
    added = data.extend([cache_dir(cfg, d) for d in new])
    cfg.data = [*cfg.data, *new]
    return added


def check_geometry(data: LatentSet, mcfg: DiTConfig, cfg: TrainDiTConfig, vae: VAE) -> None:
    """Clear errors for latents or sample sizes the patch grid cannot tile."""
    pt, ph, pw = mcfg.patch
    for c, t, h, w in data.buckets:
        if t % pt or h % ph or w % pw:
            raise ConfigError(f"model.patch={list(mcfg.patch)} does not tile cached latents of (T', H', W') = {(t, h, w)}: "
                              f"choose clips.frames/clips.sizes or a patch that divides them")
    step = vae.cfg.space_down * max(ph, pw)
    if cfg.sample_every and any(s % step for s in cfg.sample_size):
        raise ConfigError(f"sample_size={cfg.sample_size} must be multiples of {step} (VAE downsampling x patch)")


def _hold(where: str, step: int, out: Path) -> None:
    """Tests only: TENKU_TEST_HOLD=where:step parks the process here (after touching out/.held)
    so a test can SIGKILL it at a known point (mid-checkpoint or between checkpoints)."""
    if os.environ.get("TENKU_TEST_HOLD") == f"{where}:{step}":
        (out / ".held").write_text(f"{where}:{step}:{os.getpid()}")
        while True:
            time.sleep(1)


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
    beside the trainer this way). A run steered so is not resumed exactly."""
    dist = init_distributed(cfg.device, cfg.parallel.timeout_s)
    try:
        if steer is not None and dist.active:
            raise ConfigError("steer works on one process only (its answers could differ between ranks)")
        return _train(cfg, dist, progress, stop_after, steer)
    finally:
        dist.close()


def _train(cfg: TrainDiTConfig, dist: Dist, progress: bool, stop_after: int | None,
           steer: Steer | None = None) -> dict[str, float]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    accum, world = cfg.parallel.grad_accum, dist.world
    if cfg.parallel.mode == "fsdp" and not dist.active:
        raise ConfigError("parallel.mode=fsdp shards over a process group: launch with torchrun (or --nproc N, N >= 1)")
    if cfg.batch_size % (world * accum):
        raise ConfigError(f"batch_size={cfg.batch_size} (global) must be a multiple of ranks x parallel.grad_accum = "
                          f"{world} x {accum}")
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    vae = VAE.load(cfg.vae).to(dist.device)
    data, caches = prepare_data(cfg, vae, dist, progress)
    empty = empty_states(caches[0])
    masks = None
    grounded = bool(cfg.model.get("grounding"))
    if cfg.object_weight or cfg.shape_head or grounded:
        try:
            masks = ObjectMasks(data, {str(c): d for c, d in zip(caches, cfg.data)}, vae.cfg.time_down, vae.cfg.space_down)
        except ValueError as e:
            raise ConfigError(f"{'object_weight' if cfg.object_weight else 'shape_head'}: {e}") from None
    text_dim = data.captions[0][0].shape[-1]
    mcfg = DiTConfig(**{**DIT_SIZES[cfg.size], "in_channels": vae.cfg.latent_channels, "text_dim": text_dim, **cfg.model})
    check_geometry(data, mcfg, cfg, vae)

    # model: the same initial weights on every rank, loaded from a checkpoint before wrapping
    torch.manual_seed(cfg.seed)
    raw = DiT(mcfg)
    src = resolve_resume(out, cfg.resume)
    state: dict[str, Any] = json.loads((src / "state.json").read_text()) if src else {}
    sharded_src = bool(src) and (src / "sharded").is_dir()
    full_ema: dict[str, torch.Tensor] | None = None
    if src and not sharded_src:
        raw.load_state_dict(load_file(str(src / "model.safetensors")))
        full_ema = load_file(str(src / "ema" / "model.safetensors"))
    elif not src and cfg.init:
        load_init(raw, cfg.init)
    if not (cfg.parallel.mode == "fsdp" and dist.device.type == "cuda"):
        raw.to(dist.device)  # (fully_shard moves each block to the GPU itself, shard by shard: no full copy there)
    raw.train()
    model = parallelize(raw, cfg.parallel, dist)
    sharded = is_sharded(model)
    if sharded_src and not sharded:
        raise ConfigError(f"{src} is a sharded (fsdp) checkpoint: resume it with parallel.mode=fsdp under torchrun")
    params = [(clean_name(n), p) for n, p in model.named_parameters()]
    ema = {n: (full_ema[n].to(p.device, p.dtype) if full_ema is not None and not sharded else p.detach().clone()) for n, p in params}
    if sharded and full_ema is not None:  # a full checkpoint resumed under fsdp: shard the EMA like the weights
        from torch.distributed.tensor import distribute_tensor

        ema = {n: distribute_tensor(full_ema[n].to(dist.device), p.device_mesh, p.placements) for n, p in params}
    torch.manual_seed(cfg.seed + 1 + dist.rank)  # each rank its own stream for anything not drawn per sample
    groups = [[p for n, p in params if not n.startswith("grounding.")], [p for n, p in params if n.startswith("grounding.")]]
    mults = [cfg.layout.base_lr_mult, cfg.layout.lr_mult] if groups[1] else [1.0]  # the config's, also on resume
    opt = torch.optim.AdamW([{"params": g} for g in groups if g], lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    try:
        head = ShapeHead(raw, cfg.shape_head, cfg.shape_head_block, cfg.lr, dist.device) if cfg.shape_head else None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    step = int(state.get("step", 0))
    counters = {"skipped": int(state.get("skipped", 0)), "bad_in_row": 0}
    if src:
        if sharded_src:
            load_sharded(src, model, ema, opt)
        elif not sharded:
            load_optimizer(opt, src / "optim.safetensors")
        elif dist.main:
            print(f"note: {src} is a full checkpoint resumed under fsdp: weights and EMA restored, optimizer moments restart")
        if head is not None and not head.load(src) and dist.main:
            print(f"note: {src} has no shape head: it starts afresh")
        rng_file = src / "rng" / f"rank-{dist.rank:05d}.safetensors"
        if rng_file.is_file():
            torch.set_rng_state(load_file(str(rng_file))["cpu"])
    if dist.main:
        _trim_log(out / "log.jsonl", step)
        print(f"DiT {sum(p.numel() for p in raw.parameters()) / 1e6:.2f}M params, {len(data)} clips in {len(data.buckets)} "
              f"shapes, {world} rank(s) x {accum} micro-step(s), {'resuming ' + str(src) if src else ('from ' + cfg.init if cfg.init else 'from scratch')} -> {out}")

    # the EMA's and the parameters' tensors as they are after any loading (the parameters themselves, not
    # detached copies: under FSDP a copy could outlive the storage it points at)
    ema_list, param_list = [ema[n] for n, _ in params], [p for _, p in params]
    sampler = BucketSampler(data.buckets, cfg.batch_size, cfg.seed)
    n_params = sum(p.numel() for p in raw.parameters())
    peak = peak_flops(dist.device, cfg.peak_tflops) * world
    tb = _tensorboard(out / "tb") if dist.main else None
    log = open(out / "log.jsonl", "a") if dist.main else None
    bar = tqdm(total=cfg.steps, initial=step, desc="train dit", unit="step", disable=not (progress and dist.main))
    last: dict[str, float] = {}
    busy, seen, tokens, flops = 0.0, 0, 0, 0.0  # throughput counts training time, not checkpoints or samples
    first = step
    if grounded:  # each object's phrase pooled once (tenku.layout.pool_phrases); layouts kept per clip
        from tenku.layout import pool_phrases

        text, pooled, lay_cache, split = load_text_encoder(cfg.text_encoder, cfg.max_text_tokens), {}, {}, LayoutLog()
        phrases = lambda ps: pool_phrases(text, ps, pooled)  # noqa: E731
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    while step < end:
        if steer is not None and (said := steer(step)):
            if "steps" in said:
                cfg.steps = bar.total = max(step + 1, int(said["steps"]))
                end = cfg.steps if stop_after is None else min(cfg.steps, first + stop_after)
            if said.get("data") and (added := take_up(cfg, data, said["data"])):
                check_geometry(data, mcfg, cfg, vae)
                if masks is not None:
                    masks.folders.update({str(cache_dir(cfg, d)): d for d in cfg.data})
                    masks.check()
                sampler = BucketSampler(data.buckets, cfg.batch_size, cfg.seed)
                bar.write(f"step {step}: {added} clips more, {len(data)} in all")
            save_config(cfg, out / "config.yaml")  # the run as it now stands
        t0 = time.perf_counter()
        rng = step_rng(cfg, step)
        idx = sampler.global_batch(step)
        frames = data.shapes[idx[0]][1]
        t = 1 if frames > 1 and rng.random() < cfg.cond.image_prob else frames  # the causal VAE's first latent frame is the image alone
        rngs = sample_rngs(cfg, step, len(idx))
        cond = sample_condition_masks(rngs, t, cfg.cond)  # (B, t) for the whole global batch
        keep = float((~cond).sum().clamp_min(1))  # the loss is a mean over the global batch's generated frames
        for g, mult in zip(opt.param_groups, mults):
            g["lr"] = lr_at(step, cfg) * mult
        opt.zero_grad(set_to_none=True)
        if head:
            head.begin(lr_at(step, cfg))
        local = torch.zeros((), dtype=torch.float64, device=dist.device)
        c, _, h, w = data.shapes[idx[0]]
        cond_dev = cond.to(dist.device)
        noise, sigma = step_noise(rng, (len(idx), c, t, h, w), cond_dev, cfg, dist.device)
        for micro in range(accum):
            sl = BucketSampler.split(len(idx), dist.rank, world, accum, micro)
            # moved in the cache's bf16 and widened there: half the copy, and no conversion on the host
            x0 = torch.stack([data.latents[i] if t == frames else data.latents[i][:, :t] for i in idx[sl]])
            x0 = x0.to(dist.device).float()
            ctx, ctx_mask = text_batch(data, idx[sl], rngs[sl], cfg, empty)
            weight = None if not cfg.object_weight else 1 + cfg.object_weight * masks.batch(idx[sl], t).to(dist.device)
            lay = layout_batch(masks, idx[sl], rngs[sl], t, cfg, phrases, vae.cfg.time_down, lay_cache) if grounded else None
            with sync_gradients(model, micro == accum - 1):
                part = flow_loss_sum(model, x0, noise[sl], sigma[sl], ctx.to(dist.device).float(), ctx_mask.to(dist.device),
                                     cond_dev[sl], cfg, weight, lay, split if grounded else None)
                aux = head.loss_sum(masks.labels(idx[sl], t).to(dist.device), cond_dev[sl], sigma[sl]) if head else 0.0
                ((part + aux) * (world / keep)).backward()  # DDP/FSDP average over ranks: this makes it the global mean
            local += part.detach().double()
        loss = float(dist.sum(local)) / keep
        gnorm = float(grad_norm_clip(model, cfg.grad_clip))
        if math.isfinite(loss) and math.isfinite(gnorm):
            opt.step()
            if head:
                head.step(world)
            counters["bad_in_row"] = 0
            with torch.no_grad():
                d = min(cfg.ema, (1 + step) / (10 + step))  # fast EMA early on
                torch._foreach_lerp_(ema_list, param_list, 1 - d)  # one call, not one per tensor (GPU launches)
        else:  # skip the update; a run of them is a real fault
            counters["skipped"] += 1
            counters["bad_in_row"] += 1
            if dist.main:
                bar.write(f"step {step}: non-finite loss {loss} or gradient norm {gnorm}: update skipped "
                          f"({counters['bad_in_row']} in a row, {counters['skipped']} in all)")
            if counters["bad_in_row"] >= cfg.max_bad_steps:
                raise RuntimeError(f"{counters['bad_in_row']} non-finite updates in a row at step {step}: lower lr "
                                   f"(now {cfg.lr}) and resume from {out / 'ckpt'}")
        step += 1
        n_tok = math.prod(x0.shape[2:]) // math.prod(mcfg.patch)
        seen += len(idx)
        tokens += len(idx) * n_tok
        flops += len(idx) * dit_train_flops(n_params, n_tok, mcfg.depth, mcfg.dim, ctx.shape[1])
        busy += time.perf_counter() - t0
        bar.update()
        if log is not None and (step % cfg.log_every == 0 or step == end):
            dt = max(busy, 1e-9)
            last = {"step": step, "loss": loss, "grad_norm": gnorm, "lr": lr_at(step - 1, cfg), "samples/s": seen / dt,
                    "tokens/s": tokens / dt, "mfu": flops / dt / peak, "params": n_params, "skipped": counters["skipped"]}
            last.update(head.logged() if head else {})  # the shape head's cross-entropy and accuracy (this rank's)
            last.update(split.logged() if grounded else {})  # loss with and without the layout (this rank's)
            log.write(json.dumps(last) + "\n")
            log.flush()
            for k in ("loss", "grad_norm", "lr", "samples/s", "tokens/s", "mfu"):
                tb.add_scalar(k, last[k], step) if tb else None
            bar.set_postfix(loss=f"{loss:.4f}", sps=f"{seen / dt:.1f}", tps=f"{tokens / dt:.0f}", mfu=f"{100 * flops / dt / peak:.1f}%")
            busy, seen, tokens, flops = 0.0, 0, 0, 0.0
        _hold("step", step, out)
        if step % cfg.ckpt_every == 0 or step == end:
            save_checkpoint(out, step, model, ema, opt, vae, cfg, mcfg, sampler, dist, counters, head)
        if cfg.sample_every and (step % cfg.sample_every == 0 or step == end):
            ema_model = gather_ema(ema, mcfg, dist)
            if ema_model is not None:
                write_samples(out, step, ema_model, vae, load_text_encoder(cfg.text_encoder, cfg.max_text_tokens), cfg, dist.device)
    bar.close()
    if log is not None:
        log.close()
    if tb:
        tb.close()
    return last


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past the resumed step: they are about to be trained again."""
    if path.is_file():
        keep = [x for x in path.read_text().splitlines() if x.strip() and json.loads(x).get("step", 0) <= step]
        path.write_text("".join(x + "\n" for x in keep))


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoard is optional: log.jsonl has the same scalars
        return None
    return SummaryWriter(str(path))


def pipeline_config(cfg: TrainDiTConfig) -> PipelineConfig:
    return PipelineConfig(text_encoder=cfg.text_encoder, max_text_tokens=cfg.max_text_tokens, fps=cfg.fps, size=tuple(cfg.sample_size),  # type: ignore[arg-type]
                          frames=cfg.sample_frames, steps=cfg.sample_steps, guidance=cfg.sample_guidance,
                          context_guidance=cfg.sample_context_guidance)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(out: Path, step: int, model: torch.nn.Module, ema: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
                    vae: VAE, cfg: TrainDiTConfig, mcfg: DiTConfig, sampler: BucketSampler, dist: Dist,
                    counters: dict[str, int], head: ShapeHead | None = None) -> None:
    """A complete step folder (see the module docstring), then ``pipeline/`` with the EMA model.
    Every rank calls it; rank 0 commits."""
    if dist.main:
        tmp = begin_step_folder(out, step)
    dist.barrier()
    tmp = out / "checkpoints" / f".tmp-step-{step:07d}"
    if is_sharded(model):
        import torch.distributed.checkpoint as dcp

        dcp.save(sharded_state(model, ema, opt)[0], storage_writer=dcp.HuggingFaceStorageWriter(str(tmp / "sharded"), save_distributed=True))
    elif dist.main:
        save_dit(tmp, unwrap(model))
        _hold("ckpt", step, out)
        save_optimizer(opt, tmp / "optim.safetensors")
    if head is not None and dist.main:
        head.save(tmp)  # replicated on every rank: rank 0's copy
    (tmp / "rng").mkdir(exist_ok=True)
    save_file({"cpu": torch.get_rng_state()}, str(tmp / "rng" / f"rank-{dist.rank:05d}.safetensors"))
    ema_model = gather_ema(ema, mcfg, dist)
    dist.barrier()
    if ema_model is not None:
        if not is_sharded(model):
            save_dit(tmp / "ema", ema_model)
        write_json(tmp / "state.json", {"step": step, **sampler.position(step), "world": dist.world,
                                         "mode": "fsdp" if is_sharded(model) else "full", "skipped": counters["skipped"]})
        commit_step_folder(tmp, out, step, cfg.keep_checkpoints)
        ptmp = out / "pipeline.tmp"
        shutil.rmtree(ptmp, ignore_errors=True)
        save_pipeline(ptmp, vae, ema_model, pipeline_config(cfg))
        commit_folder(ptmp, out / "pipeline")
    dist.barrier()


def write_samples(out: Path, step: int, ema: DiT, vae: VAE, text: TextEncoder, cfg: TrainDiTConfig,
                  device: torch.device = torch.device("cpu")) -> None:
    from tenku.io import write_video

    pipe = Pipeline(vae, ema.to(device), text, pipeline_config(cfg), device)
    for i, prompt in enumerate(cfg.sample_prompts):
        frames = pipe.generate(prompt, seed=i)
        write_video(out / "samples" / f"step{step:07d}-{i}.mp4", frames, cfg.fps)
