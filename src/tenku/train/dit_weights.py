"""Transformer weights in and out of a training run: starting from another run (``init=``),
the per-rank shards of an FSDP checkpoint, and the EMA gathered into a plain DiT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from tenku.config import ConfigError
from tenku.dit.model import DiT, DiTConfig
from tenku.train.distributed import Dist


def load_init(model: DiT, folder: str | Path) -> None:
    """Start ``model`` from the weights in ``folder`` (``init=``): a training checkpoint (its EMA,
    the weights a pipeline ships) or a transformer folder. Used to fine-tune on new latents,
    e.g. after the VAE changed; ConfigError when the folder holds no weights of this shape."""
    folder = Path(folder)
    files = [folder / "ema" / "model.safetensors", folder / "model.safetensors", folder / "transformer" / "model.safetensors"]
    found = next((f for f in files if f.is_file()), None)
    if found is None:
        raise ConfigError(f"init={folder}: no transformer weights there (expected a checkpoint folder with "
                          f"ema/model.safetensors, a transformer folder or a pipeline folder)")
    weights = {k: v.float() for k, v in load_file(str(found)).items()}
    want = model.state_dict()
    # a model with grounding may start from one without: its grounding starts as built (gates closed)
    wrong = sorted(k for k in want if (k in weights or not k.startswith("grounding.")) and
                   (k not in weights or weights[k].shape != want[k].shape))
    extra = sorted(set(weights) - set(want))
    if wrong or extra:
        raise ConfigError(f"init={folder}: its weights do not fit this model (size/model settings): "
                          f"{len(wrong)} missing or of another shape (e.g. {(wrong or extra)[0]}), {len(extra)} unknown")
    model.load_state_dict(weights, strict=not any(k.startswith("grounding.") for k in want))


def sharded_state(model: torch.nn.Module, ema: dict[str, torch.Tensor], opt: torch.optim.Optimizer
                  ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """One flat dict of this rank's shards (model., ema., optim.) for torch.distributed.checkpoint."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    flat = {f"model.{k}": v for k, v in get_model_state_dict(model).items()}
    flat.update({f"ema.{k}": v for k, v in ema.items()})
    osd = get_optimizer_state_dict(model, opt)  # creates zero moments on a fresh optimizer: a load template
    for name, st in osd["state"].items():
        flat.update({f"optim.{name}.{k}": v for k, v in st.items()})
    return flat, osd


def load_sharded(src: Path, model: torch.nn.Module, ema: dict[str, torch.Tensor], opt: torch.optim.Optimizer) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

    flat, osd = sharded_state(model, ema, opt)
    dcp.load(flat, storage_reader=dcp.HuggingFaceStorageReader(str(src / "sharded")))  # in place, safetensors: no pickle
    set_model_state_dict(model, {k[6:]: v for k, v in flat.items() if k.startswith("model.")})
    for name, st in osd["state"].items():
        for k in st:
            st[k] = flat[f"optim.{name}.{k}"]
    set_optimizer_state_dict(model, opt, osd)


def gather_ema(ema: dict[str, torch.Tensor], mcfg: DiTConfig, dist: Dist) -> DiT | None:
    """The EMA weights as a plain DiT on rank 0 (None elsewhere); collective under FSDP."""
    full = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().cpu() for k, v in ema.items()}
    if not dist.main:
        return None
    with torch.device("meta"):  # no init work and no draw from the global RNG (its saved state stays exact)
        m = DiT(mcfg)
    m.load_state_dict(full, assign=True)
    return m.eval()
