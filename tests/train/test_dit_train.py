"""DiT training: the loss falls on a tiny run, checkpoints resume exactly, the pipeline loads."""

import json
from pathlib import Path

import pytest
import torch

from tenku.config import ConfigError
from tenku.dit.model import load_dit
from tenku.pipeline import Pipeline
from tenku.train.conditions import ConditionConfig, draw_condition_masks
from tenku.train.dit import load_train_config, train


def cfg(tmp, world, vae, **kw):
    over = [f"data=[{world}]", f"vae={vae}", "size=tiny", "batch_size=4", f"out={tmp}", "sample_every=0",
            "ckpt_every=1000", "log_every=1", f"cache={tmp.parent / 'cache'}", "lr=1e-3", "warmup=1"]
    return load_train_config(None, over + [f"{k}={v}" for k, v in kw.items()])


def test_resume_is_exact(tmp_path, tiny_world, tiny_vae):
    straight = cfg(tmp_path / "a", tiny_world, tiny_vae, steps=4)
    train(straight, progress=False)
    split = cfg(tmp_path / "b", tiny_world, tiny_vae, steps=4)
    train(split, progress=False, stop_after=2)
    assert json.loads((tmp_path / "b" / "ckpt" / "state.json").read_text())["step"] == 2
    train(split, progress=False)
    a, b = load_dit(tmp_path / "a" / "ckpt"), load_dit(tmp_path / "b" / "ckpt")
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    logs = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2, 3, 4]
    Pipeline.load(tmp_path / "a" / "pipeline", device="cpu")  # the EMA pipeline is loadable


