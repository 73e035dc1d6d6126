"""`tenku generate`: text to an mp4, with a sidecar JSON of every parameter."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tenku.cli import UsageError, parse_size, positive_float, positive_int
from tenku.prompts.cli import add_llm_args, llm_config

BUNDLED = Path(__file__).resolve().parents[2] / "models" / "tenku-world"


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="generate a video from a text prompt")
    g.add_argument("prompt")
    g.add_argument("-o", "--out", default="video.mp4", help="output .mp4 or .gif; a .json sidecar goes beside it")
    g.add_argument("--model", default=None, help=f"pipeline folder (default: the bundled model, {BUNDLED.name})")
    g.add_argument("--size", default=None, help="WxH, e.g. 128x128, 224x128 (16:9), 128x224 (9:16)")
    g.add_argument("--seconds", type=positive_float, default=None, help="duration; rounded to a frame count the model makes")
    g.add_argument("--frames", type=positive_int, default=None, help="frame count (1 + 4k); overrides --seconds")
    g.add_argument("--fps", type=positive_float, default=None)
    g.add_argument("--steps", type=positive_int, default=None, help="sampling steps")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (1 = off)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--no-expand", action="store_true", help="use the prompt verbatim (default: expand it into a detailed caption)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    add_llm_args(g, timeout=30.0)
    g.set_defaults(func=cmd_generate, command="generate")


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tenku.io import write_video
    from tenku.pipeline import Pipeline

    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"output must end in .mp4 or .gif, got {out.name!r}")
    if not out.parent.exists():
        raise UsageError(f"output folder {out.parent} does not exist")
    size = parse_size(args.size) if args.size else None
    model = Path(args.model) if args.model else BUNDLED
    if not model.exists():
        raise UsageError(f"model folder {model} not found" + ("" if args.model else " (no bundled model yet: pass --model DIR)"))
    try:
        pipe = Pipeline.load(model, device=args.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    fps = args.fps or pipe.cfg.fps
    w, h = size or pipe.cfg.size
    if (w, h) != pipe.fit_size(w, h):
        fw, fh = pipe.fit_size(w, h)
        raise UsageError(f"size {w}x{h}: width and height must be multiples of {pipe.size_multiple}; nearest: {fw}x{fh}")
    if args.frames:
        frames = args.frames
        if frames != pipe.fit_frames(frames):
            raise UsageError(f"{frames} frames: the model makes 1 + {pipe.frame_step}k frames; nearest: {pipe.fit_frames(frames)}")
    elif args.seconds:
        frames = pipe.fit_frames(round(args.seconds * fps) + 1)  # n seconds span n * fps frame intervals
        if frames != round(args.seconds * fps) + 1:
            print(f"note: {args.seconds:g} s at {fps:g} fps rounded to {frames} frames (the model makes 1 + {pipe.frame_step}k)")
    else:
        frames = pipe.cfg.frames
    from tenku.prompts.expand import expand_prompt

    expansion = expand_prompt(args.prompt, args.seed, no_expand=args.no_expand, llm=llm_config(args),
                              aspect=w / h, frames=frames, fps=fps)
    for warning in expansion.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if expansion.unknown:
        print(f"warning: not understood: {', '.join(expansion.unknown)}", file=sys.stderr)
    if not args.no_expand:
        print(f"caption: {expansion.caption}")
    steps = args.steps or pipe.cfg.steps
    guidance = pipe.cfg.guidance if args.guidance is None else args.guidance
    bar = tqdm(total=steps, desc="sampling", unit="step", disable=args.quiet)

    def tick(i: int, n: int) -> None:
        bar.update(i - bar.n)

    t0 = time.time()
    video = pipe.generate(expansion.caption, seed=args.seed, size=(w, h), frames=frames, fps=fps, steps=steps,
                          guidance=guidance, callback=tick)
    bar.close()
    elapsed = time.time() - t0
    try:
        write_video(out, video, fps)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e}") from None
    side = {"prompt": args.prompt, "model": str(model), "seed": args.seed, "size": [w, h], "frames": frames,
            "fps": fps, "steps": steps, "guidance": guidance, "device": str(pipe.device),
            "seconds_generated": round(elapsed, 3), "expansion": expansion.to_dict(), "tenku": __import__("tenku").__version__}
    out.with_suffix(".json").write_text(json.dumps(side, indent=1))
    print(f"wrote {out} ({frames} frames, {w}x{h}, {fps:g} fps) in {elapsed:.1f}s")
    return 0
