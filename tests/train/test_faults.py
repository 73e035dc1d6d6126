"""Fault tolerance: a run SIGKILLed in the middle of a checkpoint write, resumed, SIGKILLed
again between checkpoints, and resumed with --resume auto gives exactly the losses and
weights of an uninterrupted run (CPU, one thread). Non-finite losses skip the update and
a run of them stops training."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import tenku.train.dit as dit
from tenku.train.checkpoint import complete_checkpoints
from tenku.train.dit import load_train_config, train


def overrides(out, world, vae, cache, **kw):
    base = {"data": f"[{world}]", "vae": vae, "size": "tiny", "batch_size": 4, "steps": 6, "out": out, "cache": cache,
            "sample_every": 0, "ckpt_every": 2, "keep_checkpoints": 2, "log_every": 1, "lr": 1e-3, "warmup": 1,
            "threads": 1, "peak_tflops": 1, **kw}
    return [f"{k}={v}" for k, v in base.items()]


def launch(args, hold=None):
    """The run in a process of its own (resume=auto), parked at ``hold`` if given (fault_run.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(Path(__file__).parent / "fault_run.py"), hold or "-", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_when_held(proc, out, timeout=90):
    """Wait until the run parks at its hold point, then SIGKILL it."""
    held = out / ".held"
    t0 = time.time()
    while not held.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before the hold point:\n{proc.stdout.read()[-3000:]}")
        assert time.time() - t0 < timeout, "run never reached the hold point"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    held.unlink()


def log(run):
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]


