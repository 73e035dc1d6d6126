"""Settings of one server (``tenku serve`` flags)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ServeConfig:
    data_dir: Path  # the videos' files (and, with no ``store``, the SQLite job database)
    model: Path
    device: str = "auto"
    offload: str | None = None  # tenku.memory's none, model or block; None: the model folder's setting
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # bearer token; required when host is not a loopback address
    workers: int = 1  # jobs run at once (each worker loads its own copy of the model)
    max_queue: int = 100  # queued + running jobs; past this, 429 with Retry-After
    ttl_hours: float = 168.0  # finished videos' files are removed this long after completion (0: never)
    max_seconds: float = 60.0
    max_pixels: int | None = None  # width x height; default 16x the model's default size
    max_upload_mb: float = 64.0
    max_steps: int = 200
    quota_gb: float | None = None  # videos + uploads on disk; past it (expired content evicted first) 507
    key_quota_gb: float | None = None  # the same for each API key's own videos; past it 429
    max_work: float | None = None  # frames sampled x pixels x steps per request; default: 16x a max_seconds default video
    max_attempts: int = 2  # starts of a job that a crash interrupts before it is failed
    poll_ms: int = 500  # openai-poll-after-ms: how often the openai client's poll() asks
    expire_every_s: float = 60.0
    store: str | None = None  # postgresql://... to share the queue with other processes; None: SQLite in data_dir
    bucket: str | None = None  # s3://BUCKET/PREFIX: videos there, data_dir only stages them (serve.bucket)
    s3_endpoint: str | None = None  # an S3-compatible server's URL (None: AWS)
    lease_s: float = 30.0  # a running job is another worker's this long after its worker's last heartbeat
    llm: Any = None  # prompts.llm.LLMConfig for prompt expansion (the operator's, never a client's URL)

    @property
    def ttl_s(self) -> float | None:
        return self.ttl_hours * 3600 if self.ttl_hours > 0 else None

    @property
    def quota_bytes(self) -> int | None:
        return int(self.quota_gb * 2**30) if self.quota_gb else None

    @property
    def key_quota_bytes(self) -> int | None:
        return int(self.key_quota_gb * 2**30) if self.key_quota_gb else None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
