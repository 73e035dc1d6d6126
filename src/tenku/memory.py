"""Memory for large models: matrix weights in bf16 (``cast_matrices``) and model CPU offload.

Offload: a transformer's weights wait in CPU memory and sit on the GPU only while
they compute, so a GPU smaller than the model still samples. ``model``: the whole transformer
moves in for a sampling call and out after (one transfer per video; the text encoder and the
autoencoder never share the GPU with it). ``block``: the embeddings and output layer stay on the
GPU, each transformer block moves in just before it runs and out after (one block's weights on
the GPU at a time; a transfer of every block every step, so slower)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

OFFLOADS = ("none", "model", "block")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def weights_dtype(compute: str, weights: str) -> torch.dtype:
    """The dtype of a transformer's matrices for ``PipelineConfig.compute`` and ``.weights_dtype``;
    a ValueError for names it does not know and for bf16 weights without bf16 autocast."""
    if compute not in ("bf16", "fp32") or weights not in DTYPES:
        raise ValueError(f"compute must be bf16 or fp32, weights_dtype {' or '.join(DTYPES)}; got {compute!r}, {weights!r}")
    if weights != "float32" and compute == "fp32":
        raise ValueError(f"weights_dtype {weights} computes under bf16 autocast: set compute to bf16")
    return DTYPES[weights]


def check_offload(mode: str) -> str:
    """``mode`` if it is one of ``OFFLOADS``, else a ValueError saying which are."""
    if mode not in OFFLOADS:
        raise ValueError(f"offload must be one of {', '.join(OFFLOADS)}; got {mode!r}")
    return mode


def place(model: nn.Module, device: torch.device, mode: str) -> nn.Module:
    """Put ``model`` (a DiT: its ``blocks`` a ModuleList) where ``mode`` keeps it between calls;
    on the CPU every mode is the same."""
    check_offload(mode)
    if mode == "none" or device.type == "cpu":
        return model.to(device)
    if mode == "model":
        return model.to("cpu")
    # no gradients: autocast keeps a bf16 copy of every fp32 weight that requires grad for the
    # whole sampling call, which would gather every block on the GPU
    model.requires_grad_(False)
    blocks = model.blocks
    for p in model.parameters(recurse=False):
        p.data = p.data.to(device)
    for k, buf in model.named_buffers(recurse=False):
        model._buffers[k] = buf.to(device)
    for name, child in model.named_children():
        if child is not blocks:
            child.to(device)
    for blk in blocks:
        blk.to("cpu")
        blk.register_forward_pre_hook(lambda m, args: m.to(device) and None)
        blk.register_forward_hook(lambda m, args, out: m.to("cpu") and None)
    return model


@contextmanager
def on_device(model: nn.Module, device: torch.device, mode: str) -> Iterator[None]:
    """With ``mode == "model"`` on a GPU: ``model`` on ``device`` inside the block, back on the CPU
    after (the GPU's cache emptied); otherwise nothing moves."""
    if mode != "model" or device.type == "cpu":
        yield
        return
    model.to(device)
    try:
        yield
    finally:
        model.to("cpu")
        if device.type == "cuda":
            torch.cuda.empty_cache()


def cast_matrices(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The weights and biases of ``model``'s linear and convolution layers in ``dtype`` (bf16
    halves a transformer's memory); norms, tables and other parameters stay as they are (tenku
    reads them in fp32). Runs under bf16 autocast."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv3d, nn.Conv2d)):
            m.to(dtype)
    return model
