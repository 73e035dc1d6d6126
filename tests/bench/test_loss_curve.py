"""bench/loss_curve.py: runs joined by step offsets, resumed steps kept once, clear errors."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "loss_curve.py"), *args],
                          capture_output=True, text=True, timeout=120)


def _log(folder: Path, rows: list[tuple[int, float]]) -> Path:
    folder.mkdir()
    (folder / "log.jsonl").write_text("".join(json.dumps({"step": s, "loss": v, "lr": 1e-4}) + "\n" for s, v in rows))
    return folder


def test_two_runs_one_offset_and_a_resumed_step(tmp_path):
    a = _log(tmp_path / "first", [(10, 1.0), (20, 0.8), (30, 0.6)])
    # the fine-tune was resumed at step 20: its step 20 is logged twice, the later record counts
    b = _log(tmp_path / "tune", [(10, 0.5), (20, 0.9), (20, 0.4)])
    out = tmp_path / "curve.png"
    r = _run(str(a), f"{b}@30", "-o", str(out), "--every", "2")
    assert r.returncode == 0, r.stderr
    assert "first steps 10..30, last average 0.7000" in r.stdout
    assert "tune steps 40..50, last average 0.4500" in r.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_name_the_problem(tmp_path):
    r = _run(str(tmp_path / "missing"), "-o", str(tmp_path / "x.png"))
    assert r.returncode != 0 and "log.jsonl not found" in r.stderr and "Traceback" not in r.stderr
    run = _log(tmp_path / "run", [(10, 1.0)])
    r = _run(f"{run}@abc", "-o", str(tmp_path / "x.png"))
    assert r.returncode != 0 and "whole step count" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists()
