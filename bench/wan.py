"""tenku's DiT running Wan2.1-1.3B's transformer vs diffusers' WanTransformer3DModel: per-step time and peak memory.

    python bench/wan.py [--latent 3x16x28] [--text 512] [--repeats 3] [--dtypes fp32,bf16] [--device cpu|cuda]

One diffusers model at the Wan2.1-T2V-1.3B transformer configuration (dim 1536, 30 layers,
12 heads, ffn 8960, text_dim 4096) with random weights; tenku's DiT is built from its state
dict (tenku.wan.dit_from_wan_state, sharing the tensors), so both hold the same weights and
get the same inputs: a latent (1, 16, T, H, W), 512 text tokens (Wan pads every prompt to
512), sigma 0.75 (timestep 750); in bf16 the latent and text in bf16 for both, as WanPipeline
hands them to its transformer. A step is one transformer forward (twice that with CFG).
Each library runs as it is meant to: fp32 as is; bf16 as diffusers' ``from_pretrained(
torch_dtype=bf16)`` leaves the model (its fp32 modules kept) without autocast, tenku with
bf16 weights (and so a bf16 residual stream, as diffusers) under bf16 autocast as its pipeline runs. Calls are interleaved (warm-up, then
``--repeats`` rounds of tenku, diffusers) and each reports its median, so a busy machine
slows both alike.

Peak memory = the model's weights + the peak above the memory in use just before one call:
on CUDA torch.cuda.max_memory_allocated; on the CPU the bytes glibc's malloc has handed out
and not taken back (mallinfo2: in-use arena chunks + mmapped blocks; torch's CPU tensors come
from malloc), sampled every 0.2 ms by a thread during one untimed call. Not the resident set:
glibc keeps freed memory resident, which would hide one call's peak in an earlier call's.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import statistics
import threading
import time

import torch

WAN21_1_3B = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                  out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                  eps=1e-6)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                "uordblks", "fordblks", "keepcost")]


@functools.cache
def _mallinfo2():
    fn = ctypes.CDLL("libc.so.6").mallinfo2
    fn.restype = _MallInfo2
    return fn


def heap_in_use() -> int:
    """Bytes malloc has handed out and not taken back (glibc >= 2.33)."""
    info = _mallinfo2()()
    return info.uordblks + info.hblkhd


def peak_extra(fn, device: str) -> int:
    """Bytes above the memory in use before ``fn()``, at its peak."""
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    base, peak, done = heap_in_use(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], heap_in_use())
            time.sleep(0.0002)

    th = threading.Thread(target=watch)
    th.start()
    fn()
    done.set()
    th.join()
    return max(peak[0], heap_in_use()) - base


def timed_pair(fns, repeats: int, device: str) -> list[float]:
    """Median seconds of each function, calls interleaved so machine noise hits all alike."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for fn in fns:
        fn()  # warm-up (kernel selection, autocast caches)
    ts: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, acc in zip(fns, ts):
            sync()
            t = time.perf_counter()
            fn()
            sync()
            acc.append(time.perf_counter() - t)
    return [statistics.median(acc) for acc in ts]


def weight_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def to_bf16_like_from_pretrained(model: torch.nn.Module) -> torch.nn.Module:
    """What diffusers' from_pretrained(torch_dtype=bf16) gives: bf16, its _keep_in_fp32_modules fp32."""
    from diffusers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()  # its warning about .to(): the fp32 modules are restored just below
    model.to(torch.bfloat16)
    logging.set_verbosity(level)
    keep = set(model._keep_in_fp32_modules or [])
    for prefix, mod in model.named_modules():  # modules (rope, norm2, time_embedder), parameters (scale_shift_table)
        for name, t in [*mod._parameters.items(), *mod._buffers.items()]:
            if t is not None and keep & set(f"{prefix}.{name}".split(".")):
                t.data = t.data.float()
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latent", default="3x16x28", help="latent frames x height x width (832x480, 81 frames: 21x60x104)")
    ap.add_argument("--text", type=int, default=512, help="text tokens")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()

    from diffusers import WanTransformer3DModel

    from tenku.wan import dit_from_wan_state

    dev = torch.device(args.device)
    t, h, w = (int(v) for v in args.latent.split("x"))
    tokens = t * (h // 2) * (w // 2)
    torch.manual_seed(0)
    theirs = WanTransformer3DModel(**WAN21_1_3B).eval().to(dev)
    x = torch.randn(1, 16, t, h, w, device=dev)
    ctx = torch.randn(1, args.text, WAN21_1_3B["text_dim"], device=dev)
    sigma = torch.full((1, t), 0.75, device=dev)
    timestep = 1000 * sigma[:, 0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""))
    print(f"Wan2.1-1.3B transformer ({sum(p.numel() for p in theirs.parameters()) / 1e9:.2f}B params), latent "
          f"{t}x{h}x{w} = {tokens} tokens, {args.text} text tokens, {args.repeats} interleaved repeats")
    print("| dtype | tokens | tenku s/step | diffusers s/step | diffusers / tenku | tenku peak GB | diffusers peak GB "
          "| max abs diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for dtype in args.dtypes.split(","):
        if dtype == "bf16":
            theirs = to_bf16_like_from_pretrained(theirs)
        ours = dit_from_wan_state(dict(theirs.config), theirs.state_dict(), torch.bfloat16 if dtype == "bf16" else None,
                                  dev)
        ac = dict(device_type=args.device, dtype=torch.bfloat16, enabled=dtype == "bf16")
        xin, cin = (x.bfloat16(), ctx.bfloat16()) if dtype == "bf16" else (x, ctx)

        def run_ours():
            with torch.no_grad(), torch.autocast(**ac):
                return ours(xin, sigma, cin)

        def run_theirs():
            with torch.no_grad():
                return theirs(xin, timestep, cin, return_dict=False)[0]

        diff = (run_ours().float() - run_theirs().float()).abs().max().item()
        a, b = timed_pair([run_ours, run_theirs], args.repeats, args.device)
        mem_a, mem_b = peak_extra(run_ours, args.device), peak_extra(run_theirs, args.device)
        gb_a, gb_b = (weight_bytes(ours) + mem_a) / 2**30, (weight_bytes(theirs) + mem_b) / 2**30
        print(f"| {dtype} | {tokens} | {a:.2f} | {b:.2f} | {b / a:.2f}x | {gb_a:.3f} (+{mem_a / 2**20:.0f} MB act.) | "
              f"{gb_b:.3f} (+{mem_b / 2**20:.0f} MB act.) | {diff:.1e} |", flush=True)
        del ours


if __name__ == "__main__":
    main()
