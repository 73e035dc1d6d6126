"""Does grounding help? Two measurements of a grounded checkpoint (docs/layout.md).

``loss``: the flow-matching error on held-out world videos, paired: the same clip, noise and
noise level with its ground-truth layout, without it, and for the bundled transformer
(today's free model), over the whole latent and over the cells the objects' boxes touch:

    python bench/grounded.py loss --ckpt /work/runs/ground-s21/ckpt --data /work/runs/ground-data/world-heldout \
        --sigmas 0.5 0.7 0.85 0.95

``sample``: world-suite prompts planned by the simulator (tenku.layout.plan), sampled through
tenku.flow.sample with the same noise free and grounded, decoded and scored by the
benchmark's tracker against the plan's own scene (object adherence, extra tracks, ADE in
object sizes to the planned trajectories):

    python bench/grounded.py sample --ckpt /work/runs/ground-s21/ckpt --items 6
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tenku.dit.model import DiT, load_dit

BUNDLE = "models/tenku-world"


def load_ckpt(path: str) -> DiT:
    """A checkpoint's EMA (ckpt/ema), a transformer folder or a pipeline folder's transformer."""
    p = Path(path)
    for f in (p / "ema", p / "transformer", p):
        if (f / "model.safetensors").is_file():
            return load_dit(str(f))
    sys.exit(f"{path}: no transformer weights (a checkpoint, transformer or pipeline folder)")


def mean_se(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else math.nan


# ---- loss -------------------------------------------------------------------------------------


def heldout(folder: str, vae_folder: str, cache_root: str) -> tuple[Any, Any]:
    """The held-out folder's latent cache (built once) and its ObjectMasks (boxes, layouts)."""
    from tenku.data.latents import LatentSet, build_cache, cache_complete, cache_key
    from tenku.data.objects import ObjectMasks
    from tenku.text import load_text_encoder
    from tenku.vae.model import VAE

    vae = VAE.load(vae_folder)
    cdir = Path(cache_root) / cache_key(vae_folder, "minilm") / Path(folder).resolve().name
    if not cache_complete(folder, cdir):
        build_cache(folder, vae, load_text_encoder("minilm"), cdir, progress=True)
    data = LatentSet([cdir])
    return data, ObjectMasks(data, {str(cdir): folder}, vae.cfg.time_down, vae.cfg.space_down)


