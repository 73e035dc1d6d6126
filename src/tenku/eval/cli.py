"""`tenku eval`: run the world-model benchmark on a model or on the simulator itself."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from tenku.cli import UsageError, add_offload_arg, nonneg_float, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    from tenku.eval.suites import SUITES

    p = sub.add_parser("eval", help="the world-model benchmark: physics, permanence, consistency over time",
                       description="Generate every prompt of a suite (or render it with the simulator), track the "
                                   "objects and score them; writes OUT/metrics.json, OUT/report.md, plots and "
                                   "contact sheets. Videos are cached in OUT/videos, so a re-run resumes.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="DIR", help="model folder that tenku.pipeline.Pipeline.load reads")
    src.add_argument("--reference", action="store_true", help="score the simulator's own renders (the calibration)")
    src.add_argument("--autoencoder", metavar="DIR",
                     help="score the simulator's renders after this VAE's round trip (a VAE or pipeline folder): "
                          "the ceiling of any transformer on its latents")
    p.add_argument("--suite", default="world", help=f"{', '.join(SUITES)}, several comma-separated, or all")
    p.add_argument("--out", required=True, metavar="REPORT", help="report folder (new, empty, or a run to resume)")
    p.add_argument("--limit", type=positive_int, help="only the first N items of each suite")
    p.add_argument("--steps", type=positive_int, help="sampling steps passed to the pipeline")
    p.add_argument("--guidance", type=nonneg_float,
                   help="guidance scale passed to the pipeline, as tenku generate --guidance (default: the model's)")
    p.add_argument("--samples", type=positive_int, default=1,
                   help="videos per item, each with another seed (default 1): the means then depend less on "
                        "the seeds, and their standard errors shrink")
    p.add_argument("--expand", action="store_true",
                   help="expand each prompt into a detailed caption first, as tenku generate does by default "
                        "(the sample's seed; default: the prompt verbatim)")
    p.add_argument("--plan", nargs="?", const="scene", choices=["scene", "prompt"],
                   help="each item follows the simulator's layout (a model with grounding; docs/layout.md): of the "
                        "item's own scene (scene, the default), or of its prompt's expansion as tenku generate --plan "
                        "plans it (prompt)")
    p.add_argument("--sketch", type=float, metavar="S",
                   help="with --plan or --layout: start sampling from the layout's sketch noised to S, as tenku "
                        "generate --sketch (default: the model's)")
    p.add_argument("--layout", metavar="DIR", help="each item follows DIR/ID.json (a layout or a sidecar), ID its id")
    p.add_argument("--height", type=positive_int,
                   help="rescale every item to this height (a multiple of 16, or of the model's size multiple); "
                        "widths are rounded to the same multiple")
    p.add_argument("--device", default="cpu", help="device the pipeline runs on")
    add_offload_arg(p)
    p.add_argument("--worst", type=int, default=5, help="worst cases per suite with plots and contact sheets")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval, command="eval")


def _suites(text: str) -> list[str]:
    from tenku.eval.suites import SUITES

    names = list(SUITES) if text == "all" else [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SUITES]
    if bad or not names:
        raise UsageError(f"unknown suite {', '.join(map(repr, bad)) or repr(text)}; suites: {', '.join(SUITES)}, all")
    return names


def cmd_eval(args: argparse.Namespace) -> int:
    from tenku.eval.report import smoothness_line, write_report
    from tenku.eval.run import AutoencoderGenerator, GeneratorUnavailable, PipelineGenerator, reference_frames, run_suite
    from tenku.eval.suites import SIZE_MULTIPLE, build_suite

    names = _suites(args.suite)
    if args.worst < 0:
        raise UsageError(f"--worst must be >= 0, got {args.worst}")
    if (args.steps or args.guidance) and not args.model:
        raise UsageError("--steps and --guidance apply to --model, not --reference or --autoencoder")
    if args.sketch is not None and not (args.plan or args.layout):
        raise UsageError("--sketch draws a layout: give --plan or --layout with it")
    if args.sketch is not None and not 0 < args.sketch <= 1:
        raise UsageError(f"--sketch must be in (0, 1] (1: no sketch); got {args.sketch:g}")
    if args.plan and args.layout:
        raise UsageError("give --plan (the simulator's layouts) or --layout DIR (yours), not both")
    if (args.expand or args.plan or args.layout) and not args.model:
        flag = "--expand" if args.expand else "--plan" if args.plan else "--layout"
        raise UsageError(f"{flag} applies to --model, not --reference or --autoencoder")
    if args.samples > 1 and not args.model:
        raise UsageError("--samples applies to --model: the simulator and the autoencoder give the same video "
                         "every time")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    if args.reference:
        generate, tag = reference_frames, "reference"
    else:
        try:
            generate = (AutoencoderGenerator(args.autoencoder) if args.autoencoder
                        else PipelineGenerator(args.model, args.steps, args.device, args.expand, args.guidance,
                                               args.plan, args.layout, args.sketch, offload=args.offload))
        except GeneratorUnavailable as e:
            raise UsageError(str(e)) from None
        tag = generate.tag
    multiple = max(SIZE_MULTIPLE, getattr(getattr(generate, "pipe", None), "size_multiple", 0) or 0)
    if args.height is not None and args.height % multiple:
        raise UsageError(f"--height must be a multiple of {multiple}, got {args.height}")
    t0 = time.time()
    runs = {}
    try:
        for name in names:
            items = build_suite(name, args.limit, args.height, multiple, args.samples)
            refused = next((why for i in items if (why := getattr(generate, "refuses", lambda i: "")(i))), "")
            if refused:  # a model without a suite's mode (Wan2.1: clean frames): score the suites it can make
                print(f"skipping suite {name}: {refused}")
                continue
            absent = getattr(generate, "missing_layouts", lambda i: [])(items)
            if absent:
                raise UsageError(f"--layout {args.layout}: no layout for {len(absent)} item(s) of suite {name}: "
                                 f"{', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''} (ID.json each)")
            runs[name] = run_suite(items, generate, out, tag, progress=not args.quiet)
        if not runs:
            raise UsageError(f"nothing to score: the model supports none of the suites {', '.join(names)}")
        doc = write_report(out, runs, tag, time.time() - t0, args.worst)
    except ValueError as e:  # a folder of another run, a generator returning the wrong shape, ...
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write to {out}: {e.strerror or e}") from None
    for name, s in doc["suites"].items():
        rates = s["summary"]["rates"]
        se = s["summary"].get("stderr", {})
        shown = ", ".join(f"{m} {v:.3f}" + (f"±{se[m]:.3f}" if se.get(m) is not None else "")
                          for m, v in rates.items() if v is not None and not math.isnan(v))
        print(f"{name} ({s['summary']['items']} items, {s['summary']['videos']} videos, {s['cached']} cached): {shown}")
        f = s["summary"].get("objects") or {}
        if f.get("objects"):
            print(f"  prompted objects {f['objects']}: right {f['right']}, wrong shape {f['wrong_shape']}, "
                  f"wrong size {f['wrong_size']}, no track of their colour {f['missing']}; "
                  f"extra tracks {f['extra_tracks']}")
        if s["summary"].get("smoothness"):
            print(f"  {smoothness_line(s['summary']['smoothness'])}")
    print(f"wrote {out / 'metrics.json'} and {out / 'report.md'} in {time.time() - t0:.1f}s")
    return 0
