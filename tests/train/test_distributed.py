"""Two processes on CPU with gloo (torchrun, the real entry point) train the same weights as one
process with the same global batch: DDP with gradient accumulation, and FSDP2 across a
sharded checkpoint and resume."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tenku.data.sampler import BucketSampler
from tenku.train.dit import load_train_config, train

STEPS = 3


def overrides(out, world, vae, cache, **kw):
    base = {"data": f"[{world}]", "vae": vae, "size": "tiny", "batch_size": 4, "steps": STEPS, "out": out, "cache": cache,
            "sample_every": 0, "ckpt_every": 1000, "log_every": 1, "lr": 1e-3, "warmup": 1, "bf16": "false",
            "threads": 1, "peak_tflops": 1, **kw}
    return [f"{k}={v}" for k, v in base.items()]


def torchrun(nproc, args, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "tenku.train", "dit", "--quiet", *args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_world, tiny_vae):
    """The one-process reference run (it also builds the latent cache the others reuse)."""
    root = tmp_path_factory.mktemp("dist")
    cache = root / "cache"
    train(load_train_config(None, overrides(root / "one", tiny_world, tiny_vae, cache)), progress=False)
    return root, cache


def losses(run, key="loss"):
    return [json.loads(x)[key] for x in (run / "log.jsonl").read_text().splitlines()]


def assert_same_weights(a, b, tol):
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    moved = 0.0
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=tol, rtol=0), (k, (wa[k] - wb[k]).abs().max().item())
        moved = max(moved, (wa[k] - wb[k]).abs().max().item())
    return moved


def test_ddp_two_processes_with_accumulation_equal_one_process(single, tiny_world, tiny_vae, monkeypatch):
    from tenku.cli import main

    root, cache = single
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # `tenku train dit --nproc 2` re-launches itself under torchrun (DDP, the default mode)
    assert main(["train", "dit", "--nproc", "2", "--quiet", *overrides(root / "ddp", tiny_world, tiny_vae, cache,
                                                                       **{"parallel.grad_accum": 2})]) == 0
    assert losses(root / "ddp") == pytest.approx(losses(root / "one"), rel=1e-5)
    assert losses(root / "ddp", "grad_norm") == pytest.approx(losses(root / "one", "grad_norm"), rel=1e-4)  # same gradient scale
    assert_same_weights(root / "one" / "ckpt", root / "ddp" / "ckpt", 1e-5)
    ema_a, ema_b = load_file(str(root / "one/pipeline/transformer/model.safetensors")), load_file(str(root / "ddp/pipeline/transformer/model.safetensors"))
    assert all(torch.allclose(ema_a[k], ema_b[k], atol=1e-5) for k in ema_a)
    assert json.loads((root / "ddp" / "ckpt" / "state.json").read_text())["world"] == 2


@pytest.fixture(scope="module")
def fsdp_half(single, tiny_world, tiny_vae):
    """Two FSDP2 processes (activation checkpointing, 2 micro-steps) train 2 of the 3 steps and stop with a sharded checkpoint."""
    root, cache = single
    args = overrides(root / "fsdp", tiny_world, tiny_vae, cache, **{"parallel.mode": "fsdp", "parallel.activation_checkpoint": "true",
                                                                     "parallel.grad_accum": 2})
    torchrun(2, args + ["--stop-after", "2"])
    ck = root / "fsdp" / "checkpoints" / "step-0000002"
    state = json.loads((ck / "state.json").read_text())
    assert state["mode"] == "fsdp" and state["step"] == 2 and state["world"] == 2
    assert sorted(p.name for p in (ck / "sharded").glob("*.safetensors"))  # torch.distributed.checkpoint shards, safetensors
    assert losses(root / "fsdp") == pytest.approx(losses(root / "one")[:2], rel=1e-5)
    return args


def resume_copy(root, name, args):
    shutil.copytree(root / "fsdp", root / name, symlinks=True)
    return [a if not a.startswith("out=") else f"out={root / name}" for a in args]


def test_fsdp_two_processes_with_sharded_resume_equal_one_process(single, fsdp_half):
    root, _ = single
    torchrun(2, resume_copy(root, "fsdp2", fsdp_half))  # resume=auto picks step 2 up from the shards
    assert losses(root / "fsdp2") == pytest.approx(losses(root / "one"), rel=1e-5)
    assert losses(root / "fsdp2", "grad_norm") == pytest.approx(losses(root / "one", "grad_norm"), rel=1e-4)
    # the sharded run exports its EMA weights gathered: compare them with the one-process EMA
    assert_same_weights(root / "one" / "pipeline" / "transformer", root / "fsdp2" / "pipeline" / "transformer", 1e-5)


def test_fsdp_checkpoint_of_two_ranks_resumes_on_one(single, fsdp_half):
    root, _ = single
    torchrun(1, resume_copy(root, "fsdp1", fsdp_half))  # the shards are re-split for a world of one
    assert losses(root / "fsdp1") == pytest.approx(losses(root / "one"), rel=1e-5)
    assert_same_weights(root / "one" / "pipeline" / "transformer", root / "fsdp1" / "pipeline" / "transformer", 1e-5)


def test_bucket_sampler_gives_every_rank_equal_work_and_covers_each_epoch():
    buckets = {(4, 3, 8, 8): list(range(10)), (4, 1, 8, 8): list(range(10, 13)), (4, 3, 8, 16): list(range(13, 30))}
    s = BucketSampler(buckets, 4, seed=1)
    seen = set()
    for step in range(s.per_epoch):
        b = s.global_batch(step)
        assert len(b) == 4 and len({tuple(next(k for k, v in buckets.items() if i in v)) for i in b}) == 1  # one shape
        parts = [b[BucketSampler.split(4, r, 2, 2, m)] for r in range(2) for m in range(2)]
        assert [len(p) for p in parts] == [1, 1, 1, 1] and sum(parts, []) == b
        seen |= set(b)
    assert seen == set(range(30))  # every sample at least once an epoch
    assert s.global_batch(s.per_epoch) != s.global_batch(0) or s.per_epoch == 1  # a new shuffle next epoch
    assert BucketSampler(buckets, 4, seed=1).global_batch(7) == s.global_batch(7)  # a function of the step


def test_vae_trains_on_two_ddp_ranks_with_the_discriminator(tmp_path, tiny_world):
    """The autoencoder under torchrun: rank 0 draws the single-process batch, rank 1 its own,
    and the averaged update differs from the single-process one (rank 1's clips count)."""
    from tenku.train.vae import load_train_config as vae_config, train as train_vae
    from tenku.vae import load_vae

    over = ["preset=tiny", "model.latent_channels=4", f"data.train=[{tiny_world}]", "data.crop=32", "data.max_frames=5",
            "data.batch_frames=10", "stats_clips=2", "steps=3", "warmup=1", "log_every=1", "sample_every=100",
            "eval_every=100", "ckpt_every=100", "threads=1", "data.image_prob=0", "loss.gan_weight=0.1", "loss.gan_start=0"]
    train_vae(vae_config(None, over + [f"out={tmp_path / 'one'}"]), progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "tenku.train", "vae",
           "--quiet", *over, f"out={tmp_path / 'two'}"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    one = [json.loads(x) for x in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in two] == [1, 2, 3]
    assert two[0]["loss"] == pytest.approx(one[0]["loss"], rel=1e-5)  # same start, same rank-0 batch
    assert two[0]["gnorm"] != pytest.approx(one[0]["gnorm"], rel=1e-3)  # the gradient is the 2-rank average
    a, b = load_vae(tmp_path / "one" / "ckpt").state_dict(), load_vae(tmp_path / "two" / "ckpt").state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "two" / "ckpt" / "disc.safetensors").exists()


def test_compiled_blocks_train_the_same_weights(single, tiny_world, tiny_vae, monkeypatch):
    """parallel.compile=true (torch.compile of each block, what a GPU run uses to cut kernel
    launches) changes neither the checkpoint's names nor, beyond rounding, the weights. The
    graphs are traced and differentiated as in a real run; the aot_eager backend skips only
    the kernel code generation (minutes of C++ compiling on a cold CPU cache)."""
    compile_ = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compile_(self, backend="aot_eager", **kw))
    root, cache = single
    from torch._dynamo.utils import counters

    counters.clear()
    train(load_train_config(None, overrides(root / "compiled", tiny_world, tiny_vae, cache, **{"parallel.compile": "true"})),
          progress=False)
    assert counters["stats"]["unique_graphs"] >= 1  # the blocks did run as compiled graphs
    ref, got = losses(root / "one"), losses(root / "compiled")
    assert len(got) == STEPS and all(abs(a - b) < 1e-4 for a, b in zip(ref, got)), (ref, got)
    assert_same_weights(root / "one" / "ckpt", root / "compiled" / "ckpt", 1e-5)


