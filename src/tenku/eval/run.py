"""Running a suite: generate (or load cached) videos, score them, aggregate.

The runner takes any ``generate(item) -> frames`` callable, so the same code
scores a model (``PipelineGenerator``), the simulator itself (``reference_frames``,
the calibration) or a deliberately broken video (tests). ``frames`` is uint8
``(T, H, W, 3)``: the whole video for every mode except ``connect``, where it is
the transition only (the runner puts clip A before it and clip B after it).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from tenku.eval.checks import PSNR_LIMIT, RATIO_LIMIT, connect_ratios, loop_ratio, psnr, seam_ratio
from tenku.eval.evaluate import RATES, Clip, evaluate_clip, reference
from tenku.eval.suites import SUITE_VERSION, SuiteItem

Generator = Callable[[SuiteItem], np.ndarray]
WINDOW_SECONDS = 4.0  # long videos are scored per window of this length
EVAL_FORMAT = "tenku-eval"


class GeneratorUnavailable(RuntimeError):
    """The model cannot be loaded (no pipeline yet, or a bad model folder)."""


_LAST: dict[str, tuple[np.ndarray, Any]] = {}


def reference_render(item: SuiteItem) -> tuple[np.ndarray, Any]:
    """``item.reference()``, remembered for the last scene (the runner asks twice per item). The
    key is what the render depends on, not the generation seed, so an item's samples share it."""
    key = json.dumps([item.spec.to_dict(), item.width, item.height, item.frames, item.fps])
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = item.reference()
    return _LAST[key]


def reference_frames(item: SuiteItem) -> np.ndarray:
    """The simulator as a generator: its own render of the item (the calibration)."""
    return reference_render(item)[0]


def expected_frames(item: SuiteItem) -> int:
    """How many frames ``generate(item)`` must return: the whole video, in every mode."""
    return item.frames


