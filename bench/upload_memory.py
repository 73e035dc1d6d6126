"""Peak memory of a worker job with a tiny upload of huge frames (issue 35, finding 4): black
1024x1024 mp4s of 150 and 300 frames (kilobytes each) and one of 20,000 frames, edited or
extended at the model's scale, against a normal job of the same output size (the same clip at
64x64). Each job runs in its own process, as a worker runs it (``serve.worker.run_job`` on the
request ``tenku serve`` would queue: the upload probed, resolved within the server's limits);
the peak is the process's VmHWM over the job alone (reset before it through /proc/self/clear_refs).

    python bench/upload_memory.py            # prints a markdown table; exit 1 if any excess > 300 MB
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [  # (name, side, frames, fps, mode)
    ("150 frames, edit", 150, 30.0, "edit"),
    ("300 frames, edit", 300, 30.0, "edit"),
    ("300 frames, extend 1 s", 300, 30.0, "extend"),
    ("20,000 frames at 400 fps (50 s), edit", 20_000, 400.0, "edit"),
]


def black_mp4(path: Path, side: int, frames: int, fps: float) -> Path:
    """A black H.264 clip, encoded fast (one frame reused): kilobytes however many frames."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=round(fps))
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        black = av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
        for i in range(frames):
            black.pts = i
            out.mux(stream.encode(black))
        out.mux(stream.encode(None))
    return path


def vm_hwm() -> int:
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) * 1024


def child(model: str, clip: str, mode: str) -> None:
    """One job as the worker runs it; prints JSON: peak bytes over the job, output frames and size."""
    from tenku.io import probe_video
    from tenku.pipeline import Pipeline
    from tenku.request import Input, Limits, Request, resolve
    from tenku.serve.submit import MAX_INPUT_FRAMES, default_work
    from tenku.serve.worker import run_job

    pipe = Pipeline.load(model, device="cpu")
    geo = pipe.geometry
    limits = Limits(geo.max_pixels, 60.0, 200, MAX_INPUT_FRAMES, default_work(geo, 60.0), "this server")
    info = probe_video(clip)
    folder = Path(tempfile.mkdtemp())
    kept = folder / "input-video.mp4"
    kept.symlink_to(Path(clip).resolve())
    video = Input(info["width"], info["height"], info["frames"], info["fps"], kept)
    req = Request("a red ball", video=video, steps=2, expand=False,
                  **({"strength": 0.6} if mode == "edit" else {"extend": "forward", "seconds": 1.0}))
    params = resolve(req, geo, limits).to_dict()
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := current RSS
    base, t0 = vm_hwm(), time.time()
    result = run_job(pipe, params, folder, lambda done, total: None)
    print(json.dumps({"peak": vm_hwm() - base, "frames": result["frames"], "size": result["size"],
                      "seconds": time.time() - t0}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "CLIP", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    sys.path.insert(0, str(Path(__file__).parent))
    from serve_load import tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="upload-memory-"))
    model = tiny_model(tmp / "model")
    run = lambda clip, mode: json.loads(subprocess.run(  # noqa: E731
        [sys.executable, __file__, "--child", str(model), str(clip), mode], check=True, capture_output=True,
        text=True).stdout.strip().splitlines()[-1])
    print("| upload | its size | job peak | normal job (64x64 upload) | excess | output |")
    print("| --- | --- | --- | --- | --- | --- |")
    worst = 0
    for name, frames, fps, mode in CASES:
        big = black_mp4(tmp / f"big-{frames}.mp4", 1024, frames, fps)
        small = black_mp4(tmp / f"small-{frames}.mp4", 64, frames, fps)
        a, b = run(big, mode), run(small, mode)
        assert (a["frames"], a["size"]) == (b["frames"], b["size"]), (a, b)
        excess = a["peak"] - b["peak"]
        worst = max(worst, excess)
        mb = lambda v: f"{v / 2**20:.0f} MB"  # noqa: E731
        print(f"| 1024x1024 black, {name} | {big.stat().st_size / 1024:.0f} KB | {mb(a['peak'])} ({a['seconds']:.1f} s) "
              f"| {mb(b['peak'])} ({b['seconds']:.1f} s) | {mb(excess)} | {a['frames']} frames {a['size'][0]}x{a['size'][1]} |",
              flush=True)
    return 0 if worst <= 300 * 2**20 else 1


if __name__ == "__main__":
    sys.exit(main())
