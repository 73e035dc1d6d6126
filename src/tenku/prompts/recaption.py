"""Recaptioning a dataset folder (DIR/metadata.jsonl, the format of
:mod:`tenku.world.dataset`): dense captions for training, as Sora's were.

- World videos (records with a ``ground_truth`` file): the caption is written from
  the ground truth by :func:`tenku.lang.captions.captions` (short and detailed),
  and the gt file's copy is updated too, so a later ``tenku world render`` resume
  keeps it.
- Any other video: a few frames sampled evenly across it are sent as base64 JPEGs
  to an OpenAI-compatible vision endpoint, which describes the video.

Progress is appended (one JSON line per captioned file, flushed) to
``DIR/caption_progress.jsonl``; a re-run skips the files listed there, so an
interrupted run loses nothing. ``metadata.jsonl`` is rewritten atomically
(temporary file + ``os.replace``) at the end, also when interrupted. A failing
file is logged and skipped; the run goes on and reports it at the end.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import zlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from tenku.io import IMAGE_SUFFIXES, probe_video, read_image, read_video
from tenku.prompts.llm import LLMConfig, chat
from tenku.lang.captions import captions
from tenku.world.dataset import load_metadata, write_text_atomic
from tenku.world.spec import GroundTruth, SceneSpec

PROGRESS = "caption_progress.jsonl"

VIDEO_SYSTEM_PROMPT = (
    "You write captions for training a text-to-video model. You see frames sampled evenly from one video, in "
    "order. Describe the video in one detailed paragraph of 4 to 8 sentences: the main subjects and their "
    "appearance (colours, sizes, materials, count), what each does and how it moves over time, how they "
    "interact, the setting and background, the camera (static, panning, zooming, cuts) and the visual style "
    "(live action, animation, lighting). Describe only what is visible. Do not mention frames or images; "
    "describe the video itself. Plain text, no lists, no preamble."
)


@dataclass
class RecaptionSummary:
    total: int
    skipped: int  # already captioned (in the progress file)
    captioned: int
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, error)


# --- one file -----------------------------------------------------------------------------

def caption_seed(file: str, seed: int) -> int:
    """The caption seed of one file: stable across runs and machines."""
    return seed * 1_000_003 + zlib.crc32(file.encode())


def caption_world(root: Path, record: dict[str, Any], seed: int) -> dict[str, Any]:
    """Short and detailed captions of a world video from its ground truth."""
    path = root / record["ground_truth"]
    if not path.is_file():
        raise FileNotFoundError(f"ground truth file {record['ground_truth']} is missing")
    doc = json.loads(path.read_text())
    spec, gt = SceneSpec.from_dict(doc["spec"]), GroundTruth.from_dict(doc["ground_truth"])
    short, detailed = captions(spec, gt, caption_seed(record["file"], seed))
    if (doc.get("caption"), doc.get("short_caption")) != (detailed, short):
        doc.update(caption=detailed, short_caption=short)
        if isinstance(doc.get("record"), dict):
            doc["record"].update(caption=detailed, short_caption=short)
        write_text_atomic(path, json.dumps(doc))
    return {"file": record["file"], "caption": detailed, "short_caption": short, "caption_source": "ground_truth"}


def sample_frames(path: Path, count: int) -> tuple[np.ndarray, float | None]:
    """``count`` frames spread evenly over a video (first to last), decoded one at a time
    so a long video never sits in memory; uint8 (k, H, W, 3) and the duration in seconds."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path)[None], None
    info = probe_video(path)
    n = int(info.get("frames") or 0)
    duration = info.get("duration")
    if n <= 0:
        frames, fps = read_video(path, max_frames=2000)
        idx = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int))
        return frames[idx], duration or len(frames) / fps
    want = set(np.unique(np.linspace(0, n - 1, count).round().astype(int)).tolist())
    out: list[np.ndarray] = []
    last = None
    try:
        with av.open(str(path)) as container:
            for k, frame in enumerate(container.decode(video=0)):
                if k in want:
                    out.append(frame.to_ndarray(format="rgb24"))
                last = frame
                if len(out) == len(want):
                    break
            if len(out) < len(want) and last is not None:  # the container over-counted its frames
                out.append(last.to_ndarray(format="rgb24"))
    except (av.FFmpegError, OSError) as e:
        raise ValueError(f"{path}: cannot decode video ({e})") from None
    if not out:
        raise ValueError(f"{path}: video has no frames")
    return np.stack(out), duration


