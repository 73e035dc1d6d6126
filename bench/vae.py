"""Speed and memory of tenku's causal video VAE, side by side with diffusers' Wan VAE.

    python bench/vae.py                      # 33 frames at 128x128, fp32 and bf16, both Wan configs, memory
    python bench/vae.py --frames 17 --size 256x256 --no-memory --json out.json

Random weights (speed does not depend on them). Every number in one table comes from the
same run on the same machine. Needs ``pip install -e ".[bench]"`` for diffusers.

Peers (same latent shape as tenku's default: 16 channels, 4x time, 8x space):
  wan2.1    AutoencoderKLWan() defaults, i.e. the released Wan 2.1 VAE architecture
  wan-32    the same class at base_dim=32, so its widths (32, 64, 128, 128) equal tenku-small's
MFU is achieved FLOP/s (counted by torch's FlopCounterMode) over this machine's measured
2048x2048 matrix-product peak in the same precision.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from tenku.vae import VAE, vae_config


def timed(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Best wall time of ``fn`` over ``repeats`` calls (after a warm-up call): the best is the
    least disturbed by other work on a shared machine."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def matmul_peak(dtype: torch.dtype) -> float:
    """FLOP/s of a 2048^3 matrix product: this machine's practical peak."""
    a = torch.randn(2048, 2048).to(dtype)
    return 2 * 2048**3 / timed(lambda: a @ a, 20)


def flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def build(name: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor], int]:
    """(encode, decode, parameter count) for one model name."""
    if name == "tenku":
        m = VAE(vae_config("small")).eval()
        return m.encode, m.decode, sum(p.numel() for p in m.parameters())
    from diffusers import AutoencoderKLWan

    m = (AutoencoderKLWan() if name == "wan2.1" else AutoencoderKLWan(base_dim=32)).eval()

    def enc(x: torch.Tensor) -> torch.Tensor:
        return m.encode(x).latent_dist.mode()

    def dec(z: torch.Tensor) -> torch.Tensor:
        return m.decode(z).sample

    return enc, dec, sum(p.numel() for p in m.parameters())


def speed(names: list[str], frames: int, h: int, w: int, repeats: int) -> list[dict]:
    rows = []
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak (before): fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    x = torch.rand(1, 3, frames, h, w) * 2 - 1
    for name in names:
        enc, dec, n = build(name)
        peer = name != "tenku"  # a Wan pass takes a minute or more here: time one call, no warm-up
        with torch.no_grad():
            t = time.perf_counter()
            z = enc(x)
            first_enc = time.perf_counter() - t
            for prec in ("fp32", "bf16"):
                ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if prec == "bf16" else contextlib.nullcontext
                with ctx():
                    if peer and prec == "fp32":  # reuse the first encode; count FLOPs during the timed decode
                        te = first_enc
                        with FlopCounterMode(display=False) as fc:
                            t = time.perf_counter()
                            dec(z)
                            td = time.perf_counter() - t
                        fd = fc.get_total_flops()
                    else:
                        te = timed(lambda: enc(x), 1 if peer else repeats, warmup=not peer)
                        td = timed(lambda: dec(z), 1 if peer else repeats, warmup=not peer)
                        if not peer and prec == "fp32":
                            fd = flops(lambda: dec(z))
                rows.append({"model": name, "params_M": n / 1e6, "precision": prec, "latent": list(z.shape[1:]),
                             "encode_s": te, "decode_s": td, "encode_fps": frames / te, "decode_fps": frames / td,
                             "decode_GFLOP": fd / 1e9, "decode_mfu": fd / td / peaks[prec]})
                print(f"  {name:7s} {prec}: encode {te:.3f}s, decode {td:.3f}s", flush=True)
    after = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak (after): fp32 {after['fp32'] / 1e9:.0f} GFLOP/s, bf16 {after['bf16'] / 1e9:.0f} GFLOP/s; MFU uses the higher")
    for r in rows:  # a shared machine can slow one measurement; the best seen is the peak
        r["decode_mfu"] *= peaks[r["precision"]] / max(peaks[r["precision"]], after[r["precision"]])
    return rows


