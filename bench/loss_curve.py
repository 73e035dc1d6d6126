"""Plot a training run's loss curve (log.jsonl) as a PNG: raw steps and a moving average.

    python bench/loss_curve.py runs/tenku-world -o docs/img/tenku-world-loss.png [--every 50]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a training run folder with log.jsonl")
    ap.add_argument("-o", "--out", required=True, help="PNG to write")
    ap.add_argument("--every", type=int, default=50, help="moving-average window in logged points")
    args = ap.parse_args()
    rows = [json.loads(x) for x in (Path(args.run) / "log.jsonl").read_text().splitlines() if x.strip()]
    step = np.array([r["step"] for r in rows])
    loss = np.array([r["loss"] for r in rows])
    k = max(1, min(args.every, len(loss)))
    smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    ax.plot(step, loss, color="#bbbbbb", lw=0.6, label="loss (per logged step)")
    ax.plot(step[k - 1:], smooth, color="#1f77b4", lw=1.8, label=f"moving average of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("flow loss (MSE of v, generated frames)")
    ax.set_title(f"{Path(args.run).name}: {len(rows)} logged steps, last {step[-1]}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}: steps {step[0]}..{step[-1]}, last average {smooth[-1]:.4f}")


if __name__ == "__main__":
    main()
