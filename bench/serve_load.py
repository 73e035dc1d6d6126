"""Load test of `tenku serve`: N concurrent clients (the official openai client) submit jobs and
poll their status while the worker is busy. Checks that every job completes and none is lost
(the list holds exactly the submitted ids, every mp4 decodes at the asked size and length),
and reports status-read latency (median, p95, max) measured while jobs are running.

    python bench/serve_load.py                      # 50 jobs, 10 clients, a random tiny model
    python bench/serve_load.py --model runs/dit-world/pipeline --jobs 20 --steps 4
    python bench/serve_load.py --store postgresql://tenku:tenku@127.0.0.1/tenku_test --worker-procs 2 --kill-one
    python bench/serve_load.py --store postgresql://... --api-procs 2 --worker-procs 2 --kill-one

With --store, jobs go into PostgreSQL (a fresh schema, dropped at the end), the API server runs no
worker and --worker-procs `tenku worker` processes make the videos; --kill-one SIGKILLs one of
them mid-job once a quarter of the jobs are done. Every job must then be completed exactly once
(one "completed" line over all workers' logs; only the killed one's job is started twice).

Starts the server itself on a free loopback port (a subprocess, as a user would run it) and
stops it at the end. Exit code 1 if a job is lost or fails, or the median read is >= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
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


def fresh_schema(dsn: str) -> tuple[str, str]:
    """A new schema in the database at ``dsn``, and a DSN that uses it."""
    import uuid

    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}", schema


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def events(logs: list[Path], what: str) -> Counter:
    """Job ids of the workers' 'job ID started by' / 'completed by' log lines."""
    return Counter(m for p in logs for m in re.findall(rf"job (video_\w+) {what} by", p.read_text()))


def kill_mid_job(dsn: str, proc: subprocess.Popen, wlog: Path, after: int, killed: dict) -> None:
    """SIGKILL ``proc`` once ``after`` jobs are done, while it holds a job part-way."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        done = 0
        while proc.poll() is None and done < 4 * after:  # (never fired: the report says so)
            done = conn.execute("SELECT COUNT(*) FROM videos WHERE status = 'completed'").fetchone()[0]
            row = conn.execute("SELECT id FROM videos WHERE status = 'in_progress' AND progress > 0 AND worker LIKE %s",
                               (f"%:{proc.pid}:%",)).fetchone()
            if done >= after and row:
                os.kill(proc.pid, signal.SIGKILL)
                killed["job"] = row[0]
                return
            time.sleep(0.01)


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
    ap.add_argument("--store", default=None, help="postgresql://... (default: SQLite, workers in the server)")
    ap.add_argument("--worker-procs", type=int, default=2, help="with --store: `tenku worker` processes")
    ap.add_argument("--api-procs", type=int, default=1, help="with --store: `tenku serve` processes (clients take turns)")
    ap.add_argument("--lease-seconds", type=float, default=5.0, help="with --store: the workers' lease")
    ap.add_argument("--kill-one", action="store_true", help="with --store: kill -9 a worker mid-job")
    ap.add_argument("--worker-threads", type=int, default=1,
                    help="with --store: torch threads per worker process (OMP_NUM_THREADS; 1 keeps 2 workers on 2 CPUs)")
    ap.add_argument("--nice-workers", type=int, default=0,
                    help="with --store: run the workers at this niceness, as if on other machines (this one is shared)")
    args = ap.parse_args()

    import httpx
    import openai

    from tenku.io import read_video

    tmp = Path(tempfile.mkdtemp(prefix="tenku-serve-load-"))
    model = Path(args.model) if args.model else tiny_model(tmp / "model")
    port = free_port()
    log = open(tmp / "server.log", "wb")
    dsn, schema = (fresh_schema(args.store) if args.store else (None, None))
    store_args = ["--store", dsn, "--workers", "0"] if dsn else ["--workers", str(args.workers)]
    server = subprocess.Popen([sys.executable, "-m", "tenku.cli", "serve", "--model", str(model), "--data-dir", str(tmp / "data"),
                               "--port", str(port), "--max-queue", str(args.jobs + 10), *store_args,
                               "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    servers: list[subprocess.Popen] = []  # the API processes after the first
    bases = [base]
    wlogs = [tmp / f"worker{i}.log" for i in range(args.worker_procs if dsn else 0)]
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
        for _ in range(args.api_procs - 1 if dsn else 0):  # after the first server: it made the schema
            p = free_port()
            servers.append(subprocess.Popen([sys.executable, "-m", "tenku.cli", "serve", "--model", str(model),
                                             "--data-dir", str(tmp / "data"), "--port", str(p), "--max-queue",
                                             str(args.jobs + 10), *store_args, "--log-level", "warning"],
                                            stdout=log, stderr=subprocess.STDOUT))
            bases.append(f"http://127.0.0.1:{p}")
        for wlog in wlogs:
            procs.append(subprocess.Popen([sys.executable, "-m", "tenku.cli", "worker", "--store", dsn, "--videos",
                                           str(tmp / "data"), "--model", str(model), "--lease-seconds",
                                           str(args.lease_seconds)], stdout=open(wlog, "wb"), stderr=subprocess.STDOUT,
                                          env=os.environ | {"OMP_NUM_THREADS": str(args.worker_threads)},
                                          preexec_fn=(lambda: os.nice(args.nice_workers)) if args.nice_workers else None))
        def up(url: str) -> bool:
            try:
                return httpx.get(url + "/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        while not all("tenku worker:" in p.read_text() for p in wlogs) or not all(up(b) for b in bases):
            if any(p.poll() is not None for p in procs + servers) or time.time() - t0 > 180:
                raise SystemExit(f"a worker or server did not start; see {tmp}")
            time.sleep(0.1)
        ready_s = time.time() - t0
        size = httpx.get(base + "/ready").json()["defaults"]["size"]
        killed: dict[str, str] = {}

        per_client = [args.jobs // args.clients + (i < args.jobs % args.clients) for i in range(args.clients)]
        submitted: list[str] = []
        busy_reads: list[float] = []  # seconds per status read while some job was still running
        failures: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(args.clients)

        def client_run(i: int, n: int) -> None:
            c = openai.OpenAI(base_url=bases[i % len(bases)] + "/v1", api_key="load", max_retries=0, timeout=60)
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
        if args.kill_one and procs:
            threads.append(threading.Thread(target=kill_mid_job, args=(dsn, procs[0], wlogs[0], args.jobs // 4, killed)))
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
            "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        if dsn:
            started, completed = (events(wlogs, w) for w in ("started", "completed"))
            twice = sorted(v for v in submitted if completed[v] != 1)
            report |= {"store": "postgresql", "api_procs": len(bases), "worker_procs": len(procs), "worker_nice": args.nice_workers,
                       "worker_threads": args.worker_threads,
                       "killed_worker_job": killed.get("job"),
                       "jobs_started_twice": sorted(v for v in submitted if started[v] > 1),
                       "jobs_not_completed_exactly_once": twice}
            lost += twice
        print(json.dumps(report, indent=1))
        ok = not lost and not not_done and not failures and not bad_files and report["read_ms_median"] < 100
        print("PASS" if ok else "FAIL", file=sys.stderr)
        return 0 if ok else 1
    finally:
        for p in [*procs, *servers, server]:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
        if schema:
            drop_schema(args.store, schema)


if __name__ == "__main__":
    sys.exit(main())
