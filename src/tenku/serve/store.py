"""The durable job store: one SQLite database (WAL) beside one folder per video.

A job is a row: its public fields (what ``GET /v1/videos/{id}`` shows), the parameters the
worker needs, and its state. States go ``queued -> in_progress -> completed | failed``;
a job that was running when the process died is put back in the queue (or failed, after
``max_attempts`` starts), so a restart loses nothing. Every write is one transaction;
WAL with ``synchronous=NORMAL`` survives a killed process (only a power cut can lose the
last commits). One connection behind a lock: every statement here is short.

Files live in ``<data>/videos/<id>/``; ids are server-made (``video_`` + 32 hex digits) and
checked against that pattern before any path is built from one.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ID_RE = re.compile(r"^video_[0-9a-f]{32}$")
STATES = ("queued", "in_progress", "completed", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    info TEXT NOT NULL,
    params TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    started_at REAL,
    finished_at REAL,
    completed_at INTEGER,
    expires_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    result TEXT
);
CREATE INDEX IF NOT EXISTS videos_status ON videos(status, seq);
"""


def new_id() -> str:
    return "video_" + uuid.uuid4().hex


def valid_id(video_id: str) -> bool:
    return bool(ID_RE.match(video_id))


class JobStore:
    """Jobs in ``<data_dir>/jobs.sqlite3``, files in ``<data_dir>/videos/<id>/``."""

    def __init__(self, data_dir: str | Path, max_attempts: int = 2):
        self.root = Path(data_dir)
        self.videos = self.root / "videos"
        self.videos.mkdir(parents=True, exist_ok=True)
        self.max_attempts = max_attempts
        # one server per data dir: a second one would "recover" the first one's running jobs.
        # flock is released by the kernel when the holder dies, so kill -9 leaves no stale lock.
        self._lockfile = open(self.root / ".lock", "w")
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            raise ValueError(f"{self.root}: another tenku serve is using this data dir") from None
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "jobs.sqlite3", check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._lockfile.close()

    def folder(self, video_id: str) -> Path:
        """The job's folder; the id must be a valid one (never a client's path)."""
        if not valid_id(video_id):
            raise ValueError(f"not a video id: {video_id!r}")
        return self.videos / video_id

    def _q(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _w(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # ---- writes ------------------------------------------------------------------------------

    def add(self, video_id: str, info: dict[str, Any], params: dict[str, Any]) -> None:
        self._w("INSERT INTO videos (id, created_at, status, info, params) VALUES (?, ?, 'queued', ?, ?)",
                (video_id, int(time.time()), json.dumps(info), json.dumps(params)))

    def claim(self) -> sqlite3.Row | None:
        """The oldest queued job, now in_progress (atomically: two workers never get one job)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT * FROM videos WHERE status = 'queued' ORDER BY seq LIMIT 1").fetchone()
                if row is not None:
                    self._db.execute("UPDATE videos SET status = 'in_progress', progress = 0, started_at = ?, "
                                     "attempts = attempts + 1 WHERE seq = ?", (time.time(), row["seq"]))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return None if row is None else self.get(row["id"])

    def set_progress(self, video_id: str, progress: int) -> None:
        self._w("UPDATE videos SET progress = ? WHERE id = ? AND status = 'in_progress'", (int(progress), video_id))

    def complete(self, video_id: str, result: dict[str, Any], ttl: float | None) -> bool:
        """Mark done; False if the job was deleted meanwhile (the caller removes its files)."""
        now = time.time()
        expires = int(now + ttl) if ttl else None
        return self._w("UPDATE videos SET status = 'completed', progress = 100, finished_at = ?, completed_at = ?, "
                       "expires_at = ?, result = ? WHERE id = ? AND status = 'in_progress'",
                       (now, int(now), expires, json.dumps(result), video_id)) == 1

    def fail(self, video_id: str, code: str, message: str) -> bool:
        now = time.time()
        return self._w("UPDATE videos SET status = 'failed', finished_at = ?, completed_at = ?, error_code = ?, "
                       "error_message = ? WHERE id = ?", (now, int(now), code, message[:2000], video_id)) == 1

    def requeue(self, video_id: str, count_attempt: bool = False) -> None:
        """Back to the queue (a graceful stop: the start does not count as an attempt)."""
        self._w("UPDATE videos SET status = 'queued', progress = 0, attempts = attempts - ? WHERE id = ? "
                "AND status = 'in_progress'", (0 if count_attempt else 1, video_id))

    def delete(self, video_id: str) -> bool:
        return self._w("DELETE FROM videos WHERE id = ?", (video_id,)) == 1

    def recover(self) -> tuple[list[str], list[str]]:
        """After a restart: jobs left in_progress are requeued, or failed once they have been
        started ``max_attempts`` times (a job that kills the server must not loop forever).
        Returns (requeued ids, failed ids)."""
        rows = self._q("SELECT id, attempts FROM videos WHERE status = 'in_progress' ORDER BY seq")
        requeued, failed = [], []
        for r in rows:
            if r["attempts"] >= self.max_attempts:
                self.fail(r["id"], "interrupted", f"the server stopped while this video was being made "
                          f"({r['attempts']} attempts); submit it again")
                failed.append(r["id"])
            else:
                self._w("UPDATE videos SET status = 'queued', progress = 0 WHERE id = ?", (r["id"],))
                requeued.append(r["id"])
        for vid in requeued:  # partial outputs of the interrupted run (inputs stay)
            folder = self.videos / vid
            for f in folder.glob("*") if folder.exists() else []:
                if not f.name.startswith("input"):
                    f.unlink(missing_ok=True)
        return requeued, failed

    def expire(self, now: float | None = None) -> list[str]:
        """Remove the files of completed videos past ``expires_at``; the record stays."""
        now = time.time() if now is None else now
        rows = self._q("SELECT id FROM videos WHERE status = 'completed' AND expired = 0 AND expires_at IS NOT NULL "
                       "AND expires_at <= ?", (now,))
        for r in rows:
            shutil.rmtree(self.videos / r["id"], ignore_errors=True)
            self._w("UPDATE videos SET expired = 1 WHERE id = ?", (r["id"],))
        return [r["id"] for r in rows]

    # ---- reads -------------------------------------------------------------------------------

    def get(self, video_id: str) -> sqlite3.Row | None:
        rows = self._q("SELECT * FROM videos WHERE id = ?", (video_id,))
        return rows[0] if rows else None

    def list(self, after: str | None, limit: int, order: str) -> tuple[list[sqlite3.Row], bool] | None:
        """A page of jobs by creation order; None if ``after`` names no job."""
        op, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
        if after:
            anchor = self._q("SELECT seq FROM videos WHERE id = ?", (after,))
            if not anchor:
                return None
            rows = self._q(f"SELECT * FROM videos WHERE seq {op} ? ORDER BY seq {direction} LIMIT ?",
                           (anchor[0]["seq"], limit + 1))
        else:
            rows = self._q(f"SELECT * FROM videos ORDER BY seq {direction} LIMIT ?", (limit + 1,))
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
