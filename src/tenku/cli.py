"""The ``tenku`` command. Each subcommand lives beside the code it drives and
registers itself here through ``add_parser(subparsers)``; the handler it sets
returns an exit code. A :class:`UsageError` becomes a one-line message and
exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

# module path of each subcommand group; each exposes add_parser(subparsers)
COMMANDS = ["tenku.world.cli"]


class UsageError(Exception):
    """A bad argument or input: printed as one line, exit code 2."""


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
