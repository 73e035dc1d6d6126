"""The request and response shapes of the Videos API (OpenAI's names, tenku's extra options),
how a JSON or multipart body becomes one of them, and the error type every failure becomes:
``{"error": {"type", "code", "message", "param"}}`` with an HTTP status."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from tenku import FPS_RANGE, SEED_MAX

MAX_PROMPT = 2000  # characters


class ApiError(Exception):
    """Any failure of a request: status, machine-readable code, one-line message."""

    TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "invalid_request_error",
             404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
             429: "rate_limit_error", 503: "server_error"}

    def __init__(self, status: int, code: str, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.param, self.headers = status, code, message, param, headers

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.TYPES.get(self.status, "server_error"), "code": self.code,
                          "message": self.message, "param": self.param}}


def bad(code: str, message: str, param: str | None = None) -> ApiError:
    return ApiError(400, code, message, param)


# ---- request bodies ------------------------------------------------------------------------------

def _no_bool(v: Any) -> Any:
    if isinstance(v, bool):  # pydantic would take true as 1 (frames: true was a 1-frame video)
        raise ValueError("must be a number, not true or false")
    return v


Num = BeforeValidator(_no_bool)  # on every numeric field: a number (or, in a form, its text), never a boolean


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class VideoRef(_Body):
    """A finished video of this server, by id."""

    id: str = Field(max_length=64)


class InputReferenceObject(_Body):
    """OpenAI's reference object. tenku has no Files API and never fetches URLs: both are refused
    with a 400 that says to upload the file instead."""

    file_id: str | None = None
    image_url: str | None = None


class TenkuOptions(_Body):
    """tenku's own options (extra body fields for the openai client: ``extra_body={...}``)."""

    seed: Annotated[int | None, Num] = Field(None, ge=0, le=SEED_MAX, description="noise seed (default: random, reported back)")
    steps: Annotated[int | None, Num] = Field(None, ge=1, le=1000, description="sampling steps per chunk (default: the model's)")
    guidance: Annotated[float | None, Num] = Field(None, ge=0, le=50, description="classifier-free guidance scale (1 = off)")
    fps: Annotated[float | None, Num] = Field(None, ge=FPS_RANGE[0], le=FPS_RANGE[1], description="frames per second (default: the model's)")
    expand: bool = Field(True, description="expand the prompt into a detailed caption first")


def _seconds(v: Any) -> Any:
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise ValueError("seconds must be a number such as 4 or 2.5") from None
    if v is not None and not (0 < v < float("inf")):
        raise ValueError("seconds must be a positive number")
    return v


Seconds = Annotated[float | str, Num, AfterValidator(_seconds)]  # a number, or a string such as "4" (OpenAI sends strings)


def _layout(v: Any) -> Any:
    """A layout as a JSON object, or (a multipart field) the JSON text of one; checked in full
    when the request resolves (``tenku.request.layout``)."""
    import json

    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            raise ValueError("layout must be a JSON object in the layout format (docs/layout.md)") from None
    if v is not None and not isinstance(v, dict):
        raise ValueError("layout must be a JSON object in the layout format (docs/layout.md)")
    return v


# an object, or its JSON text in a form (Any, so that a wrong type is this one message, not pydantic's union)
Layout = Annotated[Any, AfterValidator(_layout)]


