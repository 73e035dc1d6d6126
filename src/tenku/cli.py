"""The ``tenku`` command. Each subcommand lives beside the code it drives and
registers itself here through ``add_parser(subparsers)``; the handler it sets
returns an exit code. A :class:`UsageError` becomes a one-line message and
exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

# module path of each subcommand group; each exposes add_parser(subparsers)
COMMANDS = ["tenku.world.cli", "tenku.generate", "tenku.train.cli", "tenku.prompts.cli", "tenku.eval.cli", "tenku.serve.cli",
            "tenku.serve.worker_cli", "tenku.serve.keys_cli", "tenku.layout"]


class UsageError(Exception):
    """A bad argument or input: printed as one line, exit code 2."""


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' of positive even integers -> (W, H); anything else is a UsageError."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"size {text!r} is not WxH (e.g. 128x128, 224x128)") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise UsageError(f"size {text!r}: width and height must be positive even integers (e.g. 128x128, 224x128)")
    return w, h


def _int_at_least(text: str, low: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {v}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def seed_int(text: str) -> int:
    """argparse type: a noise seed, an integer in [0, SEED_MAX] (as the HTTP API takes)."""
    from tenku import SEED_MAX

    v = _int_at_least(text, 0)
    if v > SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be at most {SEED_MAX} (2^31 - 1), got {v}")
    return v


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    v = _float(text)
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def fps_float(text: str) -> float:
    """argparse type: a frame rate in FPS_RANGE (as the HTTP API takes)."""
    from tenku import FPS_RANGE

    v = _float(text)
    if not FPS_RANGE[0] <= v <= FPS_RANGE[1]:
        raise argparse.ArgumentTypeError(f"must be between {FPS_RANGE[0]:g} and {FPS_RANGE[1]:g} frames a second, got {text}")
    return v


def nonneg_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    v = _float(text)
    if not (v >= 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def offload_mode(text: str) -> str:
    """argparse type: a ``tenku.memory`` offload mode (none, model or block)."""
    from tenku.memory import check_offload

    try:
        return check_offload(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_offload_arg(parser: argparse.ArgumentParser) -> None:
    """``--offload``, the same on every command that loads a pipeline."""
    parser.add_argument("--offload", type=offload_mode, default=None, metavar="{none,model,block}",
                        help="where the transformer waits on a GPU (tenku.memory; docs/wan.md): none (all on the GPU), "
                        "model (on the GPU only while it samples), block (one block at a time); default: the model "
                        "folder's setting (none). The output is the same.")


def build_parser() -> argparse.ArgumentParser:
    from tenku import __version__

    parser = argparse.ArgumentParser(prog="tenku", description="tenku: open text-to-video, Sora-style.")
    parser.add_argument("--version", action="version", version=f"tenku {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"tenku {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
