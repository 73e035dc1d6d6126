"""Generation speed and memory of a pipeline on this machine (the bundled-model issue's speed
targets and the modes issue's long-video memory check).

    python bench/generate.py [--model models/tenku-world] [--out bench/results/generate.json]

1. a 4-second 128x128 clip at 8 fps (33 frames) with the model loaded, default steps and
   guidance: median of 3 (target: under 4 s, faster than real time); on a grounded model also
   the request with its prompt expanded, with and without ``--plan`` (the plan and its sketch),
   interleaved, medians of 3 (target: ``--plan`` adds under 10%);
2. the whole ``tenku generate`` command, start-up included, in a fresh process (target < 15 s);
3. a 60-second video (481 frames) streamed to an mp4 in a fresh process: wall time and peak
   resident memory (targets: < 2 min, < 3 GB);
4. peak resident memory of streamed generation at 16 and 64 latent frames, each in a fresh
   process (memory must not grow with length).
Every number comes from this run; nothing is stored or assumed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import resource, sys, time
t0 = time.perf_counter()
from tenku.pipeline import Pipeline
from tenku.io import write_video
pipe = Pipeline.load(sys.argv[1], device="cpu")
frames, out = int(sys.argv[2]), sys.argv[3]
t1 = time.perf_counter()
write_video(out, pipe.stream("a red ball bounces on the floor while a blue square slides to the left", seed=0,
                             size=(128, 128), frames=frames), pipe.cfg.fps)
t2 = time.perf_counter()
print(t2 - t1, t2 - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def child(model: str, frames: int, out: str) -> dict[str, float]:
    r = subprocess.run([sys.executable, "-c", CHILD, model, str(frames), out], capture_output=True, text=True, check=True)
    gen, total, rss = (float(v) for v in r.stdout.split()[-3:])
    return {"frames": frames, "generate_s": round(gen, 2), "process_s": round(total, 2), "peak_rss_mb": round(rss)}


def request_seconds(pipe, prompt: str, seed: int, plan: bool) -> float:
    """Seconds ``tenku generate PROMPT [--plan]`` spends from its request to the last frame (the
    prompt expanded, the plan and its sketch made, sampled, decoded), the model loaded."""
    from tenku.request import Limits, Request, resolve
    from tenku.request.make import expand, stream

    t = time.perf_counter()
    req = resolve(Request(prompt, seed=seed, plan=plan), pipe.geometry, Limits())
    exp = expand(req)
    for _ in stream(pipe, req, exp):
        pass
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "tenku-world"))
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--skip-minute", action="store_true", help="leave out the 60-second video")
    args = ap.parse_args()
    import torch

    from tenku.pipeline import Pipeline

    res: dict[str, object] = {"model": args.model, "threads": torch.get_num_threads(), "cpu": os.cpu_count()}
    pipe = Pipeline.load(args.model, device="cpu")
    res["steps"], res["guidance"] = pipe.cfg.steps, pipe.cfg.guidance
    prompt = "a red ball bounces on the floor while a blue square slides to the left"
    pipe.generate(prompt, seed=0, size=(128, 128), frames=33)  # warm-up (text encoder, kernels)
    times = []
    for seed in range(3):
        t = time.perf_counter()
        pipe.generate(prompt, seed=seed, size=(128, 128), frames=33)
        times.append(time.perf_counter() - t)
    res["clip_4s_128_loaded_s"] = round(statistics.median(times), 2)
    res["clip_4s_128_runs_s"] = [round(t, 2) for t in times]
    if pipe.geometry.grounding:  # what --plan adds: the plan, its sketch and the grounding, interleaved with --plan off
        runs: dict[str, list[float]] = {"expanded": [], "plan": []}
        for seed in range(3):
            for name in runs:
                runs[name].append(request_seconds(pipe, "a red ball falls and bounces", seed, name == "plan"))
        for name, ts in runs.items():
            res[f"clip_4s_128_{name}_s"] = round(statistics.median(ts), 2)
        res["plan_overhead"] = round(res["clip_4s_128_plan_s"] / res["clip_4s_128_expanded_s"] - 1, 3)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tenku.cli", "generate", "a red ball falls and bounces", "--model", args.model,
                        "-o", f"{tmp}/cli.mp4", "--quiet"], check=True, capture_output=True)
        res["cli_command_s"] = round(time.perf_counter() - t, 2)
        res["latent16"] = child(args.model, 1 + 4 * 15, f"{tmp}/a.mp4")
        res["latent64"] = child(args.model, 1 + 4 * 63, f"{tmp}/b.mp4")
        if not args.skip_minute:
            res["minute"] = child(args.model, 481, f"{tmp}/m.mp4")
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
