"""World datasets on disk, in the format tenku reads for any folder of videos:

    DIR/dataset.json      how it was made (so a re-run resumes or refuses)
    DIR/videos/ID.mp4     H.264 yuv420p
    DIR/gt/ID.json        scene spec, per-frame ground truth, events, the metadata record
    DIR/metadata.jsonl    one record per video: file, width, height, fps, frames,
                          caption (detailed), short_caption, spec, ground_truth

Every file is written under a temporary name and renamed when complete; a
video counts as done once its gt file exists, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tenku.io import write_video
from tenku.lang.captions import captions  # the one simulator module that uses the language: see tenku.lang
from tenku.world.render import render_scene
from tenku.world.sample import sample_scene
from tenku.world.spec import SceneSpec

FORMAT = "tenku-world"
VERSION = 2  # bump when sampling changes, so a resume never mixes two samplers


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def render_one(spec: SceneSpec, width: int, height: int, fps: float, frames: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Render one scene; return frames and its gt document (spec, captions, ground truth)."""
    video, gt = render_scene(spec, width, height, fps, frames)
    short, detailed = captions(spec, gt, seed)
    return video, {"spec": spec.to_dict(), "short_caption": short, "caption": detailed, "ground_truth": gt.to_dict()}


def scene(idx: int, sizes: list[tuple[int, int]], frames: int, fps: float, seed: int, max_objects: int
          ) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    """Video ``idx`` of the dataset made with these settings: frames, its metadata record and
    its gt document. The same arguments give the same scene, on disk or in memory."""
    vid = f"{idx:06d}"
    rng = np.random.default_rng([seed, idx])
    w, h = sizes[int(rng.integers(len(sizes)))]
    spec = sample_scene(rng, width=w / h, max_objects=max_objects)
    video, doc = render_one(spec, w, h, fps, frames, seed * 1_000_003 + idx)
    record = {
        "id": vid,
        "file": f"videos/{vid}.mp4",
        "width": w,
        "height": h,
        "fps": fps,
        "frames": frames,
        "caption": doc["caption"],
        "short_caption": doc["short_caption"],
        "spec": doc["spec"],
        "ground_truth": f"gt/{vid}.json",
    }
    return video, record, doc


def _job(args: tuple[str, int, list[tuple[int, int]], int, float, int, int]) -> dict[str, Any]:
    out, idx, sizes, frames, fps, seed, max_objects = args
    root = Path(out)
    video, record, doc = scene(idx, sizes, frames, fps, seed, max_objects)
    write_video(root / record["file"], video, fps)
    write_text_atomic(root / record["ground_truth"], json.dumps({"record": record, **doc}))
    return record


def check_dataset_dir(out: Path, manifest: dict[str, Any]) -> None:
    """Raise ValueError unless ``out`` is new, empty, or a dataset made with the same settings."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory")
    mpath = out / "dataset.json"
    if not mpath.exists():
        if any(out.iterdir()):
            raise ValueError(f"{out} is not empty and holds no tenku dataset; choose a new or empty --out")
        return
    try:
        old = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{mpath} is not valid JSON ({e}); choose another --out") from None
    old.setdefault("max_objects", 4)  # datasets made before the option had up to 4
    keys = ("format", "version", "sizes", "frames", "fps", "seed", "max_objects")
    diff = [f"{k}={old.get(k)!r} (asked {manifest[k]!r})" for k in keys if old.get(k) != manifest[k]]
    if diff:
        raise ValueError(
            f"{out} already holds a dataset made with other settings: {', '.join(diff)}; "
            "re-run with the same settings to resume or add videos, or choose another --out"
        )


def render_dataset(
    out: str | Path,
    count: int,
    sizes: list[tuple[int, int]],
    frames: int,
    fps: float,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    max_objects: int = 4,
) -> dict[str, Any]:
    """Render ``count`` captioned videos into ``out`` (resuming what is there). Returns a summary."""
    out = Path(out)
    manifest = {"format": FORMAT, "version": VERSION, "sizes": [list(s) for s in sizes], "frames": frames, "fps": fps, "seed": seed,
                "max_objects": max_objects}
    check_dataset_dir(out, manifest)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "gt").mkdir(exist_ok=True)
    if not (out / "dataset.json").exists():
        write_text_atomic(out / "dataset.json", json.dumps(manifest, indent=1))
    done = {p.stem for p in (out / "gt").glob("*.json")}
    todo = [i for i in range(count) if f"{i:06d}" not in done or not (out / "videos" / f"{i:06d}.mp4").exists()]
    jobs = [(str(out), i, [tuple(s) for s in sizes], frames, float(fps), seed, max_objects) for i in todo]
    bar = tqdm(total=len(jobs), desc="render", unit="video", disable=not progress)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(_job, jobs, chunksize=4):
                bar.update()
    else:
        for j in jobs:
            _job(j)
            bar.update()
    bar.close()
    records = [json.loads((out / "gt" / f"{i:06d}.json").read_text())["record"] for i in range(count)]
    write_text_atomic(out / "metadata.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    return {"out": str(out), "videos": count, "rendered": len(jobs), "resumed": count - len(jobs)}


def load_metadata(root: str | Path) -> list[dict[str, Any]]:
    """Read DIR/metadata.jsonl: one dict per video."""
    path = Path(root) / "metadata.jsonl"
    if not path.exists():
        raise ValueError(f"{root}: no metadata.jsonl (is this a tenku dataset folder?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
