"""Everything around the transformer's training loop (``tenku.train.dit``): the latent caches,
the model with its EMA, optimizer and auxiliary objectives built and resumed (``setup``), the
checkpoint and pipeline export (``save``), sample videos, and the steering hook's answers."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file

from tenku.config import ConfigError, save_config
from tenku.data.latents import LatentSet, build_cache, cache_complete, cache_key, empty_states, finish_cache, read_records
from tenku.data.objects import ObjectMasks
from tenku.data.sampler import BucketSampler
from tenku.dit.model import DIT_SIZES, DiT, DiTConfig, save_dit
from tenku.pipeline import Pipeline, PipelineConfig, save_pipeline
from tenku.text import TextEncoder, load_text_encoder
from tenku.train.checkpoint import (commit_folder, gather_ema, load_init, load_optimizer, load_rng, load_sharded, read_state,
                                    resolve_resume, save_checkpoint, save_optimizer, save_sharded)
from tenku.train.distributed import Dist, clean_name, is_sharded, parallelize, unwrap
from tenku.train.layouts import Layouts, lr_groups
from tenku.train.loop import BadSteps, Ema
from tenku.train.objectives import Objectives
from tenku.vae.model import VAE

if TYPE_CHECKING:
    from tenku.train.dit import TrainDiTConfig


def load_autoencoder(folder: str) -> Any:
    """A tenku VAE folder, or a Wan folder's (or its vae/) ``AutoencoderKLWan`` (tenku.wan.vae)."""
    from tenku.wan.vae import WanVAE, is_wan_vae

    return WanVAE.load(folder) if is_wan_vae(folder) else VAE.load(folder)


def cache_dir(cfg: TrainDiTConfig, folder: str) -> Path:
    """Where the latent cache of data folder ``folder`` lives for this run's VAE, text encoder and clips."""
    tag = cfg.clips.tag()
    root = Path(cfg.cache or Path(cfg.out) / "cache") / cache_key(cfg.vae, cfg.text_encoder, cfg.max_text_tokens)
    return root / (Path(folder).resolve().name + (f"-{tag}" if tag else ""))


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


def check_geometry(data: LatentSet, mcfg: DiTConfig, cfg: TrainDiTConfig, vae: VAE) -> None:
    """Clear errors for latents or sample sizes the patch grid cannot tile."""
    pt, ph, pw = mcfg.patch
    for c, t, h, w in data.buckets:
        if t % pt or h % ph or w % pw:
            raise ConfigError(f"model.patch={list(mcfg.patch)} does not tile cached latents of (T', H', W') = {(t, h, w)}: "
                              f"choose clips.frames/clips.sizes or a patch that divides them")
    step = vae.cfg.space_down * max(ph, pw)
    if cfg.sample_every and any(s % step for s in cfg.sample.size):
        raise ConfigError(f"sample.size={list(cfg.sample.size)} must be multiples of {step} (VAE downsampling x patch)")


@dataclass
class DiTRun:
    """A transformer run as the loop sees it, built or resumed by ``setup``."""

    cfg: TrainDiTConfig
    dist: Dist
    out: Path
    vae: VAE
    data: LatentSet
    empty: torch.Tensor  # the empty prompt's text states (caption dropout)
    mcfg: DiTConfig
    raw: DiT  # the plain model; ``model`` is what training calls (DDP/FSDP/compiled)
    model: torch.nn.Module
    ema: Ema
    opt: torch.optim.Optimizer
    objectives: Objectives
    sampler: BucketSampler
    bad: BadSteps
    step: int
    src: Path | None  # the checkpoint resumed, if any
    n_params: int = 0  # the plain model's parameters (for the FLOP count)
    lr_mults: list[float] = field(default_factory=lambda: [1.0])  # per optimizer group, over the schedule's rate
    layouts: Layouts | None = None  # a grounded run's layout batches (model.grounding)