class PipelineGenerator:
    """Generates suite items with ``tenku.pipeline.Pipeline`` (imported only when used).

    Builds a ``tenku.request.Request`` per item (``request``): the prompt, seed, size, frames, fps,
    steps, guidance and, per mode, an image (i2v: the reference's first frame), a video to
    extend forward or backward (the reference's first or last ``cond`` frames), a loop, or two
    clips to connect (the output is A + transition + B); the pipeline runs it resolved. With
    ``expand``, the prompt is first expanded into a detailed caption (seed, size and
    length), as ``tenku generate`` does by default; the item is still judged on its prompt.
    The seed is the item's ``gen_seed``, one per sample (``tenku eval --samples``) and never
    the seed that drew the item's scene. ``plan``: each item follows the simulator's layout of
    its own scene (``tenku.layout.from_scene``: the scene the item is judged on, so a grounded
    and a free run score the same items); ``layouts``: a folder of ``ID.json`` layouts (or
    sidecars), one per item id. Both need a model with grounding.
    """

    def __init__(self, model_dir: str | Path, steps: int | None = None, device: str = "cpu", expand: bool = False,
                 guidance: float | None = None, plan: bool = False, layouts: str | Path | None = None,
                 offload: str | None = None):
        try:
            from tenku.pipeline import Pipeline  # type: ignore[import-not-found]
        except ImportError as e:
            raise GeneratorUnavailable(f"cannot load a model: tenku.pipeline is not available ({e}); "
                                       "use --reference to score the simulator") from None
        if not Path(model_dir).is_dir():
            raise GeneratorUnavailable(f"model folder {model_dir} does not exist")
        self.pipe = Pipeline.load(str(model_dir), device=device, offload=offload)
        if (plan or layouts) and not self.pipe.dit.cfg.grounding:
            raise GeneratorUnavailable(f"this model has no grounding; --{'plan' if plan else 'layout'} needs a "
                                       "transformer trained to follow layouts (docs/layout.md)")
        if layouts is not None and not Path(layouts).is_dir():
            raise GeneratorUnavailable(f"--layout {layouts}: no such folder (one ID.json layout per suite item)")
        self.steps, self.expand, self.guidance = steps, expand, guidance
        self.plan, self.layouts = plan, None if layouts is None else Path(layouts)
        self.tag = (f"model:{Path(model_dir).resolve()}:steps={steps}" + (":expand" if expand else "")
                    + (f":guidance={guidance:g}" if guidance is not None else "") + (":plan" if plan else "")
                    + (f":layout={self.layouts.resolve()}" if self.layouts is not None else ""))

    def __call__(self, item: SuiteItem) -> np.ndarray:
        from tenku.request import Limits, resolve

        return np.concatenate(list(self.pipe.run(resolve(self.request(item), self.pipe.geometry, Limits(max_pixels=0)))))

    def refuses(self, item: SuiteItem) -> str:
        """Why this model cannot make ``item`` at all (the request rules' ``unsupported_request``
        for a model that refuses clean frames: Wan2.1), or "" when it can; ``tenku eval`` then
        skips the suite. Other models make every mode: no check (it would render each input twice)."""
        from tenku.request import Limits, RequestError, resolve

        if not self.pipe.geometry.clean_frames_refused:
            return ""
        try:
            resolve(self.request(item), self.pipe.geometry, Limits(max_pixels=0))
        except RequestError as e:
            if e.code == "unsupported_request":
                return str(e)
        return ""

    def request(self, item: SuiteItem) -> Any:
        """The ``tenku.request.Request`` that makes ``item`` (inputs cut from the simulator's render)."""
        from tenku.request import Input, Request

        r = Request(self.caption(item), seed=item.gen_seed, size=(item.width, item.height), frames=item.frames,
                    fps=item.fps, steps=self.steps or None, guidance=self.guidance, expand=False, loop=item.mode == "loop")
        if item.mode not in ("t2v", "loop"):
            ref = reference_frames(SuiteItem(**{**item.__dict__, "mode": "t2v"}))
            if item.mode == "i2v":
                r.image = Input.of_array(ref[0], "image", still=True)
            elif item.mode.startswith("extend"):
                fwd = item.mode == "extend_forward"
                r.video = Input.of_array(ref[: item.cond] if fwd else ref[-item.cond:], "video")
                r.extend, r.frames = "forward" if fwd else "backward", item.frames - item.cond
            elif item.mode == "connect":
                r.connect = (Input.of_array(ref[: item.cond], "video"), Input.of_array(ref[-item.cond:], "video"))
                r.frames = item.frames - 2 * item.cond
        layout = self.layout(item)
        if layout is not None:
            r.conditioning = {"layout": layout}
        return r

    def layout(self, item: SuiteItem) -> Any:
        """The layout ``item`` follows over its whole video (``plan``, ``layouts``), or None."""
        if self.plan:
            from tenku.layout import from_scene

            return from_scene(item.spec, item.width, item.height, item.fps, item.frames)
        if self.layouts is None:
            return None
        from tenku.request.layout import read

        return read(self.layouts / f"{item.id}.json")

    def missing_layouts(self, items: list[SuiteItem]) -> list[str]:
        """Ids of ``items`` with no layout file in ``layouts``."""
        return [] if self.layouts is None else sorted({i.id for i in items if not (self.layouts / f"{i.id}.json").is_file()})

    def caption(self, item: SuiteItem) -> str:
        """What the model is given: the prompt, or (``expand``) its detailed caption."""
        if not self.expand:
            return item.prompt
        from tenku.prompts.expand import expand_prompt

        return expand_prompt(item.prompt, item.gen_seed, aspect=item.width / item.height, frames=item.frames,
                             fps=item.fps).caption


class AutoencoderGenerator:
    """The simulator's render after an autoencoder's round trip (encode, decode): what a
    perfect transformer on that autoencoder's latents would score, its ceiling.

    ``folder``: a VAE folder, or a pipeline folder (its ``vae/``)."""

    def __init__(self, folder: str | Path):
        from tenku.vae.model import VAE

        folder = Path(folder)
        if (folder / "vae").is_dir():
            folder = folder / "vae"
        try:
            self.vae = VAE.load(folder).eval()
        except ValueError as e:
            raise GeneratorUnavailable(str(e)) from None
        self.tag = f"autoencoder:{folder.resolve()}"

    def __call__(self, item: SuiteItem) -> np.ndarray:
        import torch

        from tenku.io import from_uint8, to_uint8

        ref = reference_frames(item)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # as the pipeline decodes
            z = self.vae.encode(from_uint8(ref)[None])
            return to_uint8(self.vae.decode(z).float().clamp(-1, 1)[0])


