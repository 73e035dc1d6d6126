"""The HTTP server: OpenAI's Videos API (``/v1/videos...``) over the job store and workers, a
web page at ``/``, ``/health`` and ``/ready``, and an OpenAPI schema that says what each
endpoint takes and returns (request bodies come from the models in api.py)."""

from __future__ import annotations

import copy
import json
import logging
from contextlib import asynccontextmanager
from importlib.resources import files as package_files
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tenku.serve.api import (ApiError, ErrorResponse, Video, VideoCreate, VideoDeleted, VideoEdit, VideoExtend,
                             VideoList, VideoRemix, bad, form_fields, validate)
from tenku.serve.auth import Guard, caller
from tenku.serve.config import ServeConfig
from tenku.serve.store import Store, open_store, valid_id
from tenku.serve.submit import Submitter
from tenku.serve.worker import Workers

log = logging.getLogger("tenku.serve")

_ERRORS = {400: {"model": ErrorResponse, "description": "invalid request"},
           401: {"model": ErrorResponse, "description": "missing or wrong bearer token"},
           403: {"model": ErrorResponse, "description": "no token set, and a Host or Origin that is not this server's"}}
_404 = {404: {"model": ErrorResponse, "description": "no such video (or another key's)"}}
_429 = {429: {"model": ErrorResponse, "description": "the queue is full (see Retry-After), or this key's disk quota",
              "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}},
        507: {"model": ErrorResponse, "description": "the server's disk quota is full"}}
_CONTENT = {"video": ("video.mp4", "video/mp4"), "thumbnail": ("thumbnail.png", "image/png"),
            "spritesheet": ("spritesheet.png", "image/png"), "sidecar": ("video.json", "application/json")}


def video_object(row: Any, store: Store) -> dict[str, Any]:
    """A job as the API shows it (OpenAI's Video object; tenku's details under ``tenku``)."""
    info = json.loads(row["info"])
    res = json.loads(row["result"]) if row["result"] else None
    frames = res["frames"] if res else info.get("frames")
    tenku = {k: info.get(k) for k in ("mode", "seed", "steps", "guidance", "fps", "strength")}
    tenku |= {"frames": frames, "caption": res.get("caption") if res else None, "expired": bool(row["expired"]),
              "queue_position": store.queue_position(row["seq"]) if row["status"] == "queued" else None}
    return {"id": row["id"], "object": "video", "created_at": row["created_at"], "completed_at": row["completed_at"],
            "expires_at": row["expires_at"], "model": info["model"], "progress": row["progress"],
            "prompt": info["prompt"], "remixed_from_video_id": info.get("remixed_from_video_id"),
            "seconds": f"{(frames - 1) / info['fps']:g}" if frames else info.get("seconds", "0"),
            "size": info["size"], "status": row["status"],
            "error": {"code": row["error_code"], "message": row["error_message"]} if row["status"] == "failed" else None,
            "tenku": tenku}


async def _read_body(request: Request, model: type, file_field: str | None, max_bytes: int) -> tuple[Any, bytes | None]:
    """A JSON or multipart body as ``model`` (+ the uploaded file's bytes)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    upload = None
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_files=2, max_fields=100, max_part_size=1024 * 1024)
        except ApiError:
            raise
        except Exception as e:  # noqa: BLE001 - a malformed multipart body
            raise bad("invalid_body", f"cannot parse the form body ({e})") from None
        try:
            data, files = form_fields(list(form.multi_items()), (file_field,) if file_field else ())
            if file_field and file_field in files:
                if file_field in data:
                    raise bad("invalid_combination", f"{file_field}: give a file or an object, not both", file_field)
                upload = await files[file_field].read(max_bytes + 1)
                if len(upload) > max_bytes:
                    raise bad("file_too_large", f"{file_field}: over {max_bytes} bytes", file_field)
        finally:
            await form.close()
    elif ctype in ("application/json", ""):
        raw = await request.body()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise bad("invalid_json", "the body is not valid JSON") from None
        except RecursionError:
            raise bad("invalid_json", "the body is JSON nested too deeply") from None
    else:
        raise bad("unsupported_content_type", f"content type {ctype!r}: send application/json or multipart/form-data")
    return validate(model, data), upload


def _request_body(name: str, form: bool) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
    if form:
        content["multipart/form-data"] = {"schema": {"$ref": f"#/components/schemas/{name}Form"}}
    return {"requestBody": {"required": True, "content": content}}


def create_app(cfg: ServeConfig, pipe: Any = None, loader: Any = None) -> FastAPI:
    """The app. ``pipe``: a loaded pipeline (default: load ``cfg.model``); ``loader()`` makes one
    per extra worker. Opening the store recovers jobs a previous process left running (with a
    shared store: those whose lease ran out)."""
    from tenku.pipeline import Pipeline

    store = open_store(cfg.store, cfg.data_dir, cfg.max_attempts, cfg.lease_s, bucket=cfg.bucket, endpoint=cfg.s3_endpoint)  # first: refuses a data dir in use
    loader = loader or (lambda: Pipeline.load(cfg.model, device=cfg.device, offload=cfg.offload))
    pipe = pipe if pipe is not None else loader()
    requeued, failed = store.recover()
    if requeued or failed:
        log.warning("recovered after a stop: %d jobs requeued, %d failed", len(requeued), len(failed))
    store.expire()
    workers = Workers(store, loader, cfg.workers, cfg.ttl_s, getattr(cfg, "llm", None), first=pipe,
                      expire_every=cfg.expire_every_s)
    try:
        sub = Submitter(store, cfg, pipe, workers.notify)
    except ValueError:  # a limit the model cannot meet: free the data dir for the corrected command
        store.close()
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        workers.start()
        yield
        workers.stop()

    app = FastAPI(title="tenku", version=__import__("tenku").__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # their pages load scripts from a CDN; /openapi.json is served
                  description="Text-to-video in the shape of OpenAI's Videos API. Errors are "
                  '`{"error": {"type", "code", "message", "param"}}`.')
    app.state.store, app.state.workers, app.state.submitter, app.state.cfg = store, workers, sub, cfg
    app.add_middleware(Guard, token=cfg.token, limit=cfg.max_upload_bytes + 1024 * 1024, store=store)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(e.body(), e.status, headers=e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        msg = f"no such endpoint: {request.method} {request.url.path}" if e.status_code == 404 else str(e.detail)
        headers = getattr(e, "headers", None)
        if e.status_code == 405:  # Starlette names only the first route's methods; every route of the path counts
            headers = {"Allow": ", ".join(sorted({m for r in app.routes for m in getattr(r, "methods", None) or ()
                                                  if r.matches(request.scope)[0] != Match.NONE}))}
            msg = f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        return await _api_error(request, ApiError(e.status_code, code, msg, headers=headers))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        err = e.errors()[0]
        where = str(err["loc"][-1]) if err.get("loc") else None
        return await _api_error(request, bad("invalid_value", f"{where}: {err['msg']}", where))

    def found(request: Request, video_id: str, param: str = "video_id") -> Any:
        """The video, if the caller may see it (another key's is not found, as one that never was)."""
        row = store.get(video_id, caller(request).owner) if valid_id(video_id) else None
        if row is None:
            raise ApiError(404, "video_not_found", f"no video {video_id!r}", param)
        return row

    def queued(vid: str) -> JSONResponse:
        return JSONResponse(video_object(store.get(vid), store))

    # ---- pages and probes ----------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(package_files("tenku.serve").joinpath("page.html").read_text())

    @app.get("/health", summary="the process is up")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="workers are running and the model is loaded",
             responses={503: {"description": "not ready (no worker running)"}})
    def ready() -> JSONResponse:
        ok = workers.alive > 0 or cfg.workers == 0
        body = {"status": "ready" if ok else "starting", "workers": workers.alive, "model": sub.model_name,
                "queue": store.counts(), "defaults": sub.defaults()}
        return JSONResponse(body, 200 if ok else 503)

    # ---- the Videos API ----------------------------------------------------------------------

    @app.post("/v1/videos", summary="create a video", response_model=Video, openapi_extra=_request_body("VideoCreate", True),
              responses=_ERRORS | _404 | _429)
    async def create(request: Request) -> JSONResponse:
        body, upload = await _read_body(request, VideoCreate, "input_reference", cfg.max_upload_bytes)
        return queued(await run_in_threadpool(sub.create, body, upload, caller(request)))

    @app.get("/v1/videos", summary="list videos", response_model=VideoList, responses=_ERRORS | _404)
    def list_videos(request: Request, after: str | None = Query(None, max_length=64),
                    limit: int = Query(20, ge=1, le=100), order: Literal["asc", "desc"] = "desc") -> JSONResponse:
        page = store.list(after, limit, order, caller(request).owner)
        if page is None:
            raise ApiError(404, "video_not_found", f"after: no video {after!r}", "after")
        rows, more = page
        data = [video_object(r, store) for r in rows]
        return JSONResponse({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None, "has_more": more})

    @app.get("/v1/videos/{video_id}", summary="a video's status and progress", response_model=Video,
             responses=_ERRORS | _404)
    def retrieve(request: Request, video_id: str) -> JSONResponse:
        return JSONResponse(video_object(found(request, video_id), store), headers={"openai-poll-after-ms": str(cfg.poll_ms)})

    @app.delete("/v1/videos/{video_id}", summary="delete a video (a running one is stopped)", response_model=VideoDeleted,
                responses=_ERRORS | _404)
    def delete(request: Request, video_id: str) -> dict[str, Any]:
        found(request, video_id)
        workers.cancel(video_id)
        store.delete(video_id)
        store.remove_files(video_id)
        return {"id": video_id, "object": "video.deleted", "deleted": True}

    @app.get("/v1/videos/{video_id}/content", summary="the mp4, a thumbnail or spritesheet (PNG), or the sidecar (JSON)",
             responses=_ERRORS | _404 | {200: {"description": "the file", "content": {
                 "video/mp4": {"schema": {"type": "string", "format": "binary"}},
                 "application/json": {"schema": {"type": "object"}},
                 "image/png": {"schema": {"type": "string", "format": "binary"}}}}})
    def content(request: Request, video_id: str,
                variant: Literal["video", "thumbnail", "spritesheet", "sidecar"] = "video") -> FileResponse:
        row = found(request, video_id)
        if row["status"] != "completed":
            raise bad("video_not_ready", f"video {video_id} is {row['status']}; content exists once it is completed")
        name, media = _CONTENT[variant]
        path = store.folder(video_id) / name
        remote = None if row["expired"] or path.exists() or store.bucket is None else store.bucket.stream(video_id, name)
        if row["expired"] or not (path.exists() or remote):
            raise ApiError(404, "video_expired", f"video {video_id}'s files have expired")
        filename = f"{video_id}{'' if variant == 'video' else '-' + variant}.{name.rsplit('.', 1)[1]}"
        if remote is not None:  # from the bucket, through this server (clients need not reach the bucket)
            chunks, length = remote
            return StreamingResponse(chunks, media_type=media, headers={
                "content-length": str(length), "content-disposition": f'inline; filename="{filename}"'})
        return FileResponse(path, media_type=media, filename=filename, content_disposition_type="inline")

    @app.post("/v1/videos/{video_id}/remix", summary="redo a finished video to follow a new prompt", response_model=Video,
              openapi_extra=_request_body("VideoRemix", False), responses=_ERRORS | _404 | _429)
    async def remix(video_id: str, request: Request) -> JSONResponse:
        body, _ = await _read_body(request, VideoRemix, None, cfg.max_upload_bytes)
        return queued(await run_in_threadpool(sub.remix, video_id, body, caller(request)))

    @app.post("/v1/videos/extensions", summary="continue a video", response_model=Video,
              openapi_extra=_request_body("VideoExtend", True), responses=_ERRORS | _404 | _429)
    async def extend(request: Request) -> JSONResponse:
        body, upload = await _read_body(request, VideoExtend, "video", cfg.max_upload_bytes)
        return queued(await run_in_threadpool(sub.extend, body, upload, caller(request)))

    @app.post("/v1/videos/edits", summary="video-to-video: redo a video to follow a prompt", response_model=Video,
              openapi_extra=_request_body("VideoEdit", True), responses=_ERRORS | _404 | _429)
    async def edit(request: Request) -> JSONResponse:
        body, upload = await _read_body(request, VideoEdit, "video", cfg.max_upload_bytes)
        return queued(await run_in_threadpool(sub.edit, body, upload, caller(request)))

    app.openapi = lambda: _openapi(app, cfg)  # type: ignore[method-assign]
    return app


_FILE = {"type": "string", "format": "binary"}


def _openapi(app: FastAPI, cfg: ServeConfig) -> dict[str, Any]:
    """FastAPI's schema plus the request bodies (JSON and multipart) and the bearer scheme."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = schema.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    for model, file_field in ((VideoCreate, "input_reference"), (VideoRemix, None), (VideoExtend, "video"), (VideoEdit, "video")):
        s = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(s.pop("$defs", {}))
        schemas[model.__name__] = s
        if file_field:  # the multipart form: the file in place of the object, nested values as a[b]
            form = copy.deepcopy(s)
            props = form["properties"]
            props[file_field] = _FILE
            if file_field == "video":
                props["video[id]"] = {"type": "string", "maxLength": 64}
            if "connect" in props:
                props["connect[]"] = props.pop("connect")
            schemas[f"{model.__name__}Form"] = form
    if cfg.token:
        comps["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, ops in schema["paths"].items():
            if path.startswith("/v1"):
                for op in ops.values():
                    op["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema
