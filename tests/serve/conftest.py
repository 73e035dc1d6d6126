"""A tenku server on a free loopback port (uvicorn in a thread) over the tiny pipeline, and the
official openai client pointed at it."""

import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return server, thread


@pytest.fixture(scope="session")
def serve_pipe(tiny_pipeline):
    """One loaded tiny pipeline shared by the in-process test servers (loading is the slow part)."""
    from tenku.pipeline import Pipeline

    pipe = Pipeline.load(tiny_pipeline, device="cpu")
    pipe.cfg.frames, pipe.cfg.context_frames = 17, 5  # chunks with room for loops and transitions (as test_modes)
    return pipe


@pytest.fixture(scope="module")
def server(tiny_pipeline, serve_pipe, tmp_path_factory):
    from tenku.serve import ServeConfig, create_app

    cfg = ServeConfig(data_dir=tmp_path_factory.mktemp("serve") / "data", model=Path(tiny_pipeline), device="cpu",
                      poll_ms=50, max_upload_mb=4)
    app = create_app(cfg, pipe=serve_pipe)
    port = free_port()
    srv, thread = start_server(app, port)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}", app=app, cfg=cfg)
    srv.should_exit = True
    thread.join(15)


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="test-key", max_retries=0, timeout=60)


def decode(data: bytes, tmp_path: Path, name: str = "v.mp4") -> tuple[np.ndarray, float]:
    from tenku.io import read_video

    path = tmp_path / name
    path.write_bytes(data)
    return read_video(path)
