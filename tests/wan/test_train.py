"""`tenku train dit` from a Wan folder (init=): a full fine-tune of its transformer on its own
autoencoder and text encoder; the loss falls on a tiny run, a resumed run equals a straight
one (in one process, and under FSDP2 on two), and the exported pipeline/ is a Wan folder that
tenku and diffusers both read."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tenku.dit.model import load_dit
from tenku.pipeline import Pipeline
from tenku.train.dit import load_train_config, train
from tenku.wan import load_wan


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One latent cache for the module's runs (same data, autoencoder and text encoder)."""
    return tmp_path_factory.mktemp("wan-cache")


def cfg(tmp, world, wan, cache, **kw):
    over = [f"data=[{world}]", f"init={wan}", "batch_size=4", f"out={tmp}", "sample_every=0", "ckpt_every=1000",
            "log_every=1", f"cache={cache}", "lr=1e-3", "warmup=1", "device=cpu", "bf16=false"]  # fp32: ranks compare
    return load_train_config(None, over + [f"{k}={v}" for k, v in kw.items()])


def test_config_takes_the_folders_parts(tmp_path, tiny_world, wan21, cache):
    c = cfg(tmp_path / "r", tiny_world, wan21[0], cache)
    assert c.vae == str(wan21[0]) and c.text_encoder == str(wan21[0] / "text_encoder") and c.max_text_tokens == 512
    assert c.model["qk_norm"] == "across" and c.model["text_dim"] == 32


@pytest.fixture(scope="module")
def straight(tmp_path_factory, tiny_world, wan21, cache):
    """A 2-step fine-tune in one process, the reference of the resumed and the sharded runs."""
    out = tmp_path_factory.mktemp("wan-train") / "a"
    train(cfg(out, tiny_world, wan21[0], cache, steps=2), progress=False)
    return out


def losses(run):
    return [json.loads(x)["loss"] for x in (run / "log.jsonl").read_text().splitlines()]


def test_fine_tune_resumes_exactly_and_exports_a_wan_folder(tmp_path, tiny_world, wan21, cache, straight):
    split = cfg(tmp_path / "b", tiny_world, wan21[0], cache, steps=2)
    train(split, progress=False, stop_after=1)
    train(split, progress=False)
    a, b = load_dit(straight / "ckpt"), load_dit(tmp_path / "b" / "ckpt")
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    out = straight / "pipeline"
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "WanPipeline"
    assert Pipeline.load(out, device="cpu").dit.final.weight.dtype == torch.bfloat16  # a Wan folder's default
    pipe = load_wan(out, "cpu", compute="fp32")
    ema = load_dit(straight / "ckpt" / "ema").state_dict()
    assert all(torch.equal(x, ema[k]) for k, x in pipe.dit.state_dict().items())


def test_fsdp_two_ranks_with_a_sharded_resume_equal_one_process(tmp_path, tiny_world, wan21, cache, straight):
    """FSDP2 on 2 CPU processes (gloo, torchrun as in tests/train/test_distributed.py): step 1,
    a sharded checkpoint, then a resumed step 2 give the one-process run's losses and EMA."""
    out = tmp_path / "fsdp"
    args = [f"data=[{tiny_world}]", f"init={wan21[0]}", "batch_size=4", "steps=2", f"out={out}", "sample_every=0",
            "ckpt_every=1000", "log_every=1", f"cache={cache}", "lr=1e-3", "warmup=1", "device=cpu", "threads=1",
            "bf16=false", "parallel.mode=fsdp"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "tenku.train",
           "dit", "--quiet", *args]
    for extra in (["--stop-after", "1"], []):
        r = subprocess.run(cmd + extra, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert json.loads((out / "checkpoints" / "step-0000001" / "state.json").read_text())["mode"] == "fsdp"
    assert losses(out) == pytest.approx(losses(straight), rel=1e-5)
    assert losses(out)[1] < losses(out)[0]
    ours, ref = (load_wan(run / "pipeline", "cpu", compute="fp32").dit.state_dict() for run in (out, straight))
    assert all(torch.allclose(x, ref[k], atol=1e-5, rtol=0) for k, x in ours.items())


def test_loss_falls(tmp_path, tiny_world, wan21, cache):
    c = cfg(tmp_path / "r", tiny_world, wan21[0], cache, steps=24, **{"cond.image_prob": 0.0})
    train(c, progress=False)
    loss = [json.loads(x)["loss"] for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert sum(loss[-6:]) / 6 < 0.9 * sum(loss[:6]) / 6
