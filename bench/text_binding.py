"""What the transformer takes from the caption: how much each kind of word moves its prediction,
and whether it draws the shape it is told to.

    python bench/text_binding.py [--model models/tenku-world] [--weights CHECKPOINT_OR_TRANSFORMER] [--seeds 2]
                                 [--verbatim] [--swap 0.7 0.8 0.9]

1. Sensitivity. For an expanded caption ("a large red triangle rests on the floor"), one word at
   a time is swapped (shape, colour, size, place, background; and the empty caption) and the
   change of the predicted clean latent x0 = x - sigma v is printed relative to its norm, at
   noise levels 1, 0.9, 0.7 and 0.5 (one 33-frame 128x128 latent). A word the model ignores
   moves it by about nothing; the layout is laid down above 0.7 (docs/training-history.md).
2. The text projection. The cosine between a word's token in that caption and the token of the
   word swapped in, from the text encoder and after the transformer's text projection: a
   projection that learned a kind of word pushes its words apart.
3. Shapes. "a large {colour} {shape} rests on the floor" (expanded, or as it is with --verbatim;
   5 shapes x 4 colours x seeds) as an image (1 frame), and the shape of the largest piece of
   that colour the tracker finds: prompted against drawn. A model that ignores the shape word has rows alike
   and gets about one in five right. Also the pieces of the prompted colour per image: one
   object is prompted, so more than one are fragments (the extra tracks of the world suite).
4. With --swap 0.7 0.8 0.9: who decides the shape. Each of those images, drawn by the simulator,
   is noised to the level and denoised under a caption that names another shape: drawn as the
   image's shape (the latent decided), the caption's (the text did) or neither.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from val_loss import SHAPES  # noqa: E402  (one order for every swap of the bench scripts)

COLOURS = ["red", "blue", "green", "yellow"]
BASE = "a large red triangle rests on the floor"


def sensitivity(pipe, seed: int = 0) -> dict[float, dict[str, float]]:
    from tenku.prompts.expand import expand_prompt

    base = expand_prompt(BASE, seed, aspect=1.0, frames=33, fps=8.0).caption
    background = base.split(". ", 1)[1].split(" fill", 1)[0]  # the expander's background phrase
    place = base.replace("right", "left", 1) if "right" in base else base.replace("left", "right", 1)
    swaps = {"shape": base.replace("triangle", "circle"), "colour": base.replace("red", "blue"),
             "size": base.replace("large", "small"), "place": place,
             "background": base.replace(background, "Plain white"), "empty": ""}
    swaps = {k: v for k, v in swaps.items() if v != base}  # a phrase this caption does not have
    shape = (pipe.dit.cfg.in_channels, 9, 16, 16)  # 33 frames at 128x128
    out: dict[float, dict[str, float]] = {}
    with torch.no_grad():
        x0 = pipe.sample_latents(base, seed, shape)
        noise = torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed + 1))
        c0 = pipe.encode_text([base])
        cs = {k: pipe.encode_text([v]) for k, v in swaps.items()}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            for sig in (1.0, 0.9, 0.7, 0.5):
                x = (1 - sig) * x0 + sig * noise
                s = torch.full((1, shape[1]), sig)
                v0 = pipe._velocity(x, s, *c0)
                ref = (x - sig * v0).norm()
                out[sig] = {k: float((sig * (pipe._velocity(x, s, *c) - v0)).norm() / ref) for k, c in cs.items()}
    return out


PAIRS = [("triangle", "circle"), ("triangle", "ring"), ("triangle", "square"), ("red", "blue"), ("red", "green"),
         ("large", "small")]
CAPTION = "A large red triangle rests on the floor at the lower right and stays perfectly still."


def projection(pipe) -> dict[str, tuple[float, float]]:
    """``{"a-b": (cosine from the text encoder, cosine after the text projection)}`` of word a's
    token in CAPTION against word b's in CAPTION with b for a."""
    cos = torch.nn.functional.cosine_similarity
    words = pipe.text.tokenizer.convert_ids_to_tokens(pipe.text.tokenizer(CAPTION)["input_ids"])
    proj = pipe.dit.text_proj
    out = {}
    with torch.no_grad():
        s0 = pipe.encode_text([CAPTION])[0][0]
        p0 = proj(s0.to(proj[0].weight.dtype)).float()
        for a, b in PAIRS:
            i = words.index(a)
            s1 = pipe.encode_text([CAPTION.replace(a, b)])[0][0]
            p1 = proj(s1.to(proj[0].weight.dtype)).float()
            out[f"{a}-{b}"] = (cos(s0[i], s1[i], dim=0).item(), cos(p0[i], p1[i], dim=0).item())
    return out


def read_shape(img: np.ndarray, colour: str) -> tuple[str, int]:
    """The shape of the largest piece of ``colour`` the tracker finds in one uint8 image ("none"
    without one), and how many pieces of that colour it finds."""
    from tenku.eval.segment import detect

    found = [d for d in detect(img[None])[0] if d.color == colour]
    return (max(found, key=lambda d: d.area).shape if found else "none"), len(found)


