"""`tenku expand` (a prompt -> a detailed caption) and `tenku caption` (recaption a dataset folder)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tenku.cli import UsageError, fps_float, nonneg_int, parse_size, positive_float, positive_int, seed_int


def add_llm_args(p: argparse.ArgumentParser, timeout: float) -> None:
    """--llm-url/--llm-model/--api-key-env/--timeout/--retries (defaults from TENKU_LLM_URL / TENKU_LLM_MODEL)."""
    g = p.add_argument_group("LLM (any OpenAI-compatible chat-completions endpoint)")
    g.add_argument("--llm-url", default=os.environ.get("TENKU_LLM_URL"),
                   help="API base, e.g. http://localhost:8000/v1 (default: $TENKU_LLM_URL)")
    g.add_argument("--llm-model", default=os.environ.get("TENKU_LLM_MODEL"), help="model name (default: $TENKU_LLM_MODEL)")
    g.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="environment variable holding the API key (default: TENKU_LLM_API_KEY, then OPENAI_API_KEY)")
    g.add_argument("--timeout", type=positive_float, default=timeout, help="seconds per request (default %(default)s)")
    g.add_argument("--retries", type=nonneg_int, default=2, help="extra attempts after a failure (default %(default)s)")


def llm_config(args: argparse.Namespace):  # -> LLMConfig | None
    from tenku.prompts.llm import LLMConfig

    if not args.llm_url:
        if args.llm_model:
            raise UsageError("--llm-model needs --llm-url")
        return None
    if not args.llm_model:
        raise UsageError("--llm-url needs --llm-model (or set TENKU_LLM_MODEL)")
    if not args.llm_url.startswith(("http://", "https://")):
        raise UsageError(f"--llm-url must start with http:// or https://, got {args.llm_url!r}")
    return LLMConfig(args.llm_url, args.llm_model, args.api_key_env, timeout=args.timeout, retries=args.retries)


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("expand", help="expand a short prompt into a detailed caption")
    e.add_argument("prompt")
    e.add_argument("--seed", type=seed_int, default=0, help="fills what the prompt leaves open (default %(default)s)")
    e.add_argument("--size", default="128x128", help="WxH of the clip (its aspect ratio shapes the scene)")
    e.add_argument("--frames", type=positive_int, default=33)
    e.add_argument("--fps", type=fps_float, default=8.0)
    e.add_argument("--json", action="store_true", help="print the whole expansion (caption, spec, warnings) as JSON")
    add_llm_args(e, timeout=30.0)
    e.set_defaults(func=cmd_expand, command="expand")

    c = sub.add_parser("caption", help="recaption a dataset folder (ground truth for world videos, a vision LLM for others)")
    c.add_argument("dir", help="dataset folder holding metadata.jsonl")
    c.add_argument("--jobs", type=positive_int, default=4, help="parallel requests (default %(default)s)")
    c.add_argument("--frames", type=positive_int, default=4, help="frames sent per video (default %(default)s)")
    c.add_argument("--max-side", type=positive_int, default=512, help="longest side of a sent frame in pixels")
    c.add_argument("--seed", type=seed_int, default=0, help="wording of ground-truth captions (default %(default)s)")
    c.add_argument("--redo", action="store_true", help="forget earlier progress and recaption everything")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    add_llm_args(c, timeout=120.0)
    c.set_defaults(func=cmd_caption, command="caption")


def cmd_expand(args: argparse.Namespace) -> int:
    from tenku.prompts.expand import expand

    w, h = parse_size(args.size)
    try:
        out = expand(args.prompt, args.seed, llm=llm_config(args), aspect=w / h, frames=args.frames, fps=args.fps)
    except ValueError as e:
        raise UsageError(f"--size {w}x{h}: {e}") from None
    if args.json:
        print(json.dumps(out.to_dict(), indent=1))
    else:
        print(out.caption)
    if out.unknown:
        print(f"unknown words: {', '.join(out.unknown)}", file=sys.stderr)
    for warning in out.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from tenku.prompts.recaption import PROGRESS, recaption

    root = Path(args.dir)
    if not (root / "metadata.jsonl").is_file():
        raise UsageError(f"{root}: no metadata.jsonl (is this a dataset folder?)")
    if not os.access(root, os.W_OK):
        raise UsageError(f"cannot write to {root}")
    t0 = time.time()
    try:
        s = recaption(root, llm_config(args), jobs=args.jobs, frames=args.frames, max_side=args.max_side,
                      seed=args.seed, redo=args.redo, progress=not args.quiet)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"{s.captioned} captioned, {s.skipped} already done, {len(s.failed)} failed of {s.total} "
          f"in {time.time() - t0:.1f}s; progress in {root / PROGRESS}")
    if s.failed:
        print(f"failed ({len(s.failed)}); re-run to retry them:", file=sys.stderr)
        for f, err in s.failed:
            print(f"  {f}: {err}", file=sys.stderr)
        return 1
    return 0
