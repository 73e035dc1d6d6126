"""How much sampled latents jump from one latent frame to the next, against real videos' latents.

The causal autoencoder decodes each latent frame into 4 frames, so latents that differ more
between adjacent frames than the data's show as jumps every fourth frame (docs/training.md).

    python bench/latent_jitter.py --model models/tenku-world --seeds 0 1 [--data data/world-val --videos 8]

Prints, per sample, the latent's standard deviation and the mean absolute difference between
adjacent latent frames; with ``--data``, the same for that many videos' latents (the VAE's
posterior means, normalised as the transformer sees them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def stats(z: torch.Tensor) -> tuple[float, float]:
    """(standard deviation, mean |z[t+1] - z[t]|) of a latent (1, C, T, H, W)."""
    z = z.float()
    return float(z.std()), float((z[:, :, 1:] - z[:, :, :-1]).abs().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/tenku-world")
    ap.add_argument("--prompt", default="a red ball falls and bounces")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--no-expand", action="store_true", help="the prompt verbatim (default: expanded, as tenku generate does)")
    ap.add_argument("--data", help="a video dataset folder (metadata.jsonl) to compare with")
    ap.add_argument("--videos", type=int, default=8)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from tenku.pipeline import Pipeline
    from tenku.prompts.expand import expand_prompt

    pipe = Pipeline.load(a.model, "cpu")
    w, h = pipe.cfg.size
    shape = pipe.vae.latent_shape(pipe.cfg.frames, h, w)
    for seed in a.seeds:
        caption = expand_prompt(a.prompt, seed, no_expand=a.no_expand, aspect=w / h).caption
        z = pipe.sample_latents(caption, seed, shape, guidance=a.guidance)
        sd, jump = stats(z)
        print(json.dumps({"seed": seed, "std": round(sd, 3), "adjacent_diff": round(jump, 3), "caption": caption}))
    if a.data:
        from tenku.io import read_video

        recs = [json.loads(x) for x in (Path(a.data) / "metadata.jsonl").read_text().splitlines() if x.strip()]
        for r in recs[: a.videos]:
            frames, _ = read_video(Path(a.data) / r["file"])
            n = pipe.geometry.fit_frames(len(frames))
            n = n if n <= len(frames) else n - pipe.geometry.frame_step
            sd, jump = stats(pipe.encode_frames(frames[:n]))
            print(json.dumps({"video": r["file"], "std": round(sd, 3), "adjacent_diff": round(jump, 3)}))


if __name__ == "__main__":
    main()
