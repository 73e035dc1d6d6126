"""`tenku train dit` from a Wan folder (init=): a full fine-tune of its transformer on its own
autoencoder and text encoder; the loss falls on a tiny run, a resumed run equals a straight
one, and the exported pipeline/ is a Wan folder that tenku and diffusers both read."""

import json

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
            "log_every=1", f"cache={cache}", "lr=1e-3", "warmup=1", "device=cpu"]
    return load_train_config(None, over + [f"{k}={v}" for k, v in kw.items()])


def test_config_takes_the_folders_parts(tmp_path, tiny_world, wan21, cache):
    c = cfg(tmp_path / "r", tiny_world, wan21[0], cache)
    assert c.vae == str(wan21[0]) and c.text_encoder == str(wan21[0] / "text_encoder") and c.max_text_tokens == 512
    assert c.model["qk_norm"] == "across" and c.model["text_dim"] == 32


def test_fine_tune_resumes_exactly_and_exports_a_wan_folder(tmp_path, tiny_world, wan21, cache):
    straight = cfg(tmp_path / "a", tiny_world, wan21[0], cache, steps=2)
    train(straight, progress=False)
    split = cfg(tmp_path / "b", tiny_world, wan21[0], cache, steps=2)
    train(split, progress=False, stop_after=1)
    train(split, progress=False)
    a, b = load_dit(tmp_path / "a" / "ckpt"), load_dit(tmp_path / "b" / "ckpt")
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    out = tmp_path / "a" / "pipeline"
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "WanPipeline"
    assert Pipeline.load(out, device="cpu").dit.final.weight.dtype == torch.bfloat16  # a Wan folder's default
    pipe = load_wan(out, "cpu", compute="fp32")
    ema = load_dit(tmp_path / "a" / "ckpt" / "ema").state_dict()
    assert all(torch.equal(x, ema[k]) for k, x in pipe.dit.state_dict().items())


def test_loss_falls(tmp_path, tiny_world, wan21, cache):
    c = cfg(tmp_path / "r", tiny_world, wan21[0], cache, steps=24, **{"cond.image_prob": 0.0})
    train(c, progress=False)
    loss = [json.loads(x)["loss"] for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert sum(loss[-6:]) / 6 < 0.9 * sum(loss[:6]) / 6
