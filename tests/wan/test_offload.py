"""`--offload {none,model,block}` on every command that loads a pipeline: it reaches the
pipeline's config (Wan folders and tenku's own), a bad value is a one-line error, and on the CPU
(where nothing moves) the video is the one made without offload."""

import numpy as np
import pytest

from tenku.cli import build_parser, main
from tenku.eval.run import PipelineGenerator
from tenku.io import read_video
from tenku.pipeline import Pipeline

PROMPT = "a red ball rolls on the floor"


def test_the_flag_reaches_the_pipeline_and_changes_no_pixel(wan21, tiny_pipeline):
    plain = Pipeline.load(wan21[0], device="cpu")
    block = Pipeline.load(wan21[0], device="cpu", offload="block")
    assert (plain.cfg.offload, block.cfg.offload) == ("none", "block")
    run = dict(height=32, width=48, num_frames=5, num_inference_steps=2, seed=1)
    np.testing.assert_array_equal(plain(PROMPT, **run), block(PROMPT, **run))
    assert Pipeline.load(tiny_pipeline, device="cpu", offload="model").cfg.offload == "model"  # tenku's own folder
    assert PipelineGenerator(wan21[0], offload="model").pipe.cfg.offload == "model"  # tenku eval's loader
    with pytest.raises(ValueError, match="offload must be one of none, model, block; got 'disk'"):
        Pipeline.load(wan21[0], device="cpu", offload="disk")


@pytest.mark.parametrize("command", [["generate", "p"], ["serve"], ["eval", "--model", "m", "--out", "o"],
                                     ["worker", "--store", "s", "--videos", "v"]])
def test_every_loading_command_takes_it(command, capsys):
    parser = build_parser()
    assert parser.parse_args([*command, "--offload", "block"]).offload == "block"
    assert parser.parse_args(command).offload is None  # the folder's own setting
    with pytest.raises(SystemExit) as e:
        parser.parse_args([*command, "--offload", "disk"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith("argument --offload: offload must be one of none, model, block; got 'disk'")


def test_generate_cli_with_offload_makes_the_same_video(wan21, tmp_path):
    videos = []
    for mode in ("none", "block"):
        out = tmp_path / f"{mode}.mp4"
        assert main(["generate", PROMPT, "--model", str(wan21[0]), "--size", "48x32", "--frames", "5", "--steps", "2",
                     "--seed", "3", "--no-expand", "--device", "cpu", "--offload", mode, "-o", str(out), "--quiet"]) == 0
        videos.append(read_video(out)[0])
    np.testing.assert_array_equal(*videos)
