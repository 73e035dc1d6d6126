"""`tenku generate` mode flags end to end on the tiny pipeline: files decode with the right
size and length, sidecars say what was done, bad combinations are one-line errors (exit 2)."""

import json

import numpy as np
import pytest

from tenku.cli import main
from tenku.io import read_video, write_png, write_video


@pytest.fixture(scope="module")
def mode_pipeline(tiny_pipeline, tmp_path_factory):
    """The tiny pipeline with 17-frame chunks conditioned on up to 5 frames, guidance 1.5 for
    the chunks given an input video's frames."""
    from tenku.pipeline import Pipeline

    p = Pipeline.load(tiny_pipeline, device="cpu")
    p.cfg.frames, p.cfg.context_frames, p.cfg.context_guidance = 17, 5, 1.5
    folder = tmp_path_factory.mktemp("modes") / "pipeline"
    p.save(folder)
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, clip):
    d = tmp_path_factory.mktemp("inputs")
    write_video(d / "v.mp4", clip(13), 8.0)
    write_video(d / "b.mp4", clip(9, seed=20), 8.0)
    write_video(d / "fast.mp4", clip(26), 16.0)  # twice the model's fps: resampled to 13 frames
    write_video(d / "wide.mp4", clip(9, w=320, h=64), 8.0)  # 5:1, wider than the model makes
    write_png(d / "img.png", clip(1, w=90, h=50)[0])
    (d / "broken.png").write_bytes(b"not an image")
    return d


def run(mode_pipeline, tmp_path, *args):
    out = tmp_path / "o.mp4"
    argv = ["generate", *args, "--model", str(mode_pipeline), "--steps", "1", "-o", str(out), "--quiet"]
    assert main(argv) == 0
    frames, fps = read_video(out)
    return frames, json.loads(out.with_suffix(".json").read_text())


def test_image_extend_loop_connect_edit(mode_pipeline, tmp_path, inputs):
    f, side = run(mode_pipeline, tmp_path, "a ball", "--image", str(inputs / "img.png"))
    assert f.shape == (17, 64, 64, 3) and side["mode"] == "image-to-video" and "context_guidance" not in side
    assert side["input_caption"] in side["expansion"]["prompt"]  # expansion starts from what the image shows
    for d in ("forward", "backward"):
        f, side = run(mode_pipeline, tmp_path, "a ball", "--video", str(inputs / "v.mp4"), "--extend", d, "--seconds", "1")
        assert f.shape == (13 + 8, 64, 64, 3) and side["mode"] == f"extend-{d}" and side["context_guidance"] == 1.5
    f, _ = run(mode_pipeline, tmp_path, "a ball", "--video", str(inputs / "fast.mp4"), "--extend", "forward", "--frames", "3")
    assert len(f) == 13 + 3
    f, side = run(mode_pipeline, tmp_path, "a ball", "--loop", "--frames", "9")
    assert len(f) == 9 and side["mode"] == "loop"
    f, side = run(mode_pipeline, tmp_path, "a ball", "--connect", str(inputs / "v.mp4"), str(inputs / "b.mp4"), "--frames", "2")
    assert len(f) == 13 + 2 + 9 and side["mode"] == "connect" and side["context_guidance"] == 1.5  # A, transition, B
    f, side = run(mode_pipeline, tmp_path, "a ball", "--connect", str(inputs / "v.mp4"), str(inputs / "b.mp4"), "--frames", "2",
                  "--guidance", "4")
    assert side["guidance"] == 4 and "context_guidance" not in side  # an explicit scale applies to every chunk
    f, side = run(mode_pipeline, tmp_path, "--video", str(inputs / "v.mp4"), "--edit", "a blue ball", "--strength", "0.5")
    assert len(f) == 13 and side["strength"] == 0.5 and side["prompt"] == "a blue ball"


def test_aspect_preview_then_upscale(mode_pipeline, tmp_path, inputs):
    f, side = run(mode_pipeline, tmp_path, "a ball", "--aspect", "16:9")
    assert f.shape[1:3] == (64, 112)  # short side = the model's 64, long side rounded to 16
    f, side = run(mode_pipeline, tmp_path, "a ball", "--aspect", "9:16", "--width", "32")
    assert f.shape[1:3] == (64, 32)
    draft = tmp_path / "draft.mp4"
    assert main(["generate", "a ball", "--model", str(mode_pipeline), "--steps", "1", "--preview", "--seed", "4",
                 "--size", "128x64", "-o", str(draft), "--quiet"]) == 0
    assert read_video(draft)[0].shape == (17, 32, 64, 3)
    f, side = run(mode_pipeline, tmp_path, "--upscale", str(draft))
    draft_side = json.loads(draft.with_suffix(".json").read_text())
    assert f.shape == (17, 64, 128, 3) and side["seed"] == 4 and side["caption"] == draft_side["caption"]


