"""How good is the fast preview, and what does --upscale keep of it?

For the world suite's first N items (prompts expanded, as ``tenku generate`` does), this runs
the two commands

    tenku generate PROMPT --preview -o draft.mp4      # half size
    tenku generate --upscale draft.mp4 -o full.mp4    # full size, SDEdit at --strength

through the same Pipeline calls, and scores with ``tenku eval``'s tracker: the draft (resized
to full size, as the upscale sees it) and each upscale. Compare with the direct text-to-video
run, ``tenku eval --suite world --expand --limit N --samples S``, using bench/compare_evals.py.

    python bench/preview_eval.py --limit 52 --samples 2 --strengths 0.6 --out runs/preview
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/tenku-world")
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.6], help="upscale strengths in (0, 1]")
    ap.add_argument("--limit", type=int, default=26, help="the world suite's first N items")
    ap.add_argument("--samples", type=int, default=1, help="videos per item, each with its own seed")
    ap.add_argument("--out", required=True, help="a folder; one report folder for the draft and one per strength")
    a = ap.parse_args()
    if not all(0 < s <= 1 for s in a.strengths):
        ap.error(f"--strengths must lie in (0, 1]; got {a.strengths}")
    sys.path.insert(0, str(ROOT / "src"))
    from tenku.eval.report import write_report
    from tenku.eval.run import run_suite
    from tenku.eval.suites import build_suite
    from tenku.modes import cover_resize
    from tenku.pipeline import Pipeline
    from tenku.prompts.expand import expand_prompt

    pipe = Pipeline.load(a.model, "cpu")
    items = build_suite("world", a.limit, None, pipe.size_multiple, a.samples)
    drafts: dict[tuple[str, int], np.ndarray] = {}
    timing = {"draft": 0.0, **{str(s): 0.0 for s in a.strengths}}

    def caption(item) -> str:  # what generate.py gives the draft and, from its sidecar, the upscale
        w, h = pipe.fit_size(item.width // 2, item.height // 2)
        return expand_prompt(item.prompt, item.gen_seed, aspect=w / h, frames=item.frames, fps=item.fps).caption

    def draft(item) -> np.ndarray:  # at half size, then resized to full size as the upscale reads it
        key = (item.id, item.sample)
        if key not in drafts:
            t = time.perf_counter()
            small = np.asarray(pipe.generate(caption(item), seed=item.gen_seed, size=pipe.fit_size(item.width // 2, item.height // 2),
                                             frames=item.frames, fps=item.fps))
            timing["draft"] += time.perf_counter() - t
            drafts[key] = cover_resize(small, item.width, item.height)
        return drafts[key]

    runs = [("draft", draft)]
    for s in a.strengths:
        def upscale(item, s=s) -> np.ndarray:
            d = draft(item)
            t = time.perf_counter()
            out = np.asarray(pipe.generate(caption(item), seed=item.gen_seed, size=(item.width, item.height),
                                           video=d, strength=s, fps=item.fps))
            timing[str(s)] += time.perf_counter() - t
            return out
        runs.append((f"upscale-{s}", upscale))
    for name, gen in runs:
        t0, out = time.time(), Path(a.out) / name
        tag = f"preview:{Path(a.model).resolve()}:{name}"
        doc = write_report(out, {"world": run_suite(items, gen, out, tag, progress=False)}, tag, time.time() - t0, 0)
        rates = doc["suites"]["world"]["summary"]["rates"]
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items() if v is not None)
              + f" (generation {timing['draft' if name == 'draft' else name.split('-', 1)[1]]:.0f} s) -> {out}", flush=True)


if __name__ == "__main__":
    main()
