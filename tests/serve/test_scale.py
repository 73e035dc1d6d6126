"""Scale-out on PostgreSQL: two API servers and two `tenku worker` processes share one database
and one video folder. A burst from several clients through both servers is served with no job
lost or run twice; a job deleted through either server stops on the worker running it; a worker killed with SIGKILL mid-job loses nothing: once its lease runs out
(2 s here) the other worker runs the job to the end. (The API servers run in this process, each
with its own store connection, to keep the test seconds; the workers are real processes.)"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest

from .conftest import free_port, start_server
from .postgres import fresh_schema

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _worker(dsn, data, tiny_pipeline, log):
    cmd = [sys.executable, "-m", "tenku.cli", "worker", "--store", dsn, "--videos", str(data), "--model",
           str(tiny_pipeline), "--device", "cpu", "--lease-seconds", "2", "--log-level", "info"]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def cluster(tiny_pipeline, serve_pipe, tmp_path_factory):
    from tenku.serve import ServeConfig, create_app

    tmp = tmp_path_factory.mktemp("scale")
    data = tmp / "data"
    data.mkdir()
    with fresh_schema() as dsn:
        logs = [tmp / f"worker{i}.log" for i in range(2)]
        files = [open(p, "wb") for p in logs]
        workers = [_worker(dsn, data, tiny_pipeline, f) for f in files]
        servers, urls = [], []
        try:
            for _ in range(2):
                cfg = ServeConfig(data_dir=data, model=Path(tiny_pipeline), device="cpu", workers=0, store=dsn,
                                  max_queue=1000, poll_ms=50)
                app = create_app(cfg, pipe=serve_pipe)
                port = free_port()
                servers.append((app, *start_server(app, port)))
                urls.append(f"http://127.0.0.1:{port}")
            deadline = time.time() + 120
            while not all("tenku worker:" in p.read_text() for p in logs):
                assert all(w.poll() is None for w in workers), [p.read_text()[-2000:] for p in logs]
                assert time.time() < deadline, "workers did not start"
                time.sleep(0.1)
            yield SimpleNamespace(urls=urls, store=servers[0][0].state.store, workers=workers, logs=logs)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.terminate()
            for w in workers:
                try:
                    w.wait(15)
                except subprocess.TimeoutExpired:
                    w.kill()
            for app, srv, thread in servers:
                srv.should_exit = True
                thread.join(15)
                app.state.store.close()
            for f in files:
                f.close()


def _events(logs, what):
    """Job ids per log line 'job ID started by / completed by', over every worker's log."""
    return Counter(m for p in logs for m in re.findall(rf"job (video_\w+) {what} by", p.read_text()))


def test_burst_from_many_clients_through_two_servers(cluster):
    ids, errors, lock = [], [], threading.Lock()

    def client(i):
        c = openai.OpenAI(base_url=cluster.urls[i % 2] + "/v1", api_key="k", max_retries=0, timeout=60)
        try:
            mine = [c.videos.create(prompt=f"client {i} job {j}", seconds="1", extra_body={"steps": 1, "seed": 10 * i + j}).id
                    for j in range(2)]
            with lock:
                ids.extend(mine)
            for vid in mine:
                v = c.videos.poll(vid, poll_interval_ms=100)
                if v.status != "completed":
                    errors.append((vid, v.status, v.error))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(ids) == 20
    listed = httpx.get(cluster.urls[1] + "/v1/videos", params={"limit": 100}).json()["data"]
    assert sorted(v["id"] for v in listed) == sorted(ids)  # none lost, none made up
    assert all(cluster.store.get(v)["attempts"] == 1 for v in ids)
    started, completed = _events(cluster.logs, "started"), _events(cluster.logs, "completed")
    assert started == completed == Counter(ids)  # each run exactly once
    per_worker = [len(_events([p], "completed")) for p in cluster.logs]
    assert all(n > 0 for n in per_worker), per_worker  # both workers took jobs
    assert all((cluster.store.folder(v) / "video.mp4").stat().st_size > 0 for v in ids)


def test_delete_stops_the_job_on_the_worker_that_runs_it(cluster):
    c = openai.OpenAI(base_url=cluster.urls[1] + "/v1", api_key="k", max_retries=0, timeout=60)
    job = c.videos.create(prompt="deleted midway", seconds="1", extra_body={"steps": 60, "seed": 3})
    deadline = time.time() + 60
    while (v := c.videos.retrieve(job.id)).progress < 2:
        assert v.status in ("queued", "in_progress") and time.time() < deadline
        time.sleep(0.05)
    c.videos.delete(job.id)
    while not any(f"job {job.id} is no longer" in p.read_text() for p in cluster.logs):
        assert time.time() < deadline + 30, "the worker did not stop"
        time.sleep(0.1)
    assert not cluster.store.folder(job.id).exists() and cluster.store.get(job.id) is None
    assert _events(cluster.logs, "completed")[job.id] == 0


def test_a_killed_worker_s_job_is_finished_by_the_other(cluster):
    c = openai.OpenAI(base_url=cluster.urls[0] + "/v1", api_key="k", max_retries=0, timeout=60)
    job = c.videos.create(prompt="a slow one", seconds="1", extra_body={"steps": 60, "seed": 7})
    deadline = time.time() + 60
    while (v := c.videos.retrieve(job.id)).progress < 2:  # running, part-way
        assert v.status in ("queued", "in_progress") and time.time() < deadline
        time.sleep(0.05)
    holder = cluster.store.get(job.id)["worker"]  # host:pid:thread
    pid = int(holder.split(":")[1])
    victim = next(w for w in cluster.workers if w.pid == pid)
    os.kill(pid, signal.SIGKILL)
    victim.wait()
    v = c.videos.poll(job.id, poll_interval_ms=100)
    assert v.status == "completed", v.error
    row = cluster.store.get(job.id)
    assert row["attempts"] == 2 and row["worker"] != holder
    survivor = cluster.logs[1 - cluster.workers.index(victim)]
    assert _events([survivor], "completed")[job.id] == 1
    assert "leases ran out: 1 jobs requeued" in survivor.read_text()
    assert len(c.videos.download_content(job.id).content) > 0