def jpeg_data_url(frame: np.ndarray, max_side: int = 512, quality: int = 85) -> str:
    """A frame as a ``data:image/jpeg;base64,...`` URL, longest side at most ``max_side``."""
    im = Image.fromarray(frame)
    im.thumbnail((max_side, max_side), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def caption_video(root: Path, record: dict[str, Any], llm: LLMConfig, frames: int = 4, max_side: int = 512,
                  seed: int = 0) -> dict[str, Any]:
    """Caption a real video with a vision model from ``frames`` sampled frames."""
    path = root / record["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{record['file']} is missing")
    imgs, duration = sample_frames(path, frames)
    what = f"{len(imgs)} frames sampled evenly from a {duration:.1f}-second video" if duration else \
        f"{len(imgs)} frame(s) of a video"
    content: list[dict[str, Any]] = [{"type": "text", "text": f"{what}, in order. Caption the video."}]
    content += [{"type": "image_url", "image_url": {"url": jpeg_data_url(f, max_side)}} for f in imgs]
    messages = [{"role": "system", "content": VIDEO_SYSTEM_PROMPT}, {"role": "user", "content": content}]

    def validate(text: str) -> None:
        if len(text.split()) < 3:
            raise ValueError(f"reply too short to be a caption: {text!r}")

    text, _ = chat(llm, messages, seed=caption_seed(record["file"], seed), validate=validate)
    return {"file": record["file"], "caption": text, "caption_source": f"llm:{llm.model}"}


# --- the progress file and metadata ----------------------------------------------------------

def read_progress(path: Path) -> dict[str, dict[str, Any]]:
    """Captioned files so far; a torn last line (an interrupted write) is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("file"), str) and entry.get("caption"):
                done[entry["file"]] = entry
    return done


def merge(records: list[dict[str, Any]], done: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with their new captions; a replaced non-ground-truth caption is kept as
    ``original_caption`` (the first time only)."""
    out = []
    for r in records:
        entry = done.get(r.get("file"))  # type: ignore[arg-type]
        r = dict(r)
        if entry:
            old = r.get("caption")
            if old and old != entry["caption"] and "original_caption" not in r and \
                    entry.get("caption_source") != "ground_truth":
                r["original_caption"] = old
            r.update({k: v for k, v in entry.items() if k != "file"})
        out.append(r)
    return out


def is_world(record: dict[str, Any]) -> bool:
    """A world video: its record names a ground-truth file."""
    return bool(record.get("ground_truth"))


def recaption(root: str | Path, llm: LLMConfig | None = None, *, jobs: int = 4, frames: int = 4,
              max_side: int = 512, seed: int = 0, redo: bool = False, progress: bool = True,
              log: Callable[[str], None] | None = None) -> RecaptionSummary:
    """Recaption every video of ``root/metadata.jsonl`` not yet captioned (see the module
    docstring). ``llm`` is needed only for videos without ground truth. ``jobs`` bounds the
    parallel requests. ``redo`` forgets earlier progress. Raises ValueError before doing
    anything if the folder is not a dataset or an LLM is needed and missing."""
    root = Path(root)
    records = load_metadata(root)
    side = root / PROGRESS
    done = {} if redo else read_progress(side)
    log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    failed: list[tuple[str, str]] = []
    todo: list[dict[str, Any]] = []
    seen: set[str] = set()
    for k, r in enumerate(records):
        f = r.get("file")
        if not isinstance(f, str) or not f:
            failed.append((f"record {k + 1}", "no 'file' field"))
        elif f not in done and f not in seen:
            seen.add(f)
            todo.append(r)
    real = [r for r in todo if not is_world(r)]
    if real and llm is None:
        raise ValueError(f"{len(real)} video(s) have no ground truth (e.g. {real[0]['file']}); give --llm-url and "
                         "--llm-model of an OpenAI-compatible vision endpoint to caption them")
    skipped = len(records) - len(todo) - len(failed)
    if redo:
        side.unlink(missing_ok=True)

    def one(r: dict[str, Any]) -> dict[str, Any]:
        if is_world(r):
            return caption_world(root, r, seed)
        assert llm is not None
        return caption_video(root, r, llm, frames, max_side, seed)

    captioned = 0
    bar = tqdm(total=len(todo), desc="caption", unit="video", disable=not progress)
    try:
        with open(side, "a") as fh, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            pending: dict[Future, str] = {}
            queue = iter(todo)

            def record(entry: dict[str, Any]) -> None:
                nonlocal captioned
                fh.write(json.dumps(entry) + "\n")
                fh.flush()
                done[entry["file"]] = entry
                captioned += 1

            def fill() -> None:
                for r in queue:
                    pending[pool.submit(one, r)] = r["file"]
                    if len(pending) >= 2 * max(1, jobs):
                        break

            try:
                fill()
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        f = pending.pop(fut)
                        try:
                            entry = fut.result()
                        except Exception as e:  # noqa: BLE001 - one bad file must not stop the run
                            failed.append((f, str(e) or type(e).__name__))
                            log(f"caption: {f}: {e}")
                        else:
                            record(entry)
                        bar.update()
                    fill()
            except BaseException:  # interrupted: keep whatever finished meanwhile, then stop
                pool.shutdown(wait=True, cancel_futures=True)
                for fut in pending:
                    if fut.done() and not fut.cancelled() and fut.exception() is None:
                        record(fut.result())
                raise
            finally:
                os.fsync(fh.fileno())
    finally:
        bar.close()
        write_text_atomic(root / "metadata.jsonl", "".join(json.dumps(r) + "\n" for r in merge(records, done)))
    return RecaptionSummary(len(records), skipped, captioned, failed)
