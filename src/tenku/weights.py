"""Model folders: ``model.safetensors`` plus ``config.yaml`` (the resolved
dataclass config) and a ``tenku.json`` marker naming the model kind. No pickle:
loading reads tensors and YAML only, and refuses folders that are not ours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from tenku.config import ConfigError, from_dict, to_dict

T = TypeVar("T")


def save_weights(folder: str | Path, model: torch.nn.Module, config: Any, kind: str, extra: dict[str, Any] | None = None,
                 dtype: torch.dtype | None = None) -> Path:
    """Write ``model``'s state dict, its config and a marker into ``folder``. ``dtype`` (e.g.
    bf16, half the size) stores floating tensors in that type; loading casts them back."""
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    tmp = folder / ".model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "tenku", "kind": kind})
    tmp.replace(folder / "model.safetensors")
    (folder / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    (folder / "tenku.json").write_text(json.dumps({"format": "tenku", "kind": kind, **(extra or {})}, indent=1))
    return folder


def read_marker(folder: str | Path, kind: str) -> dict[str, Any]:
    """The folder's tenku.json, or a ValueError saying what the folder is missing."""
    folder = Path(folder)
    marker = folder / "tenku.json"
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (a tenku {kind} is a folder with model.safetensors and config.yaml)")
    try:
        info = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        raise ValueError(f"{folder}: not a tenku model folder (no valid tenku.json)") from None
    if info.get("format") != "tenku" or info.get("kind") != kind:
        raise ValueError(f"{folder}: holds a tenku {info.get('kind')!r} model, expected a {kind!r}")
    return info


# config keys an older tenku wrote that mean nothing to the model any more (read and dropped):
# grad_checkpoint moved to the trainer (parallel.activation_checkpoint)
RETIRED_KEYS = {"grad_checkpoint"}


def load_config_file(folder: str | Path, cls: type[T]) -> T:
    """The dataclass config stored in ``folder/config.yaml`` (retired keys dropped)."""
    import yaml

    try:
        data = yaml.safe_load((Path(folder) / "config.yaml").read_text())
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in RETIRED_KEYS}
        return from_dict(cls, data)
    except (OSError, ConfigError, TypeError) as e:
        raise ValueError(f"{folder}: unreadable config.yaml ({e})") from None


def load_state(folder: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load ``folder/model.safetensors`` into ``model`` strictly (names and shapes must match)."""
    path = Path(folder) / "model.safetensors"
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types for a bad file
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model
