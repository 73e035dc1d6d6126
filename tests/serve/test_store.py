"""The job store on both backends (SQLite, PostgreSQL): the lifecycle, leases (heartbeat, expiry,
hand-over, max_attempts), exclusive claims under concurrency, migrations of an old data dir,
and the API's submit / status / list / delete / expiry over each store."""

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tenku.serve.store import open_store, new_id

from .postgres import pg_dsn, store_url  # noqa: F401 - fixtures

INFO = {"model": "m", "prompt": "p", "size": "64x64", "mode": "text-to-video", "seed": 0, "steps": 1,
        "guidance": 1.0, "fps": 8.0, "frames": 9}


def _store(url, tmp_path, **kw):
    return open_store(url, tmp_path / "data", **kw)


def test_lifecycle(store_url, tmp_path):
    s = _store(store_url, tmp_path)
    ids = [new_id() for _ in range(3)]
    for vid in ids:
        s.add(vid, INFO, {"p": 1})
    assert s.counts() == {"queued": 3, "in_progress": 0, "completed": 0, "failed": 0} and s.active() == 3
    assert [s.queue_position(s.get(v)["seq"]) for v in ids] == [0, 1, 2]
    job = s.claim("w1")
    assert job["id"] == ids[0] and job["status"] == "in_progress" and job["attempts"] == 1 and job["worker"] == "w1"
    assert s.set_progress(ids[0], 40, "w1") and s.get(ids[0])["progress"] == 40
    assert not s.set_progress(ids[0], 50, "w2")  # not w2's job
    assert not s.complete(ids[0], {"frames": 9}, ttl=60, worker="w2")
    assert s.complete(ids[0], {"frames": 9}, ttl=60, worker="w1")
    row = s.get(ids[0])
    assert row["status"] == "completed" and row["progress"] == 100 and row["expires_at"] >= row["completed_at"] + 59
    assert s.mean_seconds() is not None
    assert s.claim("w1")["id"] == ids[1] and s.fail(ids[1], "invalid_request", "no", "w1")
    assert s.get(ids[1])["error_code"] == "invalid_request"
    page, more = s.list(None, 2, "asc")
    assert [r["id"] for r in page] == ids[:2] and more
    page, more = s.list(ids[1], 2, "asc")
    assert [r["id"] for r in page] == ids[2:] and not more
    assert [r["id"] for r in s.list(None, 5, "desc")[0]] == ids[::-1]
    assert s.list(new_id(), 5, "asc") is None
    assert s.delete(ids[2]) and s.get(ids[2]) is None and not s.delete(ids[2])
    s.folder(ids[0]).mkdir(parents=True)
    assert s.expire(now=time.time() + 30) == [] and s.expire(now=time.time() + 90) == [ids[0]]
    assert s.get(ids[0])["expired"] and not s.folder(ids[0]).exists()
    s.close()


def test_lease_runs_out_then_another_worker_takes_the_job(store_url, tmp_path):
    s = _store(store_url, tmp_path, lease_s=0.3, max_attempts=2)
    vid = new_id()
    s.add(vid, INFO, {})
    assert s.claim("dead")["id"] == vid
    s.folder(vid).mkdir(parents=True)
    (s.folder(vid) / "input-video.mp4").write_bytes(b"in")
    (s.folder(vid) / ".video.tmp-1.mp4").write_bytes(b"partial")
    assert s.reap() == ([], [])  # the lease still holds
    time.sleep(0.5)
    assert s.reap() == ([vid], []) and s.reap() == ([], [])  # once only
    assert [f.name for f in s.folder(vid).iterdir()] == ["input-video.mp4"]
    assert not s.complete(vid, {"frames": 9}, None, "dead")  # the dead worker's late write is refused
    job = s.claim("alive")
    assert job["id"] == vid and job["attempts"] == 2
    time.sleep(0.5)
    assert s.reap() == ([], [vid])  # started max_attempts times: failed, not looped
    row = s.get(vid)
    assert row["status"] == "failed" and row["error_code"] == "interrupted"
    s.close()


def test_heartbeat_keeps_the_lease(store_url, tmp_path):
    s = _store(store_url, tmp_path, lease_s=0.4)
    vid = new_id()
    s.add(vid, INFO, {})
    s.claim("w1")
    for _ in range(4):
        time.sleep(0.2)
        assert s.heartbeat(vid, "w1")
    assert s.reap() == ([], []) and s.get(vid)["status"] == "in_progress"
    assert not s.heartbeat(vid, "w2")
    s.delete(vid)
    assert not s.heartbeat(vid, "w1")  # deleted: the worker learns it at its next beat
    s.close()