@pytest.mark.parametrize("sidecar,msg", [
    ("{bad", "not readable JSON"), ("[1, 2]", "expected a JSON object"), ('{"seed": "x"}', "bad 'seed' value"),
    ('{"seed": -1, "prompt": "a"}', "bad 'seed' value"), ('{"fps": 0, "prompt": "a"}', "bad 'fps' value"),
    ('{"preview": {"full_size": [64]}, "prompt": "a"}', "bad 'preview' value"), ('{"seed": 2}', "no prompt or caption"),
    ('{"model": "/nowhere", "prompt": "a"}', "named by the draft's sidecar"),
])
def test_upscale_with_a_damaged_sidecar_is_a_one_line_error(tmp_path, capsys, inputs, sidecar, msg):
    draft = tmp_path / "d.mp4"
    write_video(draft, read_video(inputs / "v.mp4")[0], 8.0)
    draft.with_suffix(".json").write_text(sidecar)
    assert main(["generate", "--upscale", str(draft), "-o", str(tmp_path / "o.mp4"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("args,msg", [
    (["x", "--loop", "--connect", "A", "B"], "--loop works"),
    (["x", "--extend", "forward"], "--extend needs --video"),
    (["x", "--image", "{d}/broken.png"], "--image"),
    (["x", "--image", "{d}/missing.png"], "no such file"),
    (["x", "--video", "{d}/v.mp4"], "--extend forward|backward or --edit"),
    (["x", "--video", "{d}/b.mp4", "--extend", "backward", "--size", "64x64", "--frames", "1"], None),
    (["x", "--video", "{d}/v.mp4", "--extend", "forward", "--image", "{d}/img.png"], "give one input"),
    (["--video", "{d}/v.mp4", "--edit", "y", "--strength", "2"], "(0, 1]"),
    (["x", "--strength", "0.5"], "--strength is for"),
    (["x", "--aspect", "16:9", "--size", "64x64"], "not both"),
    (["x", "--aspect", "16x9"], "aspect must look like"),
    (["x", "--loop", "--frames", "5"], "at least"),
    (["x", "--size", "512x512"], "larger than this model makes: at most 65536 pixels"),
    (["x", "--aspect", "16:9", "--height", "512"], "larger than this model makes"),
    (["x", "--size", "320x64"], "the aspect ratio must lie between 1:4 and 4:1"),
    (["x", "--video", "{d}/wide.mp4", "--extend", "forward"], "--video is 320x64, wider than 4:1"),
    ([], "give a prompt"),
])
def test_bad_combinations_are_one_line_errors(mode_pipeline, tmp_path, capsys, inputs, args, msg):
    argv = ["generate", *[a.format(d=inputs) for a in args], "--model", str(mode_pipeline), "--steps", "1",
            "-o", str(tmp_path / "o.mp4"), "--quiet"]
    if msg is None:  # a 9-frame video is long enough to extend backward by 1 frame
        assert main(argv) == 0
        return
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o.mp4").exists()


def test_refused_request_prints_only_its_error(mode_pipeline, tmp_path, capsys, clip):
    """A video too short to condition on (3 frames; chunks take 5): the one-line error, and no
    progress bar before it, even without --quiet."""
    write_video(tmp_path / "short.mp4", clip(3), 8.0)
    argv = ["generate", "x", "--video", str(tmp_path / "short.mp4"), "--extend", "forward", "--model",
            str(mode_pipeline), "--steps", "1", "-o", str(tmp_path / "o.mp4")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tenku generate: error: the video has 3 frames") and "sampling" not in err, err
    assert not (tmp_path / "o.mp4").exists()


def test_a_large_input_video_is_made_at_the_models_scale(mode_pipeline, tmp_path, capsys, clip):
    """A 320x240 video is over the tiny model's limit (16x its 64x64): the extension is made at
    80x64 (short side 64, aspect kept) and says so; an explicit --size within the limit is kept."""
    write_video(tmp_path / "big.mp4", clip(13, w=320, h=240), 8.0)
    f, side = run(mode_pipeline, tmp_path, "a ball", "--video", str(tmp_path / "big.mp4"), "--extend", "forward", "--frames", "4")
    assert f.shape == (13 + 4, 64, 80, 3) and side["size"] == [80, 64]
    assert "note: --video is 320x240, larger than this model makes; making 80x64" in capsys.readouterr().out
    f, side = run(mode_pipeline, tmp_path, "a ball", "--video", str(tmp_path / "big.mp4"), "--extend", "forward", "--frames", "4",
                  "--size", "160x128")
    assert f.shape == (13 + 4, 128, 160, 3) and "note:" not in capsys.readouterr().out
