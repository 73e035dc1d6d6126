"""Does the transformer's middle carry an object's shape where the object will be, and does a
loss that asks it to help? (an experiment, session 17; docs/training-history.md)

A linear head reads the hidden state after block ``--block`` and predicts, for every latent
cell of a single-frame world image, the shape of the object whose box covers it (0 for the
background; cells two boxes share are left out), from the world's ground truth. Trained on
noised images with their captions, so where the noise hides the object the shape can only come
from the text.

    python bench/shape_head.py --freeze --steps 300 --out runs/probe-bundle     # a linear probe of the bundle
    python bench/shape_head.py --aux 0.5 --steps 1000 --out runs/shape-aux      # fine-tune with the head's loss

``--freeze``: only the head learns (a probe of the given weights). Otherwise the transformer
fine-tunes on the velocity loss plus ``--aux`` times the head's cross-entropy (0: the head
still learns, but its gradient stops at the hidden state: a probe of the fine-tune). Every
``--log`` steps: the velocity loss, the head's loss, and how often its likeliest shape is the
object's on the cells an object covers (chance 0.2), at noise below 0.5, 0.5-0.8 and above
0.8. The EMA transformer is saved to OUT/transformer (``text_binding.py --weights
OUT/transformer`` draws with it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from val_loss import SHAPES  # noqa: E402  (one order for every swap of the bench scripts)

BANDS = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.0))


def cell_labels(gt: dict, shapes: list[str], size: tuple[int, int], space_down: int) -> torch.Tensor:
    """(H', W') long for frame 0: 1 + the shape index (in SHAPES) of the one object whose box
    touches the cell, 0 where none does, -100 (ignored) where several do."""
    from tenku.data.objects import SHARED, box_labels

    label = box_labels(gt, [1 + SHAPES.index(s) for s in shapes], (1, 1, *size), 4, space_down)[0].long()
    return label.masked_fill(label == SHARED, -100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "tenku-world"), help="a pipeline folder")
    ap.add_argument("--data", default=str(ROOT / "data" / "world-images"), help="single-frame world renders")
    ap.add_argument("--cache", default=str(ROOT / "runs" / "guide-cache"), help="cache root holding its latents")
    ap.add_argument("--vae", default=str(ROOT / "models" / "vae-world"), help="the autoencoder of the cache")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--aux", type=float, default=0.5, help="weight of the head's cross-entropy in the transformer's loss")
    ap.add_argument("--block", type=int, default=4, help="the head reads the state after this block (1-based)")
    ap.add_argument("--freeze", action="store_true", help="train the head alone: a probe")
    ap.add_argument("--log", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from einops import rearrange

    from tenku.data.latents import LatentSet, cache_key, empty_states, read_records
    from tenku.data.objects import read_gt
    from tenku.dit.model import load_dit, save_dit
    from tenku.flow import add_noise, velocity
    from tenku.train.dit_batch import pad_states

    cache = Path(a.cache) / cache_key(a.vae, "minilm") / Path(a.data).resolve().name
    if not cache.is_dir():
        raise SystemExit(f"no latent cache {cache}: tenku cache {a.data} --vae {a.vae} --out {a.cache}")
    data, recs, empty = LatentSet([cache]), read_records(a.data), empty_states(cache)
    model = load_dit(str(Path(a.model) / "transformer")).float().train()
    if not 1 <= a.block <= len(model.blocks):
        ap.error(f"--block must lie in 1..{len(model.blocks)}")
    ph, pw = model.cfg.patch[1:]
    head = torch.nn.Linear(model.cfg.dim, ph * pw * (1 + len(SHAPES)))
    kept: dict[str, torch.Tensor] = {}  # the stream after that block, kept by a forward hook, as training's shape head reads it
    model.blocks[a.block - 1].register_forward_hook(lambda mod, args, out: kept.update(h=out))
    labels: dict[int, torch.Tensor] = {}

    def label(i: int) -> torch.Tensor:
        if i not in labels:
            r = recs[int(data.names[i])]
            h, w = data.shapes[i][2:]
            labels[i] = cell_labels(read_gt(a.data, r), [o["shape"] for o in r["spec"]["objects"]], (h, w), r["width"] // w)
        return labels[i]

    params = list(head.parameters()) + ([] if a.freeze else list(model.parameters()))
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(a.seed)
    buckets = sorted(data.buckets.items())
    sizes = np.array([len(v) for _, v in buckets], dtype=float)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stats: list[list[float]] = []
    t0 = time.time()
    for step in range(1, a.steps + 1):
        _, idx = buckets[int(rng.choice(len(buckets), p=sizes / sizes.sum()))]
        part = [idx[int(j)] for j in rng.integers(0, len(idx), a.batch)]
        x0 = torch.stack([data.latents[i] for i in part]).float()
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(a.seed * 100_003 + step))
        sigma = torch.sigmoid(torch.from_numpy(rng.standard_normal(len(part))).float())[:, None]
        states = [empty if rng.random() < 0.1 else data.captions[i][1 if rng.random() < 0.25 else 0] for i in part]
        ctx, mask = pad_states(states)
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(not a.freeze):
            v = model(add_noise(x0, noise, sigma), sigma, ctx, mask)
        loss_v = (v.float() - velocity(x0, noise)).pow(2).mean()
        h = kept["h"].float() if a.aux > 0 and not a.freeze else kept["h"].float().detach()
        _, _, _, hh, ww = x0.shape
        logits = rearrange(head(h), "b (h w) (ph pw k) -> b k (h ph) (w pw)", h=hh // ph, w=ww // pw, ph=ph, pw=pw)
        y = torch.stack([label(i) for i in part])
        ce = torch.nn.functional.cross_entropy(logits, y, ignore_index=-100)
        loss = ce if a.freeze else loss_v + (a.aux or 1.0) * ce  # aux 0: h is detached, so ce trains the head alone
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not a.freeze:
            with torch.no_grad():
                for k, p in model.state_dict().items():
                    ema[k].lerp_(p, 1 - min(0.995, (1 + step) / (10 + step)))
        with torch.no_grad():
            right = (logits[:, 1:].argmax(1) + 1 == y) & (y > 0)  # which shape, where there is an object
            for b, s in enumerate(sigma[:, 0].tolist()):
                n = int((y[b] > 0).sum())
                if n:
                    stats.append([s, float(right[b].sum()) / n])
        if step % a.log == 0 or step == a.steps:
            acc = []
            for lo, hi in BANDS:
                sel = [r for s, r in stats if lo <= s < hi]
                acc.append(f"{np.mean(sel):.2f}" if sel else "-")
            print(json.dumps({"step": step, "loss_v": round(float(loss_v.detach()), 4), "ce": round(float(ce.detach()), 4),
                              "shape_acc_by_noise": dict(zip([f"{lo}-{hi}" for lo, hi in BANDS], acc)),
                              "s": round(time.time() - t0)}), flush=True)
            stats.clear()
    if not a.freeze:
        model.load_state_dict(ema)
        save_dit(str(out / "transformer"), model.eval())
    print(f"done in {time.time() - t0:.0f} s; chance is {1 / len(SHAPES):.2f}"
          + ("" if a.freeze else f"; EMA weights in {out / 'transformer'}"))


if __name__ == "__main__":
    main()
