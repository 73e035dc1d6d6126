"""Training checkpoints, the one module for both trainers, without pickle: every tensor goes
into safetensors, everything else (optimizer hyper-parameters, step, data position) into JSON.

One layout (``save_checkpoint``): ``out/checkpoints/step-N/`` holds the model (a loadable
model folder, ``tenku.weights``), its EMA under ``ema/`` (the DiT), the optimizer
(``optim.safetensors``, or torch.distributed.checkpoint shards under ``sharded/`` with FSDP),
each rank's RNG state (``rng/``), whatever else the trainer adds (a discriminator, a shape
head) and ``state.json`` (step, data position, counters), written last. ``out/ckpt`` points at
the newest complete one. Also here: transformer weights in and out of a run (``init=``, the
FSDP shards, the EMA gathered into a plain DiT)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from tenku.config import ConfigError

if TYPE_CHECKING:
    from tenku.dit.model import DiT, DiTConfig
    from tenku.train.distributed import Dist

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
    """The checkpoint folder to resume from: ``auto`` (or ``true``) = the newest complete step
    folder (or a ``ckpt/`` folder written by an older tenku), ``none`` (or ``false``) = start
    fresh, else a folder path."""
    if resume.lower() in ("none", "", "false"):
        return None
    if resume.lower() not in ("auto", "true"):
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


# ----------------------------------------------------------------------------- one save for both trainers

T = Any


def save_checkpoint(out: Path, step: int, dist: Dist, keep: int, parts: Callable[[Path], T], state: dict[str, Any]) -> T:
    """Write the checkpoint of ``step`` (every rank calls it; rank 0 commits): ``parts(tmp)`` writes
    the trainer's files into the temporary folder on every rank (collectives inside it are fine)
    and its result is returned; then each rank's RNG state, then ``state.json`` and the commit."""
    if dist.main:
        begin_step_folder(out, step)
    dist.barrier()
    tmp = Path(out) / "checkpoints" / f".tmp-{STEP_PREFIX}{step:07d}"
    result = parts(tmp)
    (tmp / "rng").mkdir(exist_ok=True)
    save_file({"cpu": torch.get_rng_state()}, str(tmp / "rng" / f"rank-{dist.rank:05d}.safetensors"))
    dist.barrier()
    if dist.main:
        write_json(tmp / "state.json", {"step": step, **state})
        commit_step_folder(tmp, out, step, keep)
    return result


def read_state(src: Path | None) -> dict[str, Any]:
    """The ``state.json`` of a checkpoint folder ({} for None: a fresh run)."""
    return json.loads((src / "state.json").read_text()) if src else {}


def load_rng(src: Path, rank: int) -> None:
    """Restore this rank's global RNG state saved by ``save_checkpoint`` (if the folder has one)."""
    rng_file = src / "rng" / f"rank-{rank:05d}.safetensors"
    if rng_file.is_file():
        torch.set_rng_state(load_file(str(rng_file))["cpu"])


# ----------------------------------------------------------------------------- transformer weights


def load_init(model: DiT, folder: str | Path) -> None:
    """Start ``model`` from the weights in ``folder`` (``init=``): a training checkpoint (its EMA,
    the weights a pipeline ships), a transformer folder or a diffusers Wan folder (its transformer
    through tenku.wan's key map). Used to fine-tune on new latents,
    e.g. after the VAE changed; ConfigError when the folder holds no weights of this shape."""
    folder = Path(folder)
    files = [folder / "ema" / "model.safetensors", folder / "model.safetensors", folder / "transformer" / "model.safetensors"]
    found = next((f for f in files if f.is_file()), None)
    if found is None and (folder / "model_index.json").is_file() and (folder / "transformer" / "config.json").is_file():
        # a diffusers Wan folder: its transformer through the key map (tenku.wan.transformer)
        from tenku.wan.transformer import load_wan_transformer

        try:
            weights = load_wan_transformer(folder / "transformer").state_dict()
        except ValueError as e:
            raise ConfigError(f"init={folder}: {e}") from None
    elif found is None:
        raise ConfigError(f"init={folder}: no transformer weights there (expected a checkpoint folder with "
                          f"ema/model.safetensors, a transformer folder or a pipeline folder)")
    else:
        weights = load_file(str(found))
    weights = {k: v.float() for k, v in weights.items()}
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


def save_sharded(folder: Path, model: torch.nn.Module, ema: dict[str, torch.Tensor], opt: torch.optim.Optimizer) -> None:
    """This rank's shards of weights, EMA and optimizer into ``folder/sharded`` (collective)."""
    import torch.distributed.checkpoint as dcp

    dcp.save(sharded_state(model, ema, opt)[0], storage_writer=dcp.HuggingFaceStorageWriter(str(folder / "sharded"), save_distributed=True))


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
    from tenku.dit.model import DiT

    full = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().cpu() for k, v in ema.items()}
    if not dist.main:
        return None
    with torch.device("meta"):  # no init work and no draw from the global RNG (its saved state stays exact)
        m = DiT(mcfg)
    m.load_state_dict(full, assign=True)
    return m.eval()