def shapes(draw, seeds: int) -> tuple[collections.Counter, collections.Counter]:
    """Counts of (prompted, drawn) shape, and of the number of pieces of the prompted colour per
    image (one object is prompted: more are fragments); ``draw(expansion, seed)`` makes a
    128x128 uint8 image."""
    from tenku.prompts.expand import expand_prompt

    cnt: collections.Counter = collections.Counter()
    pieces: collections.Counter = collections.Counter()
    for s in SHAPES:
        for c in COLOURS:
            for seed in range(seeds):
                drawn, n = read_shape(draw(expand_prompt(f"a large {c} {s} rests on the floor", seed, aspect=1.0,
                                                         frames=1, fps=8.0), seed), c)
                cnt[(s, drawn)] += 1
                pieces[n] += 1
    return cnt, pieces


def shape_swap(draw, seeds: int) -> collections.Counter:
    """Who decides the shape: each prompt's simulator image is given with a caption whose shape
    word names another shape (two along in SHAPES); ``draw(expansion, caption, seed)`` makes
    the 128x128 uint8 image. Counts of the drawn shape being the image's ("render"), the
    caption's ("caption"), or neither ("other", "none" included)."""
    from tenku.prompts.expand import expand_prompt

    cnt: collections.Counter = collections.Counter()
    for i, s in enumerate(SHAPES):
        other = SHAPES[(i + 2) % len(SHAPES)]
        for c in COLOURS:
            for seed in range(seeds):
                e = expand_prompt(f"a large {c} {s} rests on the floor", seed, aspect=1.0, frames=1, fps=8.0)
                drawn, _ = read_shape(draw(e, e.caption.replace(s, other), seed), c)
                cnt["render" if drawn == s else "caption" if drawn == other else "other"] += 1
    return cnt


def edit(pipe, sigma: float):
    """A ``shape_swap`` draw: the simulator's image noised to ``sigma`` and denoised under the
    caption (the SDEdit edit mode)."""
    from tenku.world.render import render_scene

    def draw(e, caption: str, seed: int) -> np.ndarray:
        with torch.no_grad():
            z = pipe.encode_frames(render_scene(e.spec, 128, 128, 8.0, 1)[0])
            return pipe.decode(pipe.sample_latents(caption, seed, tuple(z.shape[1:]), x_start=z, start_sigma=sigma))[0]

    return draw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "tenku-world"))
    ap.add_argument("--weights", default="", help="other transformer weights: a training checkpoint or transformer folder")
    ap.add_argument("--seeds", type=int, default=2, help="images per prompted shape and colour")
    ap.add_argument("--verbatim", action="store_true",
                    help="draw the shapes from the short prompts as they are, not their expanded captions")
    ap.add_argument("--swap", type=float, nargs="*", default=[],
                    help="also, at these noise levels (e.g. 0.7 0.8 0.9), who decides the shape: the image or the caption")
    a = ap.parse_args()
    if not all(0 < x <= 1 for x in a.swap):
        ap.error(f"--swap noise levels lie in (0, 1]; got {a.swap}")
    sys.path.insert(0, str(ROOT / "src"))
    from tenku.pipeline import Pipeline

    pipe = Pipeline.load(a.model)
    if a.weights:
        from tenku.train.checkpoint import load_init

        load_init(pipe.dit, a.weights)
        pipe.dit.eval()
    t0 = time.time()
    print("change of the predicted clean latent when one word is swapped (relative):")
    for sig, row in sensitivity(pipe).items():
        print(f"  noise {sig:<4}" + "".join(f"  {k} {v:.3f}" for k, v in row.items()))
    print("cosine of a word's token against the swapped word's: text encoder -> after the text projection:")
    print("  " + "  ".join(f"{k} {e:.3f} -> {p:.3f}" for k, (e, p) in projection(pipe).items()))
    cnt, pieces = shapes(lambda e, seed: np.asarray(pipe.generate(e.prompt if a.verbatim else e.caption, seed=seed,
                                                                  size=(128, 128), frames=1))[0], a.seeds)
    n = len(COLOURS) * a.seeds
    right = sum(cnt[(s, s)] for s in SHAPES)
    print(f"shapes drawn as images ({n} per shape; rows prompted, columns drawn): "
          f"{right} of {n * len(SHAPES)} right")
    cols = SHAPES + ["none"]
    print("  " + " " * 9 + "".join(f"{c:>9}" for c in cols))
    for s in SHAPES:
        print(f"  {s:9s}" + "".join(f"{cnt[(s, c)]:9d}" for c in cols))
    mean = sum(k * v for k, v in pieces.items()) / max(1, sum(pieces.values()))
    print(f"pieces of the prompted colour per image (one object prompted): mean {mean:.2f}; "
          + ", ".join(f"{k}: {v}" for k, v in sorted(pieces.items())))
    if a.swap:
        print("the simulator's image noised to a level, denoised under a caption naming another shape: drawn as")
    for sig in a.swap:
        sw = shape_swap(edit(pipe, sig), a.seeds)
        print(f"  noise {sig:<4}" + "".join(f"  {k} {sw[k]:3d}" for k in ("render", "caption", "other")))
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