_CHILD = r"""
import gc, json, sys, torch
from tenku.vae import VAE, vae_config
from tenku.io import to_uint8
frames, h, w, how = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
m = VAE(vae_config("small")).eval()
lat = torch.randn(1, 16, 1 + (frames - 1) // 4, h // 8, w // 8)
x = torch.rand(1, 3, frames, h, w) * 2 - 1 if how == "encode" else None
gc.collect()
open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS mark
base = rss("VmRSS")
with torch.no_grad():
    if how == "decode":
        y = m.decode(lat)
    elif how == "stream":  # what a video writer does: uint8 frames per chunk, nothing kept
        for part in m.decode_chunks(lat):
            to_uint8(part)
    else:
        z = m.encode(x)
print(json.dumps({"peak_MiB": (rss("VmHWM") - base) / 2**20, "base_MiB": base / 2**20}))
"""


def memory(h: int, w: int, lengths: tuple[int, ...] = (33, 481)) -> list[dict]:
    """Peak resident memory above the loaded model, each case in a fresh process."""
    rows = []
    for how in ("decode", "stream", "encode"):
        for frames in lengths:
            out = subprocess.run([sys.executable, "-c", _CHILD, str(frames), str(h), str(w), how],
                                 capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()),
                                      "MALLOC_MMAP_THRESHOLD_": "65536"})  # big tensors mmapped, unmapped on free: RSS ~ live memory
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"how": how, "frames": frames, **r})
            print(f"  {how:6s} {frames:4d} frames: +{r['peak_MiB']:.0f} MiB over {r['base_MiB']:.0f} MiB", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--size", default="128x128", help="WxH")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peers", default="wan2.1,wan-32", help="comma-separated; empty for tenku alone")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    names = ["tenku"] + [p for p in args.peers.split(",") if p]
    print(f"speed: {args.frames} frames at {w}x{h}, CPU, torch {torch.__version__}")
    rows = speed(names, args.frames, h, w, args.repeats)

    print(f"\n| model | params | precision | encode frames/s | decode frames/s | decode s ({args.frames} frames) | decode GFLOP | decode MFU | tenku decode speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = {r["precision"]: r["decode_fps"] for r in rows if r["model"] == "tenku"}
    for r in rows:
        up = base[r["precision"]] / r["decode_fps"]
        print(f"| {r['model']} | {r['params_M']:.1f}M | {r['precision']} | {r['encode_fps']:.1f} | {r['decode_fps']:.1f} | "
              f"{r['decode_s']:.3f} | {r['decode_GFLOP']:.0f} | {100 * r['decode_mfu']:.0f}% | {up:.2f}x |")
    mem = []
    if not args.no_memory:
        print(f"\nmemory: tenku-small, {w}x{h}, fp32, peak RSS above the loaded model (fresh process each)")
        mem = memory(h, w)
        print("\n| operation | above model, 33 frames | above model, 481 frames | ratio | whole process, 33 | whole process, 481 | ratio |")
        print("|---|---|---|---|---|---|---|")
        for how in ("decode", "stream", "encode"):
            a, b = (next(r for r in mem if r["how"] == how and r["frames"] == f) for f in (33, 481))
            pa, pb = a["peak_MiB"] + a["base_MiB"], b["peak_MiB"] + b["base_MiB"]
            print(f"| {how} | {a['peak_MiB']:.0f} MiB | {b['peak_MiB']:.0f} MiB | {b['peak_MiB'] / a['peak_MiB']:.2f}x | "
                  f"{pa:.0f} MiB | {pb:.0f} MiB | {pb / pa:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"speed": rows, "memory": mem, "threads": torch.get_num_threads()}, f, indent=1)


if __name__ == "__main__":
    main()
