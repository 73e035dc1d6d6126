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


# ----------------------------------------------------------------------------- a folder per step
#
# out/checkpoints/step-0000500/   a complete checkpoint (state.json is written last)
# out/checkpoints/.tmp-step-...   one being written: never read, removed by the next save
# out/ckpt -> checkpoints/step-N  the newest complete one (a symlink, swapped atomically)
#
# A folder is complete exactly when it carries its final name: the rename is the commit.

STEP_PREFIX = "step-"


def step_folder(out: str | Path, step: int) -> Path:
    return Path(out) / "checkpoints" / f"{STEP_PREFIX}{step:07d}"


def begin_step_folder(out: str | Path, step: int) -> Path:
    """A fresh temporary folder for the checkpoint of ``step`` (stale temporaries are removed)."""
    root = Path(out) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-{STEP_PREFIX}{step:07d}"
    tmp.mkdir()
    return tmp


def complete_checkpoints(out: str | Path) -> list[Path]:
    """Complete step folders, oldest first."""
    root = Path(out) / "checkpoints"
    found = [p for p in root.glob(f"{STEP_PREFIX}*") if p.is_dir() and (p / "state.json").is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX):]))


def resolve_resume(out: str | Path, resume: str) -> Path | None:
    """The checkpoint folder to resume from: ``auto`` = the newest complete step folder (or a
    ``ckpt/`` folder written by an older tenku), ``none`` = start fresh, else a folder path."""
    if resume in ("none", "", "false"):
        return None
    if resume != "auto":
        p = Path(resume)
        if not (p / "state.json").is_file():
            raise ValueError(f"resume={resume}: not a checkpoint folder (no state.json)")
        return p
    done = complete_checkpoints(out)
    if done:
        return done[-1]
    legacy = Path(out) / "ckpt"
    return legacy if not legacy.is_symlink() and (legacy / "state.json").is_file() else None


def commit_step_folder(tmp: Path, out: str | Path, step: int, keep: int) -> Path:
    """Rename the fully written ``tmp`` to its step name, point ``out/ckpt`` at it and keep
    the newest ``keep`` (at least 2) complete folders."""
    final = step_folder(out, step)
    if final.exists():  # the same step saved again (a run restarted with resume=none)
        shutil.rmtree(final)
    os.replace(tmp, final)
    link, out = Path(out) / "ckpt", Path(out)
    if link.exists() and not link.is_symlink():  # an older tenku's ckpt/: keep it as a step folder
        old = json.loads((link / "state.json").read_text()).get("step", 0) if (link / "state.json").is_file() else 0
        dest = step_folder(out, old)
        os.replace(link, dest if not dest.exists() else link.with_name("ckpt.legacy"))
    tmp_link = out / ".ckpt.link"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(Path("checkpoints") / final.name)
    os.replace(tmp_link, link)
    done = complete_checkpoints(out)
    for later in [p for p in done if int(p.name[len(STEP_PREFIX):]) > step]:  # a timeline this run left (resume=none/DIR)
        shutil.rmtree(later, ignore_errors=True)
    for old in [p for p in done if int(p.name[len(STEP_PREFIX):]) <= step][: -max(2, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final
