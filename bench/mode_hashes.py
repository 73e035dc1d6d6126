"""Fingerprints of the bundled model's videos, one per mode, made through `tenku generate`
(the README command and each mode's example in docs/modes.md): a refactor that must not
change behaviour is checked by running this before and after on the same machine and
comparing (`--check FILE`). The videos are written as GIFs: libx264 (PyAV 18) encodes a
64x64 clip differently from run to run even on one thread, while the GIF writer is exact. bf16 matrix products differ between CPUs (AMX or not), so the
hashes are per machine: record them, then compare on that machine; never in the test suite.

    python bench/mode_hashes.py --out /tmp/before.json
    ... change ...
    python bench/mode_hashes.py --check /tmp/before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# name -> tenku generate arguments; {d} is the work folder. Order matters: later ones use earlier outputs.
CASES: list[tuple[str, str]] = [
    ("readme", '"a red ball falls and bounces" -o {d}/readme.gif'),
    ("verbatim", '"a red ball falls and bounces" --no-expand --steps 8 -o {d}/verbatim.gif'),
    ("wide", '"a blue square slides to the right" --aspect 16:9 --steps 8 -o {d}/wide.gif'),
    ("image", '"a green ball rolls" --image {d}/first.png --steps 8 -o {d}/image.gif'),
    ("extend-forward", '"a red ball falls and bounces" --video {d}/readme.gif --extend forward --seconds 2 --steps 8 -o {d}/fwd.gif'),
    ("extend-backward", '"a red ball falls and bounces" --video {d}/readme.gif --extend backward --seconds 2 --steps 8 -o {d}/bwd.gif'),
    ("loop", '"a yellow star spins" --loop --steps 8 -o {d}/loop.gif'),
    ("connect", '"a ball moves" --connect {d}/readme.gif {d}/image.gif --steps 8 -o {d}/connect.gif'),
    ("edit", '--video {d}/readme.gif --edit "a blue ball falls and bounces" --steps 8 -o {d}/edit.gif'),
    ("preview", '"a purple triangle falls" --preview --steps 8 -o {d}/draft.gif'),
    ("upscale", '--upscale {d}/draft.gif --steps 8 -o {d}/full.gif'),
    ("long", '"a red ball bounces" --seconds 12 --steps 4 -o {d}/long.gif'),
]


def frames_hash(path: Path) -> str:
    from tenku.io import read_video

    frames, fps = read_video(path)
    h = hashlib.sha256(frames.tobytes())
    h.update(f"{frames.shape}{fps}".encode())
    return h.hexdigest()[:16]


def run(work: Path) -> dict[str, dict]:
    import shlex

    from tenku.io import read_video, write_png

    out: dict[str, dict] = {}
    for name, args in CASES:
        argv = ["tenku", "generate", *shlex.split(args.format(d=work)), "--quiet"]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode:
            out[name] = {"error": (r.stderr or r.stdout).strip().splitlines()[-1:]}
            print(name, "FAILED", out[name]["error"], file=sys.stderr)
            continue
        video = Path(argv[argv.index("-o") + 1])
        side = json.loads(video.with_suffix(".json").read_text())
        out[name] = {"frames": frames_hash(video), "caption": side.get("caption"), "count": side.get("frames"),
                     "size": side.get("size")}
        print(name, out[name]["frames"], out[name]["count"], side.get("size"), file=sys.stderr)
        if name == "readme":
            write_png(work / "first.png", read_video(video)[0][0])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="write the fingerprints here")
    ap.add_argument("--check", type=Path, help="compare with fingerprints recorded before")
    ap.add_argument("--keep", type=Path, help="keep the videos in this folder")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        got = run(work)
    if a.out:
        a.out.write_text(json.dumps(got, indent=1))
    if a.check:
        want = json.loads(a.check.read_text())
        bad = [n for n in want if want[n] != got.get(n)]
        for n in bad:
            print(f"DIFFERS {n}: before {want[n]} after {got.get(n)}")
        print(f"{len(want) - len(bad)}/{len(want)} identical")
        return 1 if bad else 0
    print(json.dumps(got, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
