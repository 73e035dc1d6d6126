"""Videos in an S3-compatible bucket (moto's S3 server on loopback): an API server and a worker
on different data dirs (as on two machines) share only PostgreSQL and the bucket. The upload
reaches the worker through the bucket, the video reaches the client through the API server,
and delete removes the objects."""

import time
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from tenku.io import write_video

from .conftest import decode, free_port
from .postgres import pg_dsn  # noqa: F401 - fixture

pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture
def bucket(monkeypatch):
    import boto3

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="videos")
    yield endpoint, s3
    server.stop()


def test_an_api_server_and_a_worker_share_only_the_bucket(pg_dsn, bucket, tmp_path, serve_pipe, tiny_pipeline):
    from tenku.serve import ServeConfig, create_app
    from tenku.serve.store import open_store
    from tenku.serve.worker import Workers

    endpoint, s3 = bucket
    cfg = ServeConfig(data_dir=tmp_path / "api", model=Path(tiny_pipeline), device="cpu", workers=0, store=pg_dsn,
                      bucket="s3://videos/tenku", s3_endpoint=endpoint)
    app = create_app(cfg, pipe=serve_pipe)
    wstore = open_store(pg_dsn, tmp_path / "worker", bucket="s3://videos/tenku", endpoint=endpoint)
    workers = Workers(wstore, lambda: serve_pipe, 1, ttl=3600, first=serve_pipe)
    clip = write_video(tmp_path / "in.mp4", np.full((9, 64, 64, 3), 90, np.uint8), 8.0).read_bytes()
    keys = lambda: sorted(o["Key"] for o in s3.list_objects_v2(Bucket="videos").get("Contents", []))  # noqa: E731
    workers.start()
    try:
        with TestClient(app, base_url="http://127.0.0.1") as c:
            vid = c.post("/v1/videos/edits", data={"prompt": "a ball", "steps": "1"},
                         files={"video": ("in.mp4", clip, "video/mp4")}).json()["id"]
            assert keys() == [f"tenku/{vid}/input-video.mp4"] and not (tmp_path / "api" / "videos" / vid).exists()
            deadline = time.time() + 120
            while (v := c.get(f"/v1/videos/{vid}").json())["status"] not in ("completed", "failed"):
                assert time.time() < deadline
                time.sleep(0.2)
            assert v["status"] == "completed", v
            assert f"tenku/{vid}/video.mp4" in keys() and not (tmp_path / "worker" / "videos" / vid).exists()
            frames, _ = decode(c.get(f"/v1/videos/{vid}/content").content, tmp_path)
            assert frames.shape == (9, 64, 64, 3)
            assert c.get(f"/v1/videos/{vid}/content", params={"variant": "thumbnail"}).content[:4] == b"\x89PNG"
            workers.stop()  # the extension stays queued: nothing races the deletes below
            ext = c.post("/v1/videos/extensions", json={"prompt": "on", "seconds": 1, "steps": 1, "video": {"id": vid}})
            assert ext.status_code == 200, ext.text  # the source came back from the bucket as the new job's input
            assert f"tenku/{ext.json()['id']}/input-video.mp4" in keys()
            for v_id in (vid, ext.json()["id"]):
                assert c.delete(f"/v1/videos/{v_id}").status_code == 200
            assert keys() == []
    finally:
        workers.stop()
        wstore.close()
