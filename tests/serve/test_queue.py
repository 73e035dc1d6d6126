"""The queue's limits and lifecycle without the model running: a full queue is 429 with
Retry-After, bearer auth, expiry, recovery of interrupted jobs, body size caps."""

import json
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tenku.serve import ServeConfig, create_app
from tenku.serve.store import JobStore, new_id


def _app(tmp_path, serve_pipe, tiny_pipeline, **kw):
    cfg = ServeConfig(data_dir=tmp_path / "data", model=Path(tiny_pipeline), device="cpu", workers=0, **kw)
    return create_app(cfg, pipe=serve_pipe)


def test_full_queue_is_429_with_retry_after(tmp_path, serve_pipe, tiny_pipeline):
    with TestClient(_app(tmp_path, serve_pipe, tiny_pipeline, max_queue=2), base_url="http://127.0.0.1") as c:
        for _ in range(2):
            assert c.post("/v1/videos", json={"prompt": "a ball"}).status_code == 200
        r = c.post("/v1/videos", json={"prompt": "a ball"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == {"type": "rate_limit_error", "code": "queue_full",
                                     "message": r.json()["error"]["message"], "param": None}
        queued = c.get("/v1/videos", params={"order": "asc"}).json()["data"]
        assert [v["tenku"]["queue_position"] for v in queued] == [0, 1]
        c.delete(f"/v1/videos/{queued[0]['id']}")
        assert c.post("/v1/videos", json={"prompt": "a ball"}).status_code == 200


def test_bearer_token(tmp_path, serve_pipe, tiny_pipeline):
    with TestClient(_app(tmp_path, serve_pipe, tiny_pipeline, token="s3cret"), base_url="http://127.0.0.1") as c:
        assert c.get("/v1/videos").status_code == 401
        assert c.get("/v1/videos", headers={"Authorization": "Bearer nope"}).json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/videos", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200  # the page asks for the token
        assert c.get("/openapi.json").json()["paths"]["/v1/videos"]["get"]["security"] == [{"bearer": []}]


def test_non_loopback_bind_needs_a_token(tiny_pipeline, capsys, monkeypatch):
    from tenku.cli import main

    monkeypatch.delenv("TENKU_API_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--model", str(tiny_pipeline)]) == 2
    assert "needs a bearer token" in capsys.readouterr().err


def test_a_port_in_use_or_out_of_range_is_a_one_line_error(tmp_path, tiny_pipeline, capsys):
    """Said before the model loads, not by uvicorn's log after it."""
    import socket

    from tenku.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["serve", "--model", str(tiny_pipeline), "--data-dir", str(tmp_path / "d")]
        assert main([*argv, "--port", str(port)]) == 2
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # nothing made
    with pytest.raises(SystemExit):
        main([*argv, "--port", "70000"])
    assert "must be at most 65535" in capsys.readouterr().err


def test_body_size_cap(tmp_path, serve_pipe, tiny_pipeline):
    with TestClient(_app(tmp_path, serve_pipe, tiny_pipeline, max_upload_mb=0.01), base_url="http://127.0.0.1") as c:
        big = b"\x89PNG\r\n\x1a\n" + b"\0" * 2_000_000
        r = c.post("/v1/videos", data={"prompt": "a ball"}, files={"input_reference": ("a.png", big, "image/png")})
        assert r.status_code == 400 and r.json()["error"]["code"] == "file_too_large"
        r = c.post("/v1/videos", data={"prompt": "a ball"}, files={"input_reference": ("a.png", big[:20_000], "image/png")})
        assert r.status_code == 400 and r.json()["error"]["code"] == "file_too_large"
        r = c.post("/v1/videos", content=b'{"prompt": "x"', headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = c.post("/v1/videos", content=b"prompt", headers={"content-type": "text/plain"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_content_type"


def test_expiry_removes_files_keeps_record(tmp_path, serve_pipe, tiny_pipeline):
    app = _app(tmp_path, serve_pipe, tiny_pipeline, ttl_hours=1)
    store = app.state.store
    with TestClient(app, base_url="http://127.0.0.1") as c:
        vid = c.post("/v1/videos", json={"prompt": "a ball", "seconds": 1}).json()["id"]
        store.claim()
        folder = store.folder(vid)
        folder.mkdir(parents=True)
        (folder / "video.mp4").write_bytes(b"mp4")
        store.complete(vid, {"frames": 9, "fps": 8.0, "size": [64, 64], "caption": "c"}, ttl=3600)
        assert c.get(f"/v1/videos/{vid}/content").content == b"mp4"
        assert store.expire(now=time.time() + 3000) == []
        assert store.expire(now=time.time() + 3700) == [vid]
        assert not folder.exists()
        r = c.get(f"/v1/videos/{vid}/content")
        assert r.status_code == 404 and r.json()["error"]["code"] == "video_expired"
        v = c.get(f"/v1/videos/{vid}").json()
        assert v["status"] == "completed" and v["tenku"]["expired"]
        r = c.post(f"/v1/videos/{vid}/remix", json={"prompt": "x"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "video_expired"


def test_max_pixels_below_the_default_size_is_refused_at_start(tmp_path, serve_pipe, tiny_pipeline):
    with pytest.raises(ValueError, match=r"--max-pixels 1000 is below the model's default size 64x64 \(4096 pixels\)"):
        _app(tmp_path, serve_pipe, tiny_pipeline, max_pixels=1000)
    _app(tmp_path, serve_pipe, tiny_pipeline, max_pixels=4096).state.store.close()  # the data dir was freed


def test_one_server_per_data_dir(tmp_path):
    store = JobStore(tmp_path)
    with pytest.raises(ValueError, match="another tenku serve"):
        JobStore(tmp_path)
    store.close()
    JobStore(tmp_path).close()


def test_recover_requeues_then_fails(tmp_path):
    store = JobStore(tmp_path, max_attempts=2)
    a, b = new_id(), new_id()
    for vid in (a, b):
        store.add(vid, {"model": "m", "prompt": "p", "size": "64x64", "fps": 8.0}, {})
    assert store.claim()["id"] == a
    (store.folder(a)).mkdir()
    (store.folder(a) / "input-video.mp4").write_bytes(b"in")
    (store.folder(a) / ".video.tmp-1234.mp4").write_bytes(b"partial")
    assert store.recover() == ([a], [])
    assert store.get(a)["status"] == "queued" and [f.name for f in store.folder(a).iterdir()] == ["input-video.mp4"]
    assert store.claim()["id"] == a  # second start
    assert store.recover() == ([], [a])
    row = store.get(a)
    assert row["status"] == "failed" and row["error_code"] == "interrupted"
    assert store.get(b)["status"] == "queued"
    assert json.loads(store.get(b)["info"])["prompt"] == "p"
