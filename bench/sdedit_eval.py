"""SDEdit on the world suite: what the model keeps when it starts from a video noised to a strength.

``--source render`` (default): each world item's simulator render is noised to a strength
(sigma) and denoised under the item's prompt (the edit mode), then ``tenku eval``'s scoring
runs on the result. Strength 0 would be the autoencoder's round trip (``tenku eval
--autoencoder``) and 1 plain text-to-video, so the strengths in between show which noise levels
fail to keep shapes, motion or the object count (docs/training.md, "Where the model loses it").

``--source draft``: the preview path, as ``tenku generate --preview`` then ``--upscale`` run it:
the model's own half-size draft, resized to full size, is scored (report ``draft``) and then
edited at each strength under the same caption and seed (docs/modes.md, "The preview path").
Compare with direct text-to-video (``tenku eval --suite world --expand --limit N --samples S``)
using bench/compare_evals.py.

    python bench/sdedit_eval.py --strengths 0.3 0.6 0.9 --limit 26 --out runs/sdedit
    python bench/sdedit_eval.py --source draft --expand --strengths 0.6 --limit 52 --samples 2 --out runs/preview
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
    ap.add_argument("--source", choices=["render", "draft"], default="render", help="what is noised (see above)")
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--limit", type=int, default=26, help="the world suite's first N items")
    ap.add_argument("--samples", type=int, default=1, help="videos per item, each with its own seed")
    ap.add_argument("--expand", action="store_true", help="expand each prompt into a caption first, as tenku generate does")
    ap.add_argument("--out", required=True, help="a folder; one report folder per strength (and the draft) goes in it")
    a = ap.parse_args()
    if not all(0 < s <= 1 for s in a.strengths):
        ap.error(f"--strengths must lie in (0, 1]; got {a.strengths}")
    sys.path.insert(0, str(ROOT / "src"))
    from tenku.eval.report import write_report
    from tenku.eval.run import reference_frames, run_suite
    from tenku.eval.suites import build_suite
    from tenku.modes import cover_resize
    from tenku.pipeline import Pipeline
    from tenku.prompts.expand import expand_prompt

    pipe = Pipeline.load(a.model, "cpu")
    items = build_suite("world", a.limit, None, pipe.geometry.size_multiple, a.samples)
    half = lambda item: pipe.geometry.fit_size(item.width // 2, item.height // 2)  # noqa: E731  the preview's size
    drafts: dict[tuple[str, int], np.ndarray] = {}
    timing: dict[str, float] = {}

    def caption(item) -> str:  # for a draft, what generate.py gives it and, from its sidecar, the upscale
        if not a.expand:
            return item.prompt
        w, h = half(item) if a.source == "draft" else (item.width, item.height)
        return expand_prompt(item.prompt, item.gen_seed, aspect=w / h, frames=item.frames, fps=item.fps).caption

    def source(item) -> np.ndarray:
        if a.source == "render":
            return reference_frames(item)
        key = (item.id, item.sample)
        if key not in drafts:  # at half size, then resized to full size as the upscale reads it
            t = time.perf_counter()
            small = pipe.generate(caption(item), seed=item.gen_seed, size=half(item), frames=item.frames, fps=item.fps)
            timing["draft"] = timing.get("draft", 0.0) + time.perf_counter() - t
            drafts[key] = cover_resize(small, item.width, item.height)
        return drafts[key]

    def edit(item, s: float) -> np.ndarray:
        v = source(item)
        t = time.perf_counter()
        out = pipe.generate(caption(item), seed=item.gen_seed, size=(item.width, item.height), video=v, strength=s, fps=item.fps)
        timing[f"strength-{s}"] = timing.get(f"strength-{s}", 0.0) + time.perf_counter() - t
        return out

    runs = [("draft", source)] if a.source == "draft" else []
    runs += [(f"strength-{s}", lambda item, s=s: edit(item, s)) for s in a.strengths]
    for name, gen in runs:
        t0, out = time.time(), Path(a.out) / name
        tag = f"sdedit:{Path(a.model).resolve()}:{a.source}:{name}" + (":expand" if a.expand else "")
        doc = write_report(out, {"world": run_suite(items, gen, out, tag, progress=False)}, tag, time.time() - t0, 0)
        rates = doc["suites"]["world"]["summary"]["rates"]
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items() if v is not None)
              + f" (generation {timing.get(name, 0.0):.0f} s, {time.time() - t0:.0f} s in all) -> {out}", flush=True)


if __name__ == "__main__":
    main()
