"""Plot training runs' loss curves (log.jsonl) as one PNG: raw steps and a moving average.

    python bench/loss_curve.py runs/tenku-world -o docs/img/tenku-world-loss.png [--every 50]
    python bench/loss_curve.py runs/tenku-world runs/tenku-world-v2@9500 -o ...

``RUN@N`` shifts a run's steps by N: a fine-tune started (``init=``) from step N of the run
before it is drawn where it continues that run. A resumed run logs the steps after its
checkpoint again; the last record of each step is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def read_run(spec: str) -> tuple[str, np.ndarray, np.ndarray]:
    """``RUN`` or ``RUN@OFFSET`` -> (name, steps, losses), one loss per step (the last logged)."""
    path, _, offset = spec.partition("@")
    log = Path(path) / "log.jsonl"
    if not log.is_file():
        sys.exit(f"error: {log} not found: give a training run folder (the `out` of tenku train)")
    try:
        shift = int(offset or 0)
    except ValueError:
        sys.exit(f"error: {spec!r}: the part after @ must be a whole step count, e.g. {path}@9500")
    by_step: dict[int, float] = {}
    for line in log.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if "loss" in r:
                by_step[int(r["step"]) + shift] = float(r["loss"])
    if not by_step:
        sys.exit(f"error: {log} has no logged losses yet")
    steps = np.array(sorted(by_step))
    return Path(path).name, steps, np.array([by_step[s] for s in steps])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="training run folders with log.jsonl; RUN@N shifts its steps by N")
    ap.add_argument("-o", "--out", required=True, help="PNG to write")
    ap.add_argument("--every", type=int, default=50, help="moving-average window in logged points")
    args = ap.parse_args()
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    names = []
    for i, spec in enumerate(args.runs):
        name, step, loss = read_run(spec)
        k = max(1, min(args.every, len(loss)))
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(step, loss, color="#bbbbbb", lw=0.6, label="loss (per logged step)" if i == 0 else None)
        ax.plot(step[k - 1:], smooth, color=COLOURS[i % len(COLOURS)], lw=1.8, label=f"{name}: moving average of {k}")
        names.append(f"{name} (to {step[-1]})")
        print(f"{name} steps {step[0]}..{step[-1]}, last average {smooth[-1]:.4f}")
    ax.set_xlabel("step")
    ax.set_ylabel("flow loss (MSE of v, generated frames)")
    ax.set_title(", ".join(names))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