class VideoCreate(TenkuOptions):
    """``POST /v1/videos``. With an ``input_reference`` image: image-to-video; with a video:
    ``extend`` it (default forward) or edit it (``strength``)."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    model: str | None = Field(None, max_length=200)
    seconds: Seconds | None = Field(None, description="duration in seconds (a number, or a string such as \"4\")")
    size: str | None = Field(None, max_length=20, description="WIDTHxHEIGHT, e.g. 128x128")
    input_reference: InputReferenceObject | None = None
    frames: Annotated[int | None, Num] = Field(None, ge=1, le=100_000, description="frame count (instead of seconds)")
    loop: bool = Field(False, description="a seamless loop: the last frame flows into the first")
    extend: Literal["forward", "backward"] | None = Field(None, description="with a video input_reference: continue it")
    strength: Annotated[float | None, Num] = Field(None, gt=0, le=1, description="with a video input_reference: edit it (SDEdit strength)")
    connect: list[str] | None = Field(None, min_length=2, max_length=2,
                                      description="ids of two finished videos: a transition from the first to the second")
    layout: Layout | None = Field(None, description="every object's boxes to follow, over the whole output video "
                                  "(docs/layout.md; in a form: the JSON text); a model with grounding")
    plan: bool = Field(False, description="the built-in simulator plans every object's boxes (a model with grounding)")
    sketch: Annotated[float | None, Num] = Field(None, gt=0, le=1, description="with layout or plan: start from the "
                                                 "layout's objects drawn, noised to this level (1: pure noise; "
                                                 "default: the model's)")


class VideoRemix(TenkuOptions):
    """``POST /v1/videos/{id}/remix``: the finished video redone to follow a new prompt."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    strength: Annotated[float | None, Num] = Field(None, gt=0, le=1, description="how far from the original (default: the model's)")


class VideoExtend(TenkuOptions):
    """``POST /v1/videos/extensions``: continue a video (an upload or ``{"id": ...}``)."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    seconds: Seconds = Field(description="length of the new part in seconds")
    video: VideoRef | None = None
    extend: Literal["forward", "backward"] = Field("forward", description="add after the end or before the start")
    frames: Annotated[int | None, Num] = Field(None, ge=1, le=100_000, description="new frames (instead of seconds)")


class VideoEdit(TenkuOptions):
    """``POST /v1/videos/edits``: video-to-video (an upload or ``{"id": ...}``)."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    video: VideoRef | None = None
    strength: Annotated[float | None, Num] = Field(None, gt=0, le=1, description="SDEdit strength (default: the model's)")


# ---- responses (for the OpenAPI schema; handlers return plain dicts of this shape) -----------------

class ErrorDetail(BaseModel):
    type: str
    code: str
    message: str
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class VideoError(BaseModel):
    code: str
    message: str


class TenkuInfo(BaseModel):
    mode: str
    seed: int
    steps: int
    guidance: float
    fps: float
    frames: int | None = None
    strength: float | None = None
    caption: str | None = None
    queue_position: int | None = None
    expired: bool = False


class Video(BaseModel):
    id: str
    object: Literal["video"] = "video"
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    model: str
    progress: int = Field(ge=0, le=100)
    prompt: str | None = None
    remixed_from_video_id: str | None = None
    seconds: str
    size: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    error: VideoError | None = None
    tenku: TenkuInfo


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool


# ---- parsing -----------------------------------------------------------------------------------

_BRACKET = re.compile(r"^([A-Za-z_]+)\[([A-Za-z_]*)\]$")


def form_fields(items: list[tuple[str, Any]], file_fields: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Multipart items -> (fields, files). ``a[b]=v`` becomes ``{"a": {"b": v}}`` and ``a[]=v``
    repeated becomes a list, as the openai client encodes nested values."""
    fields: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for key, value in items:
        if not isinstance(value, str):  # an upload
            if key not in file_fields:
                raise bad("unknown_parameter", f"unexpected file field {key!r}; files go in {', '.join(file_fields)}", key)
            if key in files:
                raise bad("invalid_value", f"more than one file in {key!r}", key)
            files[key] = value
            continue
        m = _BRACKET.match(key)
        if m:
            name, sub = m.groups()
            holder = fields.setdefault(name, [] if sub == "" else {})
            if sub == "" and isinstance(holder, list):
                holder.append(value)
            elif sub and isinstance(holder, dict):
                holder[sub] = value
            else:
                raise bad("invalid_value", f"field {name!r} given in two shapes", name)
        elif key in fields:
            raise bad("invalid_value", f"field {key!r} given more than once", key)
        else:
            fields[key] = value
    return fields, files


def validate(model: type[_Body], data: Any) -> Any:
    """A body as ``model``, or a 400 that names the first problem."""
    if not isinstance(data, dict):
        raise bad("invalid_body", "the body must be a JSON object (or multipart/form-data)")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields))
            raise bad("unknown_parameter", f"unknown parameter {where!r}; allowed: {allowed}", where) from None
        if kind == "missing":
            raise bad("missing_required_parameter", f"missing required parameter {where!r}", where) from None
        msg = err["msg"].removeprefix("Value error, ")
        raise bad("invalid_value", f"{where}: {msg}", where) from None
