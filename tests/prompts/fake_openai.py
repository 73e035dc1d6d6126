"""A tiny OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

``FakeOpenAI(answer)`` serves ``POST /v1/chat/completions``; ``answer(body)``
returns one of:

- a string: a normal chat completion with that text;
- ``("status", code)``: that HTTP error;
- ``("sleep", seconds, text)``: answers late (for client timeouts);
- ``("raw", bytes)``: that body verbatim (malformed replies).

Every request body and its headers are recorded in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def completion(text: str, model: str = "fake") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class FakeOpenAI:
    def __init__(self, answer: Callable[[dict[str, Any]], Any]):
        self.answer = answer
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                outer.requests.append((body, dict(self.headers)))
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                what = outer.answer(body)
                if isinstance(what, tuple) and what[0] == "status":
                    return self._send(what[1], b'{"error": {"message": "boom"}}')
                if isinstance(what, tuple) and what[0] == "sleep":
                    time.sleep(what[1])
                    what = what[2]
                if isinstance(what, tuple) and what[0] == "raw":
                    return self._send(200, what[1])
                self._send(200, json.dumps(completion(what, body.get("model", "fake"))).encode())

            def _send(self, code: int, data: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
