"""What an attacker tried on `tenku serve` (issue 35): every body parse error is a 400, an error
never costs the client its keep-alive connection, 405 says what is allowed, and with no token
(the loopback default) a foreign Host (DNS rebinding) or Origin (a cross-origin form POST) is refused."""

import http.client
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tenku.serve import ServeConfig, create_app

from .conftest import free_port, start_server

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def app(tiny_pipeline, serve_pipe, tmp_path_factory):
    cfg = ServeConfig(data_dir=tmp_path_factory.mktemp("hard") / "data", model=Path(tiny_pipeline), device="cpu", workers=0)
    return create_app(cfg, pipe=serve_pipe)


@pytest.fixture(scope="module")
def c(app):
    with TestClient(app, base_url=LOCAL) as client:
        yield client


def test_deeply_nested_json_is_a_400(c):
    for body in ("[" * 100_000, '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        r = c.post("/v1/videos", content=body.encode(), headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_json" and "nested" in r.json()["error"]["message"]
    r = c.post("/v1/videos/extensions", content=b"{" * 50_000, headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_a_500_keeps_the_connection_alive(app):
    """uvicorn drops a keep-alive connection when the app raises; the server answers instead."""
    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-boom", boom, include_in_schema=False)
    port = free_port()
    srv, thread = start_server(app, port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/test-boom")
        r = conn.getresponse()
        assert r.status == 500 and json.loads(r.read())["error"]["type"] == "server_error"
        sock = conn.sock
        for _ in range(3):
            conn.request("GET", "/health")
            r = conn.getresponse()
            assert r.status == 200 and r.read()
        assert conn.sock is sock  # the same connection, never reset
    finally:
        srv.should_exit = True
        thread.join(15)


def test_405_says_what_is_allowed(c):
    r = c.put("/v1/videos")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert r.json()["error"]["type"] == "invalid_request_error" and r.json()["error"]["code"] == "method_not_allowed"


def test_foreign_host_is_refused_without_a_token(c):
    """DNS rebinding: evil.example resolves to 127.0.0.1, the browser sends Host: evil.example."""
    r = c.get("/v1/videos", headers={"host": "evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "invalid_host"
    assert c.get("/", headers={"host": "evil.example:8000"}).status_code == 403
    for host in ("127.0.0.1:8000", "localhost", "localhost:1234", "[::1]:8000"):
        assert c.get("/v1/videos", headers={"host": host}).status_code == 200, host


def test_cross_origin_post_is_refused_without_a_token(c):
    """CSRF: a page elsewhere posts a form to the loopback server."""
    r = c.post("/v1/videos", data={"prompt": "x"}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "invalid_origin"
    assert c.post("/v1/videos", data={"prompt": "x"}, headers={"origin": "null"}).status_code == 403
    assert c.post("/v1/videos", data={"prompt": "x"}, headers={"origin": "http://localhost:9999"}).status_code == 403
    assert c.get("/v1/videos").json()["data"] == []  # nothing was queued
    r = c.post("/v1/videos", data={"prompt": "a ball"}, headers={"origin": LOCAL})  # the page itself
    assert r.status_code == 200
    assert c.delete(f"/v1/videos/{r.json()['id']}").status_code == 200


def test_with_a_token_any_host_may_ask(tiny_pipeline, serve_pipe, tmp_path):
    """Behind a proxy or on a LAN the bearer token is the check (a browser cannot forge the header)."""
    cfg = ServeConfig(data_dir=tmp_path / "data", model=Path(tiny_pipeline), device="cpu", workers=0, token="t")
    with TestClient(create_app(cfg, pipe=serve_pipe), base_url="http://videos.example.org") as c:
        assert c.get("/v1/videos", headers={"authorization": "Bearer t"}).status_code == 200
        assert c.get("/v1/videos").status_code == 401


def test_huge_seconds_is_a_400(c):
    """Issue 35, finding 1: seconds x fps was rounded before max_seconds was checked (a 500)."""
    r = c.post("/v1/videos", json={"prompt": "x", "seconds": "1e308"})
    assert r.status_code == 400, r.text
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == ("invalid_seconds", "seconds")
