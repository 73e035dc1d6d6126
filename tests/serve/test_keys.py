"""Per-key isolation and the disk quota (issue 35, finding 6) on both stores: API keys are kept
hashed; a key sees, downloads and deletes only its own videos, an admin key and the old
--token see all; past the server's quota expired videos go first, then 507; past a key's, 429."""

import hashlib
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tenku.serve import ServeConfig, create_app
from tenku.serve.store import open_store

from .postgres import pg_dsn, store_url  # noqa: F401 - fixtures


def _app(store_url, tmp_path, serve_pipe, tiny_pipeline, **kw):
    cfg = ServeConfig(data_dir=tmp_path / "data", model=Path(tiny_pipeline), device="cpu", workers=0, store=store_url, **kw)
    return create_app(cfg, pipe=serve_pipe)


def _finish(store, vid, nbytes=1000, ttl=None):
    """Complete a queued job (no worker runs here) with a video of ``nbytes``."""
    job = store.claim("w")
    assert job["id"] == vid
    store.folder(vid).mkdir(parents=True, exist_ok=True)
    (store.folder(vid) / "video.mp4").write_bytes(b"\0" * nbytes)
    assert store.complete(vid, {"frames": 9, "fps": 8.0, "size": [64, 64], "caption": "c"}, ttl, "w")


