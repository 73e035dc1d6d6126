"""`tenku generate`: text (and an image, a video or two clips) to an mp4, with a sidecar JSON
of every parameter. Every mode of the pipeline (pipeline.Pipeline.stream) is a flag here."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tenku import MAX_ASPECT, SEED_MAX
from tenku.cli import UsageError, fps_float, nonneg_float, parse_size, positive_float, positive_int, seed_int

BUNDLED = Path(__file__).resolve().parents[2] / "models" / "tenku-world"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from tenku.prompts.cli import add_llm_args

    g = sub.add_parser("generate", help="generate a video from a text prompt (and an image, a video, two clips)",
                       description="Text-to-video and every other mode of one model. Examples:\n"
                       '  tenku generate "a red ball bounces" -o ball.mp4\n'
                       '  tenku generate "..." --image first.png          image-to-video\n'
                       '  tenku generate "..." --video v.mp4 --extend forward --seconds 3\n'
                       '  tenku generate "..." --loop                     a seamless loop\n'
                       '  tenku generate "..." --connect a.mp4 b.mp4      a transition (written as A + transition + B)\n'
                       '  tenku generate --video v.mp4 --edit "a blue ball bounces" --strength 0.6\n'
                       '  tenku generate "..." --seconds 60               a long video, chunk by chunk\n'
                       '  tenku generate "..." --preview -o d.mp4; tenku generate --upscale d.mp4 -o full.mp4',
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("prompt", nargs="?", help="what to show (not needed with --edit or --upscale)")
    g.add_argument("-o", "--out", default="video.mp4", help="output .mp4 or .gif; a .json sidecar goes beside it")
    g.add_argument("--model", default=None, help=f"pipeline folder (default: the bundled model, {BUNDLED.name})")
    g.add_argument("--size", default=None, help="WxH, e.g. 128x128, 224x128 (16:9), 128x224 (9:16)")
    g.add_argument("--aspect", default=None, help="W:H such as 16:9 or 9:16; the short side is the model's (or --height/--width)")
    g.add_argument("--height", type=positive_int, default=None, help="with --aspect: the height")
    g.add_argument("--width", type=positive_int, default=None, help="with --aspect: the width")
    g.add_argument("--seconds", type=positive_float, default=None,
                   help="duration (with --extend: of the new part; with --connect: of the transition)")
    g.add_argument("--frames", type=positive_int, default=None, help="frame count; overrides --seconds")
    g.add_argument("--fps", type=fps_float, default=None, help="frames a second, 1 to 120 (default: the model's)")
    g.add_argument("--steps", type=positive_int, default=None, help="sampling steps (per chunk)")
    g.add_argument("--guidance", type=nonneg_float, default=None, help="classifier-free guidance scale (1 = off)")
    g.add_argument("--negative", default=None, help="negative prompt: what guidance steers away from")
    g.add_argument("--autoguidance", type=nonneg_float, default=None,
                   help="weight of the step away from the model's guide/ transformer (0 = off; default: the model's)")
    g.add_argument("--sampler", default=None, choices=["euler", "dpm++2m"], help="sampler (default: the model's)")
    g.add_argument("--seed", type=seed_int, default=None, help="noise seed (default 0; an upscale reuses the draft's)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    m = g.add_argument_group("modes")
    m.add_argument("--image", default=None, help="image-to-video: the video starts with this image")
    m.add_argument("--video", default=None, help="a video to --extend or to --edit")
    m.add_argument("--extend", choices=["forward", "backward"], default=None, help="continue --video after its end or before its start")
    m.add_argument("--loop", action="store_true", help="a seamless loop: the last frame flows into the first")
    m.add_argument("--connect", nargs=2, metavar=("A", "B"), default=None, help="a transition from clip A's end to clip B's start")
    m.add_argument("--edit", default=None, metavar="PROMPT", help="video-to-video: redo --video to follow PROMPT")
    m.add_argument("--strength", type=positive_float, default=None, help="edit/upscale strength in (0, 1] (default 0.6)")
    m.add_argument("--preview", action="store_true", help="a fast draft at half size (then --upscale it)")
    m.add_argument("--upscale", default=None, metavar="DRAFT", help="refine a --preview draft at full size, same prompt and seed")
    g.add_argument("--no-expand", action="store_true", help="use the prompt verbatim (default: expand it into a detailed caption)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    add_llm_args(g, timeout=30.0)
    g.set_defaults(func=cmd_generate, command="generate")


def _read(path: str, what: str, still: bool = False) -> tuple[np.ndarray, float | None]:
    """An input image or video as uint8 frames (+ fps); a file that does not decode is a UsageError."""
    from tenku.io import IMAGE_SUFFIXES, read_image, read_video

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{what} {path}: no such file")
    try:
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return read_image(p)[None], None
        frames, fps = read_video(p)
    except ValueError as e:
        raise UsageError(f"{what}: {e}") from None
    return (frames[:1], None) if still else (frames, fps)


def _check_combination(args: argparse.Namespace) -> None:
    """Mode flags that do not go together: one line saying which, exit 2."""
    if args.extend and not args.video:
        raise UsageError("--extend needs --video V (the video to extend)")
    if args.edit is not None and not args.video:
        raise UsageError("--edit needs --video V (the video to edit)")
    if args.video and not (args.extend or args.edit is not None):
        raise UsageError("--video needs --extend forward|backward or --edit PROMPT")
    if args.extend and args.edit is not None:
        raise UsageError("--extend and --edit do not go together; pick one")
    if args.loop and (args.connect or args.video):
        raise UsageError("--loop works with a text prompt or --image, not with --connect or --video")
    inputs = [f for f, on in (("--image", args.image), ("--video", args.video), ("--connect", args.connect),
                              ("--upscale", args.upscale)) if on]
    if len(inputs) > 1:
        raise UsageError(f"{' and '.join(inputs)} do not go together; give one input")
    if args.preview and (args.upscale or args.video or args.connect):
        raise UsageError("--preview makes a draft from text (or --image); it does not go with --upscale, --video or --connect")
    if args.strength is not None and args.edit is None and not args.upscale:
        raise UsageError("--strength is for --edit or --upscale")
    if args.strength is not None and not 0 < args.strength <= 1:
        raise UsageError(f"--strength must be in (0, 1]; got {args.strength:g}")
    if args.aspect and args.size:
        raise UsageError("give --size or --aspect, not both")
    if (args.height or args.width) and not args.aspect:
        raise UsageError("--height/--width go with --aspect (or use --size WxH)")
    if args.prompt is None and args.edit is None and not args.upscale:
        raise UsageError("give a prompt (or --video V --edit PROMPT, or --upscale DRAFT)")
    if args.prompt is not None and args.edit is not None:
        raise UsageError("with --edit the new prompt is the --edit value; drop the positional prompt")


def _size(args: argparse.Namespace, pipe: Any, default: tuple[int, int]) -> tuple[int, int]:
    from tenku.modes import parse_aspect, size_for_aspect

    try:
        if args.aspect:
            w, h = size_for_aspect(parse_aspect(args.aspect), pipe.size_multiple, min(pipe.cfg.size), args.width, args.height)
        else:
            w, h = pipe.check_size(parse_size(args.size) if args.size else default)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if w * h > pipe.max_pixels:
        dw, dh = pipe.cfg.size
        raise UsageError(f"size {w}x{h} is larger than this model makes: at most {pipe.max_pixels} pixels "
                         f"(16x its default {dw}x{dh}, e.g. {4 * dw}x{4 * dh})")
    return w, h


def _input_default(pipe: Any, frames: np.ndarray, what: str, args: argparse.Namespace) -> tuple[int, int]:
    """The output size an input video gives when no size is asked for; said when it is not the input's."""
    from tenku.modes import check_aspect

    h, w = frames.shape[1:3]
    size = pipe.input_size(w, h)
    try:
        check_aspect(*size)
    except ValueError:
        if not (args.size or args.aspect):
            raise UsageError(f"{what} is {w}x{h}, wider than {MAX_ASPECT}:1 or taller than 1:{MAX_ASPECT}; give --size "
                             "or --aspect to crop its centre") from None
    if size != pipe.fit_size(w, h) and not (args.size or args.aspect):
        print(f"note: {what} is {w}x{h}, larger than this model makes; making {size[0]}x{size[1]} "
              f"(--size WxH to choose, at most {pipe.max_pixels} pixels)")
    return size


