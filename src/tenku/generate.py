"""`tenku generate`: text (and an image, a video or two clips) to an mp4, with a sidecar JSON
of every parameter. Every mode of the pipeline (pipeline.Pipeline.stream) is a flag here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tenku import SEED_MAX
from tenku.cli import UsageError, add_offload_arg, fps_float, nonneg_float, positive_float, positive_int, seed_int

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
                       '  tenku generate "..." --preview -o d.mp4; tenku generate --upscale d.mp4 -o full.mp4\n'
                       '  tenku generate "..." --plan                     the simulator plans and sketches the motion (a grounded model)\n'
                       '  tenku generate "..." --layout boxes.json        your boxes (tenku layout; docs/layout.md)',
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
    add_offload_arg(g)
    g.add_argument("--max-work", type=positive_float, default=None, metavar="N",
                   help="refuse a request over N frames sampled x width x height x steps (default: no limit; "
                   "tenku serve has one)")
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
    m.add_argument("--plan", action="store_true",
                   help="the built-in simulator plans every object's boxes, sketches them, and the model redraws the "
                        "sketch following the boxes (a grounded model; --sketch sets how much is redrawn)")
    m.add_argument("--layout", default=None, metavar="JSON",
                   help="the boxes to follow: a layout file (tenku layout, docs/layout.md) or a video's sidecar .json")
    m.add_argument("--sketch", type=positive_float, default=None, metavar="S",
                   help="with --plan or --layout: start from the layout's objects drawn (a sketch) noised to S in "
                        "(0, 1]; 1: from pure noise (default: the model's; docs/layout.md)")
    g.add_argument("--no-expand", action="store_true", help="use the prompt verbatim (default: expand it into a detailed caption)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    add_llm_args(g, timeout=30.0)
    g.set_defaults(func=cmd_generate, command="generate")


def _check_flags(args: argparse.Namespace) -> None:
    """Flag combinations of this command's own (--edit, --upscale); the mode rules every front
    end shares are the request's (``tenku.request``): one line saying which, exit 2."""
    if args.edit is not None and not args.video:
        raise UsageError("--edit needs --video V (the video to edit)")
    if args.video and not (args.extend or args.edit is not None):
        raise UsageError("--video needs --extend forward|backward or --edit PROMPT")
    if args.extend and args.edit is not None:
        raise UsageError("--extend and --edit do not go together; pick one")
    if args.preview and args.upscale:
        raise UsageError("--preview makes a draft from text (or --image); it does not go with --upscale")
    if args.strength is not None and args.edit is None and not args.upscale:
        raise UsageError("--strength is for --edit or --upscale")
    if args.prompt is None and args.edit is None and not args.upscale:
        raise UsageError("give a prompt (or --video V --edit PROMPT, or --upscale DRAFT)")
    if args.prompt is not None and args.edit is not None:
        raise UsageError("with --edit the new prompt is the --edit value; drop the positional prompt")


def _names(args: argparse.Namespace) -> dict[str, str]:
    from tenku.request import CLI_NAMES

    return CLI_NAMES | ({"video": "--upscale"} if args.upscale else {})


def _request(args: argparse.Namespace, draft_side: dict[str, Any], geo: Any = None, read: Any = None) -> Any:
    """The request the flags ask for, with the model's ``geo`` (``tenku.request.Geometry``) for
    what only this command defaults (an edit's strength, an upscale's size). ``read(flag, path,
    still)`` reads an input; without ``geo`` and ``read``, inputs are stand-ins, so that the
    mode rules are checked before any file is read or model loaded."""
    from tenku.request import Input, Request

    read = read or (lambda what, path, still=False: Input(64, 64, 64))
    video = read("--video", args.video) if args.video else read("--upscale", args.upscale) if args.upscale else None
    connect = tuple(read(f"--connect {n}", p) for n, p in zip("AB", args.connect)) if args.connect else None
    prompt, expand = (args.edit if args.edit is not None else args.prompt), not args.no_expand
    if args.upscale and prompt is None:
        prompt, expand = draft_side.get("caption") or draft_side.get("prompt"), False  # the draft's caption, as it was
    size = args.size
    if args.upscale and size is None and not args.aspect:  # the draft's full size, else the model's default
        size = tuple(draft_side.get("preview", {}).get("full_size") or (geo.size if geo else (64, 64)))
    strength = args.strength
    if strength is None and (args.edit is not None or args.upscale):
        strength = geo.strength if geo else 0.5
    layout = None  # read with the inputs; the draft's own when an upscale names none
    if geo is not None and (args.layout or (args.upscale and not args.plan)):
        layout = _layout(args.layout) if args.layout else draft_side.get("layout")
    return Request(prompt, read("--image", args.image, True) if args.image else None, video, connect,  # type: ignore[arg-type]
                   args.extend, args.loop, strength, size, args.aspect, args.width, args.height,  # type: ignore[arg-type]
                   args.frames, args.seconds, args.fps or draft_side.get("fps"),
                   args.seed if args.seed is not None else int(draft_side.get("seed", 0)), args.steps, args.guidance,
                   args.negative, args.sampler, expand, args.preview, "upscale" if args.upscale else None,
                   {} if layout is None else {"layout": layout}, args.plan,
                   None if geo is None and args.layout else args.sketch)  # checked once the layout is read