def test_shape_head_on_two_ranks_and_compiled_blocks_equals_one_process(single, tiny_world, tiny_vae, monkeypatch):
    """The shape head is outside DDP and FSDP: its gradients are averaged by hand, so two ranks
    (DDP with two micro-steps each, or FSDP) train the same head and model as one process; and
    it reads the stream between blocks, so compiled blocks (a GPU run's setting) feed it the same."""
    from tenku.train.shape_head import WEIGHTS

    root, cache = single
    head = {"shape_head": 1.0, "lr": 3e-3}
    train(load_train_config(None, overrides(root / "head1", tiny_world, tiny_vae, cache, **head)), progress=False)
    torchrun(2, overrides(root / "head2", tiny_world, tiny_vae, cache, **head, **{"parallel.grad_accum": 2}))
    torchrun(2, overrides(root / "headf", tiny_world, tiny_vae, cache, **head, **{"parallel.mode": "fsdp"}))
    compile_ = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compile_(self, backend="aot_eager", **kw))
    train(load_train_config(None, overrides(root / "headc", tiny_world, tiny_vae, cache, **head,
                                            **{"parallel.compile": "true"})), progress=False)
    ref = load_file(str(root / "head1" / "ckpt" / WEIGHTS))
    assert ref["weight"].abs().max() > 0  # the head has learnt something to compare
    for run in ("head2", "headc", "headf"):
        assert losses(root / run) == pytest.approx(losses(root / "head1"), rel=1e-5)
        # whole under FSDP too, whose checkpoint holds shards. At this lr, with the head's loss,
        # Adam turns the ranks' reordered sums into weight differences of up to 8e-6 (measured
        # over repeated runs; 1e-5 flaked); without the hand averaging they reach 6e-3
        export = ("pipeline", "transformer")
        assert_same_weights(root.joinpath("head1", *export), root.joinpath(run, *export), 1e-4)
        got = load_file(str(root / run / "ckpt" / WEIGHTS))
        assert all(torch.allclose(ref[k], got[k], atol=1e-5) for k in ref), run


