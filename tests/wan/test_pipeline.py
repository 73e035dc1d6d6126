"""A tiny Wan folder through tenku's Pipeline: text-to-video equals diffusers' WanPipeline on the
same latents, sigmas and flow-match Euler steps; Wan2.2 TI2V image-to-video equals diffusers'
WanImageToVideoPipeline; every mode runs on TI2V and the ones Wan2.1 was not trained for are
refused with the reason; `tenku generate --model DIR` runs end to end."""

import json

import numpy as np
import pytest
import torch

from tenku.pipeline import Pipeline
from tenku.request import RequestError
from tenku.wan import load_wan

PROMPT = "a red ball rolls on the floor"


def _noise(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def pipe21(wan21):
    return load_wan(wan21[0], "cpu", compute="fp32")


@pytest.fixture(scope="module")
def pipe22(wan22):
    return load_wan(wan22[0], "cpu", compute="fp32", schedule="flow-match-euler", sampler="euler")


def test_text_to_video_equals_wanpipeline(wan21, pipe21):
    _, ref = wan21
    w, h, frames, steps = 48, 32, 9, 4
    noise = _noise((1, 16, 3, h // 8, w // 8))
    want = ref(PROMPT, height=h, width=w, num_frames=frames, num_inference_steps=steps, guidance_scale=5.0,
               latents=noise.clone(), output_type="latent").frames
    got = pipe21.sample_latents(PROMPT, 0, tuple(noise.shape[1:]), steps, 5.0, noise=noise)
    assert torch.allclose(pipe21.sigmas(steps, 0)[:-1], ref.scheduler.sigmas[:-1])
    assert (got - want).abs().max() <= 1e-4
    # the whole call with diffusers' names and latents=: the same video, as uint8
    video = pipe21(PROMPT, height=h, width=w, num_frames=frames, num_inference_steps=steps, guidance_scale=5.0,
                   latents=noise)
    ref_video = ref(PROMPT, height=h, width=w, num_frames=frames, num_inference_steps=steps, guidance_scale=5.0,
                    latents=noise.clone(), output_type="np").frames[0]
    assert video.shape == (frames, h, w, 3) and video.dtype == np.uint8
    assert np.abs(video / 255.0 - ref_video).max() <= 0.5 / 255 + 1e-4
    # a seed is a CPU generator seed, as diffusers draws its latents
    again = ref(PROMPT, height=h, width=w, num_frames=frames, num_inference_steps=steps, guidance_scale=5.0,
                generator=torch.Generator().manual_seed(0), output_type="latent").frames
    assert (again - want).abs().max() == 0


def test_ti2v_text_to_video_equals_wanpipeline(wan22, pipe22):
    from diffusers import FlowMatchEulerDiscreteScheduler

    _, ref = wan22
    ref.scheduler = FlowMatchEulerDiscreteScheduler(shift=5.0)
    w, h, steps = 64, 32, 3
    noise = _noise((1, 12, 2, h // 16, w // 16), 1)
    want = ref(PROMPT, height=h, width=w, num_frames=5, num_inference_steps=steps, guidance_scale=4.0,
               latents=noise.clone(), output_type="latent").frames
    got = pipe22.sample_latents(PROMPT, 0, tuple(noise.shape[1:]), steps, 4.0, noise=noise)
    assert (got - want).abs().max() <= 1e-4


def test_ti2v_image_to_video_equals_diffusers(wan22, pipe22):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from PIL import Image

    _, r = wan22
    ref = WanImageToVideoPipeline(tokenizer=r.tokenizer, text_encoder=r.text_encoder, vae=r.vae,
                                  scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=r.transformer,
                                  expand_timesteps=True)
    w, h, steps = 64, 32, 3
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    noise = _noise((1, 12, 3, h // 16, w // 16), 2)
    embeds = [r._get_t5_prompt_embeds([p], max_sequence_length=512) for p in (PROMPT, "")]  # its i2v prompt_clean
    want = ref(image=Image.fromarray(image), prompt_embeds=embeds[0], negative_prompt_embeds=embeds[1], height=h,  # needs ftfy
               width=w, num_frames=9, num_inference_steps=steps, guidance_scale=4.0, latents=noise.clone(),
               output_type="latent").frames
    video = pipe22(PROMPT, height=h, width=w, num_frames=9, num_inference_steps=steps, guidance_scale=4.0,
                   latents=noise, image=image)
    got = pipe22.encode_frames(video[:1])
    assert video.shape == (9, h, w, 3)
    first = pipe22.encode_frames(image[None])
    assert (first - want[:, :, :1]).abs().max() <= 1e-4  # the image, clean, as diffusers conditions on it
    # the generated frames: sample the same chunk directly and compare latents
    cond = torch.zeros(1, 12, 3, h // 16, w // 16)
    cond[:, :, :1] = first
    mask = torch.tensor([[True, False, False]])
    lat = pipe22.sample_latents(PROMPT, 0, (12, 3, h // 16, w // 16), steps, 4.0, cond=cond, cond_mask=mask, noise=noise)
    assert (lat - want).abs().max() <= 1e-4 and got.shape[2] == 1


def test_ti2v_runs_every_mode(pipe22):
    pipe22.cfg.frames, pipe22.cfg.context_frames = 17, 5  # chunks with room for loops and transitions
    fast = dict(size=(64, 32), steps=1)
    clip = pipe22.generate(PROMPT, 1, frames=9, **fast)
    assert pipe22.generate(PROMPT, 2, frames=9, image=clip[0], **fast).shape == (9, 32, 64, 3)
    assert pipe22.generate(PROMPT, 3, frames=13, video=clip, extend="forward", **fast).shape == (13, 32, 64, 3)
    assert pipe22.generate(PROMPT, 4, frames=17, loop=True, **fast).shape == (17, 32, 64, 3)
    assert pipe22.generate(PROMPT, 5, frames=4, connect=(clip, clip), **fast).shape[0] == 22


def test_wan21_refuses_clean_frames_with_the_reason(pipe21):
    clip = np.zeros((9, 32, 48, 3), np.uint8)
    for mode in (dict(image=clip[0]), dict(video=clip, extend="forward", frames=13), dict(loop=True),
                 dict(connect=(clip, clip), frames=4), dict(frames=pipe21.cfg.frames + 4)):
        with pytest.raises(RequestError, match="trained with one noise level for all frames"):
            pipe21.generate(PROMPT, 0, size=(48, 32), steps=1, **mode)
    edit = pipe21.generate(PROMPT, 0, size=(48, 32), steps=1, video=clip, strength=0.5)  # SDEdit needs no clean frames
    assert edit.shape == (9, 32, 48, 3)


def test_geometry_is_wans(pipe21, pipe22):
    g21, g22 = pipe21.geometry, pipe22.geometry
    assert (g21.size_multiple, g21.frame_step, g21.size, g21.frames) == (16, 4, (832, 480), 81)
    assert (g22.size_multiple, g22.frame_step, g22.clean_frames_refused) == (32, 4, "")
    with pytest.raises(RequestError, match="multiples of 16"):
        pipe21.generate(PROMPT, 0, size=(40, 32), frames=5, steps=1)
    with pytest.raises(RequestError, match="latents must be"):
        pipe21(PROMPT, height=32, width=48, num_frames=5, num_inference_steps=1, latents=torch.zeros(1, 16, 3, 4, 6))


def test_generate_cli_end_to_end(wan21, tmp_path):
    from tenku.cli import main

    out = tmp_path / "wan.mp4"
    assert main(["generate", PROMPT, "--model", str(wan21[0]), "--size", "48x32", "--frames", "9", "--steps", "2",
                 "--seed", "3", "--no-expand", "--device", "cpu", "-o", str(out), "--quiet"]) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["frames"] == 9 and side["size"] == [48, 32] and side["seed"] == 3 and side["sampler"] == "euler"
    assert main(["generate", PROMPT, "--model", str(wan21[0]), "--size", "48x32", "--image", str(out), "--steps", "1",
                 "-o", str(tmp_path / "i.mp4"), "--quiet"]) == 2  # refused, with the reason, no traceback


def test_pipeline_load_reads_wan_folders(wan21):
    (wan21[0] / "tenku.yaml").write_text("compute: fp32\nsteps: 3\n")
    try:
        pipe = Pipeline.load(wan21[0], device="cpu")
    finally:
        (wan21[0] / "tenku.yaml").unlink()
    assert pipe.cfg.steps == 3 and pipe.text.dim == 32 and pipe.vae.cfg.space_down == 8
    assert pipe.dit.final.weight.dtype == torch.float32
