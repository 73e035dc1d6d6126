"""kill -9 while one job runs and others wait; a restarted server loses none of them and still
serves what was finished before."""

import os
import signal
import subprocess
import sys
import time

import httpx
import openai
import pytest

from .conftest import free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _start(tiny_pipeline, data, port, log):
    cmd = [sys.executable, "-m", "tenku.cli", "serve", "--model", str(tiny_pipeline), "--data-dir", str(data),
           "--port", str(port), "--device", "cpu", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})
    deadline = time.time() + 90
    while time.time() < deadline:
        assert proc.poll() is None, "server exited at start"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_sigkill_while_running_and_queued(tiny_pipeline, tmp_path):
    port, data = free_port(), tmp_path / "data"
    log = open(tmp_path / "server.log", "wb")
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, timeout=30)
    proc = _start(tiny_pipeline, data, port, log)
    try:
        done = client.videos.create_and_poll(prompt="a red ball", seconds="1", poll_interval_ms=50,
                                             extra_body={"steps": 1, "seed": 1})
        assert done.status == "completed"
        before = client.videos.download_content(done.id).content
        long = client.videos.create(prompt="a slow one", seconds="1", extra_body={"steps": 80, "seed": 2})
        waiting = [client.videos.create(prompt=f"queued {i}", seconds="1", extra_body={"steps": 1, "seed": i})
                   for i in range(2)]
        deadline = time.time() + 30
        while (v := client.videos.retrieve(long.id)).progress < 2:  # running, part-way
            assert v.status in ("queued", "in_progress") and time.time() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        _stop(proc)

    proc = _start(tiny_pipeline, data, port, log)
    try:
        assert client.videos.download_content(done.id).content == before  # finished before the kill
        ids = {v.id for v in client.videos.list(limit=100)}
        assert ids == {done.id, long.id, *(w.id for w in waiting)}  # none lost
        for job in (long, *waiting):
            v = client.videos.poll(job.id, poll_interval_ms=50)
            assert v.status == "completed", v.error
            assert len(client.videos.download_content(job.id).content) > 0
    finally:
        _stop(proc)
        log.close()
    assert "requeued" in (tmp_path / "server.log").read_text()
