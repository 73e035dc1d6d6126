"""`tenku train`: one subcommand per model (`tenku train vae`; `dit` joins the same group)."""

from __future__ import annotations

import argparse

from tenku.cli import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model (vae, dit)")
    tsub = train.add_subparsers(dest="train_command", metavar="MODEL", required=True)

    v = tsub.add_parser("vae", help="train the causal video autoencoder",
                        description="Train the causal video autoencoder. Re-running with the same out= resumes from out/ckpt.")
    v.add_argument("--config", help="YAML run config, e.g. configs/vae-world.yaml")
    v.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. steps=2000 data.crop=96 model.latent_channels=8 out=runs/x")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_vae, command="train vae")

    d = tsub.add_parser("dit", help="train the diffusion transformer on cached latents",
                        description="Train the diffusion transformer. Re-running with the same out= resumes from out/ckpt.")
    d.add_argument("--config", help="YAML run config, e.g. configs/dit-world.yaml")
    d.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. steps=2000 size=S batch_size=8 data=[data/world] vae=models/tenku-world/vae")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_dit, command="train dit")


def cmd_vae(args: argparse.Namespace) -> int:
    from tenku.config import ConfigError
    from tenku.train.vae import check_data, load_train_config, train

    try:
        cfg = load_train_config(args.config, args.overrides)
        check_data(cfg)
    except (ConfigError, ValueError) as e:
        raise UsageError(str(e)) from None
    last = train(cfg, progress=not args.quiet)
    shown = {k: last[k] for k in ("step", "loss", "psnr", "val_psnr", "val_ssim", "clips/s", "frames/s") if k in last}
    print("done: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()) + f"; checkpoint in {cfg.out}/ckpt")
    return 0


def cmd_dit(args: argparse.Namespace) -> int:
    from tenku.config import ConfigError
    from tenku.train.dit import load_train_config, train

    try:
        cfg = load_train_config(args.config, args.overrides)
    except (ConfigError, ValueError) as e:
        raise UsageError(str(e)) from None
    last = train(cfg, progress=not args.quiet)
    print(f"done: step {last.get('step')}, loss {last.get('loss', float('nan')):.4g}; pipeline in {cfg.out}/pipeline")
    return 0
