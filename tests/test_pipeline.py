"""Text-to-video through the pipeline and `tenku generate`, on a random tiny model."""

import json

import numpy as np
import pytest

from tenku.cli import main
from tenku.io import read_video
from tenku.pipeline import Pipeline


def test_generate_shapes_and_determinism(tiny_pipeline):
    pipe = Pipeline.load(tiny_pipeline, device="cpu")
    a = pipe.generate("a red ball falls", seed=1)
    b = pipe.generate("a red ball falls", seed=1)
    c = pipe.generate("a red ball falls", seed=2)
    assert a.shape == (9, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    wide = pipe.generate("a blue square", seed=0, size=(96, 64), frames=5)
    assert wide.shape == (5, 64, 96, 3)


def test_unmakeable_sizes_name_the_nearest(tiny_pipeline):
    pipe = Pipeline.load(tiny_pipeline, device="cpu")
    assert pipe.geometry.fit_size(100, 60) == (96, 64) and pipe.geometry.fit_frames(10) == 9
    with pytest.raises(ValueError, match="nearest: 96x64"):
        pipe.generate("x", size=(100, 60))
    with pytest.raises(ValueError, match="nearest: 9"):
        pipe.generate("x", frames=10)


def test_cli_generate_writes_video_and_sidecar(tiny_pipeline, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(["generate", "a red ball bounces", "--model", str(tiny_pipeline), "--size", "64x64",
               "--seconds", "1", "--fps", "8", "--steps", "2", "--guidance", "5", "--seed", "3", "-o", str(out), "--quiet"])
    assert rc == 0
    frames, fps = read_video(out)
    assert frames.shape == (9, 64, 64, 3) and fps == 8.0
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["seed"] == 3 and side["steps"] == 2 and side["frames"] == 9 and side["prompt"] == "a red ball bounces"
    caption = side["expansion"]["caption"]
    assert "red" in caption and len(caption) > len("a red ball bounces") and side["expansion"]["caption_source"] == "builtin"
    assert f"caption: {caption}" in capsys.readouterr().out
    assert main(["generate", "a red ball bounces", "--model", str(tiny_pipeline), "--no-expand", "--steps", "1",
                 "-o", str(out), "--quiet"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["expansion"]["caption"] == "a red ball bounces"
    # seconds that do not give 1 + 4k frames are rounded, saying so
    assert main(["generate", "x", "--model", str(tiny_pipeline), "--seconds", "1.2", "--steps", "1", "-o", str(out), "--quiet"]) == 0
    assert "rounded to 9 frames" in capsys.readouterr().out


@pytest.mark.parametrize("args,msg", [(["--size", "100x64"], "nearest: 96x64"), (["--frames", "10"], "nearest: 9"),
                                      (["-o", "x.avi"], ".mp4 or .gif"), (["--model", "/nonexistent"], "not found"),
                                      (["--autoguidance", "1"], "has no guide transformer")])
def test_cli_generate_errors(tiny_pipeline, tmp_path, capsys, args, msg):
    argv = ["generate", "x", "--model", str(tiny_pipeline), "-o", str(tmp_path / "o.mp4"), "--quiet"]
    for i in range(0, len(args), 2):
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i : i + 2]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("args,msg", [(["--seed", "-5"], "must be >= 0"), (["--seed", str(2**31)], "must be at most 2147483647"),
                                      (["--guidance", "nan"], "must be a finite number >= 0"), (["--guidance", "-1"], "must be a finite number >= 0"),
                                      (["--autoguidance", "inf"], "must be a finite number >= 0"),
                                      (["--fps", "500"], "must be between 1 and 120"), (["--fps", "0.5"], "must be between 1 and 120")])
def test_cli_generate_refuses_bad_numbers_before_loading(tmp_path, capsys, args, msg):
    with pytest.raises(SystemExit) as e:
        main(["generate", "x", "--model", str(tmp_path / "none"), "-o", str(tmp_path / "o.mp4"), *args])
    assert e.value.code == 2
    assert f"argument {args[0]}: {msg}" in capsys.readouterr().err.strip().splitlines()[-1]


def test_stream_checks_every_argument(tiny_pipeline):
    pipe = Pipeline.load(tiny_pipeline, device="cpu")
    for kw, msg in [({"seed": -1}, "seed must be"), ({"seed": 2**31}, "seed must be"), ({"seed": 1.5}, "seed must be"),
                    ({"steps": -2}, "steps must be"), ({"guidance": float("nan")}, "guidance must be"),
                    ({"guidance": -0.5}, "guidance must be"), ({"steps": 0}, "steps must be"),
                    ({"frames": 0}, "frames must be"), ({"fps": -1}, "fps must be"), ({"size": (64,)}, "size must be"),
                    ({"size": ("a", "b")}, "size must be"), ({"prompt": None}, "prompt must be a string"),
                    ({"connect": (np.zeros((9, 64, 64, 3), np.uint8),)}, "connect must be two videos")]:
        with pytest.raises(ValueError, match=msg):
            pipe.generate(kw.pop("prompt", "x"), **kw)
    assert pipe.generate("x", seed=np.int64(2**31 - 1), frames=1, steps=1).shape == (1, 64, 64, 3)


def test_diffusers_style_call_folder_and_negative_prompt(tiny_pipeline, tmp_path):
    import shutil

    import tenku

    pipe = tenku.Pipeline.from_pretrained(tiny_pipeline, device="cpu")
    assert (tiny_pipeline / "transformer" / "model.safetensors").exists()
    index = json.loads((tiny_pipeline / "model_index.json").read_text())
    assert index["transformer"] == "transformer" and index["text_encoder"] == "minilm"
    a = pipe("a red ball", height=64, width=96, num_frames=5, num_inference_steps=2, guidance_scale=3.0, seed=1)
    assert np.array_equal(a, pipe.generate("a red ball", seed=1, size=(96, 64), frames=5, steps=2, guidance=3.0))
    neg = pipe("a red ball", height=64, width=96, num_frames=5, num_inference_steps=2, guidance_scale=3.0, seed=1,
               negative_prompt="a blue square")
    assert not np.array_equal(a, neg)
    import torch  # a generator without a seed draws one in [0, SEED_MAX], as diffusers' callers pass it

    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    drawn = pipe("a red ball", num_frames=1, num_inference_steps=1, generator=g())
    assert np.array_equal(drawn, pipe("a red ball", num_frames=1, num_inference_steps=1, generator=g()))
    dpm = pipe.generate("a red ball", seed=1, frames=5, steps=4, sampler="dpm++2m")  # steps 3 and up differ
    assert dpm.shape == (5, 64, 64, 3) and not np.array_equal(dpm, pipe.generate("a red ball", seed=1, frames=5, steps=4))
    with pytest.raises(ValueError, match="unknown sampler"):
        pipe.generate("x", sampler="ddim")
    with pytest.raises(ValueError, match="size must be"):  # 0 is an error, not the default (None is)
        pipe("x", width=0, num_frames=1)
    # a folder from before the rename (dit/ instead of transformer/) still loads
    old = tmp_path / "old"
    shutil.copytree(tiny_pipeline, old)
    (old / "transformer").rename(old / "dit")
    assert np.array_equal(tenku.Pipeline.load(old, device="cpu").generate("a red ball", seed=1, frames=5, steps=2,
                                                                          guidance=3.0, size=(96, 64)), a)


def test_bf16_folder_is_half_the_size_and_loads_as_rounded_float32(tiny_pipeline, tmp_path):
    import torch

    pipe = Pipeline.load(tiny_pipeline, device="cpu")
    pipe.save(tmp_path / "bf16", dtype=torch.bfloat16)
    size = lambda d, part: (d / part / "model.safetensors").stat().st_size  # noqa: E731
    for part in ("vae", "transformer"):
        assert size(tmp_path / "bf16", part) < 0.55 * size(tiny_pipeline, part)
    half = Pipeline.load(tmp_path / "bf16", device="cpu")
    for a, b in [(pipe.dit, half.dit), (pipe.vae, half.vae)]:
        for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert y.dtype == x.dtype and torch.equal(y, x.to(torch.bfloat16).to(x.dtype)), k
    assert half.generate("a red ball", seed=0, frames=5, steps=2).shape == (5, 64, 64, 3)


def test_a_guide_transformer_travels_with_the_folder_and_autoguidance_changes_the_video(tiny_pipeline, tmp_path):
    import shutil

    import torch

    from tenku.dit.model import build_dit

    pipe = Pipeline.load(tiny_pipeline, device="cpu")
    plain = pipe.generate("a red ball", seed=0, frames=5, steps=2)
    guide = build_dit("tiny", in_channels=pipe.dit.cfg.in_channels, text_dim=384, dim=32, depth=1, heads=2)
    with torch.no_grad():
        for p in guide.parameters():
            p.normal_(0, 0.05)
    pipe.guide, pipe.cfg.autoguidance = guide, 1.0
    pipe.save(tmp_path / "guided")
    assert (tmp_path / "guided" / "guide" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "guided" / "model_index.json").read_text())["guide"] == "guide"
    back = Pipeline.load(tmp_path / "guided", device="cpu")
    assert back.guide is not None and back.cfg.autoguidance == 1.0 and back.guide.cfg.dim == 32
    guided = back.generate("a red ball", seed=0, frames=5, steps=2)
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)
    back.cfg.autoguidance = 0.0  # off: the guide is not called, the video is the plain one
    assert np.array_equal(back.generate("a red ball", seed=0, frames=5, steps=2), plain)
    out = tmp_path / "v.mp4"
    for a in ("0", None):  # --autoguidance 0 turns it off; by default the folder's weight (1.0)
        argv = ["generate", "a red ball", "--model", str(tmp_path / "guided"), "--frames", "5", "--steps", "2", "--no-expand",
                "-o", str(out), "--quiet"] + (["--autoguidance", a] if a else [])
        assert main(argv) == 0
        assert json.loads(out.with_suffix(".json").read_text())["autoguidance"] == (0.0 if a else 1.0)

    wrong = build_dit("tiny", in_channels=pipe.dit.cfg.in_channels + 1, text_dim=384)
    with pytest.raises(ValueError, match="guide transformer must take"):
        Pipeline(pipe.vae, pipe.dit, pipe.text, pipe.cfg, torch.device("cpu"), wrong)
    with pytest.raises(ValueError, match="must be 0 .off. or more"):
        Pipeline(pipe.vae, pipe.dit, pipe.text, type(pipe.cfg)(autoguidance=-1.0), torch.device("cpu"), guide)
    shutil.rmtree(tmp_path / "guided" / "guide")
    with pytest.raises(ValueError, match="autoguidance=1.0 needs a guide transformer"):
        Pipeline.load(tmp_path / "guided", device="cpu")


def test_a_folder_with_a_bad_caption_token_count_is_refused_in_one_line(tiny_pipeline, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_pipeline, bad)
    conf = (bad / "pipeline.yaml").read_text()
    assert "max_text_tokens: 77" in conf
    (bad / "pipeline.yaml").write_text(conf.replace("max_text_tokens: 77", "max_text_tokens: 0"))
    assert main(["generate", "a red ball", "-o", str(tmp_path / "v.mp4"), "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "max_text_tokens: 2 to 512" in err and "got 0" in err and "Traceback" not in err
    assert not (tmp_path / "v.mp4").exists()
