"""Does a debug-size DiT learn colour in minutes on a CPU?

    python bench/dit_colour.py [--vae models/vae-world] [--steps 2500] [--out runs/colour]

1. renders a single-object world dataset (64x64, 9 frames, 8 fps),
2. trains a small DiT on it (`tenku train dit`, same code path),
3. generates 20 held-out prompts that each name one coloured object (expanded
   as `tenku generate` does) and checks that the dominant palette colour of the
   generated video (tenku.eval's CIELAB segmentation) is the prompted one.

Prints the accuracy (target: >= 80%), the wall time, and writes a contact
sheet of the 20 videos to OUT/colour.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tenku.eval.segment import COLORS, color_labels
from tenku.io import save_contact_sheet
from tenku.pipeline import Pipeline
from tenku.prompts.expand import expand_prompt
from tenku.train.dit import load_train_config, train
from tenku.world.dataset import render_dataset
from tenku.world.spec import PALETTE, SHAPES

MOTIONS = ["falls", "slides to the left", "rests on the floor", "bounces around", "is thrown to the right", "drifts upward"]


def held_out_prompts(n: int = 20) -> list[tuple[str, str]]:
    """(prompt, colour): every colour at least twice, shapes and motions cycling."""
    colours = list(PALETTE)
    return [(f"a {colours[i % len(colours)]} {SHAPES[(i * 2) % len(SHAPES)]} {MOTIONS[i % len(MOTIONS)]}",
             colours[i % len(colours)]) for i in range(n)]


def dominant_colour(frames: np.ndarray) -> str | None:
    lab = color_labels(frames)
    counts = np.bincount(lab[lab >= 0].ravel(), minlength=len(COLORS))
    return COLORS[int(counts.argmax())] if counts.sum() else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vae", default="models/vae-world")
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--videos", type=int, default=1500)
    ap.add_argument("--out", default="runs/colour")
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    args = ap.parse_args()
    out = Path(args.out)
    t0 = time.time()
    render_dataset(out / "data", args.videos, [(64, 64)], 9, 8.0, seed=7, workers=2, max_objects=1)
    t_data = time.time() - t0
    cfg = load_train_config(None, [
        f"out={out / 'run'}", f"vae={args.vae}", f"data=[{out / 'data'}]", "size=S",
        f"model={{dim: {args.dim}, depth: {args.depth}, heads: {args.dim // 64}}}", f"steps={args.steps}",
        "batch_size=32", "lr=1e-3", "min_lr=1e-4", "warmup=100", "ema=0.995", "sample_every=0",
        "ckpt_every=500", "sample.size=[64,64]", "sample.frames=9", "cond.image_prob=0.0"])
    t1 = time.time()
    last = train(cfg)
    t_train = time.time() - t1
    pipe = Pipeline.load(out / "run" / "pipeline", device="cpu")
    hits, rows, videos = 0, [], []
    for i, (prompt, colour) in enumerate(held_out_prompts()):
        caption = expand_prompt(prompt, seed=100 + i).caption
        video = pipe.generate(caption, seed=100 + i, size=(64, 64), frames=9, steps=20, guidance=5.0)
        got = dominant_colour(video)
        hits += got == colour
        rows.append({"prompt": prompt, "want": colour, "got": got})
        videos.append(video[4])
        print(f"{'ok ' if got == colour else 'MISS'} {prompt!r}: {got}")
    save_contact_sheet(out / "colour.png", np.stack(videos), cols=5)
    result = {"accuracy": hits / 20, "train_steps": args.steps, "train_minutes": t_train / 60,
              "data_minutes": t_data / 60, "final_loss": last.get("loss"), "model": {"dim": args.dim, "depth": args.depth},
              "rows": rows}
    (out / "colour.json").write_text(json.dumps(result, indent=1))
    print(f"colour accuracy {hits}/20 = {hits / 20:.0%} after {args.steps} steps ({t_train / 60:.1f} min training)")


if __name__ == "__main__":
    main()
