"""Model folders, the one format of every tenku model (the DiT, the VAE): ``model.safetensors``
plus ``config.yaml`` (the resolved dataclass config) and a ``tenku.json`` marker naming the
model kind. No pickle: loading reads tensors and YAML only, and refuses folders that are not
ours. VAE folders an older tenku wrote (no marker; ``tenku-vae`` in the safetensors metadata
and in config.yaml, e.g. models/vae-world) still load."""

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
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of another shape
        raise ValueError(f"{path}: tensors do not match the config ({str(e).splitlines()[-1].strip()})") from None
    if missing or unexpected:
        raise ValueError(f"{path}: tensors do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


# ----------------------------------------------------------------------------- the VAE

LEGACY_VAE = "tenku-vae"  # the format tag of VAE folders written before tenku.json
LEGACY_VAE_VERSION = 1


def save_vae(model: Any, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write a VAE as a model folder; its config.yaml holds the latent statistics."""
    return save_weights(folder, model, model.cfg, "vae", dtype=dtype)


def load_vae(folder: str | Path) -> Any:
    """Load a VAE folder, today's or an older tenku's. Raises ValueError (naming the folder and
    what is wrong) for anything else: missing files, foreign safetensors, bad config, wrong tensors."""
    import yaml
    from safetensors import SafetensorError, safe_open

    from tenku.vae.model import VAE, VAEConfig

    folder = Path(folder)
    weights, conf = folder / "model.safetensors", folder / "config.yaml"
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder; a tenku VAE is a folder with model.safetensors and config.yaml")
    if not weights.is_file() or not conf.is_file():
        raise ValueError(f"{folder}: not a tenku VAE folder (needs model.safetensors and config.yaml)")
    try:
        with safe_open(str(weights), "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{weights}: not a readable safetensors file ({e})") from None
    if (folder / "tenku.json").is_file():
        read_marker(folder, "vae")
    elif meta.get("format") != LEGACY_VAE:
        raise ValueError(f"{weights}: not a tenku VAE (no tenku.json, and safetensors metadata format={meta.get('format')!r})")
    try:
        doc = yaml.safe_load(conf.read_text())
        if not isinstance(doc, dict):
            raise ConfigError("not a mapping")
        if doc.pop("format", LEGACY_VAE) != LEGACY_VAE:
            raise ConfigError(f"format is not {LEGACY_VAE!r}")
        if int(doc.pop("version", 0)) > LEGACY_VAE_VERSION:
            raise ConfigError(f"written by a newer tenku (version {LEGACY_VAE_VERSION} here)")
        model = VAE(from_dict(VAEConfig, doc))
    except (yaml.YAMLError, ConfigError, TypeError) as e:
        raise ValueError(f"{conf}: not a valid tenku VAE config ({e})") from None
    return load_state(folder, model).eval()