def test_loss_falls_on_a_tiny_run(tmp_path, tiny_world, tiny_vae):
    c = cfg(tmp_path / "r", tiny_world, tiny_vae, steps=60, batch_size=8, log_every=1, **{"cond.image_prob": 0.0})
    train(c, progress=False)
    loss = [json.loads(x)["loss"] for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert sum(loss[-10:]) / 10 < 0.9 * sum(loss[:10]) / 10


def test_init_starts_from_another_runs_ema_at_step_zero(tmp_path, tiny_world, tiny_vae):
    from safetensors.torch import load_file

    train(cfg(tmp_path / "a", tiny_world, tiny_vae, steps=3), progress=False)
    # lr 0: the first step of the new run leaves its weights where init put them
    b = cfg(tmp_path / "b", tiny_world, tiny_vae, steps=1, lr=0.0, min_lr=0.0, init=tmp_path / "a" / "ckpt")
    train(b, progress=False)
    ema_a = load_file(str(tmp_path / "a" / "ckpt" / "ema" / "model.safetensors"))
    raw_b = load_file(str(tmp_path / "b" / "ckpt" / "model.safetensors"))
    assert ema_a.keys() == raw_b.keys() and all(torch.equal(ema_a[k], raw_b[k]) for k in ema_a)
    assert [json.loads(x)["step"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()] == [1]
    with pytest.raises(ConfigError, match="no such folder"):
        cfg(tmp_path / "c", tiny_world, tiny_vae, init=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no transformer weights"):
        train(cfg(tmp_path / "c", tiny_world, tiny_vae, steps=1, init=tmp_path / "empty"), progress=False)
    with pytest.raises(ConfigError, match="do not fit this model"):
        train(cfg(tmp_path / "d", tiny_world, tiny_vae, steps=1, init=tmp_path / "a" / "ckpt", **{"model.dim": 48}), progress=False)


def test_condition_masks_cover_every_mode_and_leave_frames_to_generate():
    rng = __import__("numpy").random.default_rng(0)
    m = draw_condition_masks(rng, 2000, 5, ConditionConfig())
    assert not m.all(dim=1).any()  # something is always generated
    assert (~m.any(1)).float().mean() > 0.4  # text-to-video is the most common
    assert (m[:, 0] & ~m[:, 1:].any(1)).any() and (m[:, -1] & ~m[:, 0]).any() and (m[:, 0] & m[:, -1] & ~m[:, 1]).any()
    both = m[m[:, 0] & m[:, -1]]  # first and last: heads and tails of several frames, as connect gives
    assert (both[:, :2].all(1) & both[:, -2:].all(1)).any() and (both[:, :2].all(1) & ~both[:, -2]).any()
    gaps = (~both).int()
    assert ((gaps[:, 1:] - gaps[:, :-1]).clamp(min=0).sum(1) == 1).all()  # one gap between head and tail
    assert not draw_condition_masks(rng, 4, 1, ConditionConfig()).any()


def test_cache_key_follows_the_encoder_not_the_decoder(tmp_path):
    from tenku.data.latents import cache_key
    from tenku.vae import VAE, save_vae, vae_config

    vae = VAE(vae_config("tiny", latent_channels=4))
    key = cache_key(save_vae(vae, tmp_path / "a"), "minilm")
    with torch.no_grad():
        next(p for n, p in vae.named_parameters() if n.startswith("decoder.")).add_(1.0)
    assert cache_key(save_vae(vae, tmp_path / "b"), "minilm") == key  # a decoder-only fine-tune keeps the cache
    assert cache_key(tmp_path / "b", "t5") != key
    vae.set_latent_stats([0.1] * 4, [2.0] * 4)
    assert cache_key(save_vae(vae, tmp_path / "c"), "minilm") != key  # other statistics: other latents
    with torch.no_grad():
        next(p for n, p in vae.named_parameters() if n.startswith("encoder.")).add_(1.0)
    vae.set_latent_stats([], [])
    assert cache_key(save_vae(vae, tmp_path / "d"), "minilm") != key


def test_max_text_tokens_sets_the_cached_caption_length_its_cache_and_the_pipeline(tmp_path, tiny_world, tiny_vae):
    from safetensors import safe_open

    from tenku.data.latents import cache_key
    from tenku.train.dit import cache_dir

    assert cache_key(tiny_vae, "minilm", 77) == cache_key(tiny_vae, "minilm")  # the default keeps old caches
    assert cache_key(tiny_vae, "minilm", 128) != cache_key(tiny_vae, "minilm")
    short = cfg(tmp_path / "s", tiny_world, tiny_vae, steps=1, max_text_tokens=8)
    assert cache_dir(short, tiny_world) != cache_dir(cfg(tmp_path / "d", tiny_world, tiny_vae), tiny_world)
    train(short, progress=False)
    lengths = []
    for shard in cache_dir(short, tiny_world).glob("shard-*.safetensors"):
        with safe_open(str(shard), "pt") as f:
            lengths += [f.get_slice(k).get_shape()[0] for k in f.keys() if k.endswith(".caption")]
    assert lengths and max(lengths) == 8  # the world's detailed captions are longer: all cut at 8
    assert Pipeline.load(tmp_path / "s" / "pipeline", device="cpu").cfg.max_text_tokens == 8
    with pytest.raises(ConfigError, match="max_text_tokens"):
        cfg(tmp_path / "x", tiny_world, tiny_vae, max_text_tokens=1)


def test_the_steps_draws_are_not_a_samples_draws():
    """numpy seeds [seed, step] and [seed, step, 0] alike; the step's stream (image batch or
    not) must not be sample 0's, whose first draw decides its caption dropout in image batches."""
    from types import SimpleNamespace

    import numpy as np

    from tenku.train.dit_batch import sample_rngs, step_rng

    cfg = SimpleNamespace(seed=0)  # all the two read
    for step in range(20):
        first = step_rng(cfg, step).random()
        assert all(r.random() != first for r in sample_rngs(cfg, step, 64))
    assert np.random.default_rng([3, 5]).random() == np.random.default_rng([3, 5, 0]).random()  # the trap


def test_the_steps_noise_is_one_draw_for_the_global_batch():
    """step_noise: logit-normal noise levels per sample (one per clip, shared by its frames),
    U(0, noise_aug) on condition frames, standard normal noise; the same step stream gives the
    same draw, so every rank can take its slice of it."""
    from tenku.train.conditions import sample_condition_masks
    from tenku.train.dit import TrainDiTConfig
    from tenku.train.dit_batch import sample_rngs, step_noise, step_rng

    c = TrainDiTConfig()
    cond = sample_condition_masks(sample_rngs(c, 3, 512), 5, c.cond)
    noise, sigma = step_noise(step_rng(c, 3), (512, 4, 5, 2, 2), cond, c, torch.device("cpu"))
    again, sigma2 = step_noise(step_rng(c, 3), (512, 4, 5, 2, 2), cond, c, torch.device("cpu"))
    assert torch.equal(noise, again) and torch.equal(sigma, sigma2)
    assert noise.shape == (512, 4, 5, 2, 2) and abs(noise.std().item() - 1) < 0.02 and abs(noise.mean().item()) < 0.02
    assert sigma.shape == (512, 5) and (sigma[cond] <= c.cond.noise_aug).all() and cond.any() and (~cond).any()
    assert all(torch.all(row[~m] == row[~m][0]) for row, m in zip(sigma, cond) if (~m).any())  # one level per clip
    per_clip = torch.stack([row[~m][0] for row, m in zip(sigma, cond) if (~m).any()])
    assert 0.45 < per_clip.median().item() < 0.55 and per_clip.min() > 0 and per_clip.max() < 1
    assert step_noise(step_rng(c, 4), (8, 4, 5, 2, 2), cond[:8], c, torch.device("cpu"))[1].ne(sigma[:8]).any()
    assert torch.equal(sample_condition_masks(sample_rngs(c, 3, 4), 5, c.cond),
                       torch.cat([draw_condition_masks(r, 1, 5, c.cond) for r in sample_rngs(c, 3, 4)]))


def test_a_steered_run_takes_up_new_data_and_a_new_total(tmp_path, tiny_world, tiny_vae):
    """train(steer=...): what bench/train_gpu.py does on a GPU, rendering beside the trainer:
    one process, the total planned after the first steps, data folders added as they complete."""
    from tenku.world.dataset import render_dataset

    more = tmp_path / "more"
    render_dataset(more, 4, [(64, 64)], 9, 8.0, seed=5, progress=False)
    train(cfg(tmp_path / "enc", tiny_world, tiny_vae, steps=1, data=f"[{tiny_world},{more}]"), progress=False)  # caches both
    asked = []

    def steer(step):
        asked.append(step)
        if step == 2:
            return {"steps": 5, "data": [str(more)]}
        if step == 3:
            return {"data": [str(more)]}  # already there: nothing changes
        return None

    c = cfg(tmp_path / "run", tiny_world, tiny_vae, steps=100)
    train(c, progress=False, steer=steer)
    assert asked == [0, 1, 2, 3, 4]  # the new total ended the run at step 5
    assert [r["step"] for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines())] == [1, 2, 3, 4, 5]
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert str(more) in saved and "steps: 5" in saved
    assert json.loads((tmp_path / "run" / "ckpt" / "state.json").read_text())["step"] == 5

    other = tmp_path / "other"
    render_dataset(other, 2, [(64, 64)], 9, 8.0, seed=9, progress=False)
    with pytest.raises(ConfigError, match="not complete"):
        train(cfg(tmp_path / "run2", tiny_world, tiny_vae, steps=3), progress=False,
              steer=lambda step: {"data": [str(other)]})


def test_flow_loss_weighs_the_object_cells_up():
    from tenku.flow import flow_loss_sum

    torch.manual_seed(0)
    x0, noise = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    sigma, cond = torch.full((2, 3), 0.5), torch.tensor([[False, False, False], [True, False, False]])
    v = torch.randn(2, 4, 3, 4, 4)
    model = lambda x, s: v  # noqa: E731 - a fixed prediction: the loss is a function of v alone
    plain = flow_loss_sum(model, x0, noise, sigma, cond)
    assert torch.allclose(flow_loss_sum(model, x0, noise, sigma, cond, torch.full((2, 3, 4, 4), 3.0)), plain)
    err = (v - (noise - x0)).pow(2).mean(1)  # (B, T', H', W')
    obj = torch.zeros(2, 3, 4, 4)
    obj[:, :, 1, 2] = 1  # one object cell per frame
    w = 1 + 1000 * obj  # nearly all the weight on it: the loss becomes that cell's error
    want = (err[:, :, 1, 2] * (~cond).float()).sum()
    assert torch.allclose(flow_loss_sum(model, x0, noise, sigma, cond, w), want, rtol=2e-2)
    assert torch.allclose(flow_loss_sum(model, x0, noise, sigma, cond, 1 + 0 * obj), plain)


def test_object_weight_trains_on_the_worlds_boxes_and_refuses_what_has_none(tmp_path, tiny_world, tiny_vae):
    import shutil

    from tenku.data.latents import LatentSet
    from tenku.data.objects import ObjectMasks
    from tenku.train.dit import cache_dir

    plain = cfg(tmp_path / "p", tiny_world, tiny_vae, steps=2)
    train(plain, progress=False)
    weighted = cfg(tmp_path / "w", tiny_world, tiny_vae, steps=2, object_weight=4)
    train(weighted, progress=False)
    lp, lw = ([json.loads(x)["loss"] for x in (tmp_path / r / "log.jsonl").read_text().splitlines()] for r in "pw")
    assert lp[0] != lw[0]  # the same batch and noise, weighed differently
    data = LatentSet([cache_dir(plain, tiny_world)])
    masks = ObjectMasks(data, {data.sources[0]: tiny_world}, 4, 8)
    cover = torch.stack([masks[i].float().mean() for i in range(len(data))])
    assert ((cover > 0) & (cover < 1)).all()  # every world clip has objects, none is all object
    with pytest.raises(ConfigError, match="object_weight must be >= 0"):
        cfg(tmp_path / "x", tiny_world, tiny_vae, object_weight=-1)
    with pytest.raises(ConfigError, match="default clips policy"):
        cfg(tmp_path / "x", tiny_world, tiny_vae, object_weight=1, **{"clips.frames": 5})
    bare = tmp_path / "bare"  # the same videos without their ground truth, as any video folder is
    shutil.copytree(tiny_world, bare)
    shutil.rmtree(bare / "gt")
    with pytest.raises(ConfigError, match="missing ground truth"):
        train(cfg(tmp_path / "b", bare, tiny_vae, steps=1, object_weight=4), progress=False)


def test_old_flat_sample_keys_still_load_and_model_overrides_are_typed(tmp_path):
    """Configs written before ``sample:`` (a PipelineConfig) load the same; ``model:`` is checked
    against DiTConfig (a typo names the key and the allowed ones) and converted to its types."""
    from tenku.config import ConfigError
    from tenku.train.dit import load_train_config

    root = Path(__file__).parents[2] / "configs"
    old = tmp_path / "old.yaml"
    new = load_train_config(root / "tenku-world.yaml")
    text = (root / "tenku-world.yaml").read_text()
    old.write_text(text[: text.index("sample:")] + "sample_steps: 20\nsample_guidance: 5.0\nsample_context_guidance: 1.0\n"
                   "sample_size: [128, 128]\nsample_frames: 33\nfps: 8.0\nmodel: {dim: 256, depth: 8, heads: 4, grad_checkpoint: true}\n")
    with pytest.warns(FutureWarning, match="sample_steps"), pytest.warns(FutureWarning, match="grad_checkpoint"):
        was = load_train_config(old)
    assert was.sample == new.sample and new.sample.context_guidance == 1.0 and new.sample.size == (128, 128)
    assert was.parallel.activation_checkpoint and was.model == new.model == {"dim": 256, "depth": 8, "heads": 4}
    with pytest.raises(ConfigError, match=r"unknown config key model\.dpeth; allowed: .*model\.depth"):
        load_train_config(root / "tenku-world.yaml", ["model={dpeth: 4}"])
    with pytest.raises(ConfigError, match="model.depth: expected int"):
        load_train_config(root / "tenku-world.yaml", ["model.depth=four"])
    assert load_train_config(root / "tenku-world.yaml", ["model.patch=[1,2,2]"]).model["patch"] == (1, 2, 2)


def test_the_cache_records_the_label_names_its_data_was_made_with(tmp_path, tiny_world):
    """Training reads shape names from the cache (done.json), not from the simulator's tables;
    a folder of other videos has none, and a cache made before they were recorded gets its folder's."""
    from tenku.data.latents import cache_labels, finish_cache
    from tenku.world.spec import SHAPES

    for name, folder in (("world", tiny_world), ("other", tmp_path)):
        (tmp_path / name).mkdir()
        finish_cache(folder, tmp_path / name, 0)
    assert json.loads((tmp_path / "world" / "done.json").read_text())["labels"] == {"shapes": list(SHAPES)}
    assert cache_labels(tmp_path / "other", tmp_path) == {}
    done = tmp_path / "world" / "done.json"
    done.write_text(json.dumps({k: v for k, v in json.loads(done.read_text()).items() if k != "labels"}))
    assert cache_labels(tmp_path / "world", tiny_world) == {"shapes": list(SHAPES)}
