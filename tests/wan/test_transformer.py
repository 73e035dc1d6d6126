"""Wan's transformer in tenku's DiT: tiny random diffusers WanTransformer3DModel folders load,
run as diffusers runs them (fp32, <= 1e-5), save back exactly, and bad folders are refused by name."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tenku.wan.transformer import WEIGHTS, dit_config_from_wan, dit_from_wan_state, load_wan_transformer, save_wan_transformer

diffusers = pytest.importorskip("diffusers")

WAN21 = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
             text_dim=16, freq_dim=32, ffn_dim=40, num_layers=2, cross_attn_norm=True, eps=1e-6)
# Wan2.2 TI2V keeps the Wan2.1 block; more latent channels (48 there), another head split
WAN22 = dict(WAN21, in_channels=6, out_channels=6, num_attention_heads=3, attention_head_dim=20, ffn_dim=56, eps=1e-5)


def wan_folder(tmp_path, seed: int = 0, **over):
    """A random WanTransformer3DModel saved with save_pretrained; every tensor (norm weights and
    tables included) is perturbed so that a wrong name or order cannot pass."""
    torch.manual_seed(seed)
    model = diffusers.WanTransformer3DModel(**{**WAN21, **over}).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    folder = tmp_path / f"wan{seed}"
    model.save_pretrained(folder)
    return model, folder


def velocities(model, dit, x, frame_sigma, ctx, per_token: bool):
    """diffusers' and tenku's outputs on the same inputs; diffusers gets timestep = 1000 * sigma,
    per token (Wan2.2 expand_timesteps) or per sample, tenku sigma per latent frame (B, T)."""
    b, _, t, h, w = x.shape
    ts = 1000 * frame_sigma  # (B, T): the scheduler's timesteps are sigma * num_train_timesteps
    ph, pw = model.config.patch_size[1:]
    ts = ts[:, :, None].expand(b, t, (h // ph) * (w // pw)).reshape(b, -1) if per_token else ts[:, 0]
    with torch.no_grad():
        ref = model(x, ts, ctx, return_dict=False)[0]
        out = dit(x, frame_sigma, ctx)
    return ref, out


@pytest.mark.parametrize("shape", [(1, 4, 4), (3, 6, 10), (5, 8, 4), (2, 2, 12)])
def test_wan21_forward_equals_diffusers(tmp_path, shape):
    model, folder = wan_folder(tmp_path)
    dit = load_wan_transformer(folder)
    t, h, w = shape
    x, ctx = torch.randn(2, 4, t, h, w), torch.randn(2, 7, 16)
    sigma = torch.tensor([0.83, 0.125])[:, None].expand(2, t)  # one level per sample, as Wan2.1 samples
    ref, out = velocities(model, dit, x, sigma, ctx, per_token=False)
    assert out.shape == x.shape
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("shape", [(3, 4, 6), (4, 6, 6), (1, 2, 4)])
def test_wan22_per_token_timesteps_equal_diffusers(tmp_path, shape):
    """TI2V: the first latent frame clean (timestep 0), the rest at the step's level."""
    model, folder = wan_folder(tmp_path, seed=1, **WAN22)
    dit = load_wan_transformer(folder)
    t, h, w = shape
    x, ctx = torch.randn(2, 6, t, h, w), torch.randn(2, 5, 16)
    sigma = torch.tensor([0.6, 0.95])[:, None].repeat(1, t)
    sigma[:, 0] = 0.0
    ref, out = velocities(model, dit, x, sigma, ctx, per_token=True)
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_no_cross_norm_and_other_head_split(tmp_path):
    model, folder = wan_folder(tmp_path, seed=2, cross_attn_norm=False, num_attention_heads=1, attention_head_dim=16)
    dit = load_wan_transformer(folder)
    assert isinstance(dit.blocks[0].norm_cross, torch.nn.Identity)
    x, ctx = torch.randn(1, 4, 3, 4, 6), torch.randn(1, 3, 16)
    ref, out = velocities(model, dit, x, torch.full((1, 3), 0.5), ctx, per_token=False)
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_save_load_round_trip_is_exact(tmp_path):
    model, folder = wan_folder(tmp_path, seed=3, **WAN22)
    dit = load_wan_transformer(folder)
    out = save_wan_transformer(dit, tmp_path / "saved")
    original, saved = load_file(str(folder / WEIGHTS)), load_file(str(out / WEIGHTS))
    assert original.keys() == saved.keys()
    assert all(torch.equal(original[k], saved[k]) for k in original)  # the same file content, tensor by tensor
    again = load_wan_transformer(out)
    assert again.cfg == dit.cfg
    a, b = dit.state_dict(), again.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # diffusers reads what tenku wrote (from_config + a strict load: from_pretrained would need accelerate)
    back = diffusers.WanTransformer3DModel.from_config(json.loads((out / "config.json").read_text())).eval()
    back.load_state_dict(saved, strict=True)
    x, ctx = torch.randn(1, 6, 2, 4, 4), torch.randn(1, 4, 16)
    ref, mine = velocities(back, again, x, torch.full((1, 2), 0.4), ctx, per_token=False)
    assert (ref - mine).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_bf16_load_keeps_tables_fp32_and_runs_under_autocast(tmp_path):
    model, folder = wan_folder(tmp_path, seed=4)
    dit32, dit16 = load_wan_transformer(folder), load_wan_transformer(folder, dtype=torch.bfloat16)
    assert dit16.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert dit16.blocks[0].table.dtype == dit16.final_table.dtype == dit16.blocks[0].norm_cross.weight.dtype == torch.float32
    x, ctx, sigma = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 3, 16), torch.full((1, 2), 0.7)
    streams = []  # the residual stream between blocks: bf16 with bf16 weights (as diffusers), else fp32
    for dit in (dit16, dit32):
        dit.blocks[0].register_forward_hook(lambda m, args, out: streams.append(out.dtype) and None)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = dit16(x, sigma, ctx).float()
    with torch.no_grad():
        full = dit32(x, sigma, ctx)
    assert (dit16.cfg.residual, dit32.cfg.residual) == ("weights", "fp32")
    assert streams == [torch.bfloat16, torch.float32]
    assert (low - full).abs().max() <= 0.05 * full.abs().max()