def test_keys_are_stored_hashed_and_revocable(store_url, tmp_path):
    s = open_store(store_url, tmp_path / "data")
    kid, key = s.add_key("alice")
    assert kid.startswith("key_") and len(key) > 40
    rows = s._q("SELECT * FROM keys")
    assert key not in str([dict(r) for r in rows]) and rows[0]["hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert s.key_for(key)["id"] == kid and s.key_for(key + "x") is None and s.has_keys()
    assert s.revoke_key(kid) and not s.revoke_key(kid) and s.key_for(key) is None and not s.has_keys()
    s.close()


def test_a_key_sees_only_its_own_videos(store_url, tmp_path, serve_pipe, tiny_pipeline):
    app = _app(store_url, tmp_path, serve_pipe, tiny_pipeline, token="root")
    store = app.state.store
    (a, ka), (b, kb), (_, kadmin) = store.add_key("alice"), store.add_key("bob"), store.add_key("ops", admin=True)
    bearer = lambda k: {"authorization": f"Bearer {k}"}  # noqa: E731
    with TestClient(app, base_url="http://127.0.0.1") as c:
        va = c.post("/v1/videos", json={"prompt": "alice's ball"}, headers=bearer(ka)).json()["id"]
        vb = c.post("/v1/videos", json={"prompt": "bob's ball"}, headers=bearer(kb)).json()["id"]
        vroot = c.post("/v1/videos", json={"prompt": "root's ball"}, headers=bearer("root")).json()["id"]
        for vid in (va, vb, vroot):
            _finish(store, vid)
        ids = lambda k: [v["id"] for v in c.get("/v1/videos", headers=bearer(k)).json()["data"]]  # noqa: E731
        assert ids(ka) == [va] and ids(kb) == [vb] and set(ids(kadmin)) == set(ids("root")) == {va, vb, vroot}
        for path in (f"/v1/videos/{vb}", f"/v1/videos/{vb}/content"):  # another key's video is not there
            r = c.get(path, headers=bearer(ka))
            assert r.status_code == 404 and r.json()["error"]["code"] == "video_not_found"
        assert c.get("/v1/videos", params={"after": vb}, headers=bearer(ka)).status_code == 404
        assert c.delete(f"/v1/videos/{vb}", headers=bearer(ka)).status_code == 404
        r = c.post(f"/v1/videos/{vb}/remix", json={"prompt": "mine now"}, headers=bearer(ka))
        assert r.status_code == 404
        r = c.post("/v1/videos/edits", json={"prompt": "x", "video": {"id": vb}}, headers=bearer(ka))
        assert r.status_code == 404
        assert c.get(f"/v1/videos/{va}/content", headers=bearer(ka)).status_code == 200
        assert c.get(f"/v1/videos/{vb}/content", headers=bearer(kadmin)).status_code == 200
        assert c.delete(f"/v1/videos/{vb}", headers=bearer(kb)).status_code == 200
        store.revoke_key(a)
        r = c.get("/v1/videos", headers=bearer(ka))
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/videos").status_code == 401


def test_keys_turn_auth_on_without_a_token(store_url, tmp_path, serve_pipe, tiny_pipeline):
    """A loopback server with no --token is open until a key exists; then every /v1 request needs one."""
    app = _app(store_url, tmp_path, serve_pipe, tiny_pipeline)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/v1/videos").status_code == 200
        _, key = app.state.store.add_key("alice")
        time.sleep(2.1)  # the guard re-reads "are there keys" every 2 s
        assert c.get("/v1/videos").status_code == 401
        assert c.get("/v1/videos", headers={"authorization": f"Bearer {key}"}).status_code == 200
        assert c.get("/").status_code == 200  # the page stays open; it asks for the key


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_quota_evicts_expired_videos_first_then_507(store_url, tmp_path, serve_pipe, tiny_pipeline):
    png = _png()
    app = _app(store_url, tmp_path, serve_pipe, tiny_pipeline, quota_gb=(2400 + len(png) - 1) / 2**30, ttl_hours=1)
    store = app.state.store
    upload = lambda: c.post("/v1/videos", data={"prompt": "a ball"},  # noqa: E731
                            files={"input_reference": ("a.png", png, "image/png")})
    with TestClient(app, base_url="http://127.0.0.1") as c:
        older, old, new = (c.post("/v1/videos", json={"prompt": "a ball"}).json()["id"] for _ in range(3))
        _finish(store, older, 600, ttl=-20)  # expired, their files not yet removed (the janitor runs each minute)
        _finish(store, old, 600, ttl=-10)
        _finish(store, new, 1200, ttl=3600)
        assert store.used_bytes() == 2400
        r = upload()
        assert r.status_code == 200, r.text  # room made by evicting the oldest expired video, and only it
        assert store.get(older)["expired"] and not store.folder(older).exists()
        assert not store.get(old)["expired"] and store.folder(old).exists()
        assert store.get(r.json()["id"])["bytes"] == len(png)
        for _ in range(100):  # the quota fills with live videos: nothing more to evict
            r = upload()
            if r.status_code != 200:
                break
        assert r.status_code == 507 and r.json()["error"]["code"] == "server_full", r.text
        assert store.get(old)["expired"] and store.folder(new).exists()  # a live video is never evicted


def test_a_key_over_its_quota_gets_429(store_url, tmp_path, serve_pipe, tiny_pipeline):
    app = _app(store_url, tmp_path, serve_pipe, tiny_pipeline, token="root", key_quota_gb=1000 / 2**30)
    store = app.state.store
    (_, ka), (_, kb) = store.add_key("alice"), store.add_key("bob")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        h = {"authorization": f"Bearer {ka}"}
        vid = c.post("/v1/videos", json={"prompt": "a ball"}, headers=h).json()["id"]
        _finish(store, vid, 1500)
        r = c.post("/v1/videos", json={"prompt": "a ball"}, headers=h)
        assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"
        assert c.post("/v1/videos", json={"prompt": "a ball"}, headers={"authorization": f"Bearer {kb}"}).status_code == 200
        assert c.post("/v1/videos", json={"prompt": "a ball"}, headers={"authorization": "Bearer root"}).status_code == 200
        assert c.delete(f"/v1/videos/{vid}", headers=h).status_code == 200
        assert c.post("/v1/videos", json={"prompt": "a ball"}, headers=h).status_code == 200


def test_keys_command(tmp_path, capsys):
    from tenku.cli import main

    d = ["--data-dir", str(tmp_path / "data")]
    assert main(["keys", "add", "alice", *d]) == 0
    key_id, key = capsys.readouterr().out.split()[0], None
    assert main(["keys", "add", "ops", "--admin", *d]) == 0
    assert "(admin)" in capsys.readouterr().out
    assert main(["keys", "list", *d]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "alice" in listed and "tk_" not in listed and key is None
    assert main(["keys", "revoke", key_id, *d]) == 0 and main(["keys", "revoke", key_id, *d]) == 2
    assert "no live key" in capsys.readouterr().err
    assert main(["keys", "list", "--data-dir", str(tmp_path / "nothing")]) == 2