def setup(cfg: TrainDiTConfig, dist: Dist, progress: bool) -> DiTRun:
    """Check the run against this world, build the data, model, EMA, optimizer and objectives,
    and resume them from the checkpoint ``cfg.resume`` names (or start from ``cfg.init``).
    Every rank starts from the same weights; each then has its own RNG stream."""
    out, accum, world = Path(cfg.out), cfg.parallel.grad_accum, dist.world
    if cfg.parallel.mode == "fsdp" and not dist.active:
        raise ConfigError("parallel.mode=fsdp shards over a process group: launch with torchrun (or --nproc N, N >= 1)")
    if cfg.batch_size % (world * accum):
        raise ConfigError(f"batch_size={cfg.batch_size} (global) must be a multiple of ranks x parallel.grad_accum = "
                          f"{world} x {accum}")
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    vae = load_autoencoder(cfg.vae).to(dist.device)
    data, caches = prepare_data(cfg, vae, dist, progress)
    masks = None
    grounded = bool(cfg.model.get("grounding"))
    if cfg.object_weight or cfg.shape_head or grounded:
        try:
            masks = ObjectMasks(data, {str(c): d for c, d in zip(caches, cfg.data)}, vae.cfg.time_down, vae.cfg.space_down)
        except ValueError as e:
            key = "object_weight" if cfg.object_weight else "shape_head" if cfg.shape_head else "model.grounding"
            raise ConfigError(f"{key}: {e}") from None
    text_dim = data.captions[0][0].shape[-1]
    mcfg = DiTConfig(**{**DIT_SIZES[cfg.size], "in_channels": vae.cfg.latent_channels, "text_dim": text_dim, **cfg.model})
    check_geometry(data, mcfg, cfg, vae)

    torch.manual_seed(cfg.seed)
    raw = DiT(mcfg)
    src = resolve_resume(out, cfg.resume)
    state = read_state(src)
    sharded_src = bool(src) and (src / "sharded").is_dir()
    full_ema = None
    if src and not sharded_src:  # loaded before wrapping: the same weights on every rank
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
    start = None
    if full_ema is not None and not sharded:
        start = {n: full_ema[n].to(p.device, p.dtype) for n, p in params}
    elif full_ema is not None:  # a full checkpoint resumed under fsdp: shard the EMA like the weights
        from torch.distributed.tensor import distribute_tensor

        start = {n: distribute_tensor(full_ema[n].to(dist.device), p.device_mesh, p.placements) for n, p in params}
    ema = Ema(params, cfg.ema, start)
    torch.manual_seed(cfg.seed + 1 + dist.rank)  # each rank its own stream for anything not drawn per sample
    groups, mults = lr_groups(params, cfg.layout)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    objectives = Objectives(cfg.object_weight, masks, dist.device)
    layouts = None
    if grounded and masks is not None:
        layouts = Layouts(cfg.layout, masks, cfg.text_encoder, cfg.max_text_tokens, vae.cfg.time_down)
        objectives.log_layout_split()
    if cfg.shape_head:
        objectives.add_shape_head(raw, cfg.shape_head, cfg.shape_head_block, cfg.lr)
    if src:
        if sharded_src:
            load_sharded(src, model, ema.state, opt)
        elif not sharded:
            load_optimizer(opt, src / "optim.safetensors")
        elif dist.main:
            print(f"note: {src} is a full checkpoint resumed under fsdp: weights and EMA restored, optimizer moments restart")
        objectives.load(src, dist.main)
        load_rng(src, dist.rank)
    run = DiTRun(cfg, dist, out, vae, data, empty_states(caches[0]), mcfg, raw, model, ema, opt, objectives,
                 BucketSampler(data.buckets, cfg.batch_size, cfg.seed), BadSteps(cfg.max_bad_steps, int(state.get("skipped", 0))),
                 int(state.get("step", 0)), src, sum(p.numel() for p in raw.parameters()), mults, layouts)
    if dist.main:
        print(f"DiT {run.n_params / 1e6:.2f}M params, {len(data)} clips in {len(data.buckets)} shapes, {world} rank(s) x "
              f"{accum} micro-step(s), {'resuming ' + str(src) if src else ('from ' + cfg.init if cfg.init else 'from scratch')} -> {out}")
    return run


