"""`tenku world`: render captioned datasets and preview scenes from a prompt."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from tenku.cli import UsageError, fps_float, parse_size, positive_int, seed_int

MAX_OBJECTS = 4


def add_parser(sub: argparse._SubParsersAction) -> None:
    world = sub.add_parser("world", help="the procedural physics world: datasets and previews")
    wsub = world.add_subparsers(dest="world_command", metavar="WHAT", required=True)

    r = wsub.add_parser("render", help="render a captioned dataset of world videos with ground truth")
    r.add_argument("--count", type=positive_int, required=True, help="number of videos")
    r.add_argument("--size", default="128x128", help="WxH of even integers, or several comma-separated (each video picks one)")
    r.add_argument("--frames", type=positive_int, default=33, help="frames per video (>= 1; 1 gives images)")
    r.add_argument("--fps", type=fps_float, default=8.0)
    r.add_argument("--out", required=True, help="dataset folder (new, empty, or the same settings to resume)")
    r.add_argument("--seed", type=seed_int, default=0)
    r.add_argument("--max-objects", type=int, default=4, choices=[1, 2, 3, 4], help="objects per scene: 1 to this (default 4)")
    r.add_argument("--workers", type=positive_int, default=1, help="processes")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_render, command="world render")

    p = wsub.add_parser("preview", help="render one scene from a short prompt, e.g. 'a red ball bounces'")
    p.add_argument("prompt")
    p.add_argument("-o", "--out", default="preview.mp4", help="output .mp4 or .gif (a .json sidecar is written beside it)")
    p.add_argument("--size", default="128x128", help="WxH of even integers")
    p.add_argument("--frames", type=positive_int, default=33)
    p.add_argument("--fps", type=fps_float, default=8.0)
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(func=cmd_preview, command="world preview")


def _sizes(text: str) -> list[tuple[int, int]]:
    from tenku.world.spec import check_width

    sizes = [parse_size(s) for s in text.split(",")]
    for w, h in sizes:
        try:
            check_width(w / h)
        except ValueError as e:
            raise UsageError(f"size {w}x{h}: {e}") from None
    return sizes


def cmd_render(args: argparse.Namespace) -> int:
    from tenku.world.dataset import render_dataset

    sizes = _sizes(args.size)
    out = Path(args.out)
    try:
        t0 = time.time()
        summary = render_dataset(out, args.count, sizes, args.frames, args.fps, args.seed, args.workers, not args.quiet,
                                 args.max_objects)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except OSError as e:  # permission denied, a file in the way, disk full, ...
        raise UsageError(f"cannot write to {args.out}: {e.strerror or e}") from None
    dt = time.time() - t0
    print(f"{summary['videos']} videos in {out} ({summary['rendered']} rendered, {summary['resumed']} already there) in {dt:.1f}s")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from tenku.io import write_video
    from tenku.world.dataset import render_one
    from tenku.lang.parse import parse_prompt
    from tenku.world.sample import sample_scene

    sizes = _sizes(args.size)
    if len(sizes) != 1:
        raise UsageError(f"preview makes one video: give one size WxH, not {args.size!r}")
    w, h = sizes[0]
    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"output must end in .mp4 or .gif, got {out.name!r}")
    if not os.access(out.parent if str(out.parent) else Path("."), os.W_OK):
        raise UsageError(f"cannot write to {out.parent}: folder missing or not writable")
    parsed = parse_prompt(args.prompt)
    if parsed.unknown:
        from tenku.world.spec import PALETTE, SHAPES

        raise UsageError(
            f"did not understand {', '.join(repr(u) for u in parsed.unknown)} in the prompt; "
            f"colours: {', '.join(PALETTE)}; shapes: {', '.join(SHAPES)} (and synonyms such as ball, box, disc)"
        )
    for note in parsed.color_notes:  # "navy blue drawn as blue (nearest world colour)"
        print(f"note: {note}", file=sys.stderr)
    hints = parsed.object_hints() or None
    if hints and len(hints) > MAX_OBJECTS:
        raise UsageError(f"the prompt asks for {len(hints)} objects; a world scene holds 1 to {MAX_OBJECTS}")
    spec = sample_scene(np.random.default_rng(args.seed), width=w / h, objects=hints, background=parsed.background_hint())
    video, doc = render_one(spec, w, h, args.fps, args.frames, args.seed)
    try:
        write_video(out, video, args.fps)
    except (PermissionError, OSError) as e:
        raise UsageError(f"cannot write {out}: {e}") from None
    side = out.with_suffix(".json")
    side.write_text(json.dumps({"prompt": args.prompt, "seed": args.seed, "size": [w, h], "fps": args.fps, "frames": args.frames, **doc}, indent=1))
    print(doc["caption"])
    print(f"wrote {out} ({args.frames} frames, {w}x{h}, {args.fps:g} fps) and {side.name}")
    return 0
