"""The durable job store: one interface, two backends. SQLite (WAL) in ``<data>/jobs.sqlite3`` is
the embedded default; PostgreSQL (store_pg.py) lets several API processes and ``tenku worker``
processes on other machines share one queue. Either way the files live in one folder per video.

A job is a row: its public fields (what ``GET /v1/videos/{id}`` shows), the parameters the
worker needs, and its state. States go ``queued -> in_progress -> completed | failed``.
A worker claims a job with a lease (``worker``, ``lease_until``) and renews it while it runs
(``heartbeat``); a job whose lease ran out (its worker died) is put back in the queue by
``reap``, or failed once it has been started ``max_attempts`` times, so a dead worker loses
nothing and a job that kills its worker cannot loop forever. Lease times come from the
database's clock, so workers on machines whose clocks differ still agree. Every write is one
statement (or one transaction); the SQL is the same for both backends except the clock, the
placeholders and the row lock of ``claim``. The schema is made and upgraded by alembic
(migrations/), so an old data dir or database is brought up to date when it is opened.

Files live in ``<data>/videos/<id>/``; ids are server-made (``video_`` + 32 hex digits) and
checked against that pattern before any path is built from one. Each video records its
``owner`` (the API key that made it) and ``bytes`` (its files on disk, for the quota). API keys
are rows of ``keys`` holding each key's sha256, never the key: a key is 32 random bytes, so a
fast hash is as safe as a slow one, and a stolen database gives no key that works.
"""

from __future__ import annotations

import abc
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ID_RE = re.compile(r"^video_[0-9a-f]{32}$")
STATES = ("queued", "in_progress", "completed", "failed")
LEASE_S = 30.0  # a claimed job is another worker's to take this long after its last heartbeat
MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATING = threading.Lock()


def new_id() -> str:
    return "video_" + uuid.uuid4().hex


def valid_id(video_id: str) -> bool:
    return bool(ID_RE.match(video_id))


def worker_name(suffix: str = "") -> str:
    """Who holds a lease: host, process and (for threads) a suffix; shown in logs and the row."""
    return f"{socket.gethostname()}:{os.getpid()}" + (f":{suffix}" if suffix else "")


