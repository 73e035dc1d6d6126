"""A pipeline folder's settings (``PipelineConfig``, its ``pipeline.yaml``), the device choice and
the folder writer; the ``Pipeline`` that reads them is tenku.pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from tenku.config import save_config
from tenku.dit.model import DiT, save_dit
from tenku.text import MAX_TOKENS
from tenku.vae.model import VAE


@dataclass
class PipelineConfig:
    text_encoder: str = "minilm"
    max_text_tokens: int = MAX_TOKENS
    fps: float = 8.0
    size: tuple[int, int] = (128, 128)  # default (width, height)
    frames: int = 33
    steps: int = 20
    guidance: float = 5.0
    # guidance of the chunks given frames of an input video (extend, connect); None:
    # ``guidance``. A lower scale follows the given motion more and the text less
    # (docs/modes.md). An explicit ``guidance`` sets both.
    context_guidance: float | None = None
    base_tokens: int = 256  # sampling shift grows with tokens past this (flow.resolution_shift)
    max_shift: float = 3.0
    cond_sigma: float = 0.0  # noise level of condition frames (noise augmentation used in training)
    sampler: str = "euler"  # flow.SAMPLERS: euler or dpm++2m
    negative_prompt: str = ""  # the unconditional input of guidance
    context_frames: int = 9  # most given frames a chunk is conditioned on (extend, long videos, connect)
    strength: float = 0.6  # default SDEdit strength of edits and upscales
    # with a layout (--plan, --layout): the noise level sampling starts from, the layout's sketch
    # drawn and noised to it (tenku.sketch); 1: pure noise, the sketch unused
    sketch: float = 1.0
    # weight of autoguidance by the folder's guide/ transformer (a smaller, less trained model of
    # the same latents and captions; flow.GuidedModel); 0: off
    autoguidance: float = 0.0
    # where the VAE encodes and decodes: "cpu" (today's default, see Pipeline.vae_device for why),
    # "auto" (the DiT's device) or "cuda"
    vae_device: str = "cpu"
    # the sigma grid (tenku.flow.schedule.GRIDS): "resolution" (tenku's: shift by token count),
    # or a diffusers scheduler's grid with a fixed ``shift`` (a Wan folder's scheduler/)
    schedule: str = "resolution"
    shift: float = 1.0
    train_timesteps: int = 1000
    compute: str = "bf16"  # "bf16": autocast, weights as stored; "fp32": no autocast (exact comparisons)
    weights_dtype: str = "float32"  # the DiT's matrices in memory: float32 or bfloat16 (tenku.memory.cast_matrices)
    offload: str = "none"  # tenku.memory: "none", "model" (DiT on the GPU while sampling) or "block"
    compile: bool = False  # torch.compile each transformer block (the first steps compile)
    # why this model cannot keep given frames clean (one noise level per sample, as Wan2.1 was
    # trained); set, every mode that gives the model clean frames is refused with this reason
    clean_frames_refused: str = ""


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when present, else cpu; 'cuda' without a GPU is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked, but no CUDA GPU is available (use auto or cpu)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda; got {name!r}")
    return torch.device(name)


def save_pipeline(folder: str | Path, vae: VAE, dit: DiT, cfg: PipelineConfig, dtype: torch.dtype | None = None,
                  guide: DiT | None = None) -> Path:
    """Write a pipeline folder: vae/, transformer/, guide/ (if any), pipeline.yaml, model_index.json
    (weights in ``dtype`` if given: bf16 halves the folder and computes as before under bf16 autocast)."""
    if not isinstance(vae, VAE):  # another family's autoencoder (Wan): its own folder format
        from tenku.wan.folder import save_wan

        return save_wan(folder, vae, dit, dtype)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vae.save(folder / "vae", dtype)
    save_dit(folder / "transformer", dit, dtype)
    if guide is not None:
        save_dit(folder / "guide", guide, dtype)
    save_config(cfg, folder / "pipeline.yaml")
    index = {"_class_name": "tenku.Pipeline", "_tenku_version": __import__("tenku").__version__,
             "vae": "vae", "transformer": "transformer", "text_encoder": cfg.text_encoder, "config": "pipeline.yaml"}
    if guide is not None:
        index["guide"] = "guide"
    (folder / "model_index.json").write_text(json.dumps(index, indent=1))
    return folder
