"""`tenku train`: one subcommand per model (`tenku train vae`, `tenku train dit`), and
`tenku cache` (latents and text states of video folders, ahead of training).

The same handlers run under torchrun: ``python -m torch.distributed.run --nproc_per_node=N
-m tenku.train dit ...`` (``tenku/train/__main__.py``). ``--nproc N`` is the one-machine
shortcut: it re-launches the command through torchrun with N processes."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tenku.cli import UsageError, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model (vae, dit)")
    tsub = train.add_subparsers(dest="train_command", metavar="MODEL", required=True)

    v = tsub.add_parser("vae", help="train the causal video autoencoder",
                        description="Train the causal video autoencoder. Re-running with the same out= resumes from out/ckpt.")
    v.add_argument("--config", help="YAML run config, e.g. configs/vae-world.yaml")
    v.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. steps=2000 data.crop=96 model.latent_channels=8 out=runs/x")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.add_argument("--nproc", type=positive_int, default=0, metavar="N",
                   help="run N processes on this machine through torchrun (DDP; one per GPU, gloo on CPUs)")
    v.set_defaults(func=cmd_vae, command="train vae", torchrun_module="vae")

    d = tsub.add_parser("dit", help="train the diffusion transformer on cached latents",
                        description="Train the diffusion transformer. Re-running with the same out= resumes from out/ckpt.")
    d.add_argument("--config", help="YAML run config, e.g. configs/dit-world.yaml")
    d.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. steps=2000 size=S batch_size=8 data=[data/world] vae=models/tenku-world/vae")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--resume", metavar="auto|none|DIR", help="auto (default): the newest complete checkpoint in out/; "
                   "none: start fresh; DIR: that checkpoint folder")
    d.add_argument("--nproc", type=positive_int, default=0, metavar="N",
                   help="run N processes on this machine through torchrun (one per GPU; gloo on CPUs)")
    d.add_argument("--stop-after", type=positive_int, metavar="STEPS",
                   help="end this invocation after STEPS steps, with a checkpoint (the schedule still spans steps=)")
    d.set_defaults(func=cmd_dit, command="train dit", torchrun_module="dit")
    add_cache_parser(sub)


def add_cache_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("cache", help="precompute latents and text states of video folders for `tenku train dit`",
                       description="Encode every video of each folder (metadata.jsonl with file and caption) with the VAE "
                                   "and its captions with the text encoder into safetensors shards. Resumable (finished "
                                   "shards are kept); under torchrun the shards are spread over the ranks. Unusable "
                                   "videos are skipped and listed in skipped.jsonl.")
    c.add_argument("dirs", nargs="+", metavar="DIR", help="dataset folders")
    c.add_argument("--config", help="a `tenku train dit` run config: its vae, text_encoder, cache and clips are used")
    c.add_argument("--vae", help="VAE folder (overrides the config)")
    c.add_argument("--text-encoder", help="text encoder (default minilm)")
    c.add_argument("--out", help="cache root (default: the config's cache, else <config out>/cache)")
    c.add_argument("--frames", type=int, help="clip length in frames (1 + 4k); default: whole videos")
    c.add_argument("--fps", type=float, help="resample to this frame rate; default: native")
    c.add_argument("--size", action="append", metavar="WxH", help="a size bucket (repeatable): each video is scaled "
                   "to cover the bucket nearest its aspect ratio and centre-cropped")
    c.add_argument("--clips-per-video", type=positive_int, help="non-overlapping clips per video (default 1)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.add_argument("--nproc", type=positive_int, default=0, metavar="N", help="encode with N processes through torchrun")
    c.set_defaults(func=cmd_cache, command="cache", torchrun_module="cache")


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The command's own arguments, rebuilt from the parsed namespace (minus --nproc)."""
    out = list(getattr(args, "dirs", []))
    for flag, name in [("--config", "config"), ("--resume", "resume"), ("--stop-after", "stop_after"), ("--vae", "vae"),
                       ("--text-encoder", "text_encoder"), ("--out", "out"), ("--frames", "frames"), ("--fps", "fps"),
                       ("--clips-per-video", "clips_per_video")]:
        if getattr(args, name, None) is not None:
            out += [flag, str(getattr(args, name))]
    for size in getattr(args, "size", None) or []:
        out += ["--size", size]
    if args.quiet:
        out.append("--quiet")
    return out + list(getattr(args, "overrides", []))


def relaunch(args: argparse.Namespace) -> int | None:
    """With --nproc N outside torchrun: run this command again under torchrun with N processes
    on this machine; returns its exit code (None: go on in this process)."""
    if not getattr(args, "nproc", 0) or "WORLD_SIZE" in os.environ:
        return None
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "tenku.train", args.torchrun_module, *_forwarded(args)]
    return subprocess.call(cmd)