def test_claims_are_exclusive_under_concurrency(store_url, tmp_path):
    """Several claimers at once (on PostgreSQL each its own connection, as separate workers)
    take every job exactly once."""
    first = _store(store_url, tmp_path)
    ids = [new_id() for _ in range(40)]
    for vid in ids:
        first.add(vid, INFO, {})
    stores = [first] + ([_store(store_url, tmp_path) for _ in range(2)] if store_url else [first] * 3)
    got: list[list[str]] = [[] for _ in stores]

    def drain(i):
        while (job := stores[i].claim(f"w{i}")) is not None:
            got[i].append(job["id"])

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [v for g in got for v in g]
    assert sorted(claimed) == sorted(ids)  # none twice, none left
    assert all(first.get(v)["attempts"] == 1 for v in ids)
    for s in set(stores):
        s.close()


def test_an_old_sqlite_data_dir_is_migrated(tmp_path):
    """A data dir made before migrations (the old CREATE TABLE) opens with its jobs and gains leases."""
    (tmp_path / "data").mkdir()
    db = sqlite3.connect(tmp_path / "data" / "jobs.sqlite3")
    db.executescript("""CREATE TABLE videos (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
        created_at INTEGER NOT NULL, status TEXT NOT NULL, progress INTEGER NOT NULL DEFAULT 0, info TEXT NOT NULL,
        params TEXT NOT NULL, error_code TEXT, error_message TEXT, started_at REAL, finished_at REAL,
        completed_at INTEGER, expires_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
        expired INTEGER NOT NULL DEFAULT 0, result TEXT);
        CREATE INDEX videos_status ON videos(status, seq);
        INSERT INTO videos (id, created_at, status, info, params) VALUES
            ('video_00000000000000000000000000000001', 1, 'queued', '{}', '{}');""")
    db.close()
    s = _store(None, tmp_path)
    assert s.claim("w")["id"] == "video_00000000000000000000000000000001"
    assert s._q("SELECT version_num FROM alembic_version")[0][0] == "0003"
    assert (s.get("video_00000000000000000000000000000001")["owner"], s.used_bytes()) == (None, 0)  # keys, quota
    s.close()


def test_servers_starting_at_once_migrate_one_after_another(pg_dsn, tmp_path):
    """Processes opening a new database together: one migrates, the others wait and find it done."""
    import subprocess
    import sys

    code = "import sys; from tenku.serve.store import open_store; open_store(sys.argv[1], sys.argv[2]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_dsn, str(tmp_path / "data")], stderr=subprocess.PIPE)
             for _ in range(2)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    s = _store(pg_dsn, tmp_path)
    assert s._q("SELECT version_num FROM alembic_version") == [{"version_num": "0003"}]
    s.close()


def test_the_api_on_each_store(store_url, tmp_path, serve_pipe, tiny_pipeline):
    """Submit, status, list, content, expiry and delete through HTTP, jobs in either store."""
    from tenku.serve import ServeConfig, create_app

    cfg = ServeConfig(data_dir=tmp_path / "data", model=Path(tiny_pipeline), device="cpu", workers=0, store=store_url)
    app = create_app(cfg, pipe=serve_pipe)
    store = app.state.store
    with TestClient(app, base_url="http://127.0.0.1") as c:
        a, b = (c.post("/v1/videos", json={"prompt": f"a ball {i}", "seconds": 1}).json()["id"] for i in range(2))
        assert c.get(f"/v1/videos/{b}").json()["tenku"]["queue_position"] == 1
        assert [v["id"] for v in c.get("/v1/videos", params={"order": "asc"}).json()["data"]] == [a, b]
        assert store.claim("w")["id"] == a
        store.folder(a).mkdir(parents=True, exist_ok=True)
        (store.folder(a) / "video.mp4").write_bytes(b"mp4")
        store.complete(a, {"frames": 9, "fps": 8.0, "size": [64, 64], "caption": "c"}, ttl=3600, worker="w")
        assert c.get(f"/v1/videos/{a}").json()["status"] == "completed"
        assert c.get(f"/v1/videos/{a}/content").content == b"mp4"
        assert store.expire(now=time.time() + 3700) == [a]
        assert c.get(f"/v1/videos/{a}/content").json()["error"]["code"] == "video_expired"
        assert c.delete(f"/v1/videos/{b}").json()["deleted"]
        assert c.get(f"/v1/videos/{b}").status_code == 404
        assert c.get("/ready").json()["queue"] == {"queued": 0, "in_progress": 0, "completed": 1, "failed": 0}
    store.close()


def test_a_store_that_is_not_one_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a store"):
        open_store("mysql://x", tmp_path)
    with pytest.raises(ValueError, match="cannot connect to PostgreSQL"):
        open_store("postgresql://nobody:pw@127.0.0.1:1/x", tmp_path)
