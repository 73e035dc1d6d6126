"""How much a shape or colour word can tell the transformer: one held-out scene's first frame
drawn as it is and with every object's shape (or colour) changed (two along, as
``bench/val_loss.py --word-gain`` swaps the words), both encoded, and the mean squared
difference of the latents over the objects' cells. Blurred first by a Gaussian of 0.5, 1 and 2
latent cells: at the noise levels where an object's place is not yet fixed to the cell, what
the word can still decide is roughly the blurred difference (the prediction is a mean over
places). An edge (the shape) blurs away sooner than a fill (the colour).

    python bench/word_contrast.py --data data/world-heldout --limit 128
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from val_loss import COLOURS, SHAPES  # noqa: E402  (the same swap order as --word-gain)

BLURS = (0.0, 0.5, 1.0, 2.0)


def blur(z: torch.Tensor, s: float) -> torch.Tensor:
    """(C, H, W) smoothed by a separable Gaussian of standard deviation ``s`` cells (edges replicated)."""
    if s == 0:
        return z
    r = int(3 * s + 0.5)
    g = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * s * s))
    c, f = z.shape[0], torch.nn.functional
    g = (g / g.sum()).repeat(c, 1, 1, 1)  # (C, 1, 1, k)
    z = f.conv2d(f.pad(z[None], (r, r, 0, 0), mode="replicate"), g, groups=c)
    return f.conv2d(f.pad(z, (0, 0, r, r), mode="replicate"), g.transpose(2, 3), groups=c)[0]


def changed(spec, kind: str):
    """``spec`` with every object's shape or colour replaced by the one two along (val_loss's order)."""
    field, names = {"shape": ("shape", SHAPES), "colour": ("color", COLOURS)}[kind]
    objs = [dataclasses.replace(o, **{field: names[(names.index(getattr(o, field)) + 2) % len(names)]}) for o in spec.objects]
    return dataclasses.replace(spec, objects=objs)


def contrast(vae, records: list[dict]) -> dict[tuple[str, float], list[float]]:
    """Per (kind, blur), the mean squared latent difference over the objects' cells, per scene."""
    from tenku.data.objects import box_mask
    from tenku.io import from_uint8
    from tenku.world.render import render_scene
    from tenku.world.spec import SceneSpec

    def encode(spec, w, h, fps):
        frames, gt = render_scene(spec, w, h, fps, 1)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return vae.encode(from_uint8(frames)[None]).float()[0, :, 0], gt

    out: dict[tuple[str, float], list[float]] = {(k, b): [] for k in ("shape", "colour") for b in BLURS}
    down = vae.cfg.space_down
    for r in records:
        spec, w, h = SceneSpec.from_dict(r["spec"]), r["width"], r["height"]
        za, gt = encode(spec, w, h, r["fps"])
        mask = box_mask(gt.to_dict(), (1, 1, h // down, w // down), vae.cfg.time_down, down)[0]
        if not mask.any():
            continue
        for kind in ("shape", "colour"):
            zb, _ = encode(changed(spec, kind), w, h, r["fps"])
            for b in BLURS:
                out[(kind, b)].append(float((blur(za, b) - blur(zb, b)).pow(2).mean(0)[mask].mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a world render (its metadata.jsonl has each scene's spec)")
    ap.add_argument("--vae", default=str(ROOT / "models" / "vae-world"))
    ap.add_argument("--limit", type=int, default=128, help="the first N scenes")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from tenku.vae.model import VAE

    meta = Path(a.data) / "metadata.jsonl"
    if not meta.is_file():
        ap.error(f"{a.data}: no metadata.jsonl (a tenku world render)")
    records = [json.loads(line) for line in meta.read_text().splitlines()[: a.limit]]
    out = contrast(VAE.load(a.vae).eval(), records)
    print("mean squared latent difference over the objects' cells of latent frame 0, the word's attribute changed:")
    print("| blur (latent cells) | " + " | ".join(f"{b:g}" for b in BLURS) + " |\n| --- |" + " --- |" * len(BLURS))
    for kind in ("shape", "colour"):
        print(f"| {kind} ({len(out[(kind, 0.0)])} scenes) | " + " | ".join(f"{np.mean(out[(kind, b)]):.3f}" for b in BLURS) + " |")


if __name__ == "__main__":
    main()
