from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tenku.cli import main
from tenku.train.checkpoint import load_optimizer, save_optimizer
from tenku.train.vae import load_train_config, train
from tenku.vae import load_vae

CONFIG = Path(__file__).parents[2] / "configs" / "vae-world.yaml"
DIT_CONFIG = Path(__file__).parents[2] / "configs" / "tenku-world.yaml"


def tiny(world: Path, out: Path, *extra: str) -> list[str]:
    return [f"out={out}", "preset=tiny", "model.latent_channels=4", f"data.train=[{world}]", f"data.val={world}",
            "data.val_count=2", "data.crop=32", "data.max_frames=9", "data.batch_frames=6", "stats_clips=2",
            "steps=6", "warmup=2", "log_every=1", "sample_every=3", "eval_every=3", "ckpt_every=3",
            "threads=1", *extra]  # one thread: tiny models gain nothing from two, and a busy machine hurts less


def test_cli_smoke(world_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "vae", "--config", str(CONFIG), "--quiet", *tiny(world_dir, out, "loss.motion=0.5", "best_on=psnr_moving")]) == 0
    assert "done: step 6" in capsys.readouterr().out
    model = load_vae(out / "ckpt")  # the checkpoint is a loadable VAE folder with latent statistics
    assert len(model.cfg.latent_mean) == 4 and min(model.cfg.latent_std) > 0
    state = json.loads((out / "ckpt" / "state.json").read_text())
    assert state["step"] == 6
    best = json.loads((out / "best" / "metrics.json").read_text())  # best held-out PSNR, a publishable folder
    assert best["psnr_moving"] == state["best_psnr"] and load_vae(out / "best").cfg.latent_std  # best_on=psnr_moving
    lines = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert any("val_psnr" in r and "val_psnr_moving" in r for r in lines)
    assert all("motion" in r for r in lines if "loss" in r)
    assert {p.name for p in (out / "samples").iterdir()} >= {"step-0000003.mp4", "step-0000003.png", "step-0000006.mp4"}
    z = model.encode(torch.zeros(1, 3, 5, 32, 32))
    assert z.shape == (1, 4, 2, 4, 4)


def test_cli_errors(world_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "vae", "--config", str(CONFIG), "bogus=1"]) == 2
    assert main(["train", "vae", "--config", str(CONFIG), "data.train=[/no/such/dir]"]) == 2
    assert main(["train", "vae", "--config", str(CONFIG), f"data.train=[{world_dir}]", "data.crop=100"]) == 2
    assert main(["train", "vae", "--config", str(CONFIG), "best_on=ssim"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "best_on: psnr or psnr_moving" in err[3] and "unknown config key bogus" in err[0] and "no such data folder" in err[1] and "multiple of" in err[2]
    (tmp_path / "file").write_text("x")
    for kind, data in (("vae", f"data.train=[{world_dir}] data.val={world_dir}"), ("dit", f"data=[{world_dir}]")):  # out= a file: said before training
        assert main(["train", kind, "--config", str(CONFIG) if kind == "vae" else str(DIT_CONFIG), *data.split(),
                     f"out={tmp_path / 'file'}"]) == 2
        assert capsys.readouterr().err.strip() == f"tenku train {kind}: error: out={tmp_path / 'file'} exists and is not a folder"


def test_resume_is_exact(world_dir: Path, tmp_path: Path) -> None:
    straight = load_train_config(CONFIG, tiny(world_dir, tmp_path / "a", "steps=4", "data.val="))
    train(straight, progress=False)
    halves = load_train_config(CONFIG, tiny(world_dir, tmp_path / "b", "steps=4", "data.val="))
    train(halves, progress=False, stop_after=2)
    assert json.loads((tmp_path / "b" / "ckpt" / "state.json").read_text())["step"] == 2
    train(halves, progress=False)
    a, b = load_vae(tmp_path / "a" / "ckpt").state_dict(), load_vae(tmp_path / "b" / "ckpt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_loss_falls(world_dir: Path, tmp_path: Path) -> None:
    cfg = load_train_config(CONFIG, tiny(world_dir, tmp_path / "c", "steps=30", "lr=3e-3", "min_lr=1e-3", "data.val=",
                                         "sample_every=1000", "ckpt_every=1000", "data.image_prob=0"))
    train(cfg, progress=False)
    losses = [json.loads(s)["loss"] for s in (tmp_path / "c" / "log.jsonl").read_text().splitlines()]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_optimizer_state_round_trip(tmp_path: Path) -> None:
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([p], lr=1e-2)
    for _ in range(3):
        p.sum().backward()
        opt.step()
    save_optimizer(opt, tmp_path / "o.safetensors")
    opt2 = torch.optim.AdamW([torch.nn.Parameter(p.detach().clone())], lr=5.0)
    load_optimizer(opt2, tmp_path / "o.safetensors")
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert all(torch.equal(s1["state"][0][k], s2["state"][0][k]) for k in s1["state"][0])
    with pytest.raises(ValueError, match="not a"):
        load_optimizer(opt2, tmp_path / "missing.safetensors")


def test_decoder_only_fine_tune(world_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """freeze_encoder keeps the latent space bit-exact (weights and statistics) while the decoder trains."""
    train(load_train_config(CONFIG, tiny(world_dir, tmp_path / "base", "steps=3", "data.val=")), progress=False)
    start = load_vae(tmp_path / "base" / "ckpt")
    cfg = load_train_config(CONFIG, tiny(world_dir, tmp_path / "dec", "steps=3", "data.val=",
                                         f"init={tmp_path / 'base' / 'ckpt'}", "freeze_encoder=true"))
    train(cfg, progress=False)
    done = load_vae(tmp_path / "dec" / "ckpt")
    a, b = start.state_dict(), done.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("encoder."))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("decoder."))
    assert done.cfg.latent_mean == start.cfg.latent_mean and done.cfg.latent_std == start.cfg.latent_std
    assert main(["train", "vae", "--config", str(CONFIG), *tiny(world_dir, tmp_path / "x"), "freeze_encoder=true"]) == 2
    assert main(["train", "vae", "--config", str(CONFIG), *tiny(world_dir, tmp_path / "y"), "model.latent_channels=8",
                 f"init={tmp_path / 'base' / 'ckpt'}"]) == 2
    err = capsys.readouterr().err
    assert "needs init=" in err and "another shape (latent_channels=4)" in err
