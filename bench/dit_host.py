"""Host-side cost of a transformer training step: ``python bench/dit_host.py``.

On a GPU the step of a small model is bound by what the host does between the GPU's
kernels (docs/training.md, *GPU runs, session 11*: 220 ms a step at batch 256 with the GPU
busy for 150). This times ``tenku train dit`` steps of the *tiny* model at a large batch on
one CPU thread, where the model's own work is small, and counts the operators the step
issues (with the torch profiler): each is at least one kernel launch on a GPU, and the
per-sample ones grow with the batch. Reported: median ms per step over the timed steps,
operators per step (profiled runs of 2 and 2 + N steps, subtracted), and the most frequent
operators.

Needs a latent cache: by default the held-out world set that ``bench/val_loss.py`` caches
(``data/world-heldout``, ``runs/val-cache``, ``models/vae-world``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/world-heldout")
    ap.add_argument("--vae", default="models/vae-world")
    ap.add_argument("--cache", default="runs/val-cache")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6, help="timed steps (after 2 warm-up steps)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: as on a GPU machine's trainer)")
    ap.add_argument("--top", type=int, default=10, help="list this many of the most frequent operators")
    a = ap.parse_args(argv)
    missing = [p for p in (a.data, a.vae) if not Path(p).is_dir()]
    if missing:
        print(f"no such folder: {', '.join(missing)} (render the held-out set as docs/training.md says)", file=sys.stderr)
        return 2
    import torch
    from torch.profiler import ProfilerActivity, profile

    from tenku.train.dit import load_train_config, train

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        over = [f"data=[{a.data}]", f"vae={a.vae}", f"cache={a.cache}", f"out={tmp}/run", "size=tiny",
                f"batch_size={a.batch}", "steps=1000", "sample_every=0", "ckpt_every=100000", "log_every=1",
                "warmup=10", "cond.image_prob=0", "bf16=true"]
        cfg = load_train_config(None, over)
        train(cfg, progress=False, stop_after=2)  # warm-up (and the cache, if it is not there)
        counts = []
        for n in (2, 2 + a.steps):  # each call resumes and saves once: the difference is the steps alone
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                train(cfg, progress=False, stop_after=n)
            counts.append(Counter(e.name for e in prof.events() if e.name.startswith("aten::")))
        rows = [json.loads(x) for x in (Path(tmp) / "run" / "log.jsonl").read_text().splitlines()][-a.steps:]
    ms = [1000 * a.batch / r["samples/s"] for r in rows]
    ops = counts[1] - counts[0]
    total = sum(ops.values()) / a.steps
    print(f"batch {a.batch}, tiny model, {a.threads} thread(s): {statistics.median(ms):.1f} ms a step "
          f"(median of {a.steps}: {', '.join(f'{m:.0f}' for m in ms)}); {total:.0f} aten operators a step")
    for name, n in ops.most_common(a.top):
        print(f"  {name:32s} {n / a.steps:8.0f} a step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
