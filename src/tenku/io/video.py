"""Video and image read/write: PyAV for video (H.264 yuv420p out), Pillow for images and GIF.

Frames in this API are uint8 ``(T, H, W, 3)`` RGB; model tensors are float ``(C, T, H, W)``
in [-1, 1] (see ``to_uint8`` / ``from_uint8``). Every writer is atomic: it writes a temporary
file beside the target and ``os.replace``s it into place only on success.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".m4v", ".avi", ".gif")
H264_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
GIF_FALLBACK_FPS = 8.0
_ALLOWED = f"videos {', '.join(VIDEO_SUFFIXES)}; images {', '.join(IMAGE_SUFFIXES)}"

PathLike = str | os.PathLike[str]


@contextmanager
def _atomic(path: PathLike) -> Iterator[Path]:
    """Yield a fresh temp path beside ``path`` (same suffix); replace ``path`` with it on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # O_EXCL with 0o666 so the final file gets normal (umask) permissions
        tmp = path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_frames(frames: object) -> np.ndarray:
    ok = (isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4
          and frames.shape[0] >= 1 and frames.shape[-1] == 3 and min(frames.shape[1:3]) >= 1)
    if not ok:
        got = f"{type(frames).__name__} shape={tuple(getattr(frames, 'shape', ()))} dtype={getattr(frames, 'dtype', None)}"
        raise ValueError(f"frames must be a uint8 numpy array (T>=1, H, W, 3); got {got} (use to_uint8 for tensors)")
    return np.ascontiguousarray(frames)


def _check_image(image: object) -> np.ndarray:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3):
        got = f"{type(image).__name__} shape={tuple(getattr(image, 'shape', ()))} dtype={getattr(image, 'dtype', None)}"
        raise ValueError(f"image must be a uint8 numpy array (H, W, 3); got {got}")
    return np.ascontiguousarray(image)


