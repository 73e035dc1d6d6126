"""`tenku eval --model` on a tiny Wan2.1 folder: it scores the suites the checkpoint can make
(text-to-video) and skips, with the reason, those it cannot (clean frames: image-to-video,
extension, loops, connect, long videos)."""

import json

from tenku.cli import main


def test_eval_scores_text_to_video_and_skips_clean_frame_suites_with_the_reason(wan21, tmp_path, capsys):
    out = tmp_path / "report"
    base = ["eval", "--model", str(wan21[0]), "--limit", "1", "--height", "32", "--steps", "1", "--quiet"]
    assert main([*base, "--suite", "i2v,world", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "skipping suite i2v: image-to-video: this checkpoint (Wan2.1 text-to-video) was trained with one noise" in said
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["suites"]) == ["world"] and doc["suites"]["world"]["summary"]["videos"] == 1
    assert (out / "report.md").is_file()
    assert main([*base, "--suite", "loop", "--out", str(tmp_path / "none")]) == 2  # nothing it can make: a usage error
    captured = capsys.readouterr()
    assert "skipping suite loop: loop: this checkpoint" in captured.out
    assert captured.err.strip() == "tenku eval: error: nothing to score: the model supports none of the suites loop"
