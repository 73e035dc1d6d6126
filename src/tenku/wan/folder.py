"""A diffusers-format Wan folder (``model_index.json`` of a ``WanPipeline``: the Wan2.1 T2V and
Wan2.2 TI2V layouts) read into tenku's ``Pipeline``: the transformer into tenku's own DiT
(``tenku.wan.transformer``), UMT5 and its tokenizer (``tenku.wan.text``), ``AutoencoderKLWan``
(``tenku.wan.vae``) and the scheduler's sigma grid (``tenku.wan.scheduler``). No second pipeline:
every mode, the request rules and the server are tenku's.

Settings beyond the folder's (offload, compile, bf16 or fp32, defaults such as the size) come
from ``PipelineConfig`` keys in an optional ``tenku.yaml`` beside ``model_index.json``, then
from the ``options`` of ``load_wan``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tenku.config import ConfigError, from_dict, read_yaml, to_dict

PIPELINES = ("WanPipeline",)
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
# Wan2.1 T2V was trained with one noise level for every frame of a sample
ONE_SIGMA = ("this checkpoint (Wan2.1 text-to-video) was trained with one noise level for all frames, so it cannot "
             "keep given frames clean; use a Wan2.2 TI2V folder (per-token noise levels) for image-to-video, extend, "
             "loop, connect and long videos, or an edit (strength) here")


def read_index(folder: str | Path) -> dict[str, Any] | None:
    """The folder's model_index.json as a dict, None when there is none or it is not JSON."""
    try:
        index = json.loads((Path(folder) / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return index if isinstance(index, dict) else None


def is_wan_folder(folder: str | Path) -> bool:
    """True for a diffusers folder of a Wan pipeline (its model_index.json names one)."""
    index = read_index(folder)
    return index is not None and str(index.get("_class_name", "")).startswith("Wan")


def check_index(folder: Path, index: dict[str, Any]) -> None:
    """A ValueError that says why, for a Wan folder tenku does not read."""
    name = index.get("_class_name")
    if name not in PIPELINES:
        raise ValueError(f"{folder}: a {name} folder; tenku reads {', '.join(PIPELINES)} folders (Wan2.1 T2V, "
                         "Wan2.2 TI2V)")
    two = index.get("transformer_2")
    if isinstance(two, list) and any(two) or index.get("boundary_ratio") is not None:
        raise ValueError(f"{folder}: two transformers (transformer_2, boundary_ratio: Wan2.2 A14B's experts); tenku "
                         "reads one-transformer Wan folders (Wan2.1 T2V 1.3B/14B, Wan2.2 TI2V 5B)")
    missing = [c for c in COMPONENTS if not (folder / c).is_dir()]
    if missing:
        raise ValueError(f"{folder}: missing {', '.join(m + '/' for m in missing)} of a Wan folder")


def wan_config(folder: Path, index: dict[str, Any], space_down: int, options: dict[str, Any]) -> Any:
    """The ``PipelineConfig`` of a Wan folder: its scheduler, Wan's defaults for its layout, then
    ``tenku.yaml`` and ``options``."""
    from tenku.pipeline import PipelineConfig
    from tenku.wan.scheduler import read_schedule
    from tenku.wan.text import WAN_MAX_TOKENS

    sched = read_schedule(folder)
    wan22 = space_down == 16  # the TI2V-5B autoencoder; its model card's 1280x704, 121 frames at 24 fps
    base = PipelineConfig(text_encoder=str(folder / "text_encoder"), max_text_tokens=WAN_MAX_TOKENS,
                          fps=24.0 if wan22 else 16.0, size=(1280, 704) if wan22 else (832, 480),
                          frames=121 if wan22 else 81, steps=50, guidance=5.0, context_frames=17,
                          sampler=sched.sampler, schedule=sched.grid, shift=sched.shift,
                          train_timesteps=sched.train_timesteps, vae_device="auto", weights_dtype="bfloat16",
                          clean_frames_refused="" if index.get("expand_timesteps") else ONE_SIGMA)
    try:
        data = {**to_dict(base), **read_yaml(folder / "tenku.yaml" if (folder / "tenku.yaml").is_file() else None),
                **options}
        cfg = from_dict(PipelineConfig, data)
    except ConfigError as e:
        raise ValueError(f"{folder}: {e}") from None
    if cfg.compute == "fp32" and "weights_dtype" not in options:
        cfg.weights_dtype = "float32"
    return cfg


def load_wan(folder: str | Path, device: str = "auto", **options: Any) -> Any:
    """A ``tenku.pipeline.Pipeline`` from a diffusers Wan folder; ``options``: ``PipelineConfig``
    keys (e.g. ``offload="block"``, ``compute="fp32"``). Anything tenku cannot read is a
    ValueError that says what."""
    from tenku.pipeline import Pipeline, pick_device
    from tenku.wan.text import WanTextEncoder
    from tenku.wan.transformer import load_wan_transformer
    from tenku.wan.vae import WanVAE, require_diffusers

    folder = Path(folder)
    index = read_index(folder)
    if index is None:
        raise ValueError(f"{folder}: no readable model_index.json")
    check_index(folder, index)
    require_diffusers()
    vae = WanVAE.load(folder / "vae")
    cfg = wan_config(folder, index, vae.cfg.space_down, options)
    dev = pick_device(device)
    dtype = torch.bfloat16 if cfg.weights_dtype == "bfloat16" else torch.float32
    text_dev = dev if cfg.offload == "none" else torch.device("cpu")
    text = WanTextEncoder(folder, cfg.max_text_tokens, text_dev, dtype, offload_to=dev if cfg.offload != "none" else None)
    return Pipeline(vae, load_wan_transformer(folder / "transformer", dtype), text, cfg, dev)


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link where the file system allows it (UMT5-XXL is 11 GB), else a copy."""
    import os
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def save_wan(out: str | Path, vae: Any, dit: Any, dtype: torch.dtype | None = None) -> Path:
    """Write a Wan folder: the folder ``vae`` was read from, its parts linked or copied, with
    ``dit`` as its transformer (diffusers format, ``dtype`` if given), so diffusers and tenku both
    read it. A fine-tuned transformer ships this way."""
    import shutil

    from tenku.wan.transformer import save_wan_transformer

    if vae.folder is None or not is_wan_folder(vae.folder.parent):
        raise ValueError("saving a Wan pipeline needs the Wan folder its autoencoder was read from")
    src, out = vae.folder.parent, Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if src.resolve() != out.resolve():
        for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
            shutil.rmtree(out / part, ignore_errors=True)
            shutil.copytree(src / part, out / part, copy_function=_link_or_copy)
        for name in ("model_index.json", "tenku.yaml"):
            if (src / name).is_file():
                shutil.copy2(src / name, out / name)
    shutil.rmtree(out / "transformer", ignore_errors=True)
    save_wan_transformer(dit if dtype is None else dit.to(dtype), out / "transformer")
    return out