def save(run: DiTRun) -> None:
    """The checkpoint of ``run.step`` (``tenku.train.checkpoint``), then ``pipeline/`` with the
    EMA model. Every rank calls it."""
    sharded, dist = is_sharded(run.model), run.dist

    def parts(tmp: Path) -> DiT | None:
        if sharded:
            save_sharded(tmp, run.model, run.ema.state, run.opt)
        elif dist.main:
            save_dit(tmp, unwrap(run.model))
            save_optimizer(run.opt, tmp / "optim.safetensors")
        run.objectives.save(tmp, dist.main)
        ema_model = gather_ema(run.ema.state, run.mcfg, dist)
        if ema_model is not None and not sharded:
            save_dit(tmp / "ema", ema_model)
        return ema_model

    state = {**run.sampler.position(run.step), "world": dist.world, "mode": "fsdp" if sharded else "full", "skipped": run.bad.skipped}
    ema_model = save_checkpoint(run.out, run.step, dist, run.cfg.keep_checkpoints, parts, state)
    if ema_model is not None:
        ptmp = run.out / "pipeline.tmp"
        shutil.rmtree(ptmp, ignore_errors=True)
        save_pipeline(ptmp, run.vae, ema_model, pipeline_config(run.cfg))
        commit_folder(ptmp, run.out / "pipeline")
    dist.barrier()


def pipeline_config(cfg: TrainDiTConfig) -> PipelineConfig:
    """The exported pipeline's settings: the run's sampling settings with its text encoder."""
    import dataclasses

    return dataclasses.replace(cfg.sample, text_encoder=cfg.text_encoder, max_text_tokens=cfg.max_text_tokens)


def write_samples(run: DiTRun) -> None:
    """Sample videos of the EMA model for ``cfg.sample_prompts`` (rank 0; collective under FSDP)."""
    from tenku.io import write_video

    ema = gather_ema(run.ema.state, run.mcfg, run.dist)
    if ema is None:
        return
    cfg, device = run.cfg, run.dist.device
    text: TextEncoder = load_text_encoder(cfg.text_encoder, cfg.max_text_tokens)
    pipe = Pipeline(run.vae, ema.to(device), text, pipeline_config(cfg), device)
    for i, prompt in enumerate(cfg.sample_prompts):
        frames = pipe.generate(prompt, seed=i)
        write_video(run.out / "samples" / f"step{run.step:07d}-{i}.mp4", frames, cfg.sample.fps)


def take_up(run: DiTRun, folders: list[str]) -> int:
    """Add the data folders not yet in the run; their caches must be complete (a steering hook
    hands over what another process has encoded). Returns the clips added."""
    cfg = run.cfg
    new = [str(d) for d in folders if str(d) not in cfg.data]
    for d in new:
        if not cache_complete(d, cache_dir(cfg, d)):
            raise ConfigError(f"data folder {d}: its latent cache {cache_dir(cfg, d)} is not complete; only "
                              f"complete caches can join a running run")
    added = run.data.extend([cache_dir(cfg, d) for d in new])
    cfg.data = [*cfg.data, *new]
    return added


def steer_run(run: DiTRun, said: dict[str, Any], say: Any) -> None:
    """Apply a steering hook's answer (see ``tenku.train.dit.train``): a new step total, more data."""
    cfg = run.cfg
    if "steps" in said:
        cfg.steps = max(run.step + 1, int(said["steps"]))
    if said.get("data") and (added := take_up(run, said["data"])):
        check_geometry(run.data, run.mcfg, cfg, run.vae)
        run.objectives.data_changed({str(cache_dir(cfg, d)): d for d in cfg.data})
        run.sampler = BucketSampler(run.data.buckets, cfg.batch_size, cfg.seed)
        say(f"step {run.step}: {added} clips more, {len(run.data)} in all")
    save_config(cfg, run.out / "config.yaml")  # the run as it now stands
