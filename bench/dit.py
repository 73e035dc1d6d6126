"""DiT forward throughput and MFU on this CPU, side by side with diffusers' Wan transformer.

    python bench/dit.py [--size S] [--tokens 512,1024,2048,4096] [--repeats 5] [--text 64]

Both models get the same width, depth, heads, MLP width, patch (1x2x2), latent
channels, text tokens and token count, random weights, in the same run. Peak
is this machine's measured dense matrix-product rate (2048^3, bf16 and fp32);
MFU = model FLOPs per second / that peak, counting matrix products only. The two
models' calls are interleaved and each reports its median, so a noisy neighbour on
the machine slows both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tenku.dit.model import DIT_SIZES, build_dit


def timed(fn, repeats: int) -> float:
    return timed_pair([fn], repeats)[0]


def timed_pair(fns, repeats: int) -> list[float]:
    """Median seconds of each function, calls interleaved so machine noise hits all alike."""
    for fn in fns:
        fn()  # warm-up (oneDNN picks kernels)
    ts: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, acc in zip(fns, ts):
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    return [statistics.median(acc) for acc in ts]


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, repeats)


def dit_flops(dim: int, depth: int, mlp: int, tokens: int, text: int, text_dim: int) -> float:
    """Matrix-product FLOPs of one forward (2 per multiply-add)."""
    per_block = (
        tokens * (3 * dim * dim + dim * dim)  # self-attention qkv + out
        + 2 * tokens * tokens * dim  # scores and weighted sum
        + tokens * 2 * dim * dim + text * 2 * dim * dim  # cross q, out; k, v over text tokens
        + 2 * tokens * text * dim  # cross scores and sum
        + tokens * 2 * dim * mlp  # MLP
    )
    return 2.0 * (depth * per_block + text * (text_dim * dim + dim * dim))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="S")
    ap.add_argument("--tokens", default="512,1024,2048,4096")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--text", type=int, default=64, help="text tokens")
    ap.add_argument("--no-diffusers", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    spec = DIT_SIZES[args.size]
    dim, depth, heads = spec["dim"], spec["depth"], spec["heads"]
    text_dim, ch = 384, 16
    ours = build_dit(args.size, in_channels=ch, text_dim=text_dim).eval()
    with torch.no_grad():  # non-zero outputs, as a trained model
        ours.final.weight.normal_(std=0.02)
        ours.t_mod[1].weight.normal_(std=0.02)
    theirs = None
    if not args.no_diffusers:
        from diffusers import WanTransformer3DModel

        theirs = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=dim // heads,
                                       in_channels=ch, out_channels=ch, text_dim=text_dim, freq_dim=256,
                                       ffn_dim=4 * dim, num_layers=depth).eval()
    peak = {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}
    print(f"threads {torch.get_num_threads()}; matmul peak: bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s, fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s")
    print(f"DiT-{args.size}: dim {dim}, depth {depth}, heads {heads}, {sum(p.numel() for p in ours.parameters()) / 1e6:.1f}M params; "
          f"diffusers Wan: {sum(p.numel() for p in theirs.parameters()) / 1e6:.1f}M params" if theirs else "")
    print("| tokens | dtype | tenku tok/s | tenku MFU | diffusers tok/s | diffusers MFU | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    ctx = torch.randn(1, args.text, text_dim)
    mask = torch.ones(1, args.text, dtype=torch.bool)
    for n in (int(x) for x in args.tokens.split(",")):
        t = max(1, n // 256)  # latent frames; 16x16 tokens per frame
        side = int((n // t) ** 0.5) * 2
        x = torch.randn(1, ch, t, side, side)
        tokens = t * (side // 2) ** 2
        flops = dit_flops(dim, depth, 4 * dim, tokens, args.text, text_dim)
        for dtype in ("bf16", "fp32"):
            ac = dict(device_type="cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")

            def run_ours():
                with torch.no_grad(), torch.autocast(**ac):
                    ours(x, torch.full((1, t), 0.5), ctx, mask)

            def run_theirs():
                with torch.no_grad(), torch.autocast(**ac):
                    theirs(x, torch.tensor([500]), ctx, return_dict=False)

            a, *b = timed_pair([run_ours] + ([run_theirs] if theirs is not None else []), args.repeats)
            row = f"| {tokens} | {dtype} | {tokens / a:.0f} | {flops / a / peak[dtype]:.0%} |"
            if b:
                row += f" {tokens / b[0]:.0f} | {flops / b[0] / peak[dtype]:.0%} | {b[0] / a:.2f}x |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