def _frames_wanted(args: argparse.Namespace, pipe: Any, fps: float, exact: bool) -> int | None:
    """--frames, or --seconds as frames (n seconds span n * fps intervals). ``exact``: any count
    works (extend/connect: new frames); else rounded to 1 + 4k, saying so."""
    if args.frames:
        if not exact:
            try:
                pipe.check_frames(args.frames)
            except ValueError as e:
                raise UsageError(str(e)) from None
        return args.frames
    if not args.seconds:
        return None
    n = round(args.seconds * fps) if exact else round(args.seconds * fps) + 1
    if exact:
        return max(1, n)
    fitted = pipe.fit_frames(n)
    if fitted != n:
        print(f"note: {args.seconds:g} s at {fps:g} fps rounded to {fitted} frames (the model makes 1 + {pipe.frame_step}k)")
    return fitted


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tenku.io import write_video
    from tenku.modes import cover_resize, resample_fps
    from tenku.pipeline import Pipeline
    from tenku.prompts.cli import llm_config
    from tenku.prompts.expand import expand_prompt

    _check_combination(args)
    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"output must end in .mp4 or .gif, got {out.name!r}")
    if not out.parent.exists():
        raise UsageError(f"output folder {out.parent} does not exist")
    draft_side = _draft_sidecar(Path(args.upscale), args.prompt is None) if args.upscale else {}
    model = Path(args.model or draft_side.get("model") or BUNDLED)
    if not model.exists():
        why = "" if args.model else " (named by the draft's sidecar; pass --model DIR)" if draft_side.get("model") else \
            " (no bundled model yet: pass --model DIR)"
        raise UsageError(f"model folder {model} not found{why}")
    try:
        pipe = Pipeline.load(model, device=args.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.autoguidance is not None:
        if args.autoguidance > 0 and pipe.guide is None:
            raise UsageError(f"--autoguidance {args.autoguidance}: the model {model} has no guide transformer (guide/); only 0 works with it")
        pipe.cfg.autoguidance = args.autoguidance
    fps = args.fps or draft_side.get("fps") or pipe.cfg.fps
    seed = args.seed if args.seed is not None else int(draft_side.get("seed", 0))

    # inputs, resampled to fps; the output size defaults to the input video's (fitted)
    mode: dict[str, Any] = {}
    clips: tuple[np.ndarray, np.ndarray] | None = None
    default = pipe.cfg.size
    if args.image:
        mode["image"] = _read(args.image, "--image", still=True)[0][0]
    if args.video:
        v = resample_fps(*_read(args.video, "--video"), fps)
        default = _input_default(pipe, v, "--video", args)
        mode["video"] = v
    if args.connect:
        clips = tuple(resample_fps(*_read(p, f"--connect {n}"), fps) for n, p in zip("AB", args.connect))  # type: ignore[assignment]
        default = _input_default(pipe, clips[0], "--connect", args)
    if args.upscale:
        draft = resample_fps(*_read(args.upscale, "--upscale"), fps)
        default = tuple(draft_side.get("preview", {}).get("full_size") or pipe.cfg.size)  # type: ignore[assignment]
    w, h = _size(args, pipe, default)
    if args.preview:
        full = (w, h)
        w, h = pipe.fit_size(w // 2, h // 2)
    frames = _frames_wanted(args, pipe, fps, exact=bool(args.extend or args.connect))

    if args.extend:
        mode["extend"] = args.extend  # frames counts the whole output; the pipeline resizes the video
        frames = None if frames is None else len(mode["video"]) + frames
    elif args.connect:
        mode["connect"] = tuple(cover_resize(c, w, h) for c in clips)  # type: ignore[union-attr]
    elif args.edit is not None or args.upscale:
        if args.frames or args.seconds:
            raise UsageError("an edit or upscale keeps the input's length; drop --frames/--seconds")
        mode.update(video=mode.get("video", draft if args.upscale else None), strength=args.strength or pipe.cfg.strength)
    if args.loop:
        mode["loop"] = True

    prompt = args.edit if args.edit is not None else args.prompt
    no_expand = args.no_expand
    if args.upscale and prompt is None:
        prompt, no_expand = draft_side.get("caption") or draft_side.get("prompt"), True  # the draft's caption, as it was
    expansion = expand_prompt(prompt, seed, no_expand=no_expand, llm=llm_config(args), aspect=w / h,
                              frames=frames or pipe.cfg.frames, fps=fps)
    steps = args.steps or pipe.cfg.steps
    guidance = pipe.cfg.guidance if args.guidance is None else args.guidance
    context_guidance = pipe.context_guidance_for(args.guidance, bool(args.connect or (args.video and args.extend)))
    bar: Any = None  # made at the first step, so a refused request prints no progress bar

    def tick(i: int, n: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=n, desc="sampling", unit="step", disable=args.quiet)
        bar.total = n
        chunks = max(1, n // steps)
        bar.set_postfix_str(f"chunk {min(chunks, i // steps + (i % steps > 0))}/{chunks}" if chunks > 1 else "", refresh=False)
        bar.update(i - bar.n)

    t0 = time.time()
    try:
        blocks = pipe.stream(expansion.caption, seed=seed, size=(w, h), frames=frames, fps=fps, steps=steps,
                             guidance=args.guidance, callback=tick, negative_prompt=args.negative, sampler=args.sampler, **mode)
    except ValueError as e:  # a request the model cannot do: say so before anything else
        raise UsageError(str(e)) from None
    for warning in expansion.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if expansion.unknown and not any("not understood" in w for w in expansion.warnings):
        print(f"warning: not understood: {', '.join(expansion.unknown)}", file=sys.stderr)
    if not no_expand:
        print(f"caption: {expansion.caption}")
    count = [0]
    try:
        write_video(out, _counted(blocks, count), fps)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e}") from None
    if bar is not None:
        bar.close()
    elapsed = time.time() - t0
    side = {"prompt": prompt, "caption": expansion.caption, "model": str(model), "seed": seed, "size": [w, h],
            "frames": count[0], "fps": fps, "steps": steps, "guidance": guidance, "device": str(pipe.device),
            "mode": _mode_name(args), "negative_prompt": args.negative if args.negative is not None else pipe.cfg.negative_prompt,
            "sampler": args.sampler or pipe.cfg.sampler, "seconds_generated": round(elapsed, 3), "expansion": expansion.to_dict(),
            "tenku": __import__("tenku").__version__}
    if context_guidance is not None:
        side["context_guidance"] = context_guidance
    if pipe.guide is not None:
        side["autoguidance"] = pipe.cfg.autoguidance
    for key in ("image", "video", "connect", "upscale"):
        if getattr(args, key):
            side[key] = getattr(args, key)
    if "strength" in mode:
        side["strength"] = mode["strength"]
    if args.preview:
        side["preview"] = {"full_size": list(full)}
    out.with_suffix(".json").write_text(json.dumps(side, indent=1))
    print(f"wrote {out} ({count[0]} frames, {w}x{h}, {fps:g} fps) in {elapsed:.1f}s")
    if args.preview:
        print(f"full size: tenku generate --upscale {out} -o {out.with_name(out.stem + '-full' + out.suffix)}")
    return 0


def _draft_sidecar(draft: Path, need_prompt: bool) -> dict[str, Any]:
    """What --upscale reuses from the draft's .json sidecar (written by --preview): its prompt,
    caption, seed, fps, model and full size, each checked; a sidecar that is not what --preview
    writes is a UsageError that names the field, never a traceback."""
    path = draft.with_suffix(".json")
    if not path.exists():
        if need_prompt:
            raise UsageError(f"no sidecar {path.name} beside the draft: give the prompt")
        return {}
    try:
        side = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"draft sidecar {path}: not readable JSON ({e}); fix or delete it and give the prompt") from None
    checks = {"prompt": lambda v: isinstance(v, str), "caption": lambda v: isinstance(v, str),
              "model": lambda v: isinstance(v, str),
              "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= SEED_MAX,
              "fps": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf"),
              "preview": lambda v: isinstance(v, dict) and _is_size(v.get("full_size"))}
    if not isinstance(side, dict):
        raise UsageError(f"draft sidecar {path}: expected a JSON object as --preview writes; fix or delete it")
    for key, ok in checks.items():
        if key in side and not ok(side[key]):
            raise UsageError(f"draft sidecar {path}: bad {key!r} value {side[key]!r}; fix or delete it")
    if need_prompt and not (side.get("caption") or side.get("prompt")):
        raise UsageError(f"draft sidecar {path} has no prompt or caption: give the prompt")
    return side


def _is_size(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)


def _mode_name(args: argparse.Namespace) -> str:
    for name in ("upscale", "connect", "edit", "extend", "loop", "image", "preview"):
        if getattr(args, name) not in (None, False):
            return {"extend": f"extend-{args.extend}", "image": "image-to-video"}.get(name, name)
    return "text-to-video"


def _counted(blocks: Any, count: list[int]) -> Any:
    for block in blocks:
        count[0] += len(block)
        yield block