def migrate(engine: Any) -> None:
    """Bring the schema to the newest migration (alembic, over a SQLAlchemy engine used for this only)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, engine.begin() as conn:  # alembic's op/context are module globals: one thread at a time
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    engine.dispose()


class Store(abc.ABC):
    """What the API and the workers need from a store. Subclasses give ``_q`` (rows), ``_w``
    (rowcount), ``NOW`` (the database's clock in epoch seconds, SQL) and ``LOCK`` (the row lock
    ``claim`` takes: ``FOR UPDATE SKIP LOCKED`` where several processes claim at once)."""

    NOW = ""
    LOCK = ""
    exclusive = False  # one process owns the store: every in_progress job at open is an orphan

    def __init__(self, data_dir: str | Path, max_attempts: int = 2, lease_s: float = LEASE_S):
        self.root = Path(data_dir)
        self.videos = self.root / "videos"
        self.videos.mkdir(parents=True, exist_ok=True)
        self.max_attempts, self.lease_s = max_attempts, lease_s
        self.bucket: Any = None  # a serve.bucket.Bucket when the videos live in S3 (open_store sets it)

    @abc.abstractmethod
    def _q(self, sql: str, args: tuple = ()) -> list[Any]:
        """Rows of a read."""

    @abc.abstractmethod
    def _w(self, sql: str, args: tuple = ()) -> int:
        """Rows a write changed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def remove_files(self, video_id: str) -> None:
        """A video's files: its folder here and, with a bucket, its objects there."""
        shutil.rmtree(self.folder(video_id), ignore_errors=True)
        if self.bucket is not None:
            self.bucket.delete(video_id)

    def folder(self, video_id: str) -> Path:
        """The job's folder; the id must be a valid one (never a client's path)."""
        if not valid_id(video_id):
            raise ValueError(f"not a video id: {video_id!r}")
        return self.videos / video_id

    # ---- writes ------------------------------------------------------------------------------

    def add(self, video_id: str, info: dict[str, Any], params: dict[str, Any], owner: str | None = None,
            nbytes: int = 0) -> None:
        """Queue a job made by key ``owner`` (None: the admin token, or no auth), whose inputs
        take ``nbytes`` on disk."""
        self._w("INSERT INTO videos (id, created_at, status, info, params, owner, bytes) VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (video_id, int(time.time()), json.dumps(info), json.dumps(params), owner, int(nbytes)))

    def claim(self, worker: str | None = None) -> Any | None:
        """The oldest queued job, now in_progress and leased to ``worker`` (one statement: two
        workers never get one job)."""
        rows = self._q(f"UPDATE videos SET status = 'in_progress', progress = 0, started_at = ?, attempts = attempts + 1, "
                       f"worker = ?, lease_until = {self.NOW} + ? WHERE status = 'queued' AND seq = "
                       f"(SELECT seq FROM videos WHERE status = 'queued' ORDER BY seq LIMIT 1 {self.LOCK}) RETURNING *",
                       (time.time(), worker or worker_name(), self.lease_s))
        return rows[0] if rows else None

    def heartbeat(self, video_id: str, worker: str | None = None) -> bool:
        """Renew the lease; False if the job is no longer this worker's (deleted, or taken after
        the lease ran out): the worker then stops it."""
        return self._w(f"UPDATE videos SET lease_until = {self.NOW} + ? WHERE id = ? AND status = 'in_progress' "
                       "AND worker = ?", (self.lease_s, video_id, worker or worker_name())) == 1

    def set_progress(self, video_id: str, progress: int, worker: str | None = None) -> bool:
        """Store the percentage and renew the lease; False as ``heartbeat``."""
        return self._w(f"UPDATE videos SET progress = ?, lease_until = {self.NOW} + ? WHERE id = ? "
                       "AND status = 'in_progress' AND worker = ?",
                       (int(progress), self.lease_s, video_id, worker or worker_name())) == 1

    def complete(self, video_id: str, result: dict[str, Any], ttl: float | None, worker: str | None = None,
                 nbytes: int | None = None) -> bool:
        """Mark done (its files now ``nbytes``; None: its folder's size); False if the job was
        deleted (or taken by another worker) meanwhile: the caller then leaves the record alone
        (and removes its files if the job is gone)."""
        now = time.time()
        expires = int(now + ttl) if ttl else None
        nbytes = self.folder_bytes(video_id) if nbytes is None else nbytes
        return self._w("UPDATE videos SET status = 'completed', progress = 100, finished_at = ?, completed_at = ?, "
                       "expires_at = ?, result = ?, bytes = ?, lease_until = NULL WHERE id = ? AND status = 'in_progress' "
                       "AND worker = ?", (now, int(now), expires, json.dumps(result), nbytes, video_id,
                                          worker or worker_name())) == 1

    def fail(self, video_id: str, code: str, message: str, worker: str | None = None) -> bool:
        """Mark failed; with ``worker``, only while that worker holds the job."""
        now = time.time()
        mine = " AND status = 'in_progress' AND worker = ?" if worker else ""
        return self._w("UPDATE videos SET status = 'failed', finished_at = ?, completed_at = ?, error_code = ?, "
                       f"error_message = ?, bytes = 0, lease_until = NULL WHERE id = ?{mine}",
                       (now, int(now), code, message[:2000], video_id) + ((worker,) if worker else ())) == 1

    def requeue(self, video_id: str, count_attempt: bool = False, worker: str | None = None) -> None:
        """Back to the queue (a graceful stop: the start does not count as an attempt)."""
        self._w("UPDATE videos SET status = 'queued', progress = 0, worker = NULL, lease_until = NULL, "
                "attempts = attempts - ? WHERE id = ? AND status = 'in_progress' AND worker = ?",
                (0 if count_attempt else 1, video_id, worker or worker_name()))

    def delete(self, video_id: str) -> bool:
        return self._w("DELETE FROM videos WHERE id = ?", (video_id,)) == 1

    def reap(self, everything: bool = False) -> tuple[list[str], list[str]]:
        """Jobs whose lease ran out (``everything``: all in_progress jobs) go back to the queue,
        or fail once they have been started ``max_attempts`` times. Each row changes under the
        same condition it was read with, so two reapers never both act on one job.
        Returns (requeued ids, failed ids)."""
        stale = "status = 'in_progress'" + ("" if everything else f" AND (lease_until IS NULL OR lease_until < {self.NOW})")
        rows = self._q(f"SELECT id, attempts FROM videos WHERE {stale} ORDER BY seq")
        requeued, failed = [], []
        for r in rows:
            if r["attempts"] >= self.max_attempts:
                now = time.time()
                msg = (f"the worker stopped while this video was being made ({r['attempts']} attempts); "
                       "submit it again")
                if self._w("UPDATE videos SET status = 'failed', finished_at = ?, completed_at = ?, "
                           f"error_code = 'interrupted', error_message = ?, lease_until = NULL WHERE id = ? AND {stale}",
                           (now, int(now), msg, r["id"])):
                    failed.append(r["id"])
            elif self._w("UPDATE videos SET status = 'queued', progress = 0, worker = NULL, lease_until = NULL "
                         f"WHERE id = ? AND {stale}", (r["id"],)):
                requeued.append(r["id"])
        for vid in requeued:  # partial outputs of the interrupted run (inputs stay)
            folder = self.videos / vid
            for f in folder.glob("*") if folder.exists() else []:
                if not f.name.startswith("input"):
                    f.unlink(missing_ok=True)
        return requeued, failed

    def recover(self) -> tuple[list[str], list[str]]:
        """At start: the jobs a dead process left running (all of them for an exclusive store,
        those whose lease ran out for a shared one). Returns (requeued ids, failed ids)."""
        return self.reap(everything=self.exclusive)

    def expire(self, now: float | None = None, free: int | None = None) -> list[str]:
        """Remove the files of completed videos past ``expires_at``, the oldest first; the record
        stays. ``free``: stop once that many bytes are freed (the quota's eviction)."""
        now = time.time() if now is None else now
        rows = self._q("SELECT id, bytes FROM videos WHERE status = 'completed' AND expired = 0 AND expires_at IS NOT NULL "
                       "AND expires_at <= ? ORDER BY expires_at, seq", (now,))
        gone, freed = [], 0
        for r in rows:
            if free is not None and freed >= free:
                break
            self.remove_files(r["id"])
            self._w("UPDATE videos SET expired = 1 WHERE id = ?", (r["id"],))
            gone.append(r["id"])
            freed += r["bytes"]
        return gone

    def folder_bytes(self, video_id: str) -> int:
        """What a job's files take on disk now."""
        folder = self.folder(video_id)
        return sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() else 0

    def used_bytes(self, owner: str | None = None) -> int:
        """Bytes the videos' files take (those not expired), all or one key's."""
        mine = " AND owner = ?" if owner is not None else ""
        return int(self._q(f"SELECT COALESCE(SUM(bytes), 0) AS n FROM videos WHERE expired = 0{mine}",
                           (owner,) if owner is not None else ())[0]["n"])

    # ---- API keys ----------------------------------------------------------------------------

    def add_key(self, name: str, admin: bool = False) -> tuple[str, str]:
        """A new key: (its id, the key itself, shown once; only its sha256 is kept)."""
        key_id, secret = "key_" + secrets.token_hex(6), "tk_" + secrets.token_urlsafe(32)
        self._w("INSERT INTO keys (id, name, hash, admin, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, name, _digest(secret), int(admin), int(time.time())))
        return key_id, secret

    def keys(self) -> list[Any]:
        """Every key (id, name, admin, created_at, revoked_at), oldest first; never a hash."""
        return self._q("SELECT id, name, admin, created_at, revoked_at FROM keys ORDER BY created_at, id")

    def revoke_key(self, key_id: str) -> bool:
        """Revoke a key at once (its videos stay, for an admin to see); False if no such live key."""
        return self._w("UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                       (int(time.time()), key_id)) == 1

    def key_for(self, secret: str) -> Any | None:
        """The live key whose sha256 ``secret`` has, or None."""
        rows = self._q("SELECT id, name, admin FROM keys WHERE hash = ? AND revoked_at IS NULL", (_digest(secret),))
        return rows[0] if rows else None

    def has_keys(self) -> bool:
        """Any live key: then every /v1 request needs one (or the admin token)."""
        return bool(self._q("SELECT 1 AS x FROM keys WHERE revoked_at IS NULL LIMIT 1"))

    # ---- reads -------------------------------------------------------------------------------

    def get(self, video_id: str, owner: str | None = None) -> Any | None:
        """A job; with ``owner``, only if that key made it (another key's video is not there)."""
        rows = self._q("SELECT * FROM videos WHERE id = ?", (video_id,))
        return rows[0] if rows and (owner is None or rows[0]["owner"] == owner) else None

    def list(self, after: str | None, limit: int, order: str, owner: str | None = None) -> tuple[list[Any], bool] | None:
        """A page of jobs by creation order (with ``owner``: that key's only); None if ``after``
        names no job (of that key)."""
        op, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
        mine, args = ("owner = ? AND ", (owner,)) if owner is not None else ("", ())
        if after:
            anchor = self._q(f"SELECT seq FROM videos WHERE {mine}id = ?", args + (after,))
            if not anchor:
                return None
            rows = self._q(f"SELECT * FROM videos WHERE {mine}seq {op} ? ORDER BY seq {direction} LIMIT ?",
                           args + (anchor[0]["seq"], limit + 1))
        else:
            rows = self._q(f"SELECT * FROM videos WHERE {mine}1 = 1 ORDER BY seq {direction} LIMIT ?", args + (limit + 1,))
        return rows[:limit], len(rows) > limit

    def active(self) -> int:
        """Jobs queued or running."""
        return self._q("SELECT COUNT(*) AS n FROM videos WHERE status IN ('queued', 'in_progress')")[0]["n"]

    def queue_position(self, seq: int) -> int:
        """How many queued jobs run before this one."""
        return self._q("SELECT COUNT(*) AS n FROM videos WHERE status = 'queued' AND seq < ?", (seq,))[0]["n"]

    def mean_seconds(self, last: int = 20) -> float | None:
        """Mean run time of the last finished jobs (for Retry-After)."""
        rows = self._q("SELECT finished_at - started_at AS s FROM videos WHERE status = 'completed' "
                       "AND started_at IS NOT NULL ORDER BY seq DESC LIMIT ?", (last,))
        return sum(r["s"] for r in rows) / len(rows) if rows else None

    def counts(self) -> dict[str, int]:
        rows = self._q("SELECT status, COUNT(*) AS n FROM videos GROUP BY status")
        return {s: 0 for s in STATES} | {r["status"]: r["n"] for r in rows}


class JobStore(Store):
    """SQLite: jobs in ``<data_dir>/jobs.sqlite3``, one process per data dir. WAL with
    ``synchronous=NORMAL`` survives a killed process (only a power cut can lose the last
    commits). One connection behind a lock: every statement here is short."""

    NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    exclusive = True

    def __init__(self, data_dir: str | Path, max_attempts: int = 2, lease_s: float = LEASE_S, lock: bool = True):
        super().__init__(data_dir, max_attempts, lease_s)
        # one server per data dir: a second one would "recover" the first one's running jobs.
        # flock is released by the kernel when the holder dies, so kill -9 leaves no stale lock.
        # ``lock=False`` (tenku keys, beside a running server) touches no job and takes no lock.
        self._lockfile = open(self.root / ".lock", "w") if lock else None
        try:
            if self._lockfile is not None:
                fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            raise ValueError(f"{self.root}: another tenku serve is using this data dir") from None
        self._lock = threading.Lock()
        path = self.root / "jobs.sqlite3"
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        from sqlalchemy import create_engine

        migrate(create_engine(f"sqlite:///{path}"))

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._lockfile is not None:
            self._lockfile.close()

    def _q(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _w(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_store(url: str | None, data_dir: str | Path, max_attempts: int = 2, lease_s: float = LEASE_S,
               lock: bool = True, bucket: str | None = None, endpoint: str | None = None) -> Store:
    """The store a ``--store`` value names: none for SQLite in ``data_dir``, ``postgresql://...``
    for PostgreSQL (files still in ``data_dir``, a folder every process can reach, or with
    ``bucket`` (s3://...) in that bucket, ``data_dir`` only staging them). ``lock``: the SQLite
    store's one-server lock (off for ``tenku keys`` beside a running server)."""
    if not url:
        store: Store = JobStore(data_dir, max_attempts, lease_s, lock)
    elif url.startswith(("postgresql://", "postgres://")):
        from tenku.serve.store_pg import PgStore

        store = PgStore(url, data_dir, max_attempts, lease_s)
    else:
        raise ValueError(f"--store {url.split('://')[0]}://...: not a store (give postgresql://USER:PASS@HOST/DB, "
                         "or leave it out for SQLite in --data-dir)")
    if bucket:
        from tenku.serve.bucket import Bucket

        try:
            store.bucket = Bucket(bucket, endpoint)
        except ValueError:
            store.close()
            raise
    return store

