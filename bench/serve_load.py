"""Load test of `tenku serve`: N concurrent clients (the official openai client) submit jobs and
poll their status while the worker is busy. Checks that every job completes and none is lost
(the list holds exactly the submitted ids, every mp4 decodes at the asked size and length),
and reports status-read latency (median, p95, max) measured while jobs are running.

    python bench/serve_load.py                      # 50 jobs, 10 clients, a random tiny model
    python bench/serve_load.py --model runs/dit-world/pipeline --jobs 20 --steps 4

Starts the server itself on a free loopback port (a subprocess, as a user would run it) and
stops it at the end. Exit code 1 if a job is lost or fails, or the median read is >= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=DeprecationWarning)  # openai marks the Sora API deprecated


def tiny_model(folder: Path) -> Path:
    """A random tiny pipeline (64x64, 9 frames): the serving path, not the model, is measured."""
    import torch

    from tenku.dit.model import build_dit
    from tenku.pipeline import Pipeline, PipelineConfig
    from tenku.text import load_text_encoder
    from tenku.vae.model import VAE, vae_config

    torch.manual_seed(0)
    vae = VAE(vae_config("tiny"))
    dit = build_dit("tiny", in_channels=vae.cfg.latent_channels, text_dim=384)
    Pipeline(vae, dit, load_text_encoder(), PipelineConfig(size=(64, 64), frames=9, steps=2), torch.device("cpu")).save(folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="pipeline folder (default: a random tiny one)")
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2, help="sampling steps per job")
    ap.add_argument("--seconds", default="1")
    ap.add_argument("--poll-ms", type=int, default=100, help="each client's status-read interval")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    args = ap.parse_args()

    import httpx
    import openai

    from tenku.io import read_video

    tmp = Path(tempfile.mkdtemp(prefix="tenku-serve-load-"))
    model = Path(args.model) if args.model else tiny_model(tmp / "model")
    port = free_port()
    log = open(tmp / "server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "tenku.cli", "serve", "--model", str(model), "--data-dir", str(tmp / "data"),
                               "--port", str(port), "--workers", str(args.workers), "--max-queue", str(args.jobs + 10),
                               "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.time() - t0 > 120:
                raise SystemExit(f"server did not start; see {tmp / 'server.log'}")
            time.sleep(0.1)
        ready_s = time.time() - t0
        size = httpx.get(base + "/ready").json()["defaults"]["size"]

        per_client = [args.jobs // args.clients + (i < args.jobs % args.clients) for i in range(args.clients)]
        submitted: list[str] = []
        busy_reads: list[float] = []  # seconds per status read while some job was still running
        failures: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(args.clients)

        def client_run(i: int, n: int) -> None:
            c = openai.OpenAI(base_url=base + "/v1", api_key="load", max_retries=0, timeout=60)
            start.wait()
            mine = [c.videos.create(prompt=f"client {i} job {j}: a red ball bounces", seconds=args.seconds, size=size,
                                    extra_body={"steps": args.steps, "seed": 100 * i + j}).id for j in range(n)]
            with lock:
                submitted.extend(mine)
            pending = set(mine)
            while pending and time.time() - t_start < args.timeout:
                for vid in list(pending):
                    t = time.perf_counter()
                    v = c.videos.retrieve(vid)
                    dt = time.perf_counter() - t
                    with lock:
                        busy_reads.append(dt)
                    if v.status in ("completed", "failed"):
                        pending.discard(vid)
                        if v.status == "failed":
                            failures.append(f"{vid}: {v.error}")
                time.sleep(args.poll_ms / 1000)

        t_start = time.time()
        threads = [threading.Thread(target=client_run, args=(i, n)) for i, n in enumerate(per_client)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t_start

        c = openai.OpenAI(base_url=base + "/v1", api_key="load", max_retries=0, timeout=60)
        listed = {v.id: v for v in c.videos.list(limit=100)}
        lost = sorted(set(submitted) - set(listed))
        not_done = sorted(v for v in submitted if v in listed and listed[v].status != "completed")
        w, h = (int(x) for x in size.split("x"))
        bad_files = []
        for vid in submitted:
            if vid in listed and listed[vid].status == "completed":
                path = tmp / "check.mp4"
                path.write_bytes(c.videos.download_content(vid).content)
                frames, _ = read_video(path)
                if frames.shape[1:3] != (h, w) or len(frames) != listed[vid].tenku["frames"]:
                    bad_files.append(vid)
        reads_ms = sorted(1000 * x for x in busy_reads)
        report = {
            "jobs": args.jobs, "clients": args.clients, "workers": args.workers, "steps": args.steps, "size": size,
            "seconds": args.seconds, "submitted": len(submitted), "completed": args.jobs - len(lost) - len(not_done),
            "lost": len(lost), "failed_or_unfinished": len(not_done) + len(failures), "bad_files": len(bad_files),
            "wall_s": round(wall, 2), "jobs_per_s": round(len(submitted) / wall, 3), "server_start_s": round(ready_s, 2),
            "status_reads": len(reads_ms), "read_ms_median": round(statistics.median(reads_ms), 2),
            "read_ms_p95": round(reads_ms[int(0.95 * (len(reads_ms) - 1))], 2), "read_ms_max": round(reads_ms[-1], 2),
            "cpus": os.cpu_count(),
        }
        print(json.dumps(report, indent=1))
        ok = not lost and not not_done and not failures and not bad_files and report["read_ms_median"] < 100
        print("PASS" if ok else "FAIL", file=sys.stderr)
        return 0 if ok else 1
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