def check_out(out: str | Path) -> None:
    """A UsageError when the run folder ``out`` cannot be made or written, before any training
    (or any torchrun relaunch) starts."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise UsageError(f"out={p} exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot make out={p}: {e.strerror or e}") from None
    if not os.access(p, os.W_OK):
        raise UsageError(f"cannot write to out={p}: permission denied")


def cmd_vae(args: argparse.Namespace) -> int:
    from tenku.config import ConfigError
    from tenku.train.vae import check_data, load_train_config, train

    try:
        cfg = load_train_config(args.config, args.overrides)
        check_data(cfg)
    except (ConfigError, ValueError) as e:
        raise UsageError(str(e)) from None
    check_out(cfg.out)
    code = relaunch(args)  # after the checks: a bad config fails once, not once per process
    if code is not None:
        return code
    last = train(cfg, progress=not args.quiet)
    shown = {k: last[k] for k in ("step", "loss", "psnr", "val_psnr", "val_ssim", "clips/s", "frames/s") if k in last}
    print("done: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()) + f"; checkpoint in {cfg.out}/ckpt")
    return 0


def cmd_dit(args: argparse.Namespace) -> int:
    from tenku.config import ConfigError
    from tenku.train.dit import load_train_config, train

    try:
        cfg = load_train_config(args.config, args.overrides + ([f"resume={args.resume}"] if args.resume else []))
    except (ConfigError, ValueError) as e:
        raise UsageError(str(e)) from None
    if args.nproc and cfg.batch_size % (args.nproc * cfg.parallel.grad_accum):
        raise UsageError(f"batch_size={cfg.batch_size} (global) must be a multiple of --nproc x parallel.grad_accum = "
                         f"{args.nproc} x {cfg.parallel.grad_accum}")
    check_out(cfg.out)
    code = relaunch(args)  # after the checks: a bad config fails once, not once per process
    if code is not None:
        return code
    try:
        last = train(cfg, progress=not args.quiet, stop_after=args.stop_after)
    except (ConfigError, ValueError) as e:
        raise UsageError(str(e)) from None
    if last:
        print(f"done: step {last.get('step')}, loss {last.get('loss', float('nan')):.4g}; pipeline in {cfg.out}/pipeline")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tenku.config import ConfigError
    from tenku.data.latents import build_cache, cache_key, finish_cache, read_records
    from tenku.text import load_text_encoder
    from tenku.train.dit import load_train_config
    from tenku.train.distributed import init_distributed
    from tenku.train.dit_run import load_autoencoder

    code = relaunch(args)
    if code is not None:
        return code
    over = [f"data=[{','.join(args.dirs)}]"]
    over += [f"vae={args.vae}"] if args.vae else []
    over += [f"text_encoder={args.text_encoder}"] if args.text_encoder else []
    over += [f"clips.frames={args.frames}"] if args.frames else []
    over += [f"clips.fps={args.fps}"] if args.fps else []
    over += [f"clips.clips_per_video={args.clips_per_video}"] if args.clips_per_video else []
    if args.size:
        from tenku.cli import parse_size

        over.append("clips.sizes=[" + ",".join(f"[{h},{w}]" for w, h in map(parse_size, args.size)) + "]")
    try:
        cfg = load_train_config(args.config, over)
        vae = load_autoencoder(cfg.vae)
        cfg.clips.validate(vae.cfg.time_down, vae.cfg.space_down)
        for d in cfg.data:
            read_records(d)
    except (ConfigError, ValueError) as e:
        raise UsageError(str(e)) from None
    dist = init_distributed(cfg.device)
    vae = vae.to(dist.device)
    text = load_text_encoder(cfg.text_encoder, cfg.max_text_tokens)
    root = Path(args.out or cfg.cache or Path(cfg.out) / "cache") / cache_key(cfg.vae, cfg.text_encoder, cfg.max_text_tokens)
    tag = cfg.clips.tag()
    try:
        for d in cfg.data:
            cdir = root / (Path(d).resolve().name + (f"-{tag}" if tag else ""))
            build_cache(d, vae, text, cdir, not args.quiet and dist.main, cfg.clips, dist.rank, dist.world)
            dist.barrier()
            if dist.main:
                recs = read_records(d)
                skipped = finish_cache(d, cdir, len(recs), text)
                print(f"{d}: {len(recs) - len(skipped)} of {len(recs)} videos cached in {cdir}")
                for r in skipped:
                    print(f"  skipped {r['file']}: {r['reason']}")
            dist.barrier()
    finally:
        dist.close()
    return 0
