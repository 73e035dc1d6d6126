"""The server and its web page over tiny Wan folders, driven by the official openai client:
text-to-video and image-to-video on the Wan2.2 TI2V layout, and the Wan2.1 layout's refusal of
image-to-video coming back as an API error with the reason."""

import io
import socket
import threading
import time

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from tenku.io import read_video
from tenku.wan import load_wan

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the client marks the Sora API deprecated
FAST = {"steps": 1, "seed": 3}


def _serve(folder, pipe, data_dir):
    """A server on a free loopback port in a thread; returns (url, uvicorn server, thread)."""
    import uvicorn

    from tenku.serve import ServeConfig, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = ServeConfig(data_dir=data_dir, model=folder, device="cpu", poll_ms=50, max_upload_mb=4)
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, pipe=pipe), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module", params=["wan22", "wan21"])
def served(request, tmp_path_factory):
    folder, _ = request.getfixturevalue(request.param)
    pipe = load_wan(folder, "cpu")
    pipe.cfg.size, pipe.cfg.frames, pipe.cfg.fps, pipe.cfg.context_frames = (64, 32), 17, 8.0, 5  # CPU-sized defaults
    url, server, thread = _serve(folder, pipe, tmp_path_factory.mktemp("serve") / "data")
    yield request.param, url, openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=60)
    server.should_exit = True
    thread.join(15)


def _download(client, video_id, tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(client.videos.download_content(video_id).content)
    return read_video(path)


def test_text_to_video_and_page(served, tmp_path):
    layout, url, client = served
    v = client.videos.create_and_poll(prompt="a red ball rolls", seconds="1", size="64x32", poll_interval_ms=50,
                                      extra_body=FAST)
    assert v.status == "completed", v.error
    assert v.size == "64x32" and v.tenku["frames"] == 9 and v.tenku["mode"] == "text-to-video"
    frames, fps = _download(client, v.id, tmp_path)
    assert frames.shape == (9, 32, 64, 3) and fps == pytest.approx(8.0)
    ready = httpx.get(url + "/ready").json()
    assert ready["model"].startswith("Wan2") and ready["defaults"]["size_multiple"] == (16 if layout == "wan21" else 32)
    page = httpx.get(url + "/")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_image_to_video(served, tmp_path):
    layout, _, client = served
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 64, 3), 200, np.uint8)).save(buf, format="PNG")
    create = lambda: client.videos.create(prompt="a red square moves", input_reference=("f.png", buf.getvalue(), "image/png"),  # noqa: E731
                                          seconds="1", size="64x32", extra_body=FAST)
    if layout == "wan21":
        with pytest.raises(openai.BadRequestError) as e:
            create()
        assert "trained with one noise level for all frames" in str(e.value)
        return
    v = client.videos.poll(create().id, poll_interval_ms=50)
    assert v.status == "completed" and v.tenku["mode"] == "image-to-video"
    assert _download(client, v.id, tmp_path)[0].shape == (9, 32, 64, 3)


def test_serve_and_worker_take_a_wan_folder(wan21, tmp_path):
    from tenku.cli import UsageError
    from tenku.serve.cli import model_folder

    assert model_folder(str(wan21[0])) == wan21[0]  # tenku serve / tenku worker --model WAN_FOLDER
    with pytest.raises(UsageError, match=r"not a pipeline folder \(pipeline.yaml\) or a Wan folder"):
        model_folder(str(tmp_path))