def _check_fps(fps: float | Fraction) -> Fraction:
    if not (isinstance(fps, (int, float, Fraction)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite number > 0; got {fps!r}")
    return Fraction(fps).limit_denominator(1001)  # keeps 30000/1001 exact


def _existing(path: PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (allowed: {_ALLOWED})")
    return path


def _fps_of(stream: av.video.stream.VideoStream, durations: list[Fraction], gif: bool) -> float:
    if not gif:
        for rate in (stream.average_rate, stream.guessed_rate):
            if rate and rate > 0:
                return float(rate)
    total = sum(durations)
    if durations and total > 0:
        return float(len(durations) / total)  # Fractions: 10 fps stays exactly 10.0
    return GIF_FALLBACK_FPS


def read_image(path: PathLike) -> np.ndarray:
    """Read an image (png/jpg/webp/bmp) as uint8 ``(H, W, 3)`` RGB.

    EXIF orientation is applied, transparency is composited over white and 16-bit grey is
    scaled to 8 bits. Given a video path, returns its first frame. Raises
    ``FileNotFoundError`` or ``ValueError``.
    """
    path = _existing(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return read_video(path, max_frames=1)[0][0]
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I"):  # 16-bit grey (PNG): to 8 bits by scale, not by clipping at 255
                grey = np.clip(np.asarray(im, dtype=np.float64) / 257, 0, 255).round().astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=-1)
            if "A" in im.getbands() or "transparency" in im.info:
                im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: cannot decode image ({e}); allowed: {_ALLOWED}") from None


def read_video(path: PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Read a video (mp4/webm/mov/mkv/avi/gif) as uint8 ``(T, H, W, 3)`` RGB and its fps.

    fps is the stream's average rate (for GIF: computed from frame delays; 8.0 if it has
    none). A still image is returned as a one-frame video with fps 1.0. Reads at most
    ``max_frames`` frames if given. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` for anything that cannot be decoded.
    """
    path = _existing(path)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None; got {max_frames}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path)[None], 1.0
    gif = path.suffix.lower() == ".gif"
    frames: list[np.ndarray] = []
    durations: list[Fraction] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if frame.duration and frame.time_base:
                    durations.append(frame.duration * frame.time_base)
                if max_frames is not None and len(frames) >= max_frames:
                    break
            fps = _fps_of(stream, durations, gif)
    except (av.FFmpegError, ValueError, OSError) as e:
        raise ValueError(f"{path}: cannot decode video ({e}); allowed: {_ALLOWED}") from None
    if not frames:
        raise ValueError(f"{path}: video has no frames")
    return np.stack(frames), fps


def iter_video(path: PathLike) -> tuple[float, Iterator[Callable[[], np.ndarray]]]:
    """A video's fps (``probe_video``'s, as ``read_video`` reports it) and its frames, decoded
    one at a time as the iterator is drawn from, each as a function that returns it as uint8
    ``(H, W, 3)`` RGB: a caller that skips frames (a lower fps) never converts them, and one
    that shrinks each frame or stops early never holds the video at its own resolution.
    Raises like ``read_video`` (a decoding error: when the iterator reaches it)."""
    path = _existing(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = read_image(path)
        return 1.0, iter([lambda: image])
    fps = probe_video(path)["fps"]

    def frames() -> Iterator[Callable[[], np.ndarray]]:
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    yield lambda frame=frame: frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, OSError) as e:
            raise ValueError(f"{path}: cannot decode video ({e}); allowed: {_ALLOWED}") from None

    return fps, frames()


def write_video(path: PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float, *, crf: int = 18,
                odd: str = "pad") -> Path:
    """Write uint8 ``(T, H, W, 3)`` frames as browser-playable H.264 yuv420p (+faststart).

    ``frames`` may also be an iterable of such blocks (all of one size), written as they come,
    so a long video streams to disk without being held in memory. ``path`` ending in ``.gif``
    writes a GIF instead (see ``write_gif``); otherwise the suffix must be one of
    .mp4/.mov/.m4v/.mkv. yuv420p needs even sizes: ``odd="pad"`` pads an odd height/width by
    replicating the last row/column, ``odd="error"`` raises ``ValueError``. fps may be
    fractional (kept exactly up to denominator 1001). Atomic; returns the path.
    """
    path = Path(path)
    blocks = [frames] if isinstance(frames, np.ndarray) else frames
    rate = _check_fps(fps)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        return write_gif(path, np.concatenate([_check_frames(b) for b in blocks]), fps)
    if suffix not in H264_SUFFIXES:
        raise ValueError(f"{path}: H.264 output needs one of {', '.join(H264_SUFFIXES)} or .gif; got {suffix!r}")
    if not (isinstance(crf, int) and 0 <= crf <= 51):
        raise ValueError(f"crf must be an int in [0, 51]; got {crf!r}")
    if odd not in ("pad", "error"):
        raise ValueError(f"odd must be 'pad' or 'error'; got {odd!r}")
    opts = {"movflags": "+faststart"} if suffix != ".mkv" else {}
    with _atomic(path) as tmp, av.open(str(tmp), "w", options=opts) as container:
        stream, i = None, 0
        for block in blocks:
            block = _check_frames(block)
            t, h, w, _ = block.shape
            if h % 2 or w % 2:
                if odd == "error":
                    raise ValueError(f"{path}: yuv420p needs even height and width; got {w}x{h} (pass odd='pad')")
                block = np.pad(block, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = block.shape[2], block.shape[1]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "medium"}
            elif (block.shape[2], block.shape[1]) != (stream.width, stream.height):
                raise ValueError(f"{path}: frame size changed from {stream.width}x{stream.height} to {w}x{h}")
            for f in block:
                # converted here rather than by the encoder: PyAV 18's implicit conversion made
                # a 64x64 clip encode differently from run to run (1 run in 3), this one never
                frame = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
                frame.pts = i
                i += 1
                container.mux(stream.encode(frame))
        if stream is None:
            raise ValueError(f"{path}: no frames to write")
        container.mux(stream.encode(None))
    return path


def write_gif(path: PathLike, frames: np.ndarray, fps: float) -> Path:
    """Write uint8 ``(T, H, W, 3)`` frames as a GIF that loops forever. Atomic; returns the path.

    GIF delays are in 1/100 s, so the frame time is rounded to 10 ms (and at least 20 ms,
    the shortest delay browsers honour). Pillow merges identical consecutive frames into one
    longer frame, so reading back can give fewer frames with the same total duration.
    """
    frames = _check_frames(frames)
    ms = max(20, math.floor(100 / float(_check_fps(fps)) + 0.5) * 10)  # half up: 8 fps -> 130 ms
    ims = [Image.fromarray(f) for f in frames]
    with _atomic(path) as tmp:
        ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=ms, loop=0)
    return Path(path)


def write_png(path: PathLike, image: np.ndarray) -> Path:
    """Write a uint8 ``(H, W, 3)`` image as PNG. Atomic; returns the path."""
    image = _check_image(image)
    with _atomic(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(path)


def write_frames(directory: PathLike, frames: np.ndarray, prefix: str = "frame") -> list[Path]:
    """Write each frame as ``{prefix}_{i:04d}.png`` (wider if T needs it) in ``directory``."""
    frames = _check_frames(frames)
    width = max(4, len(str(len(frames) - 1)))
    return [write_png(Path(directory) / f"{prefix}_{i:0{width}d}.png", f) for i, f in enumerate(frames)]


def contact_sheet(frames: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``(T, H, W, 3)`` frames row by row into one uint8 image on a white background.

    ``cols`` defaults to ceil(sqrt(T)); ``pad`` pixels separate tiles and frame the border,
    so the result is ``(rows*(H+pad)+pad, cols*(W+pad)+pad, 3)``.
    """
    frames = _check_frames(frames)
    t, h, w, _ = frames.shape
    cols = min(t, cols if cols is not None else math.ceil(math.sqrt(t)))
    if cols < 1 or pad < 0:
        raise ValueError(f"cols must be >= 1 and pad >= 0; got cols={cols} pad={pad}")
    rows = math.ceil(t / cols)
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, f in enumerate(frames):
        y, x = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        sheet[y:y + h, x:x + w] = f
    return sheet


def save_contact_sheet(path: PathLike, frames: np.ndarray, cols: int | None = None, pad: int = 2) -> Path:
    """Write ``contact_sheet(frames, cols, pad)`` as a PNG. Atomic; returns the path."""
    return write_png(path, contact_sheet(frames, cols, pad))


def probe_video(path: PathLike) -> dict:
    """Describe a video without decoding it: codec, pix_fmt, width, height, frames, fps, duration (s).

    ``frames`` is the container's count, or a count of packets where the container has none.
    An image reports its format, frames 1 and fps 1.0. Raises like ``read_video``.
    """
    path = _existing(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        try:
            with Image.open(path) as im:
                return {"codec": (im.format or "").lower(), "pix_fmt": im.mode, "width": im.width,
                        "height": im.height, "frames": 1, "fps": 1.0, "duration": None}
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot decode image ({e}); allowed: {_ALLOWED}") from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            info = {"codec": ctx.name, "pix_fmt": ctx.pix_fmt, "width": ctx.width, "height": ctx.height}
            n, durations = stream.frames, []
            gif = path.suffix.lower() == ".gif"
            if not n or gif:
                packets = [p for p in container.demux(stream) if p.size]
                n = len(packets)
                durations = [p.duration * p.time_base for p in packets if p.duration and p.time_base]
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            if duration is None and container.duration:
                duration = container.duration / av.time_base
            info.update(frames=n, fps=_fps_of(stream, durations, gif), duration=duration)
            return info
    except (av.FFmpegError, ValueError, OSError) as e:
        raise ValueError(f"{path}: cannot probe video ({e}); allowed: {_ALLOWED}") from None


def to_uint8(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float ``(C, T, H, W)`` or ``(1, C, T, H, W)`` in [-1, 1] (C=3) -> uint8 ``(T, H, W, 3)``; clamps."""
    x = video.detach().float().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video, np.float32)
    if x.ndim == 5 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 4 or x.shape[0] != 3:
        raise ValueError(f"video must be (3, T, H, W) or (1, 3, T, H, W); got shape {tuple(x.shape)}")
    x = np.clip((np.nan_to_num(x) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0))


def from_uint8(frames: np.ndarray, device: str | torch.device | None = None) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` frames -> float32 tensor ``(3, T, H, W)`` in [-1, 1], on ``device``
    (the uint8 frames travel there first: a quarter of the bytes, and the GPU converts them)."""
    frames = _check_frames(frames)
    return torch.from_numpy(frames).to(device).permute(3, 0, 1, 2).float().div(127.5).sub(1.0).contiguous()
