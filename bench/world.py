"""World dataset speed on one core: sample + simulate + render + caption + H.264 encode.

    python bench/world.py [--videos 60] [--size 128x128] [--frames 33] [--fps 8]

Pins itself to one CPU (x264's threads share it), renders into a temp folder
through the same code path as `tenku world render`, and prints videos/minute
with a per-stage breakdown (medians over the videos).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tenku.io import write_video
from tenku.lang.captions import captions
from tenku.world.render import render_scene
from tenku.world.sample import sample_scene


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=60)
    ap.add_argument("--size", default="128x128")
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--fps", type=float, default=8.0)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    stages: dict[str, list[float]] = {"sample": [], "render": [], "caption": [], "encode": []}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for i in range(args.videos):
            a = time.perf_counter()
            spec = sample_scene(np.random.default_rng([0, i]), width=w / h)
            b = time.perf_counter()
            frames, gt = render_scene(spec, w, h, args.fps, args.frames)
            c = time.perf_counter()
            captions(spec, gt, i)
            d = time.perf_counter()
            write_video(Path(tmp) / f"{i}.mp4", frames, args.fps)
            e = time.perf_counter()
            for k, v in zip(stages, (b - a, c - b, d - c, e - d)):
                v = stages[k].append(v)
        total = time.perf_counter() - t0
    print(f"{args.videos} videos of {args.frames} frames at {w}x{h}, one core: "
          f"{args.videos / total * 60:.0f} videos/minute ({total / args.videos * 1000:.1f} ms each)")
    for k, v in stages.items():
        print(f"  {k:8s} median {statistics.median(v) * 1000:7.2f} ms")


if __name__ == "__main__":
    main()
