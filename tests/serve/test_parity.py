"""One definition of each mode's rules: the same requests through `tenku generate`'s parser and
through the HTTP API resolve to the same request (the server stores the resolved request's
dict as the job's parameters) or are refused with the same error code and field."""

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tenku.cli import build_parser
from tenku.generate import resolve_args
from tenku.io import write_png, write_video
from tenku.request import RequestError
from tenku.serve import ServeConfig, create_app


@pytest.fixture(scope="module")
def files(tmp_path_factory, clip):
    d = tmp_path_factory.mktemp("parity")
    write_video(d / "v.mp4", clip(13), 8.0)
    write_video(d / "short.mp4", clip(3), 8.0)
    write_png(d / "img.png", clip(1, w=90, h=50)[0])
    return d


@pytest.fixture(scope="module")
def api(tmp_path_factory, serve_pipe, tiny_pipeline):
    cfg = ServeConfig(data_dir=tmp_path_factory.mktemp("serve") / "data", model=Path(tiny_pipeline), device="cpu",
                      workers=0, max_queue=1000)
    with TestClient(create_app(cfg, pipe=serve_pipe), base_url="http://127.0.0.1") as c:  # a loopback Host (serve refuses others)
        yield c


# (tenku generate arguments, API body, API upload, expected error code or None); {d}: the input folder
CASES = [
    (["a ball"], {}, None, None),
    (["a ball", "--size", "96x64", "--frames", "9"], {"size": "96x64", "frames": 9}, None, None),
    (["a ball", "--seconds", "1.2", "--fps", "10"], {"seconds": 1.2, "fps": 10}, None, None),
    (["a ball", "--image", "{d}/img.png"], {}, "img.png", None),
    (["a ball", "--loop", "--frames", "17"], {"loop": True, "frames": 17}, None, None),
    (["a ball", "--loop", "--image", "{d}/img.png"], {"loop": True}, "img.png", None),
    (["a ball", "--video", "{d}/v.mp4", "--extend", "forward", "--frames", "3"], {"extend": "forward", "frames": 3}, "v.mp4", None),
    (["a ball", "--video", "{d}/v.mp4", "--extend", "backward", "--seconds", "1"], {"extend": "backward", "seconds": 1}, "v.mp4", None),
    (["--video", "{d}/v.mp4", "--edit", "a ball", "--strength", "0.5"], {"strength": 0.5}, "v.mp4", None),
    (["a ball", "--size", "65x64"], {"size": "65x64"}, None, ("invalid_size", "size")),
    (["a ball", "--size", "512x512"], {"size": "512x512"}, None, ("invalid_size", "size")),
    (["a ball", "--size", "320x64"], {"size": "320x64"}, None, ("invalid_size", "size")),
    (["a ball", "--frames", "10"], {"frames": 10}, None, ("invalid_frames", "frames")),
    (["a ball", "--seconds", "1000"], {"seconds": 1000}, None, ("invalid_seconds", "seconds")),
    (["a ball", "--loop", "--frames", "5"], {"loop": True, "frames": 5}, None, ("invalid_frames", "seconds")),
    (["a ball", "--extend", "forward"], {"extend": "forward"}, None, ("invalid_combination", "extend")),
    (["a ball", "--video", "{d}/v.mp4", "--extend", "forward", "--loop"], {"extend": "forward", "loop": True}, "v.mp4",
     ("invalid_combination", "loop")),
    (["a ball", "--video", "{d}/short.mp4", "--extend", "forward"], {"extend": "forward"}, "short.mp4", ("invalid_value", "video")),
    (["--video", "{d}/v.mp4", "--edit", "a ball", "--strength", "0.5", "--frames", "5"], {"strength": 0.5, "frames": 5},
     "v.mp4", ("invalid_combination", "seconds")),
]


def _post(api, body, upload, files):
    body = {"prompt": "a ball", "seed": 0} | body
    if upload is None:
        return api.post("/v1/videos", json=body)
    data = {k: json.dumps(v) if isinstance(v, bool) else str(v) for k, v in body.items()}
    return api.post("/v1/videos", data=data, files={"input_reference": (upload, (files / upload).read_bytes())})


@pytest.mark.parametrize("argv,body,upload,error", CASES)
def test_cli_and_api_resolve_alike(api, serve_pipe, files, argv, body, upload, error):
    args = build_parser().parse_args(["generate", *[a.format(d=files) for a in argv]])
    limits = api.app.state.submitter.limits  # the CLI has no server limits of its own (max seconds, steps)
    try:
        cli = resolve_args(args, serve_pipe, limits=limits).to_dict()
        cli_error = None
    except RequestError as e:
        cli, cli_error = None, (e.code, e.param)
    r = _post(api, body, upload, files)
    if error is not None:
        assert cli_error == error, cli_error
        assert r.status_code == 400 and (r.json()["error"]["code"], r.json()["error"]["param"]) == error, r.json()
        return
    assert cli_error is None and r.status_code == 200, (cli_error, r.json())
    stored = json.loads(api.app.state.store.get(r.json()["id"])["params"])
    assert set(stored.pop("inputs")) == set(cli.pop("inputs"))
    assert stored == cli
