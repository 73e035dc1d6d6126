"""``tenku worker``: workers in their own process, on this machine or another, that take jobs
from the PostgreSQL store that ``tenku serve --store`` queues them in, and write the videos into
the folder the servers share (any mount)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from tenku.cli import UsageError, add_offload_arg, nonneg_float, positive_float, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    from tenku.prompts.cli import add_llm_args

    s = sub.add_parser("worker", help="make the videos that `tenku serve --store postgresql://...` queues",
                       description="Run workers in this process against a shared job store. Each takes the oldest "
                       "queued job with a lease, renews it while it runs, and takes over a job whose worker died once "
                       "its lease runs out (a job started --max-attempts times then fails). Example:\n"
                       "  tenku worker --store postgresql://tenku@db/tenku --model runs/dit-world/pipeline "
                       "--videos /mnt/tenku",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--store", required=True, metavar="postgresql://...",
                   help="the job store the API servers use (a password may come from $PGPASSWORD or ~/.pgpass)")
    s.add_argument("--videos", "--data-dir", dest="data_dir", required=True, metavar="DIR",
                   help="the folder the API servers were given as --data-dir (shared: any mount; with --bucket, any local folder)")
    from tenku.serve.cli import add_bucket_args

    add_bucket_args(s)
    s.add_argument("--model", default=None, help="pipeline folder: the servers' model (default: the bundled model)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_offload_arg(s)
    s.add_argument("--workers", type=positive_int, default=1, help="videos made at once (each loads the model; default 1)")
    s.add_argument("--lease-seconds", type=positive_float, default=30.0,
                   help="a job whose worker is silent this long goes to another worker (default 30)")
    s.add_argument("--max-attempts", type=positive_int, default=2, help="starts of a job before it fails (default 2)")
    s.add_argument("--ttl-hours", type=nonneg_float, default=168.0,
                   help="finished videos expire after this; give the servers' value (0: never; default 168)")
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_llm_args(s, timeout=30.0)
    s.set_defaults(func=cmd_worker, command="worker")


def cmd_worker(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from tenku.pipeline import Pipeline
    from tenku.prompts.cli import llm_config
    from tenku.serve.store import open_store
    from tenku.serve.cli import model_folder
    from tenku.serve.worker import Workers

    if not args.store.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"--store {args.store!r}: tenku worker needs postgresql://... (the SQLite store belongs to "
                         "one tenku serve, whose --workers run the jobs)")
    model = model_folder(args.model)
    if not Path(args.data_dir).is_dir():
        raise UsageError(f"--videos {args.data_dir}: no such folder (give the servers' --data-dir, mounted here)")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        store = open_store(args.store, args.data_dir, args.max_attempts, args.lease_seconds, bucket=args.bucket,
                           endpoint=args.s3_endpoint)
    except ValueError as e:
        raise UsageError(str(e)) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ttl = args.ttl_hours * 3600 if args.ttl_hours > 0 else None
    pipe = Pipeline.load(model, device=args.device, offload=args.offload)
    workers = Workers(store, lambda: Pipeline.load(model, device=args.device, offload=args.offload), args.workers, ttl, llm_config(args),
                      first=pipe)
    workers.start()
    shown = re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", args.store)  # never print the password
    print(f"tenku worker: {args.workers} worker(s) on {shown}, videos in {args.data_dir}", flush=True)
    stop.wait()
    workers.stop()  # running jobs go back to the queue without counting an attempt
    store.close()
    return 0