def test_sigkill_during_checkpoint_and_between_checkpoints_then_resume_is_exact(tmp_path, tiny_world, tiny_vae):
    cache = tmp_path / "cache"
    train(load_train_config(None, overrides(tmp_path / "straight", tiny_world, tiny_vae, cache)), progress=False)
    straight = {r["step"]: r["loss"] for r in log(tmp_path / "straight")}
    assert sorted(straight) == [1, 2, 3, 4, 5, 6]

    out = tmp_path / "faulty"
    args = overrides(out, tiny_world, tiny_vae, cache)
    # 1. killed while writing the step-4 checkpoint (weights written, optimizer not yet)
    p = launch(args, hold="ckpt:4")
    kill_when_held(p, out)
    assert (out / "checkpoints" / ".tmp-step-0000004" / "model.safetensors").exists()  # the torn folder
    assert [c.name for c in complete_checkpoints(out)] == ["step-0000002"]
    first = {r["step"]: r["loss"] for r in log(out)}
    assert first == {s: straight[s] for s in (1, 2, 3, 4)}  # steps past the checkpoint were trained too, and lost
    # 2. resumed from step 2 (the torn step-4 folder is ignored), killed after step 5, between checkpoints
    p = launch(args, hold="step:5")
    kill_when_held(p, out)
    assert [c.name for c in complete_checkpoints(out)] == ["step-0000002", "step-0000004"]
    assert not (out / "checkpoints" / ".tmp-step-0000004").exists()
    # 3. resumed from step 4 to the end
    p = launch(args)
    assert p.wait(timeout=120) == 0, p.stdout.read()[-3000:]

    rows = log(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # replayed steps replace the lost ones in the log
    assert [r["loss"] for r in rows] == [straight[s] for s in range(1, 7)]  # exactly, not approximately
    a, b = load_file(str(tmp_path / "straight" / "ckpt" / "model.safetensors")), load_file(str(out / "ckpt" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    ea = load_file(str(tmp_path / "straight" / "ckpt" / "ema" / "model.safetensors"))
    eb = load_file(str(out / "ckpt" / "ema" / "model.safetensors"))
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    assert [c.name for c in complete_checkpoints(out)] == ["step-0000004", "step-0000006"]  # keep_checkpoints=2
    state = json.loads((out / "ckpt" / "state.json").read_text())
    assert state["step"] == 6 and {"epoch", "batch"} <= set(state) and (out / "ckpt" / "rng" / "rank-00000.safetensors").exists()


def test_resume_none_starts_fresh_and_keep_checkpoints_below_two_is_refused(tmp_path, tiny_world, tiny_vae, capsys):
    with pytest.raises(ValueError, match="keep_checkpoints"):
        load_train_config(None, overrides(tmp_path, tiny_world, tiny_vae, tmp_path / "c", keep_checkpoints=1))
    cfg = load_train_config(None, overrides(tmp_path / "r", tiny_world, tiny_vae, tmp_path / "c", steps=2, ckpt_every=1))
    train(cfg, progress=False)
    train(cfg, progress=False)  # auto: the run is complete, nothing to do
    cfg.resume = "none"
    train(cfg, progress=False, stop_after=1)  # trains step 1 again, and its log starts over
    said = capsys.readouterr().out
    assert said.count("from scratch") == 2 and said.count("resuming") == 1
    assert [r["step"] for r in log(tmp_path / "r")] == [1]
    # the old run's step 2 belongs to the abandoned timeline: gone, so resume=auto cannot pick it up
    assert [c.name for c in complete_checkpoints(tmp_path / "r")] == ["step-0000001"]


def test_non_finite_losses_skip_updates_and_a_run_of_them_stops(tmp_path, tiny_world, tiny_vae, monkeypatch):
    real = dit.flow_loss_sum
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * float("nan") if calls["n"] in bad else loss

    monkeypatch.setattr(dit, "flow_loss_sum", flaky)
    bad = {2, 3}
    cfg = load_train_config(None, overrides(tmp_path / "a", tiny_world, tiny_vae, tmp_path / "c", steps=5, ckpt_every=1))
    train(cfg, progress=False)
    rows = log(tmp_path / "a")
    assert [r["skipped"] for r in rows] == [0, 1, 2, 2, 2]
    w2 = load_file(str(tmp_path / "a" / "checkpoints" / "step-0000004" / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in w2.values())  # the NaN never reached the weights

    calls["n"], bad = 0, set(range(2, 100))
    cfg = load_train_config(None, overrides(tmp_path / "b", tiny_world, tiny_vae, tmp_path / "c", steps=20, max_bad_steps=3))
    with pytest.raises(RuntimeError, match="3 non-finite updates in a row"):
        train(cfg, progress=False)


def test_geometry_that_the_patch_cannot_tile_is_a_clear_error(tmp_path, tiny_world, tiny_vae):
    from tenku.config import ConfigError

    # tiny world latents are 8x8: a 3x3 patch cannot tile them
    cfg = load_train_config(None, overrides(tmp_path / "g", tiny_world, tiny_vae, tmp_path / "c", **{"model": "{patch: [1, 3, 3]}"}))
    with pytest.raises(ConfigError, match="does not tile"):
        train(cfg, progress=False)
    cfg = load_train_config(None, overrides(tmp_path / "g", tiny_world, tiny_vae, tmp_path / "c", sample_every=1, **{"sample.size": "[40,40]"}))
    with pytest.raises(ConfigError, match="sample.size"):
        train(cfg, progress=False)


def test_a_checkpoint_of_the_older_single_folder_layout_resumes(tmp_path, tiny_world, tiny_vae):
    """Runs started before step folders (out/ckpt/ a plain folder) resume and move to the new layout."""
    import shutil

    straight = load_train_config(None, overrides(tmp_path / "a", tiny_world, tiny_vae, tmp_path / "c", steps=4, ckpt_every=100))
    train(straight, progress=False)
    old = load_train_config(None, overrides(tmp_path / "b", tiny_world, tiny_vae, tmp_path / "c", steps=4, ckpt_every=100))
    train(old, progress=False, stop_after=2)
    ck = tmp_path / "b" / "ckpt"
    target = ck.resolve()
    ck.unlink()
    shutil.move(target, ck)  # what an older tenku left: a real ckpt/ folder and no checkpoints/
    shutil.rmtree(tmp_path / "b" / "checkpoints")
    train(old, progress=False)
    assert [r["loss"] for r in log(tmp_path / "b")] == [r["loss"] for r in log(tmp_path / "a")]
    assert [c.name for c in complete_checkpoints(tmp_path / "b")] == ["step-0000002", "step-0000004"]
    assert (tmp_path / "b" / "ckpt").is_symlink()
