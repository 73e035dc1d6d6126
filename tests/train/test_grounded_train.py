"""Grounded training (model.grounding): layouts from the world's ground truth, resumed exactly,
started from an ungrounded run with the gates closed, the loss logged with and without layout."""

import json

import pytest
import torch

from tenku.config import ConfigError
from tenku.dit.model import load_dit
from tenku.train.dit import load_train_config, train


def cfg(tmp, world, vae, **kw):
    over = [f"data=[{world}]", f"vae={vae}", "size=tiny", "batch_size=4", f"out={tmp}", "sample_every=0",
            "ckpt_every=1000", "log_every=2", f"cache={tmp.parent / 'cache'}", "lr=1e-3", "warmup=1"]
    return load_train_config(None, over + [f"{k}={v}" for k, v in kw.items()])


def test_grounded_run_resumes_exactly_from_an_ungrounded_init(tmp_path, tiny_world, tiny_vae):
    train(cfg(tmp_path / "free", tiny_world, tiny_vae, steps=2), progress=False)
    kw = {"model.grounding": "cross", "model.grounding_dim": 32, "init": tmp_path / "free" / "ckpt",
          "layout.dropout": 0.5, "layout.lr_mult": 5.0, "steps": 4}
    train(cfg(tmp_path / "a", tiny_world, tiny_vae, **kw), progress=False)
    b = cfg(tmp_path / "b", tiny_world, tiny_vae, **kw)
    train(b, progress=False, stop_after=2)
    train(b, progress=False)
    ma, mb = load_dit(tmp_path / "a" / "ckpt"), load_dit(tmp_path / "b" / "ckpt")
    assert ma.cfg.grounding == "cross"
    for (k, x), (_, y) in zip(ma.state_dict().items(), mb.state_dict().items()):
        assert torch.equal(x, y), k
    assert float(ma.grounding.blocks[0].gate.detach().abs()) > 0  # the gates opened
    logs = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert {"loss_layout", "loss_free"} <= set().union(*logs)


def test_bad_layout_settings_are_clear_errors(tmp_path, tiny_world, tiny_vae):
    for kw in ({"layout.dropout": 1.5}, {"layout.lr_mult": 0}, {"layout.base_lr_mult": -1}):
        with pytest.raises(ConfigError, match="layout.dropout must be in"):
            cfg(tmp_path / "x", tiny_world, tiny_vae, **kw)


def test_a_frozen_base_keeps_the_free_model_and_trains_the_grounding(tmp_path, tiny_world, tiny_vae):
    train(cfg(tmp_path / "free", tiny_world, tiny_vae, steps=2), progress=False)
    kw = {"model.grounding": "cross", "model.grounding_dim": 32, "init": tmp_path / "free" / "ckpt", "layout.base_lr_mult": 0,
          "steps": 3}
    train(cfg(tmp_path / "g", tiny_world, tiny_vae, **kw), progress=False)
    base, got = load_dit(tmp_path / "free" / "ckpt" / "ema"), load_dit(tmp_path / "g" / "ckpt")
    weights = got.state_dict()
    assert all(torch.equal(v, weights[k]) for k, v in base.state_dict().items())
    assert float(got.grounding.blocks[0].gate.detach().abs()) > 0
