"""From a validated request to a stored job: check it against what the model can make and the
server's limits, settle every default (size, frames, seed...), keep the input files in the
job's folder under server-made names, and queue it. Everything a client can get wrong is a
400 here, before anything is queued; the pipeline re-checks when the job runs."""

from __future__ import annotations

import math
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable

from tenku.serve.api import ApiError, VideoCreate, VideoEdit, VideoExtend, VideoRemix, bad, parse_size
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


class Submitter:
    """Turns requests into queued jobs. ``pipe`` is a loaded pipeline (only its geometry and
    defaults are read here); ``notify`` wakes the workers."""

    def __init__(self, store: JobStore, cfg: ServeConfig, pipe: Any, notify: Callable[[], None]):
        self.store, self.cfg, self.notify = store, cfg, notify
        self.pc = pipe.cfg
        self.multiple, self.step = pipe.size_multiple, pipe.frame_step
        self._fit = pipe.fit_size  # the nearest size the model makes
        self.overlap = min(pipe.cfg.context_frames, pipe.cfg.frames - 1)
        folder = cfg.model.resolve()  # runs/dit-world/pipeline -> "dit-world"
        self.model_name = (folder.parent.name if folder.name == "pipeline" else folder.name) or "tenku"
        self.max_pixels = cfg.max_pixels or pipe.max_pixels
        if self.max_pixels < pipe.cfg.size[0] * pipe.cfg.size[1]:
            raise ValueError(f"--max-pixels {self.max_pixels} is below the model's default size "
                             f"{pipe.cfg.size[0]}x{pipe.cfg.size[1]} ({pipe.cfg.size[0] * pipe.cfg.size[1]} pixels)")

    def defaults(self) -> dict[str, Any]:
        """What the page and clients need to know: default and aspect sizes, lengths, limits."""
        from tenku.modes import size_for_aspect

        w, h = self.pc.size
        sizes = {"default": f"{w}x{h}"}
        for name, aspect in (("1:1", 1.0), ("16:9", 16 / 9), ("9:16", 9 / 16)):
            sw, sh = size_for_aspect(aspect, self.multiple, min(w, h))
            if f"{sw}x{sh}" not in sizes.values():
                sizes[name] = f"{sw}x{sh}"
        return {"size": f"{w}x{h}", "sizes": sizes, "fps": self.pc.fps, "frames": self.pc.frames, "steps": self.pc.steps,
                "guidance": self.pc.guidance, "strength": self.pc.strength, "size_multiple": self.multiple,
                "frame_step": self.step, "max_seconds": self.cfg.max_seconds, "max_pixels": self.max_pixels}

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

    def _size(self, text: str | None, default: tuple[int, int]) -> tuple[int, int]:
        from tenku.modes import check_aspect, input_size

        w, h = parse_size(text) if text else input_size(*default, self.multiple, self.pc.size, self.max_pixels)
        try:
            check_aspect(w, h)
        except ValueError as e:
            raise bad("invalid_size", str(e) + ("" if text else f" (the input is {default[0]}x{default[1]}: "
                                                 "give a size to crop it)"), "size") from None
        if (w, h) != self._fit(w, h):
            fw, fh = self._fit(w, h)
            raise bad("invalid_size", f"size {w}x{h}: width and height must be multiples of {self.multiple}; "
                      f"nearest: {fw}x{fh}", "size")
        if w * h > self.max_pixels:
            raise bad("invalid_size", f"size {w}x{h} is larger than this server makes (at most {self.max_pixels} "
                      f"pixels; the model's default is {self.pc.size[0]}x{self.pc.size[1]})", "size")
        return w, h

    def _frames(self, seconds: float | None, frames: int | None, fps: float, exact: bool) -> int | None:
        """Frames wanted (``exact``: new frames of an extension or transition, any count; else
        the whole video, rounded to 1 + step k from seconds, checked when given as frames)."""
        if frames is not None:
            n = frames
            if not exact and (n - 1) % self.step:
                near = 1 + max(0, round((n - 1) / self.step)) * self.step
                raise bad("invalid_frames", f"{n} frames: the model makes 1 + {self.step}k frames; nearest: {near}", "frames")
        elif seconds is not None:
            n = max(1, round(seconds * fps)) if exact else 1 + max(0, round(seconds * fps / self.step)) * self.step
        else:
            return None
        if (n if exact else n - 1) / fps > self.cfg.max_seconds:
            raise bad("invalid_seconds", f"{n} frames at {fps:g} fps is longer than this server makes "
                      f"(at most {self.cfg.max_seconds:g} s)", "seconds")
        return n

    def _plan(self, kind: str, n: int, given: int = 0, b: int = 0, backward: bool = False) -> None:
        """The chunk plan the pipeline will make (modes.py), so that a request the model's chunk
        geometry cannot do is a 400 now rather than a failed job later."""
        from tenku.modes import loop_split, plan_connect, plan_rollout

        chunk, ov, st = self.pc.frames, self.overlap, self.step
        try:
            if kind == "loop":
                x = loop_split(n, chunk - 2 * ov, st)
                plan_rollout(x - given, given, chunk, ov, st)
                plan_connect(n - x, x, x, chunk, ov, st)
            elif kind == "connect":
                plan_connect(n, given, b, chunk, ov, st)
            else:
                plan_rollout(n, given, chunk, ov, st, backward)
        except ValueError as e:
            raise bad("unsupported_request", f"{kind}: {e} (this model samples {chunk}-frame chunks with up to "
                      f"{ov} context frames)") from None

    def _common(self, body: Any) -> dict[str, Any]:
        if body.steps is not None and body.steps > self.cfg.max_steps:
            raise bad("invalid_value", f"steps: at most {self.cfg.max_steps} on this server", "steps")
        seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
        return {"prompt": body.prompt, "expand": body.expand, "seed": seed, "fps": float(body.fps or self.pc.fps),
                "steps": body.steps or self.pc.steps, "guidance": body.guidance}  # None: the model's, context_guidance included

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

    def _source(self, video_id: str, param: str) -> Any:
        """A finished video of this server, by id."""
        row = self.store.get(video_id) if valid_id(video_id) else None
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
            os.link(src, dst)  # the job keeps its input even if the source is deleted
        except FileNotFoundError:  # deleted or expired meanwhile
            raise bad("video_expired", f"video {row['id']}'s files are gone", "video") from None
        except OSError:
            shutil.copyfile(src, dst)
        res = json.loads(row["result"])
        return dst.name, {"width": res["size"][0], "height": res["size"][1], "frames": res["frames"], "fps": res["fps"]}

    def _at_fps(self, info: dict[str, Any], fps: float) -> int:
        """Frames of an input after resampling to ``fps`` (as modes.resample_fps does)."""
        src = info.get("fps")
        if not src or abs(src - fps) / fps < 0.01:
            return int(info["frames"])
        return math.ceil(info["frames"] * fps / src)

    # ---- the endpoints --------------------------------------------------------------------------

    def _queue(self, vid: str, folder: Path, info: dict[str, Any], params: dict[str, Any]) -> str:
        fr = info.get("frames")
        info["seconds"] = f"{(fr - 1) / params['fps']:g}" if fr else "0"
        self.store.add(vid, info, params)
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
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _info(self, p: dict[str, Any], size: tuple[int, int], mode: str, frames: int | None, **extra: Any) -> dict[str, Any]:
        return {"model": self.model_name, "prompt": p["prompt"], "size": f"{size[0]}x{size[1]}", "mode": mode,
                "seed": p["seed"], "steps": p["steps"], "guidance": self.pc.guidance if p["guidance"] is None else p["guidance"],
                "fps": p["fps"], "frames": frames} | extra

    def create(self, body: VideoCreate, upload: bytes | None) -> str:
        self._model(body.model)
        if body.input_reference is not None:
            ref = body.input_reference
            why = ("tenku does not fetch URLs" if ref.image_url else "tenku has no Files API") if (ref.image_url or ref.file_id) else "empty reference"
            raise bad("unsupported_input_reference", f"input_reference: {why}; upload the image or video file as "
                      "multipart/form-data field input_reference", "input_reference")
        return self._run(lambda vid, folder: self._create(vid, folder, body, upload))

    def _create(self, vid: str, folder: Path, body: VideoCreate, upload: bytes | None) -> str:
        p = self._common(body)
        fps = p["fps"]
        kind, inputs, src = None, {}, None
        if upload is not None:
            kind, fname, src = self._upload(upload, folder, "input-reference", "input_reference")
            inputs[kind] = fname
        if body.connect and (kind or body.loop or body.extend or body.strength is not None):
            raise bad("invalid_combination", "connect takes two video ids and nothing else (no input_reference, "
                      "loop, extend or strength)", "connect")
        if kind == "image" and (body.extend or body.strength is not None):
            raise bad("invalid_combination", "extend and strength need a video input_reference, not an image", "input_reference")
        if kind == "video" and body.loop:
            raise bad("invalid_combination", "loop works with text or an image input_reference, not a video", "loop")
        if kind is None and not body.connect and (body.extend or body.strength is not None):
            raise bad("invalid_combination", "extend and strength need a video input_reference", "input_reference")
        if body.extend and body.strength is not None:
            raise bad("invalid_combination", "give extend or strength (an edit), not both", "strength")
        extra: dict[str, Any] = {}
        if body.connect:
            rows = [self._source(i, f"connect[{n}]") for n, i in enumerate(body.connect)]
            links = [self._link(r, folder, f"input-{k}") for r, k in zip(rows, "ab")]
            inputs = {"a": links[0][0], "b": links[1][0]}
            size = self._size(body.size, (links[0][1]["width"], links[0][1]["height"]))
            new = self._frames(body.seconds, body.frames, fps, exact=True)
            for n, (_, info) in enumerate(links):
                if self._at_fps(info, fps) < self.overlap:
                    raise bad("invalid_value", f"connect[{n}] has too few frames (at least {self.overlap})", "connect")
            lens = [self._at_fps(i, fps) for _, i in links]
            self._plan("connect", new or self.pc.frames - 2 * self.overlap, lens[0], lens[1])
            total = None if new is None else new + sum(lens)
            params = p | {"mode": "connect", "size": size, "frames": new, "inputs": inputs}
            return self._queue(vid, folder, self._info(p, size, "connect", total), params)
        if kind == "video":
            have = self._at_fps(src, fps)
            size = self._size(body.size, (src["width"], src["height"]))
            if body.strength is not None:  # an edit keeps the input's length
                if body.seconds is not None or body.frames is not None:
                    raise bad("invalid_combination", "an edit keeps the input's length; drop seconds/frames", "seconds")
                n = 1 + self.step * ((have - 1) // self.step)
                params = p | {"mode": "edit", "size": size, "frames": None, "strength": body.strength, "inputs": inputs}
                return self._queue(vid, folder, self._info(p, size, "edit", n, strength=body.strength), params)
            return self._extend(vid, folder, p, size, have, body.seconds, body.frames, body.extend or "forward", inputs)
        size = self._size(body.size, self.pc.size)
        n = self._frames(body.seconds, body.frames, fps, exact=False) or self.pc.frames
        if body.loop and n < 2 * self.overlap - 1:
            raise bad("invalid_frames", f"a loop needs at least {2 * self.overlap - 1} frames "
                      f"({(2 * self.overlap - 2) / fps:g} s at {fps:g} fps); got {n}", "seconds")
        if body.loop:
            self._plan("loop", n, 1 if kind == "image" else 0)
        mode = "loop" if body.loop else "image-to-video" if kind == "image" else "text-to-video"
        params = p | {"mode": mode, "size": size, "frames": n, "loop": body.loop, "inputs": inputs}
        return self._queue(vid, folder, self._info(p, size, mode, n), params)

    def _extend(self, vid: str, folder: Path, p: dict[str, Any], size: tuple[int, int], have: int,
                seconds: float | None, frames: int | None, direction: str, inputs: dict[str, str]) -> str:
        if have < self.overlap:
            raise bad("invalid_value", f"the video has {have} frames at {p['fps']:g} fps; extending needs at least "
                      f"{self.overlap}", "video")
        new = self._frames(seconds, frames, p["fps"], exact=True) or self.pc.frames - self.pc.context_frames
        self._plan(f"extend {direction}", new, have, backward=direction == "backward")
        params = p | {"mode": f"extend-{direction}", "size": size, "frames": new, "extend": direction, "inputs": inputs}
        return self._queue(vid, folder, self._info(p, size, f"extend-{direction}", have + new), params)

    def remix(self, source_id: str, body: VideoRemix) -> str:
        def build(vid: str, folder: Path) -> str:
            row = self._source(source_id, "video_id")
            name, info = self._link(row, folder, "input-video")
            p = self._common(body)
            p["fps"] = float(info["fps"]) if body.fps is None else p["fps"]
            size = (info["width"], info["height"])
            n = 1 + self.step * ((self._at_fps(info, p["fps"]) - 1) // self.step)
            strength = body.strength or self.pc.strength
            params = p | {"mode": "remix", "size": list(size), "frames": None, "strength": strength, "inputs": {"video": name}}
            return self._queue(vid, folder, self._info(p, size, "remix", n, strength=strength,
                                                       remixed_from_video_id=source_id), params)

        return self._run(build)

    def _video_input(self, ref: Any, upload: bytes | None, folder: Path) -> tuple[str, dict[str, Any]]:
        if (ref is None) == (upload is None):
            raise bad("missing_required_parameter" if ref is None else "invalid_combination",
                      "video: upload a file or give {\"id\": ...} of a finished video (one of them)", "video")
        if ref is not None:
            return self._link(self._source(ref.id, "video.id"), folder, "input-video")
        kind, name, info = self._upload(upload, folder, "input-video", "video")
        if kind != "video":
            raise bad("unsupported_file_type", "video: an image was uploaded; this needs a video", "video")
        return name, info

    def extend(self, body: VideoExtend, upload: bytes | None) -> str:
        def build(vid: str, folder: Path) -> str:
            name, info = self._video_input(body.video, upload, folder)
            p = self._common(body)
            size = self._size(None, (info["width"], info["height"]))
            return self._extend(vid, folder, p, size, self._at_fps(info, p["fps"]), body.seconds, body.frames,
                                body.extend, {"video": name})

        return self._run(build)

    def edit(self, body: VideoEdit, upload: bytes | None) -> str:
        def build(vid: str, folder: Path) -> str:
            name, info = self._video_input(body.video, upload, folder)
            p = self._common(body)
            size = self._size(None, (info["width"], info["height"]))
            n = 1 + self.step * ((self._at_fps(info, p["fps"]) - 1) // self.step)
            strength = body.strength or self.pc.strength
            params = p | {"mode": "edit", "size": list(size), "frames": None, "strength": strength, "inputs": {"video": name}}
            return self._queue(vid, folder, self._info(p, size, "edit", n, strength=strength), params)

        return self._run(build)
