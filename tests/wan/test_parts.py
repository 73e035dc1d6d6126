"""The Wan folder's parts against the peers' own classes: the text encoder against WanPipeline's
prompt embeddings, the autoencoder wrapper against AutoencoderKLWan, the sigma grids against
diffusers' schedulers, and the refusals of folders and settings tenku does not read."""

import json
import shutil

import pytest
import torch

from tenku.flow.schedule import scheduler_sigmas
from tenku.wan import WanTextEncoder, WanVAE, prompt_clean, read_schedule
from tenku.wan.folder import check_index, is_wan_folder, read_index, wan_config


def test_text_encoder_is_wan_padding(wan21):
    folder, ref = wan21
    prompts = ["a red ball", "the  cat &amp; falls\n on the floor"]
    states, mask = WanTextEncoder(folder).encode(prompts)
    want = ref._get_t5_prompt_embeds(prompts, max_sequence_length=512)
    assert states.shape == (2, 512, 32) and mask.all()
    assert torch.allclose(states, want.float(), atol=1e-5)
    n = len(ref.tokenizer(prompt_clean(prompts[0])).input_ids)
    assert states[0, n:].abs().max() == 0 and states[0, :n].abs().min() > 0
    assert prompt_clean(" a &amp;amp;  b\n") == "a & b"


@pytest.mark.parametrize("layout", ["wan21", "wan22"])
def test_vae_wrapper_is_autoencoderklwan(layout, request):
    folder, ref = request.getfixturevalue(layout)
    vae = WanVAE.load(folder / "vae")
    s = vae.cfg.space_down
    assert (vae.cfg.time_down, s, vae.cfg.latent_channels) == ((4, 8, 16) if layout == "wan21" else (4, 16, 12))
    x = torch.rand(1, 3, 9, 2 * s, 3 * s, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z = vae.encode(x)
    mean = torch.tensor(ref.vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(ref.vae.config.latents_std).view(1, -1, 1, 1, 1)
    raw = ref.vae.encode(x).latent_dist.mode()
    assert z.shape == (1, *vae.latent_shape(9, 2 * s, 3 * s)) == (1, vae.cfg.latent_channels, 3, 2, 3)
    assert torch.allclose(z, (raw - mean) / std, atol=1e-5)
    video = vae.decode(z)
    assert torch.allclose(video, ref.vae.decode(z * std + mean).sample, atol=1e-5)
    chunks = list(vae.decode_chunks(z))
    assert [c.shape[2] for c in chunks] == [1, 4, 4] and torch.equal(torch.cat(chunks, 2), video)


def test_vae_tiles_large_frames(wan21):
    vae = WanVAE.load(wan21[0] / "vae", tile=64)
    z = torch.randn(1, 16, 1, 10, 6, generator=torch.Generator().manual_seed(1))  # 80x48 pixels: 32-pixel tiles
    tiled = vae.decode(z)
    assert vae.model.use_tiling and vae.model.tile_sample_min_height == 32 and tiled.shape == (1, 3, 1, 80, 48)
    vae.tile = 0
    whole = vae.decode(z)
    assert not vae.model.use_tiling and (tiled - whole).abs().mean() < 0.05  # blended seams, same picture


def test_vae_refuses_wrong_shapes(wan21):
    vae = WanVAE.load(wan21[0] / "vae")
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        vae.latent_shape(8, 16, 16)
    with pytest.raises(ValueError, match="multiples of 8"):
        vae.encode(torch.zeros(1, 3, 5, 12, 16))
    with pytest.raises(ValueError, match="latent must be"):
        vae.decode(torch.zeros(1, 4, 2, 2, 2))


@pytest.mark.parametrize("steps", [1, 4, 30, 50])
@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0, 7.5])
def test_sigma_grids_are_diffusers(steps, shift):
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    euler = FlowMatchEulerDiscreteScheduler(shift=shift)
    unipc = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)
    euler.set_timesteps(steps)
    unipc.set_timesteps(steps)
    assert torch.equal(scheduler_sigmas("flow-match-euler", steps, shift), euler.sigmas)
    assert torch.equal(scheduler_sigmas("unipc", steps, shift), unipc.sigmas.float())
    half = scheduler_sigmas("unipc", steps, shift, start=0.5)
    assert half[0] == pytest.approx(0.5 * float(unipc.sigmas[0])) and half[-1] == 0


def test_schedule_from_folder(wan21, wan22, tmp_path):
    a, b = read_schedule(wan21[0]), read_schedule(wan22[0])
    assert (a.grid, a.shift, a.sampler) == ("flow-match-euler", 3.0, "euler")
    assert (b.grid, b.shift, b.sampler) == ("unipc", 5.0, "dpm++2m")
    (tmp_path / "scheduler").mkdir()
    conf = tmp_path / "scheduler" / "scheduler_config.json"
    conf.write_text(json.dumps({"_class_name": "FlowMatchEulerDiscreteScheduler", "use_dynamic_shifting": True}))
    with pytest.raises(ValueError, match="use_dynamic_shifting"):
        read_schedule(tmp_path)
    conf.write_text(json.dumps({"_class_name": "DDIMScheduler"}))
    with pytest.raises(ValueError, match="'DDIMScheduler' is not one tenku reproduces"):
        read_schedule(tmp_path)


def test_folder_checks(wan21, wan22, tmp_path):
    folder = wan21[0]
    assert is_wan_folder(folder) and not is_wan_folder(tmp_path)
    index = read_index(folder)
    check_index(folder, index)
    with pytest.raises(ValueError, match="two transformers"):
        check_index(folder, {**index, "transformer_2": ["diffusers", "WanTransformer3DModel"], "boundary_ratio": 0.875})
    with pytest.raises(ValueError, match="WanImageToVideoPipeline folder"):
        check_index(folder, {**index, "_class_name": "WanImageToVideoPipeline"})
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("tokenizer"))
    with pytest.raises(ValueError, match="missing tokenizer/"):
        check_index(copy, index)


def test_config_per_layout(wan21, wan22):
    a = wan_config(wan21[0], read_index(wan21[0]), 8, {})
    b = wan_config(wan22[0], read_index(wan22[0]), 16, {"compute": "fp32"})
    assert (a.size, a.frames, a.fps, a.max_text_tokens) == ((832, 480), 81, 16.0, 512)
    assert "Wan2.1" in a.clean_frames_refused and a.weights_dtype == "bfloat16"
    assert (b.size, b.frames, b.fps, b.clean_frames_refused, b.weights_dtype) == ((1280, 704), 121, 24.0, "", "float32")
    (wan21[0] / "tenku.yaml").write_text("offload: block\nsteps: 8\n")
    try:
        c = wan_config(wan21[0], read_index(wan21[0]), 8, {})
        assert (c.offload, c.steps) == ("block", 8)
        with pytest.raises(ValueError, match="unknown config key"):
            wan_config(wan21[0], read_index(wan21[0]), 8, {"offlaod": "model"})
    finally:
        (wan21[0] / "tenku.yaml").unlink()
