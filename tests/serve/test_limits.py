"""Bounded work per request over HTTP (issue 35, findings 3, 5 and 7): every endpoint and input
is checked against one budget before anything is queued; max_seconds counts the whole output
of edits and extensions of uploads, after the fps change; odd values are clear 400s."""

from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from tenku.io import write_video
from tenku.serve import ServeConfig, create_app

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def app(tiny_pipeline, serve_pipe, tmp_path_factory):
    cfg = ServeConfig(data_dir=tmp_path_factory.mktemp("limits") / "data", model=Path(tiny_pipeline), device="cpu",
                      workers=0, max_work=5e7)
    return create_app(cfg, pipe=serve_pipe)


@pytest.fixture(scope="module")
def c(app):
    with TestClient(app, base_url=LOCAL) as client:
        yield client


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Tiny mp4s: 2000 16x16 frames at 8 fps (250 s), 200 at 1 fps, 9 64x64 frames at 8 fps."""
    d = tmp_path_factory.mktemp("clips")
    made = {}
    for name, n, side, fps in (("long", 2000, 16, 8.0), ("slow", 200, 16, 1.0), ("short", 9, 64, 8.0)):
        made[name] = write_video(d / f"{name}.mp4", np.zeros((n, side, side, 3), np.uint8), fps).read_bytes()
    return made


def err(r, status=400):
    assert r.status_code == status, r.text
    return r.json()["error"]


def finished(app, frames=9):
    """A completed 64x64 video in the store (no worker runs here)."""
    from tenku.serve.store import new_id

    store, vid = app.state.store, new_id()
    store.add(vid, {"model": "m", "prompt": "p", "size": "64x64", "mode": "text-to-video", "seed": 0, "steps": 1,
                    "guidance": 1.0, "fps": 8.0, "frames": frames}, {})
    assert store.claim()["id"] == vid
    store.folder(vid).mkdir(parents=True)
    write_video(store.folder(vid) / "video.mp4", np.zeros((frames, 64, 64, 3), np.uint8), 8.0)
    store.complete(vid, {"frames": frames, "fps": 8.0, "size": [64, 64], "caption": "c"}, ttl=None)
    return vid


def test_finding_5_limits_multiply(c):
    e = err(c.post("/v1/videos", json={"prompt": "x", "seconds": 60, "fps": 120, "steps": 200, "size": "256x256"}))
    assert e["code"] == "over_budget" and "5e+07" in e["message"] and "lower" in e["message"]
    assert c.get("/v1/videos").json()["data"] == []  # nothing was queued


def test_every_endpoint_is_within_the_budget(app, c, clips):
    vid = finished(app)
    big = {"steps": 200, "fps": 120}
    tries = [
        c.post(f"/v1/videos/{vid}/remix", json={"prompt": "x"} | big),
        c.post("/v1/videos/extensions", json={"prompt": "x", "seconds": 10, "video": {"id": vid}} | big),
        c.post("/v1/videos/edits", json={"prompt": "x", "video": {"id": vid}} | big),
        c.post("/v1/videos", data={"prompt": "x", "seconds": "10", "steps": "200", "fps": "120"},
               files={"input_reference": ("a.mp4", clips["short"], "video/mp4")}),
        c.post("/v1/videos/edits", data={"prompt": "x", "steps": "200", "fps": "120"},
               files={"video": ("a.mp4", clips["short"], "video/mp4")}),
        c.post("/v1/videos", json={"prompt": "x", "seconds": 20, "connect": [vid, vid]} | big),
    ]
    for r in tries:
        assert err(r)["code"] == "over_budget", r.request.url
    assert len(c.get("/v1/videos").json()["data"]) == 1  # only the finished one


def test_finding_3_uploads_count_their_length(c, clips):
    """max_seconds on edits and extensions of uploads; the frame cap after the fps change."""
    e = err(c.post("/v1/videos/edits", data={"prompt": "x"}, files={"video": ("a.mp4", clips["long"], "video/mp4")}))
    assert (e["code"], e["param"]) == ("invalid_seconds", "video") and "249.5 s" in e["message"]
    e = err(c.post("/v1/videos/extensions", data={"prompt": "x", "seconds": "1"},
                   files={"video": ("a.mp4", clips["long"], "video/mp4")}))
    assert (e["code"], e["param"]) == ("invalid_seconds", "video")
    e = err(c.post("/v1/videos/extensions", data={"prompt": "x", "seconds": "1", "fps": "120"},
                   files={"video": ("a.mp4", clips["slow"], "video/mp4")}))
    assert (e["code"], e["param"]) == ("invalid_file", "video") and "20000" in e["message"]


@pytest.mark.parametrize("body,param", [
    ({"frames": True}, "frames"),
    ({"size": ""}, "size"),
    ({"seconds": 1e-300}, "seconds"),
    ({"seconds": "1e-300"}, "seconds"),
    ({"steps": True}, "steps"),
    ({"seed": False}, "seed"),
])
def test_finding_7_odd_values_are_400s(c, body, param):
    e = err(c.post("/v1/videos", json={"prompt": "x"} | body))
    assert e["param"] == param and "\n" not in e["message"], e


def test_the_cli_has_no_budget_unless_given_one(tiny_pipeline, tmp_path, capsys):
    """A local user may run anything; --max-work refuses as the server does, before sampling."""
    from tenku.cli import main

    argv = ["generate", "a ball", "--model", str(tiny_pipeline), "--device", "cpu", "--no-expand", "--quiet",
            "--frames", "9", "--steps", "1", "-o", str(tmp_path / "v.mp4")]
    assert main([*argv, "--max-work", "1000"]) == 2
    assert "9 frames sampled x 64x64 x 1 steps); --max-work allows at most 1e+03" in capsys.readouterr().err
    assert not (tmp_path / "v.mp4").exists()
    assert main(argv) == 0 and (tmp_path / "v.mp4").exists()
