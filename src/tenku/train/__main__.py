"""``python -m tenku.train {vae,dit,cache} ...``: the entry point for torchrun, e.g.

    python -m torch.distributed.run --nproc_per_node=8 -m tenku.train dit --config configs/dit-world.yaml

Same arguments as ``tenku train dit`` / ``tenku cache``; every rank runs this."""

from __future__ import annotations

import argparse
import sys

from tenku.cli import UsageError


def main(argv: list[str] | None = None) -> int:
    from tenku.train.cli import add_parser

    parser = argparse.ArgumentParser(prog="python -m tenku.train")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(["train", *argv] if argv and argv[0] in ("vae", "dit") else argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"python -m tenku.train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
