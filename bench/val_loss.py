"""Held-out denoising error of one or more transformers, per noise level.

The world suite's tracker scores come from one seed per item (164 prompted objects on its 104
items), so a fine-tune's gain can hide in their noise. This measures the training objective
itself on scenes no run trained on: every clip of a held-out render, noised at fixed sigmas with
fixed noise (the same for every model), text-to-video (no frame given), under its detailed
caption; the velocity error is averaged over clips, per sigma. Lower is better; the models must
share the autoencoder whose latents they were trained on (the cache is built with ``--vae``).
``--objects`` adds the error over the latent cells the objects' boxes cover (about 12% of a
latent; backgrounds fill the rest), ``--text-gain`` how much worse it is without the caption,
``--word-gain shape colour`` how much worse it is on the objects when the caption names other
shapes (every shape word, synonyms and plurals too, swapped as bench/text_binding.py's --swap
does) or other colours (the background's colour words too): the training objective's own
measure of whether the model uses a kind of word.

    tenku world render --count 512 --seed 7 --size 128x128,224x128,128x224 --frames 33 --out data/world-heldout
    python bench/val_loss.py --data data/world-heldout --models models/tenku-world runs/gpu-s11/pipeline --objects
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ["circle", "ring", "square", "star", "triangle"]
COLOURS = ["blue", "cyan", "green", "orange", "pink", "purple", "red", "white", "yellow"]


def swap_words(caption: str, kind: str = "shape") -> str:
    """``caption`` with every word of a ``kind`` ("shape" or "colour"; any synonym the world's
    captions use, a plural too) replaced by the canonical word of the one two along in SHAPES
    (or COLOURS)."""
    from tenku.lang.vocab import COLOR_WORDS, SHAPE_WORDS

    words, names = {"shape": (SHAPE_WORDS, SHAPES), "colour": (COLOR_WORDS, COLOURS)}[kind]

    def sub(m: re.Match) -> str:
        new = names[(names.index(words[m.group(1).lower()]) + 2) % len(names)]
        return new + ("s" if m.group(2) else "")

    alternation = "|".join(sorted(words, key=len, reverse=True))
    return re.sub(rf"\b({alternation})(e?s)?\b", sub, caption, flags=re.IGNORECASE)


def load_dit(folder: Path):  # a pipeline folder (its transformer/) or a transformer folder
    from tenku.dit.model import load_dit as load

    sub = folder / "transformer"
    return load(str(sub if sub.is_dir() else folder)).eval()


def object_masks(folder: Path, names: list[str], shapes: list[tuple[int, ...]], time_down: int,
                 space_down: int) -> list:
    """(T', H', W') bool per latent: the latent cells any visible object's box of the world's
    ground truth touches (``tenku.data.objects.box_mask``)."""
    from tenku.data.latents import read_records
    from tenku.data.objects import box_mask, read_gt

    recs = read_records(folder)
    out = []
    for name, shape in zip(names, shapes):
        if "-" in name:
            raise ValueError(f"{folder}: clip {name} is not a whole video; render the held-out set with --frames 33")
        out.append(box_mask(read_gt(folder, recs[int(name)]), shape, time_down, space_down))
    return out


def clip_losses(dit, data, sigmas: list[float], empty=None, masks=None, seed: int = 0, batch: int = 16, states=None):
    """Velocity error per sigma and clip, (len(sigmas), len(data)) in clip order, over every clip
    of ``data`` (a LatentSet), under each clip's detailed caption, or under the empty prompt's
    states ``empty`` when given, or clip i's ``states[i]`` when given (e.g. of another caption);
    with ``masks`` (``object_masks``), also the error over the latent cells the objects cover
    (else None). Clip i's noise comes from seed + i alone, so the figures do not depend on
    ``batch``, and two models' (or two captions') errors pair clip by clip."""
    import torch

    from tenku.flow import add_noise, velocity
    from tenku.train.dit_batch import pad_states

    total = torch.zeros(len(sigmas), len(data), dtype=torch.float64)
    obj = torch.zeros_like(total)
    for shape, idx in sorted(data.buckets.items()):
        for k in range(0, len(idx), batch):
            part = idx[k : k + batch]
            x0 = torch.stack([data.latents[i] for i in part]).float()
            noise = torch.stack([torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(seed + i)) for i in part])
            ctx, mask = pad_states([states[i] if states is not None else data.captions[i][0] if empty is None else empty
                                    for i in part])
            for j, s in enumerate(sigmas):
                sigma = torch.full((len(part), x0.shape[2]), s)
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                    v = dit(add_noise(x0, noise, sigma), sigma, ctx, mask)
                err = (v.float() - velocity(x0, noise)).pow(2).mean(dim=1)  # (B, T', H', W')
                total[j, part] = err.mean(dim=(1, 2, 3)).double()
                if masks is not None:
                    m = torch.stack([masks[i] for i in part]).float()
                    obj[j, part] = ((err * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3)).clamp_min(1)).double()
    return total, (obj if masks is not None else None)


def losses(dit, data, sigmas: list[float], **kw):
    """``clip_losses`` averaged over the clips: a list per sigma (and the objects' list, or None)."""
    total, obj = clip_losses(dit, data, sigmas, **kw)
    return total.mean(1).tolist(), (obj.mean(1).tolist() if obj is not None else None)


def mean_se(x) -> tuple[list[float], list[float]]:
    """Per row of (S, N) per-clip figures: the mean and its standard error over the clips."""
    n = x.shape[1]
    return x.mean(1).tolist(), (x.std(1) / n**0.5 if n > 1 else 0 * x[:, 0]).tolist()


def swapped_states(folder: Path, names: list[str], max_tokens: int, kind: str) -> list:
    """Per clip, the text states of its detailed caption with the ``kind`` words swapped."""
    from tenku.data.latents import read_records
    from tenku.text import load_text_encoder

    recs = read_records(folder)
    text = load_text_encoder("minilm", max_tokens)
    out = []
    for name in names:
        states, mask = text.encode([swap_words(recs[int(name)]["caption"], kind)])
        out.append(states[0][mask[0]])
    return out


def _table(title: str, sigmas: list[float], rows: list[tuple]) -> None:
    """One markdown table: rows of (model, figures per sigma[, standard errors per sigma])."""
    print(f"\n{title}\n| model | " + " | ".join(f"{s:g}" for s in sigmas) + " | mean |")
    print("| --- |" + " --- |" * (len(sigmas) + 1))
    for m, row, *se in rows:
        cells = [f"{x:.4f}" + (f" ± {e:.4f}" if se else "") for x, e in zip(row, se[0] if se else row)]
        print(f"| {m} | " + " | ".join(cells) + f" | {sum(row) / len(row):.4f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a held-out world render (tenku world render --seed S)")
    ap.add_argument("--models", nargs="+", required=True, help="pipeline or transformer folders")
    ap.add_argument("--vae", default="models/vae-world", help="the autoencoder the models were trained on")
    ap.add_argument("--cache", default="runs/val-cache", help="where the held-out latents are cached")
    ap.add_argument("--max-text-tokens", type=int, default=77,
                    help="caption tokens kept (the models' max_text_tokens; compare models trained alike)")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    ap.add_argument("--objects", action="store_true",
                    help="also the error over the latent cells the objects cover (a world render's ground truth)")
    ap.add_argument("--text-gain", action="store_true",
                    help="also the error under the empty prompt, minus the error under the caption: how much the text helps")
    ap.add_argument("--word-gain", nargs="+", default=[], choices=["shape", "colour"],
                    help="also the error over the objects' cells under the caption with these words swapped, "
                         "minus under the caption: how much the kind of word is used (implies --objects)")
    a = ap.parse_args()
    a.objects = a.objects or bool(a.word_gain)
    if not all(0 < s < 1 for s in a.sigmas):
        ap.error(f"--sigmas must lie in (0, 1); got {a.sigmas}")
    missing = [m for m in [a.data, a.vae, *a.models] if not Path(m).is_dir()]
    if missing:
        ap.error(f"no such folder: {', '.join(missing)}")
    sys.path.insert(0, str(ROOT / "src"))
    from tenku.data.latents import (LatentSet, build_cache, cache_complete, cache_key, empty_states, finish_cache,
                                    read_records)
    from tenku.text import check_max_tokens, load_text_encoder
    from tenku.vae.model import VAE

    try:
        check_max_tokens(a.max_text_tokens)
    except ValueError as e:
        ap.error(str(e))

    try:
        read_records(a.data)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    vae = VAE.load(a.vae).eval()
    cache = Path(a.cache) / cache_key(a.vae, "minilm", a.max_text_tokens) / Path(a.data).resolve().name
    if not cache_complete(a.data, cache):
        text = load_text_encoder("minilm", a.max_text_tokens)
        build_cache(a.data, vae, text, cache, progress=False)
        finish_cache(a.data, cache, len(read_records(a.data)), text)
    data = LatentSet([cache])
    try:
        masks = (object_masks(Path(a.data), data.names, data.shapes, vae.cfg.time_down, vae.cfg.space_down)
                 if a.objects else None)
    except ValueError as e:
        raise SystemExit(f"--objects: {e}")
    swapped = {k: swapped_states(Path(a.data), data.names, a.max_text_tokens, k) for k in a.word_gain}
    print(f"{len(data)} held-out clips in {len(data.buckets)} shapes; velocity error per sigma (lower is better)")
    rows: dict[str, list] = {"all": [], "objects": [], "gain": [], **{k: [] for k in swapped}}
    per_clip: dict[str, list] = {"all": [], "objects": [], **{k: [] for k in swapped}}  # per model, (S, N): pairing
    for m in a.models:
        dit = load_dit(Path(m))
        every, objects = clip_losses(dit, data, a.sigmas, masks=masks)
        rows["all"].append((m, every.mean(1).tolist()))
        per_clip["all"].append(every)
        if objects is not None:
            rows["objects"].append((m, objects.mean(1).tolist()))
            per_clip["objects"].append(objects)
        if a.text_gain:
            rows["gain"].append((m, *mean_se(clip_losses(dit, data, a.sigmas, empty=empty_states(cache))[0] - every)))
        for kind, states in swapped.items():
            per_clip[kind].append(clip_losses(dit, data, a.sigmas, masks=masks, states=states)[1] - objects)
            rows[kind].append((m, *mean_se(per_clip[kind][-1])))

    def paired(key: str, what: str) -> None:  # each later model minus the first, clip by clip
        if len(a.models) > 1:
            _table(f"{what} minus the first model's, paired clip by clip (± a standard error)", a.sigmas,
                   [(m, *mean_se(x - per_clip[key][0])) for m, x in zip(a.models[1:], per_clip[key][1:])])

    _table("whole latent", a.sigmas, rows["all"])
    paired("all", "error over the whole latent")
    if rows["objects"]:
        _table("the latent cells the objects cover (the ground truth's boxes)", a.sigmas, rows["objects"])
        paired("objects", "error over the objects' cells")
    if rows["gain"]:
        _table("text gain: error under the empty prompt minus under the caption (higher: the text is used more; "
               "± a standard error over the clips)", a.sigmas, rows["gain"])
    for kind in swapped:
        _table(f"{kind} gain: error over the object cells with the caption's {kind} words swapped minus with the "
               f"caption (higher: they are used more; ± a standard error over the clips)", a.sigmas, rows[kind])
        paired(kind, f"{kind} gain")


if __name__ == "__main__":
    main()
