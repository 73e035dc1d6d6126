"""What the distribution switches cost and save, per rank, on this machine's CPUs:
DiT training steps (AdamW, bf16 autocast) as one process, with activation checkpointing,
and as 2 gloo processes under DDP and FSDP2. Reports step time, the bytes of weights, gradients
and AdamW moments each rank holds (from the tensors themselves), and the peak resident
memory each process added over its state right after building the data (so torch's own
libraries do not count; it includes activations and, under FSDP2, the full model each rank
builds before sharding it).

    python bench/train_scaling.py [--size S] [--batch 4] [--steps 4] [--json out.json]

Step times on a shared machine are noisy; memory is the robust figure here."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def worker(size: str, batch: int, steps: int, mode: str, ac: bool) -> None:
    import torch

    from tenku.dit.model import DIT_SIZES, DiT, DiTConfig
    from tenku.train.distributed import ParallelConfig, init_distributed, parallelize

    dist = init_distributed("cpu")
    torch.set_num_threads(1)
    per = batch // dist.world
    g = torch.Generator().manual_seed(dist.rank)
    x = torch.randn(per, 16, 3, 16, 16, generator=g)  # 3 latent frames of 16x16: 192 tokens with patch 1x2x2
    ctx = torch.randn(per, 12, 384, generator=g)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.manual_seed(0)
    raw = DiT(DiTConfig(**{**DIT_SIZES[size], "in_channels": 16, "text_dim": 384}))
    model = parallelize(raw, ParallelConfig(mode=mode, activation_checkpoint=ac), dist)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            v = model(x, torch.rand(per, 3, generator=g), ctx)
        v.float().pow(2).mean().backward()
        opt.step()
        if _ == 0:  # after the first step: weights, gradients and AdamW moments this rank holds
            local = lambda t: t.to_local() if hasattr(t, "to_local") else t  # noqa: E731
            held = sum(local(p).numel() * local(p).element_size() for p in model.parameters())
            held += sum(local(t).numel() * local(t).element_size() for st in opt.state.values() for t in st.values() if t.dim())
            held += sum(local(p.grad).numel() * local(p.grad).element_size() for p in model.parameters() if p.grad is not None)
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dist.rank == 0:
        print(json.dumps({"step_s": sorted(times[1:])[len(times[1:]) // 2], "added_mib": (peak - base) / 1024,
                          "state_mib": held / 2**20, "params": sum(p.numel() for p in raw.parameters())}))
    dist.close()


def run(nproc: int, args: argparse.Namespace, mode: str, ac: bool) -> dict:
    inner = [__file__, "--worker", mode, "--size", args.size, "--batch", str(args.batch), "--steps", str(args.steps)] + (["--ac"] if ac else [])
    cmd = [sys.executable, *inner] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *inner]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="S")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--json")
    ap.add_argument("--worker")
    ap.add_argument("--ac", action="store_true")
    args = ap.parse_args()
    if args.worker:
        return worker(args.size, args.batch, args.steps, args.worker, args.ac)
    rows = {
        "1 process": run(1, args, "ddp", False),
        "1 process, activation checkpointing": run(1, args, "ddp", True),
        "2 processes, DDP": run(2, args, "ddp", False),
        "2 processes, FSDP2": run(2, args, "fsdp", False),
    }
    print(f"DiT-{args.size}, global batch {args.batch}, 192 tokens/sample, 1 thread per process, bf16 autocast")
    for name, r in rows.items():
        print(f"  {name:38s} step {r['step_s']:.2f} s   weights+grads+AdamW per rank {r['state_mib']:.0f} MiB   "
              f"peak memory added per rank {r['added_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "batch": args.batch, **rows}, f, indent=1)


if __name__ == "__main__":
    main()
