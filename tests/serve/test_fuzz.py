"""Property-based fuzzing of every operation from the server's own OpenAPI schema (schemathesis,
in process over ASGI), valid and invalid inputs: no input gives a 5xx, and status codes, content types and bodies are
the ones the schema declares. No worker runs, so fuzzed jobs only queue."""

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,  # noqa: E402
                                 status_code_conformance)


@pytest.fixture(scope="module")
def fuzz_app(tiny_pipeline, serve_pipe, tmp_path_factory):
    from tenku.serve import ServeConfig, create_app

    cfg = ServeConfig(data_dir=tmp_path_factory.mktemp("fuzz") / "data", model=Path(tiny_pipeline), device="cpu",
                      workers=0, max_queue=100_000, max_upload_mb=1)
    app = create_app(cfg, pipe=serve_pipe)
    store = app.state.store  # one finished video, so that id-taking operations can reach past the 404
    from tenku.serve.store import new_id

    vid = new_id()
    store.add(vid, {"model": "m", "prompt": "p", "size": "64x64", "mode": "text-to-video", "seed": 0, "steps": 1,
                    "guidance": 1.0, "fps": 8.0, "frames": 9}, {})
    store.claim()
    store.folder(vid).mkdir(parents=True)
    for name in ("video.mp4", "thumbnail.png", "spritesheet.png"):
        (store.folder(vid) / name).write_bytes(b"x")
    store.complete(vid, {"frames": 9, "fps": 8.0, "size": [64, 64], "caption": "c"}, ttl=None)
    return app


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    # with no token the server answers only to a loopback Host (the ASGI client's default is "testserver")
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, headers={"host": "127.0.0.1"})
    schema.config.update(base_url="http://127.0.0.1")
    # valid and invalid inputs both (invalid ones must be 4xx, never 5xx)
    schema.config.generation.update(modes=list(schemathesis.GenerationMode), max_examples=25, deterministic=True)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_schema_conformance(case):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