def _damage(folder, drop=(), reshape=(), add=()):
    state = load_file(str(folder / WEIGHTS))
    for k in drop:
        del state[k]
    for k in reshape:
        state[k] = state[k][:-1]
    for k in add:
        state[k] = torch.zeros(3)
    save_file(state, str(folder / WEIGHTS))


def test_missing_unexpected_and_mismatched_tensors_are_named(tmp_path):
    _, folder = wan_folder(tmp_path, seed=5)
    _damage(folder, drop=["blocks.1.attn2.to_k.weight", "proj_out.bias"], reshape=["blocks.0.ffn.net.2.weight"],
            add=["blocks.0.attn2.add_k_proj.weight"])
    with pytest.raises(ValueError) as e:
        load_wan_transformer(folder)
    msg = str(e.value)
    assert "\n" not in msg
    for name in ("blocks.1.attn2.to_k.weight", "proj_out.bias", "blocks.0.ffn.net.2.weight [23, 40] (expected [24, 40])",
                 "blocks.0.attn2.add_k_proj.weight"):
        assert name in msg


def test_unsupported_variants_and_bad_folders_are_refused(tmp_path):
    with pytest.raises(ValueError, match="image_dim, added_kv_proj_dim.*not supported"):
        dit_config_from_wan({**WAN21, "image_dim": 1280, "added_kv_proj_dim": 5120})
    assert dit_config_from_wan({**WAN22, "out_channels": None}).in_channels == 6  # none: as many as in
    with pytest.raises(ValueError, match="out_channels 16"):
        dit_config_from_wan({**WAN21, "in_channels": 36, "out_channels": 16})
    with pytest.raises(ValueError, match="WanVACETransformer3DModel transformer is not supported"):
        dit_config_from_wan({"_class_name": "WanVACETransformer3DModel"})
    with pytest.raises(ValueError, match=r"unknown .* config keys \['vace_layers'\]"):
        dit_config_from_wan({**WAN21, "vace_layers": [0]})
    with pytest.raises(ValueError, match="not a diffusers transformer folder"):
        load_wan_transformer(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(WAN21))
    with pytest.raises(ValueError, match="no diffusion_pytorch_model.safetensors"):
        load_wan_transformer(tmp_path)
    tenku_own = load_wan_transformer.__globals__["DiT"](load_wan_transformer.__globals__["DiTConfig"]())
    with pytest.raises(ValueError, match="not a Wan transformer"):
        save_wan_transformer(tenku_own, tmp_path / "x")


def test_sharded_folder_and_pipeline_root_load(tmp_path):
    """Real Wan folders are sharded (an index) and sit under a pipeline's transformer/."""
    model, _ = wan_folder(tmp_path, seed=6)
    root = tmp_path / "pipe"
    model.save_pretrained(root / "transformer", max_shard_size="20KB")
    assert (root / "transformer" / (WEIGHTS + ".index.json")).is_file()
    dit = load_wan_transformer(root)
    x, ctx = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 3, 16)
    ref, out = velocities(model, dit, x, torch.full((1, 2), 0.25), ctx, per_token=False)
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_from_live_state_shares_weights(tmp_path):
    """A model in memory converts without a folder; unfused tensors are shared, not copied."""
    model, _ = wan_folder(tmp_path, seed=7)
    dit = dit_from_wan_state(dict(model.config), model.state_dict())
    assert dit.final.weight.data_ptr() == model.proj_out.weight.data_ptr()
    x, ctx = torch.randn(1, 4, 2, 4, 6), torch.randn(1, 3, 16)
    ref, out = velocities(model, dit, x, torch.full((1, 2), 0.9), ctx, per_token=False)
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())
