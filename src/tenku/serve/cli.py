"""``tenku serve``: start the HTTP server (the Videos API, the job queue, the web page)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tenku.cli import UsageError, add_offload_arg, nonneg_float, nonneg_int, positive_float, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    from tenku.prompts.cli import add_llm_args

    s = sub.add_parser("serve", help="an HTTP server: OpenAI-style Videos API, job queue, web page",
                       description="Serve a model over HTTP in the shape of OpenAI's Videos API (the openai "
                       "client works with base_url=http://HOST:PORT/v1), with a durable job queue and a web page "
                       "at /. Example:\n  tenku serve --model runs/dit-world/pipeline --data-dir serve-data",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    s.add_argument("--port", type=port_int, default=8000, help="TCP port, 1 to 65535 (default 8000)")
    s.add_argument("--data-dir", default="serve-data", help="job database and videos (default ./serve-data)")
    s.add_argument("--store", default=None, metavar="postgresql://...",
                   help="keep jobs in PostgreSQL, shared with other servers and `tenku worker`s (then --data-dir holds "
                   "only the videos: a folder they all reach); default: SQLite in --data-dir")
    add_bucket_args(s)
    s.add_argument("--model", default=None, help="pipeline folder (default: the bundled model)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_offload_arg(s)
    s.add_argument("--token", default=None,
                   help="bearer token clients must send (default: $TENKU_API_TOKEN); required off loopback")
    s.add_argument("--workers", type=nonneg_int, default=1, help="videos made at once (each loads the model; default 1)")
    s.add_argument("--max-queue", type=positive_int, default=100, help="queued + running jobs before 429 (default 100)")
    s.add_argument("--ttl-hours", type=nonneg_float, default=168.0, help="finished videos are deleted after this (0: never; default 168)")
    s.add_argument("--max-seconds", type=positive_float, default=60.0, help="longest video (default 60)")
    s.add_argument("--max-pixels", type=positive_int, default=None, help="largest width x height (default 16x the model's)")
    s.add_argument("--max-upload-mb", type=positive_float, default=64.0, help="largest upload (default 64)")
    s.add_argument("--max-steps", type=positive_int, default=200)
    s.add_argument("--quota-gb", type=positive_float, default=None,
                   help="disk quota for videos and uploads: past it, expired videos go first, then new requests get 507")
    s.add_argument("--key-quota-gb", type=positive_float, default=None,
                   help="disk quota of each API key's videos (tenku keys): past it, its new requests get 429")
    s.add_argument("--max-work", type=positive_float, default=None, metavar="N",
                   help="most work per request: frames sampled x width x height x steps, e.g. 3e9 (default: 16x a "
                   "--max-seconds video at the model's size, fps and steps)")
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_llm_args(s, timeout=30.0)
    s.set_defaults(func=cmd_serve, command="serve")


def add_bucket_args(s: argparse.ArgumentParser) -> None:
    """--bucket and --s3-endpoint, the same on tenku serve and tenku worker."""
    s.add_argument("--bucket", default=None, metavar="s3://BUCKET/PREFIX",
                   help="keep the videos in an S3-compatible bucket (credentials: boto3's usual AWS_* variables or "
                   "~/.aws); --data-dir then only stages them on this machine")
    s.add_argument("--s3-endpoint", default=None, metavar="URL", help="the bucket's server, if not AWS (MinIO, R2...)")


def model_folder(given: str | None) -> Path:
    """The folder --model names (default: the bundled model): a tenku pipeline folder or a Wan
    folder (docs/wan.md), else a UsageError said before anything loads."""
    from tenku.generate import BUNDLED
    from tenku.wan.folder import is_wan_folder

    model = Path(given) if given else BUNDLED
    if not (model / "pipeline.yaml").exists() and not is_wan_folder(model):
        raise UsageError(f"{model}: not a pipeline folder (pipeline.yaml) or a Wan folder (model_index.json)"
                         + ("" if given else " (no bundled model yet: pass --model DIR)"))
    return model


def port_int(text: str) -> int:
    """argparse type: a TCP port to listen on."""
    v = positive_int(text)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, got {v}")
    return v


def check_listen(host: str, port: int) -> None:
    """A UsageError when ``host:port`` cannot be listened on (in use, not this machine's address,
    not an address), said before the model loads rather than by uvicorn after."""
    import socket

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind(addr)
    except OSError as e:  # socket.gaierror included
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from tenku.prompts.cli import llm_config
    from tenku.serve import ServeConfig, create_app
    from tenku.serve.config import is_loopback

    token = args.token or os.environ.get("TENKU_API_TOKEN") or None
    if not is_loopback(args.host) and not token:
        raise UsageError(f"binding to {args.host} (not loopback) needs a bearer token: --token T or $TENKU_API_TOKEN")
    check_listen(args.host, args.port)
    model = model_folder(args.model)
    cfg = ServeConfig(data_dir=Path(args.data_dir), model=model, device=args.device, offload=args.offload,
                      host=args.host, port=args.port, token=token, workers=args.workers, max_queue=args.max_queue,
                      ttl_hours=args.ttl_hours, max_seconds=args.max_seconds, max_pixels=args.max_pixels,
                      max_upload_mb=args.max_upload_mb, max_steps=args.max_steps, max_work=args.max_work,
                      quota_gb=args.quota_gb, bucket=args.bucket, s3_endpoint=args.s3_endpoint,
                      key_quota_gb=args.key_quota_gb, llm=llm_config(args), store=args.store)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(cfg)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"tenku serve: http://{args.host}:{args.port}/ (API base http://{args.host}:{args.port}/v1, data in {cfg.data_dir})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0
