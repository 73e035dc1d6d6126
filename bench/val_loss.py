"""Held-out denoising loss of one or more transformers, per noise level.

The world suite's tracker scores on 52 items move by 0.05 between two seeds of the same model,
so they cannot say whether a fine-tune learned anything. This measures the training objective
itself on scenes no run trained on: every clip of a held-out render, noised at fixed sigmas with
fixed noise (the same for every model), text-to-video (no frame given), under its detailed
caption; the velocity error is averaged over clips, per sigma. Lower is better; the models must
share the autoencoder whose latents they were trained on (the cache is built with ``--vae``).

    tenku world render --count 128 --seed 7 --size 128x128,224x128,128x224 --frames 33 --out data/world-heldout
    python bench/val_loss.py --data data/world-heldout --models models/tenku-world runs/gpu-s11/pipeline
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_dit(folder: Path):  # a pipeline folder (its transformer/) or a transformer folder
    from tenku.dit.model import load_dit as load

    sub = folder / "transformer"
    return load(str(sub if sub.is_dir() else folder)).eval()


def losses(dit, data, sigmas: list[float], empty=None, seed: int = 0, batch: int = 16) -> list[float]:
    """Mean velocity error per sigma over every clip of ``data`` (a LatentSet), under each clip's
    detailed caption, or under the empty prompt's states ``empty`` when given. Clip i's noise
    comes from seed + i alone, so the figures do not depend on ``batch``."""
    import torch

    from tenku.flow import add_noise, velocity

    total = [0.0] * len(sigmas)
    for shape, idx in sorted(data.buckets.items()):
        for k in range(0, len(idx), batch):
            part = idx[k : k + batch]
            x0 = torch.stack([data.latents[i] for i in part]).float()
            noise = torch.stack([torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(seed + i)) for i in part])
            states = [(data.captions[i][0] if empty is None else empty).float() for i in part]
            n = max(s.shape[0] for s in states)
            ctx = torch.zeros(len(part), n, states[0].shape[1])
            mask = torch.zeros(len(part), n, dtype=torch.bool)
            for b, s in enumerate(states):
                ctx[b, : s.shape[0]], mask[b, : s.shape[0]] = s, True
            for j, s in enumerate(sigmas):
                sigma = torch.full((len(part), x0.shape[2]), s)
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                    v = dit(add_noise(x0, noise, sigma), sigma, ctx, mask)
                total[j] += float((v.float() - velocity(x0, noise)).pow(2).mean(dim=(1, 2, 3, 4)).sum())
    return [t / len(data) for t in total]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a held-out world render (tenku world render --seed S)")
    ap.add_argument("--models", nargs="+", required=True, help="pipeline or transformer folders")
    ap.add_argument("--vae", default="models/vae-world", help="the autoencoder the models were trained on")
    ap.add_argument("--cache", default="runs/val-cache", help="where the held-out latents are cached")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    ap.add_argument("--text-gain", action="store_true",
                    help="also the error under the empty prompt, minus the error under the caption: how much the text helps")
    a = ap.parse_args()
    if not all(0 < s < 1 for s in a.sigmas):
        ap.error(f"--sigmas must lie in (0, 1); got {a.sigmas}")
    missing = [m for m in [a.data, a.vae, *a.models] if not Path(m).is_dir()]
    if missing:
        ap.error(f"no such folder: {', '.join(missing)}")
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from tenku.data.latents import (LatentSet, build_cache, cache_complete, cache_key, empty_states, finish_cache,
                                    read_records)
    from tenku.text import load_text_encoder
    from tenku.vae.model import VAE

    torch.manual_seed(0)
    cache = Path(a.cache) / cache_key(a.vae, "minilm") / Path(a.data).resolve().name
    if not cache_complete(a.data, cache):
        text = load_text_encoder("minilm")
        build_cache(a.data, VAE.load(a.vae).eval(), text, cache, progress=False)
        finish_cache(a.data, cache, len(read_records(a.data)), text)
    data = LatentSet([cache])
    print(f"{len(data)} held-out clips in {len(data.buckets)} shapes; velocity error per sigma (lower is better)")
    print("| model | " + " | ".join(f"{s:g}" for s in a.sigmas) + " | mean |")
    print("| --- |" + " --- |" * (len(a.sigmas) + 1))
    gains = []
    for m in a.models:
        dit = load_dit(Path(m))
        row = losses(dit, data, a.sigmas)
        print(f"| {m} | " + " | ".join(f"{x:.4f}" for x in row) + f" | {sum(row) / len(row):.4f} |", flush=True)
        if a.text_gain:
            gains.append([u - c for u, c in zip(losses(dit, data, a.sigmas, empty_states(cache)), row)])
    if gains:
        print("\ntext gain: error under the empty prompt minus under the caption (higher: the text is used more)")
        print("| model | " + " | ".join(f"{s:g}" for s in a.sigmas) + " | mean |")
        print("| --- |" + " --- |" * (len(a.sigmas) + 1))
        for m, row in zip(a.models, gains):
            print(f"| {m} | " + " | ".join(f"{x:.4f}" for x in row) + f" | {sum(row) / len(row):.4f} |")


if __name__ == "__main__":
    main()
