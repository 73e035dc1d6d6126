"""Throughput figures for the progress bar and log: FLOPs per DiT sample and the device's
peak, so a run reports model FLOPs utilisation (MFU) beside samples/s and tokens/s."""

from __future__ import annotations

import time

import torch

# dense bf16 peaks (FLOP/s) of common accelerators; anything else is measured
GPU_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "L4": 121e12, "4090": 165e12}


def dit_train_flops(params: int, tokens: int, depth: int, dim: int, text_tokens: int = 0) -> float:
    """Training FLOPs of one sample (forward + backward = 3x forward): 6 per parameter per
    token plus the attention products (self: 12 d L^2 per layer, cross: 12 d L Lc)."""
    return 6.0 * params * tokens + 12.0 * depth * dim * tokens * (tokens + text_tokens)


def peak_flops(device: torch.device, tflops: float = 0.0) -> float:
    """Peak bf16 FLOP/s of one device: ``tflops`` if given, a table entry for known GPUs,
    else a short bf16 matrix-product measurement (the honest peak for this machine)."""
    if tflops > 0:
        return tflops * 1e12
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, v in GPU_PEAK.items():
            if key in name:
                return v
    n = 2048 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ a  # warm up
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.2 or reps < 3:
        a @ a
        reps += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2.0 * n**3 * reps / (time.perf_counter() - t0)
