"""Who is asking, and may they: the ASGI guard in front of the app. With no auth set up (no
``--token``, no API key in the store: the loopback default) every caller is the admin and the
``Host`` and ``Origin`` are checked instead. Otherwise every ``/v1`` request carries a bearer:
the server's ``--token`` (the admin: sees every video) or an API key of ``tenku keys`` (sees,
downloads and deletes only its own videos; an admin key sees all). Keys are looked up by their
sha256 (``Store.key_for``), never compared in plain."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tenku.serve.api import ApiError, bad
from tenku.serve.config import is_loopback

log = logging.getLogger("tenku.serve")


@dataclass(frozen=True)
class Caller:
    """Who a request is from: ``key`` (an API key's id; None: the --token, or no auth) and
    whether it sees every video."""

    key: str | None = None
    admin: bool = True

    @property
    def owner(self) -> str | None:
        """The owner to filter videos by: None (all) for an admin."""
        return None if self.admin else self.key


ADMIN = Caller()


def caller(request: Any) -> Caller:
    """The caller the guard found for ``request``."""
    return getattr(request.state, "caller", None) or ADMIN


class Guard:
    """ASGI middleware: who is asking (above), a cap on request body size, and with no auth a
    Host and Origin check: a page elsewhere cannot reach the server through DNS rebinding (its
    own name resolving to 127.0.0.1) nor post a form to it (CSRF). It also turns an unhandled
    error into a 500 itself: an exception that reaches uvicorn drops the keep-alive connection,
    and the client's next request on it is reset."""

    KEYS_TTL = 2.0  # seconds a "the store has keys" answer is reused

    def __init__(self, app: Any, token: str | None, limit: int, store: Any = None):
        self.app, self.token, self.limit, self.store = app, token, limit, store
        self._keys: tuple[float, bool] = (-1e9, False)

    async def _has_keys(self) -> bool:
        if self.store is None:
            return False
        at, has = self._keys
        if time.monotonic() - at > self.KEYS_TTL:
            has = await run_in_threadpool(self.store.has_keys)
            self._keys = (time.monotonic(), has)
        return has

    async def _who(self, headers: dict[str, str], path: str) -> tuple[Caller | None, ApiError | None]:
        if not self.token and not await self._has_keys():
            return ADMIN, _foreign(headers)
        if not path.startswith("/v1"):
            return None, None
        auth = headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if self.token and hmac.compare_digest(given.encode(), self.token.encode()):
            return ADMIN, None
        row = await run_in_threadpool(self.store.key_for, given) if given and self.store is not None else None
        if row is None:
            return None, ApiError(401, "invalid_api_key", "missing, wrong or revoked API key (Authorization: Bearer KEY)")
        return Caller(row["id"], bool(row["admin"])), None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        who, err = await self._who(headers, scope["path"])
        scope.setdefault("state", {})["caller"] = who
        length = headers.get("content-length", "")
        if err is None and length.isdigit() and int(length) > self.limit:
            err = bad("file_too_large", f"the request body is {length} bytes; at most {self.limit}")
        if err is not None:
            return await JSONResponse(err.body(), err.status, headers=err.headers)(scope, receive, send)
        seen, started = 0, False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise bad("file_too_large", f"the request body is over {self.limit} bytes")
            return message

        async def sending(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except Exception as e:  # noqa: BLE001 - answered here, not re-raised (see the class doc)
            log.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
            if not started:
                body = {"error": {"type": "server_error", "code": "internal_error",
                                  "message": f"{type(e).__name__}: {e}", "param": None}}
                await JSONResponse(body, 500)(scope, receive, send)


def _loopback_host(host: str) -> bool:
    """``Host`` (or an origin's host[:port]) names this machine's loopback."""
    if host.startswith("["):  # [v6]:port
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback(name.lower())


def _foreign(headers: dict[str, str]) -> ApiError | None:
    """With no auth: a request whose Host is not a loopback name, or whose Origin is not the
    server itself (same scheme-less host:port as Host), is refused."""
    host = headers.get("host", "")
    if not _loopback_host(host):
        return ApiError(403, "invalid_host", f"Host {host!r}: without a token this server answers only to "
                        "loopback names (127.0.0.1, localhost, [::1])")
    origin = headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1].rstrip("/").lower() != host.lower():
        return ApiError(403, "invalid_origin", f"Origin {origin!r}: a page from another origin cannot use this server "
                        "(without a token only its own page at / can)")
    return None
