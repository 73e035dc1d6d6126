"""Distribution applied from outside the model (torchtitan's ``parallelize``).

A training script calls ``init_distributed()`` once: under ``torchrun`` it joins the
process group (NCCL on GPUs, gloo on CPUs) and returns this process's rank; without
``torchrun`` it returns a world of one and touches nothing, so the same script runs on
one CPU exactly as before. ``parallelize(model, cfg, dist)`` then wraps the plain model:

- ``compile``: each transformer block goes through ``torch.compile`` (regional compilation);
- activation checkpointing: each transformer block recomputes its activations in the
  backward pass (``checkpoint_wrapper``; state-dict names stay those of the plain model);
- ``mode="ddp"`` (default): ``DistributedDataParallel``, a full replica per rank;
- ``mode="fsdp"``: FSDP2 ``fully_shard`` on every block and the root, parameters,
  gradients and optimizer state sharded over ranks; bf16 compute with fp32 gradient
  reduction (``MixedPrecisionPolicy``) where the model runs on a GPU.

``sync_gradients(model, on)`` switches gradient synchronisation for gradient
accumulation: only the last micro-step of an optimizer step all-reduces.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as td
from torch import nn


@dataclass
class ParallelConfig:
    mode: str = "ddp"  # ddp | fsdp (used when world size > 1; fsdp also works with one process)
    grad_accum: int = 1  # micro-steps per optimizer step; gradients sync on the last only
    activation_checkpoint: bool = False  # recompute block activations in backward: less memory, ~30% more compute
    reshard_after_forward: bool = True  # fsdp: free gathered parameters after each block's forward (ZeRO-3)
    mixed_precision: bool = True  # fsdp on GPU: bf16 parameters in compute, fp32 gradient reduction
    timeout_s: int = 1800  # collective timeout (a hung rank fails the run instead of blocking forever)
    compile: bool = False  # torch.compile each block (dynamic shapes): fused kernels, fewer launches; compiles at first use


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return td.is_available() and td.is_initialized()

    def barrier(self) -> None:
        if self.active:
            td.barrier()

    def sum(self, x: float | torch.Tensor) -> torch.Tensor:
        """All-reduced sum of a scalar (float64 on the model's device; the value itself when alone)."""
        t = torch.as_tensor(x, dtype=torch.float64).to(self.device).reshape(())
        if self.active and self.world > 1:
            td.all_reduce(t)
        return t

    def close(self) -> None:
        if self.active:
            td.barrier()
            td.destroy_process_group()


def init_distributed(device: str = "auto", timeout_s: int = 1800) -> Dist:
    """Join the process group if launched by torchrun (WORLD_SIZE set), else a world of one.
    ``device``: "auto" (a GPU if there is one, else the CPU), "cpu" or "cuda"."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no GPU is visible")
    dev = torch.device("cuda", local % max(1, torch.cuda.device_count())) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    if "WORLD_SIZE" in os.environ and not td.is_initialized():
        backend = "nccl" if cuda else "gloo"
        td.init_process_group(backend, timeout=timedelta(seconds=timeout_s), device_id=dev if cuda else None)
    return Dist(rank, world, local, dev)


def _blocks(model: nn.Module) -> nn.ModuleList:
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList):
        raise TypeError(f"parallelize needs a model with a .blocks ModuleList; got {type(model).__name__}")
    return blocks


def parallelize(model: nn.Module, cfg: ParallelConfig, dist: Dist, unused_params: bool = False) -> nn.Module:
    """Wrap a plain model (already on ``dist.device``) for this world: see the module docstring.
    Returns the module to call in training; ``unwrap`` gives the plain model back. A model
    without ``.blocks`` (the VAE, a discriminator) takes DDP only; ``unused_params``: some
    parameters get no gradient in some steps (the VAE's temporal layers on image batches).
    Buffers are not broadcast: every rank computes its own (the VAE's latent statistics)."""
    if cfg.mode not in ("ddp", "fsdp"):
        raise ValueError(f"parallel.mode must be ddp or fsdp; got {cfg.mode!r}")
    if not (cfg.compile or cfg.activation_checkpoint or cfg.mode == "fsdp") and getattr(model, "blocks", None) is None:
        return _ddp(model, dist, unused_params)
    blocks = _blocks(model)
    if cfg.compile:  # regional compilation: one graph per block, reused by all blocks; names stay the plain model's
        for blk in blocks:
            blk.compile(dynamic=True)
    if cfg.activation_checkpoint:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

        for i, blk in enumerate(blocks):
            blocks[i] = checkpoint_wrapper(blk)  # non-reentrant; state-dict hooks keep the plain names
    if cfg.mode == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        on_gpu = dist.device.type == "cuda"
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if on_gpu and cfg.mixed_precision else MixedPrecisionPolicy()
        # DiT blocks return a view; nothing edits it in place (the 2-rank tests compare gradients), so the warning is noise
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
        if not td.is_initialized():  # fsdp in one process: a world of one (useful to test the sharded checkpoint path)
            raise RuntimeError("parallel.mode=fsdp needs a process group: launch with torchrun (--nproc 1 is fine)")
        for blk in blocks:
            fully_shard(blk, mp_policy=mp, reshard_after_forward=cfg.reshard_after_forward)
        fully_shard(model, mp_policy=mp, reshard_after_forward=cfg.reshard_after_forward)
        return model
    return _ddp(model, dist, unused_params)


def _ddp(model: nn.Module, dist: Dist, unused_params: bool) -> nn.Module:
    if dist.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None,
               find_unused_parameters=unused_params, broadcast_buffers=False)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (FSDP2 shards in place, so it is the model itself)."""
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(unwrap(model), FSDPModule)


def clean_name(name: str) -> str:
    """A parameter name without wrapper prefixes (activation checkpointing, DDP)."""
    return name.replace("_checkpoint_wrapped_module.", "").removeprefix("module.")


@contextmanager
def sync_gradients(model: nn.Module, on: bool) -> Iterator[None]:
    """Gradient all-reduce on (the last micro-step) or off (the others) for this backward."""
    if on:
        yield
    elif isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    elif is_sharded(model):
        model.set_requires_gradient_sync(False)  # type: ignore[operator]
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)  # type: ignore[operator]
    else:
        yield


def grad_norm_clip(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Clip the global gradient norm (over all ranks' shards) and return it as a plain scalar tensor."""
    n = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return n.full_tensor() if hasattr(n, "full_tensor") else n  # FSDP: a replicated DTensor
