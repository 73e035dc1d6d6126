"""Workers: threads that take the oldest queued job, run it through the pipeline (every mode
of ``Pipeline.stream``, as ``tenku generate`` does) and write ``video.mp4``, a thumbnail, a
spritesheet and a sidecar JSON into the job's folder. Progress is stored at every step that
moves the percentage. Each worker owns its pipeline (models are not shared across threads).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tenku.serve.store import Store, worker_name

log = logging.getLogger("tenku.serve")

SHEET_FRAMES = 16  # tiles in the spritesheet


class _Stop(Exception):
    """Raised from the progress callback: the job was deleted, or the server is stopping."""


def run_job(pipe: Any, params: dict[str, Any], folder: Path, progress: Callable[[int, int], None],
            llm: Any = None) -> dict[str, Any]:
    """Make one video from a stored resolved request (``tenku.request.Resolved.to_dict``), as
    ``tenku generate`` does (``tenku.request.make``), plus a thumbnail and a spritesheet; returns
    what the job record keeps (frames, caption...). A request the model cannot do raises
    ValueError (the job fails with its message)."""
    from tenku.io import save_contact_sheet, write_png
    from tenku.request import Resolved
    from tenku.request.make import expand, make, stream

    req = Resolved.from_dict(params, folder)
    expansion = expand(req, llm)
    blocks = stream(pipe, req, expansion, progress)
    every = max(1, req.total // SHEET_FRAMES)
    kept: list[np.ndarray] = []
    count = [0]

    def watch(block: np.ndarray) -> None:
        kept.extend(block[i] for i in range(len(block)) if (count[0] + i) % every == 0)
        count[0] += len(block)

    side = make(pipe, req, folder / "video.mp4", expansion, blocks, watch)
    sheet = np.stack(kept[:SHEET_FRAMES * 2])
    write_png(folder / "thumbnail.png", sheet[len(sheet) // 2])
    save_contact_sheet(folder / "spritesheet.png", sheet)
    return {k: side[k] for k in ("frames", "fps", "size", "caption", "seconds_generated")}


class Workers:
    """``n`` threads that drain the store's queue, and one that renews their leases and reaps the
    jobs of dead workers. ``loader()`` makes a pipeline (one per thread; ``first``, if given, is
    used by worker 0 so the model loaded at start-up is not loaded twice). Runs in the API process
    (``tenku serve --workers N``) or alone (``tenku worker``), on either store."""

    def __init__(self, store: Store, loader: Callable[[], Any], n: int = 1, ttl: float | None = None,
                 llm: Any = None, first: Any = None, expire_every: float = 60.0):
        self.store, self.loader, self.n, self.ttl, self.llm = store, loader, n, ttl, llm
        self._first, self.expire_every = first, expire_every
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._cancel: set[str] = set()  # deleted through this process's API
        self._lost: set[str] = set()  # no longer ours in the store: deleted elsewhere, or taken after our lease ran out
        self._threads: list[threading.Thread] = []
        self.running: dict[str, str] = {}  # worker name (lease holder) -> job id
        self.alive = 0

    def start(self) -> None:
        for i in range(self.n):
            t = threading.Thread(target=self._loop, args=(worker_name(str(i)),), name=f"tenku-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        loops = [(self._heartbeat, "tenku-lease")] + ([(self._janitor, "tenku-expiry")] if self.ttl else [])
        for target, name in loops:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def notify(self) -> None:
        """A job was queued."""
        with self._wake:
            self._wake.notify_all()

    def cancel(self, video_id: str) -> bool:
        """Stop a running job at its next step; True if it was running."""
        if video_id in self.running.values():
            self._cancel.add(video_id)
            return True
        return False

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.notify()
        for t in self._threads:
            t.join(timeout)

    def _janitor(self) -> None:
        while not self._stop.wait(self.expire_every):
            try:
                gone = self.store.expire()
                if gone:
                    log.info("expired %d videos", len(gone))
            except Exception:  # noqa: BLE001 - the janitor must outlive a bad pass
                log.exception("expiry pass failed")

    def _heartbeat(self) -> None:
        """Renew the leases of running jobs (a third of the lease apart, so one late beat is no
        loss) and put back the jobs of workers whose leases ran out, here or on other machines."""
        while not self._stop.wait(self.store.lease_s / 3):
            try:
                for name, vid in list(self.running.items()):
                    if not self.store.heartbeat(vid, name):
                        self._lost.add(vid)
                requeued, failed = self.store.reap()
                if requeued or failed:
                    log.warning("leases ran out: %d jobs requeued, %d failed", len(requeued), len(failed))
            except Exception:  # noqa: BLE001 - a database hiccup must not end the beats
                log.exception("lease renewal failed")

    def _loop(self, name: str) -> None:
        try:
            pipe = self._first if name.endswith(":0") and self._first is not None else self.loader()
        except Exception:  # noqa: BLE001 - /ready shows the missing worker
            log.exception("worker %s could not load the model", name)
            return
        self.alive += 1
        try:
            while not self._stop.is_set():
                try:
                    job = self.store.claim(name)
                except Exception:  # noqa: BLE001 - the database is away: try again, do not die
                    log.exception("worker %s could not claim a job", name)
                    job = None
                if job is None:
                    with self._wake:
                        self._wake.wait(1.0)
                    continue
                self.running[name] = job["id"]
                try:
                    self._run(pipe, job, name)
                finally:
                    self.running.pop(name, None)
                    self._cancel.discard(job["id"])
                    self._lost.discard(job["id"])
        finally:
            self.alive -= 1

    def _run(self, pipe: Any, job: Any, name: str) -> None:
        vid = job["id"]
        folder = self.store.folder(vid)
        folder.mkdir(parents=True, exist_ok=True)
        last = [-1]

        def progress(done: int, total: int) -> None:
            if self._stop.is_set() or vid in self._cancel or vid in self._lost:
                raise _Stop()
            pct = min(99, int(100 * done / max(1, total)))
            if pct != last[0]:
                last[0] = pct
                if not self.store.set_progress(vid, pct, name):
                    self._lost.add(vid)
                    raise _Stop()

        log.info("job %s started by %s (attempt %d)", vid, name, job["attempts"])
        bucket = self.store.bucket
        try:
            if bucket is not None:
                bucket.fetch(vid, folder)
            result = run_job(pipe, json.loads(job["params"]), folder, progress, self.llm)
            nbytes = self.store.folder_bytes(vid)
            if bucket is not None:  # the outputs are in the bucket before the job is completed
                bucket.put(vid, folder, prefix="")
        except _Stop:
            if vid in self._cancel:  # deleted through this process
                self.store.remove_files(vid)
            elif vid in self._lost:  # deleted elsewhere (the files go), or another worker's now (they stay)
                self._gone(vid, folder)
                log.warning("job %s is no longer %s's: stopped", vid, name)
            else:  # the server is stopping: run it again after the restart
                self.store.requeue(vid, worker=name)
                log.info("job %s put back in the queue (server stopping)", vid)
            return
        except ValueError as e:  # the model cannot do this request
            self._failed(vid, folder, "invalid_request", str(e), name)
            return
        except Exception as e:  # noqa: BLE001 - a bug or a broken input: the job fails, the worker lives
            log.exception("job %s failed", vid)
            self._failed(vid, folder, "internal_error", f"{type(e).__name__}: {e}", name)
            return
        if not self.store.complete(vid, result, self.ttl, name, nbytes):
            self._gone(vid, folder)  # deleted as it finished, or taken by another worker
            return
        if bucket is not None:  # this machine's staging copy
            shutil.rmtree(folder, ignore_errors=True)
        log.info("job %s completed by %s: %d frames", vid, name, result["frames"])

    def _gone(self, vid: str, folder: Path) -> None:
        if self.store.get(vid) is None:
            self.store.remove_files(vid)

    def _failed(self, vid: str, folder: Path, code: str, message: str, name: str) -> None:
        if self.store.fail(vid, code, message, name):
            self.store.remove_files(vid)  # inputs are not kept for failed jobs
        else:
            self._gone(vid, folder)