@torch.no_grad()
def cmd_loss(a: argparse.Namespace) -> None:
    from tenku.flow import add_noise, velocity
    from tenku.layout import pool_phrases, to_model
    from tenku.text import load_text_encoder

    torch.set_num_threads(a.threads)
    data, masks = heldout(a.data, a.vae, a.cache)
    text, pooled = load_text_encoder("minilm"), {}
    models = {"bundle": load_dit(f"{BUNDLE}/transformer"), "ckpt": load_ckpt(a.ckpt)}
    idx = list(range(len(data)))[: a.clips]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i in idx:
        groups.setdefault(tuple(data.shapes[i]), []).append(i)
    rows: dict[str, dict[str, list[float]]] = {}
    t0 = time.time()
    for sigma in a.sigmas:
        r = rows.setdefault(str(sigma), {})
        for shape, members in groups.items():
            for s in range(0, len(members), a.batch):
                part = members[s : s + a.batch]
                x0 = torch.stack([data.latents[i] for i in part]).float()
                g = torch.Generator().manual_seed(int(1000 * sigma))
                noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(i * 7919 + int(1000 * sigma)))
                                     for i in part])
                sig = torch.full((len(part), shape[1]), float(sigma))
                ctx = torch.nn.utils.rnn.pad_sequence([data.captions[i][0].float() for i in part], batch_first=True)
                cm = torch.arange(ctx.shape[1])[None] < torch.tensor([data.captions[i][0].shape[0] for i in part])[:, None]
                lays = []
                for i in part:
                    lay = masks.layout(i)
                    lays.append(to_model(lay, pool_phrases(text, [o.phrase for o in lay.objects], pooled), 4, shape[1]))
                x, target = add_noise(x0, noise, sig), velocity(x0, noise)
                obj = torch.stack([masks[i] for i in part]).float()  # (B, T', H', W')
                with torch.autocast("cpu", torch.bfloat16):
                    outs = {"bundle": models["bundle"](x, sig, ctx, cm), "free": models["ckpt"](x, sig, ctx, cm),
                            "layout": models["ckpt"](x, sig, ctx, cm, layout=lays)}
                del g
                for name, v in outs.items():
                    err = (v.float() - target).pow(2).mean(1)  # (B, T', H', W')
                    r.setdefault(name, []).extend(err.mean((1, 2, 3)).tolist())
                    r.setdefault(name + "_obj", []).extend(((err * obj).sum((1, 2, 3)) / obj.sum((1, 2, 3)).clamp_min(1)).tolist())
        print(f"sigma {sigma}: done ({time.time() - t0:.0f}s)", file=sys.stderr)
    report: dict[str, Any] = {"ckpt": a.ckpt, "clips": len(idx), "sigmas": {}}
    print(f"{len(idx)} held-out clips of {a.data}; {a.ckpt} (EMA) against the bundle; paired differences +- one standard error")
    print("| noise | bundle | ckpt free | ckpt + layout | layout - free | free - bundle | objects' cells: layout - free |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for sigma, r in rows.items():
        d_lay = mean_se([x - y for x, y in zip(r["layout"], r["free"])])
        d_free = mean_se([x - y for x, y in zip(r["free"], r["bundle"])])
        d_obj = mean_se([x - y for x, y in zip(r["layout_obj"], r["free_obj"])])
        m = {k: float(np.mean(v)) for k, v in r.items()}
        report["sigmas"][sigma] = {"mean": m, "layout_minus_free": d_lay, "free_minus_bundle": d_free, "objects_layout_minus_free": d_obj}
        print(f"| {sigma} | {m['bundle']:.4f} | {m['free']:.4f} | {m['layout']:.4f} | {d_lay[0]:+.4f} +- {d_lay[1]:.4f} | "
              f"{d_free[0]:+.4f} +- {d_free[1]:.4f} | {m['free_obj']:.3f} -> {m['layout_obj']:.3f}: {d_obj[0]:+.4f} +- {d_obj[1]:.4f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))


# ---- sample -----------------------------------------------------------------------------------


def grounded_latents(pipe: Any, caption: str, seed: int, shape: tuple[int, ...], layout: Any | None,
                     steps: int | None = None) -> torch.Tensor:
    """The pipeline's text-to-video sampling (``Pipeline.sample_latents``: its sigmas, guidance,
    autoguidance), the transformer given ``layout`` (a ``to_model`` input) on both branches of
    guidance; the guide sees none (it has no grounding)."""
    return pipe.sample_latents(caption, seed, shape, steps, conditioning=None if layout is None else {"layout": layout})


def cmd_sample(a: argparse.Namespace) -> None:
    from tenku.eval.run import evaluate_item
    from tenku.eval.suites import build_suite
    from tenku.layout import plan, pool_phrases, to_model
    from tenku.pipeline import Pipeline

    torch.set_num_threads(a.threads)
    pipe = Pipeline.load(BUNDLE, device="cpu")
    bundle_dit, pipe.dit = pipe.dit, load_ckpt(a.ckpt).eval()
    items = [it for it in build_suite("world") if it.mode == "t2v"][: a.items]
    td, sd = pipe.vae.cfg.time_down, pipe.vae.cfg.space_down
    keys = ("object_adherence", "count_consistency", "identity_stability", "motion_adherence")
    res: dict[str, list[dict[str, Any]]] = {"bundle": [], "free": [], "layout": []}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for it in items:
        lay, exp = plan(it.prompt, it.gen_seed, width=it.width, height=it.height, fps=it.fps, frames=it.frames)
        item = type(it)(**{**it.__dict__, "spec": exp.spec})  # judged against the planned scene
        shape = (pipe.vae.cfg.latent_channels, 1 + (it.frames - 1) // td, it.height // sd, it.width // sd)
        grounding = to_model(lay, pool_phrases(pipe.text, [o.phrase for o in lay.objects]), td, shape[1])
        for name in res:
            pipe_dit = pipe.dit
            if name == "bundle":
                pipe.dit = bundle_dit
            z = grounded_latents(pipe, exp.caption, it.gen_seed, shape, grounding if name == "layout" else None, a.steps)
            pipe.dit = pipe_dit
            video = pipe.decode(z)
            from tenku.io import write_video

            write_video(out / f"{it.id}-{name}.mp4", video, it.fps)
            r = evaluate_item(item, video)
            res[name].append({"id": it.id, **{k: r["rates"][k] for k in keys},
                              "extra_tracks": r["values"]["extra_tracks"], "ade_size": r["values"]["ade_size"]})
        print(it.id, it.prompt, {n: {k: round(v[-1][k], 3) if isinstance(v[-1][k], float) else v[-1][k]
                                    for k in ("object_adherence", "extra_tracks", "ade_size")} for n, v in res.items()},
              file=sys.stderr)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print(f"{len(items)} world-suite t2v items, planned (tenku.layout.plan), same noise; {a.ckpt} free and with the plan's layout, "
          f"and the bundle")
    print("| | bundle | ckpt free | ckpt + layout | layout - free (paired) |")
    print("| --- | --- | --- | --- | --- |")
    for k in (*keys, "extra_tracks", "ade_size"):
        cols = {n: [r[k] for r in v] for n, v in res.items()}
        pairs = [(x, y) for x, y in zip(cols["layout"], cols["free"]) if not (math.isnan(x) or math.isnan(y))]
        d = mean_se([x - y for x, y in pairs]) if pairs else (math.nan, math.nan)
        print(f"| {k} | " + " | ".join(f"{np.nanmean(cols[n]):.3f}" for n in res) + f" | {d[0]:+.3f} +- {d[1]:.3f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("loss", help="paired held-out flow loss with and without the layout")
    lo.add_argument("--ckpt", required=True)
    lo.add_argument("--data", default="/work/runs/ground-data/world-heldout")
    lo.add_argument("--vae", default="models/vae-world")
    lo.add_argument("--cache", default="/work/runs/ground-data/cache")
    lo.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 0.7, 0.85, 0.95])
    lo.add_argument("--clips", type=int, default=96)
    lo.add_argument("--batch", type=int, default=8)
    lo.add_argument("--threads", type=int, default=1)
    lo.add_argument("--json", default="")
    sa = sub.add_parser("sample", help="planned world-suite items sampled free and grounded, scored by the tracker")
    sa.add_argument("--ckpt", required=True)
    sa.add_argument("--items", type=int, default=6)
    sa.add_argument("--steps", type=int, default=0, help="sampling steps (0: the pipeline's)")
    sa.add_argument("--out", default="/work/runs/ground-s21/bench")
    sa.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    cmd_loss(a) if a.cmd == "loss" else cmd_sample(a)


if __name__ == "__main__":
    main()
