"""Where in the noise range does the model lose what the world suite checks?

Each world item's simulator render is noised to a strength (sigma) and the model denoises it
under the item's prompt (the SDEdit edit mode), then ``tenku eval``'s scoring runs on the result.
Strength 0 would be the autoencoder's round trip (``tenku eval --autoencoder``) and 1 plain
text-to-video, so the strengths in between show which noise levels fail to keep shapes, motion
or the object count (docs/training.md, "Where the model loses it").

    python bench/sdedit_eval.py --model models/tenku-world --strengths 0.3 0.6 0.9 --limit 26 --out runs/sdedit
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
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--limit", type=int, default=26, help="the world suite's first N items")
    ap.add_argument("--out", required=True, help="a folder; one report folder per strength goes in it")
    a = ap.parse_args()
    if not all(0 < s <= 1 for s in a.strengths):
        ap.error(f"--strengths must lie in (0, 1]; got {a.strengths}")
    sys.path.insert(0, str(ROOT / "src"))
    from tenku.eval.report import write_report
    from tenku.eval.run import reference_frames, run_suite
    from tenku.eval.suites import build_suite
    from tenku.pipeline import Pipeline

    pipe = Pipeline.load(a.model, "cpu")
    items = build_suite("world", a.limit, None, pipe.size_multiple)
    for strength in a.strengths:
        def generate(item, s=strength):  # the item's own render, noised to s, denoised under its prompt
            return np.asarray(pipe.generate(item.prompt, seed=item.seed, size=(item.width, item.height),
                                            video=reference_frames(item), strength=s))

        t0, out = time.time(), Path(a.out) / f"strength-{strength}"
        tag = f"sdedit:{Path(a.model).resolve()}:{strength}"
        doc = write_report(out, {"world": run_suite(items, generate, out, tag, progress=False)}, tag, time.time() - t0, 0)
        rates = doc["suites"]["world"]["summary"]["rates"]
        print(f"strength {strength}: " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items() if v is not None)
              + f" ({time.time() - t0:.0f} s) -> {out}", flush=True)


if __name__ == "__main__":
    main()