def resolve_args(args: argparse.Namespace, pipe: Any, draft_side: dict[str, Any] | None = None, limits: Any = None) -> Any:
    """The flags as a request resolved against ``pipe``'s model (inputs read, rules checked):
    a ``tenku.request.Resolved``, or a ``RequestError`` (the server refuses the same request
    with the same error code and field). ``limits``: none beyond the model's by default."""
    from tenku.request import Input, Limits, resolve

    read = lambda what, path, still=False: Input.read(path, what, still)  # noqa: E731
    return resolve(_request(args, draft_side or {}, pipe.geometry, read), pipe.geometry, limits or Limits(), _names(args))


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tenku.pipeline import Pipeline
    from tenku.prompts.cli import llm_config
    from tenku.request import Limits, RequestError
    from tenku.request.make import expand, make, stream
    from tenku.request.resolve import check_combination

    _check_flags(args)
    try:
        check_combination(_request(args, {}), _names(args))
    except RequestError as e:
        raise UsageError(str(e)) from None
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
        pipe = Pipeline.load(model, device=args.device, offload=args.offload)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.autoguidance is not None:
        if args.autoguidance > 0 and pipe.guide is None:
            raise UsageError(f"--autoguidance {args.autoguidance}: the model {model} has no guide transformer (guide/); only 0 works with it")
        pipe.cfg.autoguidance = args.autoguidance
    budget = Limits(max_work=args.max_work, where="--max-work") if args.max_work else None
    try:
        req = resolve_args(args, pipe, draft_side, budget)
    except RequestError as e:
        raise UsageError(str(e)) from None
    for note in req.notes:
        print(f"note: {note}")
    expansion = expand(req, llm_config(args))
    bar: Any = None  # made at the first step, so a refused request prints no progress bar

    def tick(i: int, n: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=n, desc="sampling", unit="step", disable=args.quiet)
        bar.total = n
        chunks = max(1, n // req.steps)
        bar.set_postfix_str(f"chunk {min(chunks, i // req.steps + (i % req.steps > 0))}/{chunks}" if chunks > 1 else "",
                            refresh=False)
        bar.update(i - bar.n)

    try:
        blocks = stream(pipe, req, expansion, tick)
    except ValueError as e:  # a request the model cannot do: say so before anything else
        raise UsageError(str(e)) from None
    for warning in expansion.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if expansion.unknown and not any("not understood" in w for w in expansion.warnings):
        print(f"warning: not understood: {', '.join(expansion.unknown)}", file=sys.stderr)
    if req.expand:
        print(f"caption: {expansion.caption}")
    files = {k: getattr(args, k) for k in ("image", "video", "connect", "upscale") if getattr(args, k)}
    try:
        side = make(pipe, req, out, expansion, blocks, model=str(model), **files)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e}") from None
    if bar is not None:
        bar.close()
    w, h = req.size
    print(f"wrote {out} ({side['frames']} frames, {w}x{h}, {req.fps:g} fps) in {side['seconds_generated']:.1f}s")
    if args.preview:
        print(f"full size: tenku generate --upscale {out} -o {out.with_name(out.stem + '-full' + out.suffix)}")
    return 0


def _layout(path: str) -> Any:
    """--layout's document (a layout file or a sidecar); a UsageError naming the file."""
    from tenku.request.layout import read

    try:
        return read(path)
    except ValueError as e:
        raise UsageError(f"--layout {e}") from None


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
