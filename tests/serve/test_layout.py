"""Layouts through the server (issue 32): create takes ``layout`` (a JSON object, or its text in
a form) and ``plan``; a bad one is a 400 naming the field; the job stores the layout and the
worker follows it; the sidecar (``content?variant=sidecar``) records it, and `tenku generate
--layout` with that sidecar makes the same video."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from tenku.cli import main
from tenku.io import read_video
from tenku.serve import ServeConfig, create_app

LOCAL = "http://127.0.0.1:8000"
LAYOUT = {"fps": 8, "frames": 9, "width": 64, "height": 64,
          "objects": [{"phrase": "a red ball", "boxes": [[round(0.1 + 0.05 * k, 4), 0.4, round(0.3 + 0.05 * k, 4), 0.6] for k in range(9)]}]}


@pytest.fixture(scope="module")
def grounded(tiny_grounded_pipeline, tmp_path_factory):
    from tenku.pipeline import Pipeline

    pipe = Pipeline.load(tiny_grounded_pipeline, device="cpu")
    cfg = ServeConfig(data_dir=tmp_path_factory.mktemp("glay") / "data", model=Path(tiny_grounded_pipeline), device="cpu",
                      poll_ms=50)
    with TestClient(create_app(cfg, pipe=pipe), base_url=LOCAL) as c:
        yield c


def finished(c, vid):
    for _ in range(600):
        v = c.get(f"/v1/videos/{vid}").json()
        if v["status"] in ("completed", "failed"):
            assert v["status"] == "completed", v
            return v
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_a_layout_is_stored_followed_and_reproduced_from_the_sidecar(grounded, tiny_grounded_pipeline, tmp_path):
    c = grounded
    body = {"prompt": "a red ball rolls", "seed": 5, "steps": 1, "frames": 9, "layout": LAYOUT, "sketch": 0.5}
    vid = c.post("/v1/videos", json=body).json()["id"]
    finished(c, vid)
    side = c.get(f"/v1/videos/{vid}/content", params={"variant": "sidecar"}).json()
    assert side["layout"] == LAYOUT | {"fps": 8.0} and side["plan"] is False and side["sketch"] == 0.5
    (tmp_path / "side.json").write_text(json.dumps(side))
    (tmp_path / "server.mp4").write_bytes(c.get(f"/v1/videos/{vid}/content").content)
    out = tmp_path / "cli.mp4"
    assert main(["generate", "a red ball rolls", "--layout", str(tmp_path / "side.json"), "--seed", "5", "--steps", "1",
                 "--frames", "9", "--sketch", "0.5", "--model", str(tiny_grounded_pipeline), "-o", str(out), "--quiet"]) == 0
    assert np.array_equal(read_video(out)[0], read_video(tmp_path / "server.mp4")[0])
    free = c.post("/v1/videos", json={k: v for k, v in body.items() if k not in ("layout", "sketch")}).json()["id"]
    finished(c, free)
    assert "layout" not in c.get(f"/v1/videos/{free}/content", params={"variant": "sidecar"}).json()


def test_a_form_takes_the_layout_as_json_text_and_plan(grounded):
    c = grounded
    r = c.post("/v1/videos", data={"prompt": "a red ball bounces", "seed": "1", "steps": "1", "seconds": "1",
                                   "layout": json.dumps(LAYOUT)})
    assert r.status_code == 200, r.text
    side = c.get(f"/v1/videos/{finished(c, r.json()['id'])['id']}/content", params={"variant": "sidecar"}).json()
    assert side["layout"]["objects"][0]["phrase"] == "a red ball"
    r = c.post("/v1/videos", data={"prompt": "a red ball bounces", "seed": "1", "steps": "1", "seconds": "1", "plan": "true"})
    side = c.get(f"/v1/videos/{finished(c, r.json()['id'])['id']}/content", params={"variant": "sidecar"}).json()
    assert side["plan"] is True and side["layout"]["frames"] == 9 and side["layout"]["objects"]


def test_bad_layouts_are_400s_naming_the_field(grounded, tiny_pipeline, serve_pipe, tmp_path):
    bad = json.loads(json.dumps(LAYOUT))
    bad["objects"][0]["boxes"][2] = [0.5, 0.5, 0.4, 0.6]
    for body, param, says in (({"layout": bad}, "layout", "layout object 0 ('a red ball'), frame 2"),
                              ({"layout": [1, 2]}, "layout", "JSON object"),
                              ({"layout": LAYOUT, "plan": True}, "plan", "not both"),
                              ({"sketch": 0.5}, "sketch", "give plan or layout with it")):
        r = grounded.post("/v1/videos", json={"prompt": "a ball", **body})
        assert r.status_code == 400 and r.json()["error"]["param"] == param and says in r.json()["error"]["message"], r.text
    r = grounded.post("/v1/videos", data={"prompt": "a ball", "layout": "{not json"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "layout"
    cfg = ServeConfig(data_dir=tmp_path / "data", model=Path(tiny_pipeline), device="cpu", workers=0)
    with TestClient(create_app(cfg, pipe=serve_pipe), base_url=LOCAL) as free:
        r = free.post("/v1/videos", json={"prompt": "a ball", "plan": True})
        assert r.status_code == 400 and "this model has no grounding" in r.json()["error"]["message"]
        assert free.get("/ready").json()["defaults"]["grounding"] is False
