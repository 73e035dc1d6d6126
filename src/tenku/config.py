"""Typed dataclass configs: load from YAML, override with ``key=value`` strings,
save beside every run and checkpoint. Nested dataclasses are addressed with dots
(``model.channels=64``). Unknown keys and ill-typed values are errors that name
the key and what is allowed."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the config's fields."""


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _convert(value, args[0], key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value if value.startswith("[") else f"[{value}]")
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        out = [_convert(v, inner, key) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp in (int, float):
        try:
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}") from None
    if tp is str:
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict; unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - fields
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{sorted(unknown)[0]}; allowed: {', '.join(sorted(prefix + f for f in fields))}")
    return cls(**{k: _convert(v, hints[k], prefix + k) for k, v in data.items()})  # type: ignore[call-arg]


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict (tuples as lists) ready for YAML or JSON."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings to a nested dict (values parsed as YAML scalars)."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node[p] = dict(node.get(p) or {})
            node = node[p]
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return data


def read_yaml(path: str | Path | None) -> dict[str, Any]:
    """The top-level mapping of a YAML config file ({} for None); a ConfigError says what is wrong."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Load ``cls`` from an optional YAML file plus ``key=value`` overrides."""
    return from_dict(cls, apply_overrides(read_yaml(path), overrides or []))


def save_config(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def typed_overrides(cls: type, data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Some fields of dataclass ``cls`` (a partial config, e.g. a model's settings over a size
    preset), each converted to its field's type; an unknown key is a ConfigError naming it
    and the allowed ones."""
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    for k in data:
        if k not in fields:
            raise ConfigError(f"unknown config key {prefix}{k}; allowed: {', '.join(prefix + f for f in fields)}")
    return {k: _convert(v, hints[k], prefix + k) for k, v in data.items()}
