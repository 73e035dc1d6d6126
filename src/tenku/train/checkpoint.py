"""Training checkpoints without pickle: every tensor goes into safetensors, everything else
(optimizer hyper-parameters, step counters) into JSON. Shared by every training script.

A checkpoint folder holds whatever the script writes (for the VAE: ``model.safetensors``,
``config.yaml``, ``optim.safetensors``, ``state.json``). ``commit_folder`` writes it under a
temporary name and swaps it into place, so a crash mid-save never leaves a torn checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

OPTIM_FORMAT = "tenku-optimizer"


def save_optimizer(opt: torch.optim.Optimizer, path: str | Path) -> None:
    """Write an optimizer's state as safetensors: per-parameter tensors under
    ``state.{index}.{name}``; ``param_groups`` as JSON in the metadata."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            key = f"state.{idx}.{name}"
            if isinstance(v, torch.Tensor):
                tensors[key] = v.detach().cpu().contiguous()
            else:
                scalars[key] = v
    meta = {"format": OPTIM_FORMAT, "param_groups": json.dumps(sd["param_groups"]), "scalars": json.dumps(scalars)}
    save_file(tensors, str(path), metadata=meta)


def load_optimizer(opt: torch.optim.Optimizer, path: str | Path) -> None:
    """Restore state written by ``save_optimizer`` into ``opt`` (built over the same parameters)."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: not a readable optimizer state ({e})") from None
    if meta.get("format") != OPTIM_FORMAT:
        raise ValueError(f"{path}: not a tenku optimizer state (format={meta.get('format')!r})")
    state: dict[int, dict[str, Any]] = {}
    items: list[tuple[str, Any]] = list(tensors.items()) + list(json.loads(meta["scalars"]).items())
    for key, v in items:
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = v
    groups = json.loads(meta["param_groups"])
    for g in groups:  # JSON turned tuples (betas) into lists
        g.update({k: tuple(v) for k, v in g.items() if isinstance(v, list) and k != "params"})
    opt.load_state_dict({"state": state, "param_groups": groups})


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as indented JSON through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def commit_folder(tmp: Path, final: Path) -> None:
    """Replace ``final`` with the fully written folder ``tmp`` (old copy removed after the swap)."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