def test_grounding_on_two_ranks_ddp_and_fsdp_equals_one_process(single, tiny_world, tiny_vae):
    """Grounded training (model.grounding; some samples without a layout, so a rank may leave the
    grounding unused) trains the same weights on two DDP or FSDP ranks as in one process."""
    root, cache = single
    g = {"model.grounding": "cross", "model.grounding_dim": 32, "layout.dropout": 0.5, "layout.lr_mult": 10.0, "steps": 4}
    train(load_train_config(None, overrides(root / "g1", tiny_world, tiny_vae, cache, **g)), progress=False)
    torchrun(2, overrides(root / "g2", tiny_world, tiny_vae, cache, **g))
    torchrun(2, overrides(root / "gf", tiny_world, tiny_vae, cache, **g, **{"parallel.mode": "fsdp"}))
    gate = load_file(str(root / "g1" / "pipeline" / "transformer" / "model.safetensors"))["grounding.blocks.0.gate"]
    assert gate.abs().max() > 0  # the pathway opened, so its gradients were compared too
    for run in ("g2", "gf"):
        assert losses(root / run) == pytest.approx(losses(root / "g1"), rel=1e-5)
        assert_same_weights(root / "g1" / "pipeline" / "transformer", root / run / "pipeline" / "transformer", 1e-5)
