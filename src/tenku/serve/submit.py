"""From a validated body to a stored job: keep the input files in the job's folder under
server-made names, build a ``tenku.request.Request`` from the body and resolve it against the
model and the server's limits (the same rules ``tenku generate`` resolves with), and queue the
resolved request's dict. Everything a client can get wrong is a 400 here, before anything is
queued."""

from __future__ import annotations

import math
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable

from tenku.serve.api import ApiError, VideoCreate, VideoEdit, VideoExtend, VideoRemix, bad
from tenku.serve.config import ServeConfig
from tenku.serve.store import JobStore, new_id, valid_id

MAX_INPUT_SIDE = 8192
MAX_INPUT_FRAMES = 20_000


def sniff(data: bytes) -> tuple[str, str] | None:
    """(kind, suffix) of an upload from its first bytes, never from the client's file name."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image", ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image", ".webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "video", ".gif"
    if data[4:8] == b"ftyp":
        return "video", ".mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", ".webm"
    return None


def default_work(geo: Any, max_seconds: float) -> float:
    """The default budget: 16 times the work of a ``max_seconds`` video at the model's default
    size, fps and steps. Each limit alone (16x the pixels, 10x the steps, 15x the fps) fits in
    it; two of them at once do not (a 60 s 512x512 video at 120 fps and 200 steps is ~1000x).
    A model that makes one chunk only (``Geometry.clean_frames_refused``: Wan2.1) is measured
    on its longest video, one chunk."""
    from tenku.request import Request, resolve

    longest = Request("budget", frames=geo.frames) if geo.clean_frames_refused else Request("budget", seconds=max_seconds)
    return 16.0 * resolve(longest, geo).work


class Submitter:
    """Turns requests into queued jobs. ``pipe`` is a loaded pipeline (only its geometry is
    read here); ``notify`` wakes the workers."""

    def __init__(self, store: JobStore, cfg: ServeConfig, pipe: Any, notify: Callable[[], None]):
        from tenku.request import Limits

        self.store, self.cfg, self.notify = store, cfg, notify
        self.geo, self.guidance = pipe.geometry, pipe.cfg.guidance
        folder = cfg.model.resolve()  # runs/dit-world/pipeline -> "dit-world"
        self.model_name = (folder.parent.name if folder.name == "pipeline" else folder.name) or "tenku"
        self.max_pixels = cfg.max_pixels or self.geo.max_pixels
        w, h = self.geo.size
        if self.max_pixels < w * h:
            raise ValueError(f"--max-pixels {self.max_pixels} is below the model's default size {w}x{h} ({w * h} pixels)")
        self.max_work = cfg.max_work or default_work(self.geo, cfg.max_seconds)
        self.limits = Limits(self.max_pixels, cfg.max_seconds, cfg.max_steps, MAX_INPUT_FRAMES, self.max_work, "this server")

    def defaults(self) -> dict[str, Any]:
        """What the page and clients need to know: default and aspect sizes, lengths, limits."""
        from tenku.request import size_for_aspect

        g = self.geo
        w, h = g.size
        sizes = {"default": f"{w}x{h}"}
        for name, aspect in (("1:1", 1.0), ("16:9", 16 / 9), ("9:16", 9 / 16)):
            sw, sh = size_for_aspect(aspect, g.size_multiple, min(w, h))
            if f"{sw}x{sh}" not in sizes.values():
                sizes[name] = f"{sw}x{sh}"
        return {"size": f"{w}x{h}", "sizes": sizes, "fps": g.fps, "frames": g.frames, "steps": g.steps,
                "guidance": self.guidance, "strength": g.strength, "size_multiple": g.size_multiple,
                "frame_step": g.frame_step, "max_seconds": self.cfg.max_seconds, "max_pixels": self.max_pixels,
                "max_steps": self.cfg.max_steps, "max_work": self.max_work, "grounding": g.grounding,
                "sketch": g.sketch}

    # ---- checks -------------------------------------------------------------------------------

    def check_capacity(self) -> None:
        active = self.store.active()
        if active >= self.cfg.max_queue:
            per_job = self.store.mean_seconds() or 10.0
            wait = max(1, math.ceil(per_job * (active - self.cfg.max_queue + 1) / max(1, self.cfg.workers)))
            raise ApiError(429, "queue_full", f"the queue is full ({active} videos queued or running); "
                           f"try again in about {wait} s", headers={"Retry-After": str(wait)})

    def _model(self, name: str | None) -> None:
        if name and name not in (self.model_name, "tenku") and not name.startswith("sora-2"):
            raise bad("invalid_model", f"model {name!r} is not served here; this server has {self.model_name!r}", "model")

    def request(self, body: Any, **fields: Any) -> Any:
        """A ``Request`` from a body's common options and ``fields`` (inputs, mode switches)."""
        from tenku.request import Request

        seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
        return Request(body.prompt, fps=body.fps, seed=seed, steps=body.steps, guidance=body.guidance, expand=body.expand,
                       **fields)

    def resolve(self, req: Any) -> Any:
        """``req`` resolved against the model and this server's limits; a RequestError is a 400."""
        from tenku.request import API_NAMES, RequestError, resolve

        try:
            return resolve(req, self.geo, self.limits, API_NAMES)
        except RequestError as e:
            raise bad(e.code, str(e), e.param) from None

    # ---- inputs -------------------------------------------------------------------------------

    def _upload(self, data: bytes, folder: Path, name: str, param: str) -> tuple[str, str, dict[str, Any]]:
        """Keep an upload as ``folder/name<suffix>``; returns (kind, file name, probe)."""
        from tenku.io import probe_video, read_image

        if len(data) > self.cfg.max_upload_bytes:
            raise bad("file_too_large", f"{param}: {len(data)} bytes; at most {self.cfg.max_upload_bytes}", param)
        kind = sniff(data)
        if kind is None:
            raise bad("unsupported_file_type", f"{param}: not a PNG, JPEG or WebP image, nor an MP4, MOV, WebM "
                      "or GIF video", param)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}{kind[1]}"
        path.write_bytes(data)
        try:
            if kind[0] == "image":
                h, w = read_image(path).shape[:2]
                info = {"width": w, "height": h, "frames": 1, "fps": None}
            else:
                info = probe_video(path)
        except Exception as e:  # noqa: BLE001 - any decoder failure is the upload's fault
            raise bad("invalid_file", f"{param}: cannot decode the {kind[0]} ({str(e).split(': ', 1)[-1]})", param) from None
        if max(info["width"], info["height"]) > MAX_INPUT_SIDE or not info["frames"] or info["frames"] > MAX_INPUT_FRAMES:
            raise bad("invalid_file", f"{param}: {info['width']}x{info['height']}, {info['frames']} frames; at most "
                      f"{MAX_INPUT_SIDE} pixels a side and {MAX_INPUT_FRAMES} frames", param)
        return kind[0], path.name, info

    def _source(self, video_id: str, param: str, who: Any) -> Any:
        """A finished video of this server, by id, that the caller ``who`` may see."""
        row = self.store.get(video_id, who.owner) if valid_id(video_id) else None
        if row is None:
            raise ApiError(404, "video_not_found", f"no video {video_id!r}", param)
        if row["status"] != "completed":
            raise bad("video_not_ready", f"video {video_id} is {row['status']}; only a completed video can be used", param)
        if row["expired"]:
            raise bad("video_expired", f"video {video_id} has expired; its files are gone", param)
        return row

    def _link(self, row: Any, folder: Path, name: str) -> tuple[str, dict[str, Any]]:
        import json

        folder.mkdir(parents=True, exist_ok=True)
        src, dst = self.store.folder(row["id"]) / "video.mp4", folder / f"{name}.mp4"
        try:
            if not src.exists() and self.store.bucket is not None:  # in the bucket (it is put back with the job's inputs)
                if not self.store.bucket.get(row["id"], "video.mp4", dst):
                    raise FileNotFoundError(src)
            else:
                os.link(src, dst)  # the job keeps its input even if the source is deleted
        except FileNotFoundError:  # deleted or expired meanwhile
            raise bad("video_expired", f"video {row['id']}'s files are gone", "video") from None
        except OSError:
            shutil.copyfile(src, dst)
        res = json.loads(row["result"])
        return dst.name, {"width": res["size"][0], "height": res["size"][1], "frames": res["frames"], "fps": res["fps"]}

    @staticmethod
    def _input(folder: Path, name: str, info: dict[str, Any], still: bool = False) -> Any:
        """A kept input file as a request input (checked from its probe; decoded when the job runs)."""
        from tenku.request import Input

        return Input(info["width"], info["height"], int(info["frames"]), info.get("fps"), folder / name, still=still)

    # ---- the endpoints --------------------------------------------------------------------------

    def check_room(self, folder: Path, who: Any) -> int:
        """The bytes a new job's inputs take, if the disk quotas have room for them: past the
        server's quota, expired videos' files go first (the oldest first), then it is a 507;
        past a key's own quota, a 429 (its oldest videos are its to delete)."""
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() else 0
        quota, mine = self.cfg.quota_bytes, self.cfg.key_quota_bytes
        if quota is not None and self.store.used_bytes() + size > quota:
            self.store.expire(free=self.store.used_bytes() + size - quota)
            used = self.store.used_bytes()
            if used + size > quota:
                raise ApiError(507, "server_full", f"the server's disk quota is full ({used} of {quota} bytes used, "
                               f"this request's files {size}); try again once older videos expire or are deleted")
        if mine is not None and who.key is not None and (used := self.store.used_bytes(who.key)) + size > mine:
            raise ApiError(429, "quota_exceeded", f"this API key's disk quota is full ({used} of {mine} bytes used, "
                           f"this request's files {size}); delete some of its videos")
        return size

    def _queue(self, vid: str, req: Any, who: Any, **extra: Any) -> str:
        """Store the resolved request as the job's parameters, and what clients see of it."""
        w, h = req.size
        info = {"model": self.model_name, "prompt": req.prompt, "size": f"{w}x{h}", "mode": req.label,
                "seed": req.seed, "steps": req.steps, "guidance": self.guidance if req.guidance is None else req.guidance,
                "fps": req.fps, "frames": req.total} | ({"strength": req.strength} if req.strength is not None else {}) | extra
        info["seconds"] = f"{(req.total - 1) / req.fps:g}"
        size = self.check_room(self.store.folder(vid), who)
        if self.store.bucket is not None:  # the worker may run on another machine: the inputs go first
            self.store.bucket.put(vid, self.store.folder(vid))
            shutil.rmtree(self.store.folder(vid), ignore_errors=True)
        self.store.add(vid, info, req.to_dict(), who.key, size)
        self.notify()
        return vid

    def _run(self, build: Callable[[str, Path], str]) -> str:
        """Reserve an id and folder; remove the folder if the request is refused."""
        self.check_capacity()
        vid = new_id()
        folder = self.store.folder(vid)
        try:
            return build(vid, folder)
        except BaseException:
            self.store.remove_files(vid)
            raise

    def create(self, body: VideoCreate, upload: bytes | None, who: Any) -> str:
        self._model(body.model)
        if body.input_reference is not None:
            ref = body.input_reference
            why = ("tenku does not fetch URLs" if ref.image_url else "tenku has no Files API") if (ref.image_url or ref.file_id) else "empty reference"
            raise bad("unsupported_input_reference", f"input_reference: {why}; upload the image or video file as "
                      "multipart/form-data field input_reference", "input_reference")
        return self._run(lambda vid, folder: self._create(vid, folder, body, upload, who))

    def _create(self, vid: str, folder: Path, body: VideoCreate, upload: bytes | None, who: Any) -> str:
        kind, fields = None, {}
        if upload is not None:
            kind, fname, info = self._upload(upload, folder, "input-reference", "input_reference")
            fields[kind] = self._input(folder, fname, info, still=kind == "image")
        if body.connect:
            if kind:
                raise bad("invalid_combination", "connect takes two video ids and nothing else (no input_reference)",
                          "connect")
            rows = [self._source(i, f"connect[{n}]", who) for n, i in enumerate(body.connect)]
            fields["connect"] = tuple(self._input(folder, *self._link(r, folder, f"input-{k}")) for r, k in zip(rows, "ab"))
        if kind == "image" and (body.extend or body.strength is not None):
            raise bad("invalid_combination", "extend and strength need a video input_reference, not an image", "input_reference")
        extend = body.extend or ("forward" if kind == "video" and body.strength is None else None)
        req = self.request(body, **fields, extend=extend, loop=body.loop, strength=body.strength, size=body.size,
                           frames=body.frames, seconds=body.seconds, plan=body.plan, sketch=body.sketch,
                           conditioning={} if body.layout is None else {"layout": body.layout})
        return self._queue(vid, self.resolve(req), who)

    def remix(self, source_id: str, body: VideoRemix, who: Any) -> str:
        def build(vid: str, folder: Path) -> str:
            row = self._source(source_id, "video_id", who)
            name, info = self._link(row, folder, "input-video")
            req = self.request(body, video=self._input(folder, name, info), strength=body.strength or self.geo.strength,
                               label="remix")
            req.fps = float(info["fps"]) if body.fps is None else body.fps
            return self._queue(vid, self.resolve(req), who, remixed_from_video_id=source_id)

        return self._run(build)

    def _video_input(self, ref: Any, upload: bytes | None, folder: Path, who: Any) -> Any:
        if (ref is None) == (upload is None):
            raise bad("missing_required_parameter" if ref is None else "invalid_combination",
                      "video: upload a file or give {\"id\": ...} of a finished video (one of them)", "video")
        if ref is not None:
            return self._input(folder, *self._link(self._source(ref.id, "video.id", who), folder, "input-video"))
        kind, name, info = self._upload(upload, folder, "input-video", "video")
        if kind != "video":
            raise bad("unsupported_file_type", "video: an image was uploaded; this needs a video", "video")
        return self._input(folder, name, info)

    def extend(self, body: VideoExtend, upload: bytes | None, who: Any) -> str:
        def build(vid: str, folder: Path) -> str:
            req = self.request(body, video=self._video_input(body.video, upload, folder, who), extend=body.extend,
                               frames=body.frames, seconds=body.seconds)
            return self._queue(vid, self.resolve(req), who)

        return self._run(build)

    def edit(self, body: VideoEdit, upload: bytes | None, who: Any) -> str:
        def build(vid: str, folder: Path) -> str:
            req = self.request(body, video=self._video_input(body.video, upload, folder, who),
                               strength=body.strength or self.geo.strength)
            return self._queue(vid, self.resolve(req), who)

        return self._run(build)
