"""`tenku world render` and `tenku world preview` as a user runs them."""

import json

import numpy as np
import pytest

from tenku.cli import main
from tenku.io import probe_video, read_video


def render(out, *extra, count=3):
    return main(["world", "render", "--count", str(count), "--size", "64x64", "--frames", "9",
                 "--fps", "8", "--out", str(out), "--quiet", *extra])


def test_render_writes_playable_videos_metadata_and_truth(tmp_path):
    out = tmp_path / "ds"
    assert render(out) == 0
    lines = (out / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        rec = json.loads(line)
        assert {"file", "width", "height", "fps", "frames", "caption", "short_caption", "spec"} <= set(rec)
        frames, fps = read_video(out / rec["file"])
        assert frames.shape == (9, 64, 64, 3) and fps == 8.0
        info = probe_video(out / rec["file"])
        assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
        gt = json.loads((out / rec["ground_truth"]).read_text())["ground_truth"]
        assert np.array(gt["position"]).shape == (len(rec["spec"]["objects"]), 9, 2)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_rerun_resumes_and_grows_but_refuses_other_settings(tmp_path, capsys):
    out = tmp_path / "ds"
    assert render(out, count=2) == 0
    first = (out / "metadata.jsonl").read_text()
    assert render(out, count=3) == 0
    assert "1 rendered, 2 already there" in capsys.readouterr().out
    assert (out / "metadata.jsonl").read_text().startswith(first)
    assert render(out, "--seed", "5", count=3) == 2
    err = capsys.readouterr().err.strip()
    assert "seed=0" in err and "(asked 5)" in err and "\n" not in err
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 3


def test_workers_give_the_same_dataset(tmp_path):
    assert render(tmp_path / "a", count=4) == 0
    assert render(tmp_path / "b", "--workers", "2", count=4) == 0
    assert (tmp_path / "a" / "metadata.jsonl").read_text() == (tmp_path / "b" / "metadata.jsonl").read_text()


def test_several_sizes(tmp_path):
    out = tmp_path / "ds"
    assert main(["world", "render", "--count", "6", "--size", "64x64,96x64,64x96", "--frames", "1",
                 "--out", str(out), "--quiet"]) == 0
    recs = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert len({(r["width"], r["height"]) for r in recs}) >= 2
    for r in recs:
        assert read_video(out / r["file"])[0].shape == (1, r["height"], r["width"], 3)


@pytest.mark.parametrize("size", ["63x64", "64", "axb", "0x64", "-64x64", "64x64x3"])
def test_bad_size_is_a_one_line_error_and_writes_nothing(tmp_path, capsys, size):
    out = tmp_path / "ds"
    assert main(["world", "render", "--count", "1", f"--size={size}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "even integers" in err or "WxH" in err
    assert len(err.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("args", [["--frames", "0"], ["--count", "0"], ["--fps", "-1"], ["--workers", "0"]])
def test_bad_numbers_exit_2(tmp_path, args):
    out = tmp_path / "ds"
    base = {"--count": "1", "--frames": "9", "--fps": "8", "--workers": "1"}
    base.update(dict(zip(args[::2], args[1::2])))
    argv = ["world", "render", "--out", str(out)] + [x for kv in base.items() for x in kv]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and not out.exists()


def test_refuses_foreign_folder_and_unwritable_output(tmp_path, capsys):
    foreign = tmp_path / "stuff"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert render(foreign) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert render(blocker / "ds") == 2
    assert capsys.readouterr().err.strip().startswith("tenku world render: error:")


def test_preview_keeps_what_the_prompt_says(tmp_path, capsys):
    out = tmp_path / "ball.mp4"
    assert main(["world", "preview", "a red ball bounces", "-o", str(out), "--size", "96x64", "--frames", "9"]) == 0
    frames, _ = read_video(out)
    assert frames.shape == (9, 64, 96, 3)
    side = json.loads(out.with_suffix(".json").read_text())
    objs = side["spec"]["objects"]
    assert len(objs) == 1 and objs[0]["color"] == "red" and objs[0]["shape"] == "circle"
    assert "red" in capsys.readouterr().out


def test_preview_rejects_unknown_words(tmp_path, capsys):
    out = tmp_path / "x.mp4"
    assert main(["world", "preview", "a zebra ball rolls", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "zebra" in err and "red" in err and not out.exists()
    assert main(["world", "preview", "a red ball", "-o", str(tmp_path / "x.avi")]) == 2


def test_preview_and_render_refuse_a_size_outside_the_worlds_aspect(tmp_path, capsys):
    """The world is 1 unit tall and 0.2 to 10 wide; a thinner strip is a one-line error, not a traceback."""
    assert main(["world", "preview", "a red ball", "--size", "512x16", "-o", str(tmp_path / "x.mp4")]) == 2
    assert main(["world", "render", "--count", "1", "--size", "64x64,16x512", "--out", str(tmp_path / "ds")]) == 2
    assert main(["world", "preview", "a red ball", "--size", "64x64,32x32", "-o", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "512x16" in err[0] and "16x512" in err[1] and "one size" in err[2], err
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "ds").exists()


def test_preview_refuses_too_many_objects(tmp_path, capsys):
    assert main(["world", "preview", "100 red balls", "-o", str(tmp_path / "x.mp4")]) == 2
    assert "1 to 4" in capsys.readouterr().err


def test_max_objects(tmp_path):
    out = tmp_path / "one"
    assert render(out, "--max-objects", "1", count=6) == 0
    recs = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert all(len(r["spec"]["objects"]) == 1 for r in recs)
    assert render(out, count=6) == 2  # other settings: refused