def _check(item: SuiteItem, frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    want = (expected_frames(item), item.height, item.width, 3)
    if frames.dtype != np.uint8 or frames.shape != want:
        raise ValueError(f"{item.id}: generator returned {frames.dtype} {frames.shape}, expected uint8 {want}")
    return frames


def _load_or_generate(item: SuiteItem, generate: Generator, cache: Path | None) -> tuple[np.ndarray, bool]:
    path = cache / f"{item.id}-{item.key()}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as z:
            frames = z["frames"]
        if frames.shape == (expected_frames(item), item.height, item.width, 3):  # else stale (older layout): regenerate
            return _check(item, frames), True
    frames = _check(item, generate(item))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
        np.savez_compressed(tmp, frames=frames)
        os.replace(tmp, path)
    return frames, False


def mode_check(item: SuiteItem, video: np.ndarray, ref: np.ndarray) -> dict[str, Any] | None:
    """The item's mode check (issue 5) on the whole video: a dict with ``ok`` and the numbers."""
    k, T = item.cond, item.frames
    if item.mode == "i2v":
        p = psnr(video[0], ref[0])
        return {"psnr": p, "ok": p >= PSNR_LIMIT}
    if item.mode.startswith("extend"):
        fwd = item.mode == "extend_forward"
        r = seam_ratio(video, k if fwd else T - k)
        given = slice(0, k) if fwd else slice(T - k, T)
        return {"seam_ratio": r, "condition_psnr": psnr(video[given], ref[given]), "ok": r <= RATIO_LIMIT}
    if item.mode == "loop":
        r = loop_ratio(video)
        return {"loop_ratio": r, "ok": r <= RATIO_LIMIT}
    if item.mode == "connect":
        a, b = connect_ratios(video[:k], video[k: T - k], video[T - k:])
        return {"start_ratio": a, "end_ratio": b, "ok": max(a, b) <= RATIO_LIMIT}
    return None


def _nanmean(xs: list[float]) -> float:
    xs = [float(x) for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else math.nan


def evaluate_item(item: SuiteItem, video: np.ndarray) -> dict[str, Any]:
    """Score one whole video against its item (windows of ``WINDOW_SECONDS`` for long ones)."""
    ref_frames, gt = reference_render(item)
    ref, vis = reference(item.spec, gt)
    clip = Clip(video, item.spec, item.hints, item.fps, ref, vis)
    win = int(round(WINDOW_SECONDS * item.fps))
    if item.frames > win + 1:
        spans = [(s, min(s + win + 1, item.frames)) for s in range(0, item.frames - 1, win)]
        parts = [evaluate_clip(clip.window(a, b), details=(a == 0)) for a, b in spans]
        res = {"rates": {m: _nanmean([p["rates"][m] for p in parts]) for m in RATES},
               "values": {v: _nanmean([p["values"][v] for p in parts]) for v in parts[0]["values"]},
               "objects": parts[0]["objects"],
               "windows": [{"start": a / item.fps, "rates": p["rates"], "values": p["values"]} for (a, _), p in zip(spans, parts)]}
        res["drift"] = {m: parts[-1]["rates"][m] - parts[0]["rates"][m] for m in RATES}
    else:
        res = evaluate_clip(clip)
    mc = mode_check(item, video, ref_frames)
    if mc is not None:
        res["mode_check"] = mc
        res["rates"]["mode_check"] = float(mc["ok"])
    return res


def _manifest(out: Path, tag: str) -> None:
    path = out / "eval.json"
    want = {"format": EVAL_FORMAT, "suite_version": SUITE_VERSION, "generator": tag}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); choose another --out") from None
        if old != want:
            raise ValueError(f"{out} holds videos of {old.get('generator')!r} (suite v{old.get('suite_version')}); "
                             f"this run is {tag!r}: choose another --out, or the same generator to resume")
    elif out.exists() and any(p.name not in ("report.md", "metrics.json") for p in out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no tenku eval run; choose a new or empty --out")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(want, indent=1))


def run_suite(items: list[SuiteItem], generate: Generator, out: str | Path | None = None, tag: str = "custom",
              progress: bool = True) -> dict[str, Any]:
    """Generate (or load from ``out/videos``) and score every item; returns per-item results and
    the suite summary. ``tag`` names the generator: a folder holds the videos of one generator."""
    out = Path(out) if out is not None else None
    if out is not None:
        _manifest(out, tag)
    results, cached = [], 0
    for item in tqdm(items, desc=f"eval {items[0].suite if items else ''}", unit="video", disable=not progress):
        frames, hit = _load_or_generate(item, generate, out / "videos" if out else None)
        cached += hit
        res = evaluate_item(item, frames)
        path = out / "videos" / f"{item.id}-{item.key()}.npz" if out else None
        results.append({"item": item, "video_path": str(path) if path else None, **res})
    return {"results": results, "summary": summarize(results), "cached": cached}


def load_video(result: dict[str, Any]) -> np.ndarray | None:
    """The whole video of a scored item, from the run's cache (None without one)."""
    path = result.get("video_path")
    if not path or not Path(path).exists():
        return None
    with np.load(path) as z:
        return z["frames"]


def stderr(results: list[dict[str, Any]], metric: str) -> float:
    """Standard error of a rate's suite mean over items: each item's samples are averaged
    first (they share a scene, so they are not independent draws of the suite); NaN with
    fewer than two scored items."""
    per_item: dict[str, list[float]] = {}
    for r in results:
        per_item.setdefault(r["item"].id, []).append(r["rates"].get(metric))
    means = [m for m in (_nanmean(v) for v in per_item.values()) if not math.isnan(m)]
    return float(np.std(means, ddof=1) / math.sqrt(len(means))) if len(means) > 1 else math.nan


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Suite means of every rate and value (with the rates' standard errors), the same per
    tag, and mode-check pass rates. ``items`` counts distinct items, ``videos`` every sample."""
    rates = sorted({m for r in results for m in r["rates"]}, key=lambda m: (m not in RATES, m))
    values = sorted({v for r in results for v in r["values"]})
    out: dict[str, Any] = {
        "items": len({r["item"].id for r in results}),
        "videos": len(results),
        "rates": {m: _nanmean([r["rates"].get(m) for r in results]) for m in rates},
        "stderr": {m: stderr(results, m) for m in rates},
        "values": {v: _nanmean([r["values"].get(v) for r in results]) for v in values},
    }
    tags = sorted({t for r in results for t in r["item"].tags})
    out["by_tag"] = {t: {"items": len({r["item"].id for r in results if t in r["item"].tags}),
                         **{m: _nanmean([r["rates"].get(m) for r in results if t in r["item"].tags]) for m in rates}}
                     for t in tags}
    out["objects"] = object_failures(results)
    out["shapes"] = shape_confusion(results)
    drift = [r for r in results if "drift" in r]
    if drift:
        out["drift"] = {m: _nanmean([r["drift"][m] for r in drift]) for m in RATES}
    return out


def object_failures(results: list[dict[str, Any]]) -> dict[str, int]:
    """Where object adherence is lost, over every prompted object of every video (a long
    video's first window): ``missing`` (no track of its colour), ``wrong_shape`` and
    ``wrong_size`` (of the stated ones; an object can have both), ``right`` (every stated
    attribute), and ``extra_tracks``, the significant tracks beyond the prompted objects,
    which adherence also divides by (a long video counts its windows' mean)."""
    objs = [o for r in results for o in r.get("objects", [])]
    att = [o.get("attributes") or {} for o in objs if o["matched"]]
    return {"objects": len(objs), "missing": sum(not o["matched"] for o in objs),
            "wrong_shape": sum(not a.get("shape", True) for a in att),
            "wrong_size": sum(not a.get("size", True) for a in att),
            "right": sum(all(a.values()) for a in att),
            "extra_tracks": round(sum(r["values"].get("extra_tracks") or 0 for r in results))}


def shape_confusion(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Which shape was drawn for each prompted one: ``{prompted: {drawn: count}}``, over the
    matched objects whose prompt states a shape, and the objects with no track of their colour
    (``none``, under the scene's shape). A model that ignores the shape word has rows alike."""
    out: dict[str, dict[str, int]] = {}
    for o in (o for r in results for o in r.get("objects", [])):
        if o["matched"] and "shape" not in (o.get("attributes") or {}):
            continue  # the prompt left the shape open
        row = out.setdefault(o["shape"], {})
        drawn = (o.get("track_shape") or "none") if o["matched"] else "none"
        row[drawn] = row.get(drawn, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def item_score(res: dict[str, Any]) -> float:
    """One number per item to rank the worst cases: the mean of its rates."""
    return _nanmean(list(res["rates"].values()))
