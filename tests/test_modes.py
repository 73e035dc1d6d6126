"""Every generation mode (modes.py plans, Pipeline.stream runs them) on a random tiny model:
output shapes, given frames unchanged or within the autoencoder round trip, flat memory for
long videos, and the chunk arithmetic for many lengths."""

import tracemalloc

import numpy as np
import pytest
import torch

from tenku.eval.checks import psnr
from tenku.modes import (Chunk, cover_resize, end_latents, fade, latent_of_frames, loop_split, plan_connect,
                         plan_rollout, ramp, start_latents)
from tenku.request import Geometry, Input, Limits, Request, input_size, parse_aspect, resolve, size_for_aspect
from tenku.pipeline import Pipeline


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    """The tiny pipeline with 17-frame chunks conditioned on up to 5 frames."""
    p = Pipeline.load(tiny_pipeline, device="cpu")
    p.cfg.frames, p.cfg.context_frames, p.cfg.steps = 17, 5, 2
    return p


def valid(c: Chunk, step=4):
    return (c.frames - 1) % step == 0


@pytest.mark.parametrize("backward", [False, True])
def test_rollout_plans_cover_every_length(backward):
    for context in ([5, 9, 20] if backward else [0, 1, 5, 9, 20]):
        for new in range(1, 120):
            if context == 0 and (new - 1) % 4:
                continue
            if context == 1 and new <= 32 and new % 4:
                continue
            plan = plan_rollout(new, context, 33, 9, backward=backward)
            assert sum(c.new for c in plan) == new
            have = context
            for c in plan:
                assert valid(c) and c.frames <= 33 and c.given <= min(have, 9) and c.new >= 1
                assert c.given >= (4 if backward else (1 if have else 0)) and c.extra < 4
                have += c.new


def test_connect_and_loop_plans():
    for new in range(1, 80):
        for a, b in [(9, 9), (5, 20), (30, 6)]:
            pre, last, qb = plan_connect(new, a, b, 33, 9)
            assert sum(c.new for c in pre) + last.new == new
            assert (last.frames + qb - 1) % 4 == 0 and last.frames + qb <= 33 and 4 <= qb <= min(b, 9)
            assert all(valid(c) for c in pre)
    assert loop_split(33, 15) == 21 and (loop_split(481, 15) - 1) % 4 == 0
    assert start_latents(9) == 3 and start_latents(1) == 1 and end_latents(9) == 2 and end_latents(3) == 0


def _crossings(req, geo=Geometry(16, 4, (64, 64), 33, 8.0, 9)):
    """The latent map of ``req`` and its pairs (t -> t + 1) that cross a latent frame or a seam."""
    r = resolve(req, geo, Limits(max_pixels=0))
    lat = latent_of_frames(r, lambda i, count=None: i.frames(r.fps, r.size, count), geo.frames, geo.overlap,
                           geo.frame_step, 4)
    return lat, [t for t in range(len(lat) - 1) if lat[t] != lat[t + 1] and max(lat[t], lat[t + 1]) >= 0]


def test_latent_of_frames_follows_the_causal_autoencoder_and_the_chunk_plans():
    lat, cross = _crossings(Request("x", frames=33))  # one chunk: frame 0 alone, then 4 frames a latent frame
    assert lat[:6].tolist() == [0, 1, 1, 1, 1, 2] and cross == list(range(0, 32, 4))
    lat, cross = _crossings(Request("x", frames=81))  # 3 chunks given 9 frames each: the seams fall on the grid
    assert len(lat) == 81 and cross == list(range(0, 80, 4)) and len(set(lat.tolist())) == 1 + 80 // 4
    lat, cross = _crossings(Request("x", frames=33, loop=True))  # the closing chunk starts at 13, its seam: 20 -> 21
    assert cross == [0, 4, 8, 12, 16, 20, 21, 25, 29]
    v = Input.of_array(np.zeros((9, 64, 64, 3), np.uint8), "video")
    lat, cross = _crossings(Request("x", frames=24, video=v, extend="forward"))
    assert (lat[:9] == -1).all() and cross == [8, 12, 16, 20, 24, 28]  # the input's own pairs are neither kind


def test_frame_latents_match_the_output(pipe):
    req = resolve(Request("x", frames=41), pipe.geometry, Limits(max_pixels=0))
    lat = pipe.frame_latents(req)
    assert len(lat) == len(pipe.generate("x", frames=41)) and (lat >= 0).all()


def test_cover_resize_and_aspect_rule():
    img = np.zeros((1, 90, 160, 3), np.uint8)
    img[:, 40:50, 75:85] = 255  # a centred square stays centred and square
    out = cover_resize(img, 64, 64)
    assert out.shape == (1, 64, 64, 3)
    ys, xs = np.nonzero(out[0, :, :, 0] > 127)
    assert abs(ys.mean() - 31.5) < 1 and abs(xs.mean() - 31.5) < 1 and abs(np.ptp(ys) - np.ptp(xs)) <= 1
    assert cover_resize(img, 160, 90) is img
    assert size_for_aspect(parse_aspect("16:9"), 16, 128) == (224, 128)
    assert size_for_aspect(parse_aspect("9:16"), 16, 128) == (128, 224)
    assert size_for_aspect(parse_aspect("16:9"), 16, 128, height=96) == (176, 96)
    assert size_for_aspect(1.0, 16, 128, width=100) == (96, 96)
    # an input's size is kept up to the limit; a larger one is made at the model's scale, its aspect kept
    cap = 16 * 128 * 128
    assert input_size(300, 200, 16, (128, 128), cap) == (304, 192)
    assert input_size(1920, 1080, 16, (128, 128), cap) == (224, 128)
    assert input_size(1080, 1920, 16, (128, 128), cap) == (128, 224)
    w, h = input_size(20000, 100, 16, (128, 128), cap)  # a strip: the area is held to the limit instead
    assert w * h <= cap and w % 16 == h % 16 == 0 and 150 < w / h < 250
    for bad in ["16x9", "0:9", "1:9", "a:b"]:
        with pytest.raises(ValueError, match="aspect"):
            parse_aspect(bad)


def test_fade():
    a, b = np.zeros((5, 2, 2, 3), np.uint8), np.full((5, 2, 2, 3), 200, np.uint8)
    f = fade(a, b)
    assert np.array_equal(f[0], a[0]) and np.array_equal(f[-1], b[-1])  # exact ends
    assert list(f[:, 0, 0, 0]) == [0, 50, 100, 150, 200]
    assert np.array_equal(fade(a[:1], b[:1]), b[:1])
    with pytest.raises(ValueError, match="one shape"):
        fade(a, b[:3])


def test_ramp():
    f = np.full((3, 2, 2, 3), 100, np.uint8)
    out = ramp(f, np.full((2, 2, 3), 40.0), np.full((2, 2, 3), 80.0))
    assert list(out[:, 0, 0, 0]) == [150, 160, 170]  # weights 1/4, 2/4, 3/4 towards the end's correction
    assert np.array_equal(ramp(f, np.zeros((2, 2, 3)), np.zeros((2, 2, 3))), f)
    assert ramp(f, np.full((2, 2, 3), -500.0), np.zeros((2, 2, 3))).min() == 0  # clipped to uint8


def test_loop_closure_ramp(pipe, monkeypatch):
    """The loop's end meets frame 0 through the ramp, not with the jump of re-decoding frame 0
    (tiny model, measured: 10.2 with the ramp vs 37.2 without, in mean absolute error)."""
    def closure():
        out = pipe.generate("x", loop=True, frames=17, seed=1)
        return np.abs(out[-1].astype(int) - out[0]).mean()

    with_ramp = closure()
    monkeypatch.setattr("tenku.modes.runner.ramp", lambda f, a, b: f)
    assert with_ramp < 0.5 * closure()


def test_every_mode_shape(pipe, clip):
    v, img = clip(13), clip(1, w=90, h=50)[0]
    k = pipe.cfg.context_frames
    assert pipe.generate("x", frames=17).shape == (17, 64, 64, 3)
    assert pipe.generate("x", frames=41).shape == (41, 64, 64, 3)  # three chunks
    assert pipe.generate("x", image=img, frames=25).shape == (25, 64, 64, 3)
    for d in ("forward", "backward"):
        for n in (14, 17, 30, 50):
            out = pipe.generate("x", video=v, extend=d, frames=n)
            assert out.shape == (n, 64, 64, 3)
            kept = out[:13] if d == "forward" else out[-13:]
            same = [np.array_equal(kept[i], v[i]) for i in range(13)]
            far = same[: 13 - k] if d == "forward" else same[k:]
            assert all(far) and not all(same)  # input frames away from the seam unchanged; those at it fade
    for n in (1, 3, 7, 20):
        out = pipe.generate("x", connect=(v, v[::-1]), frames=n)
        assert out.shape == (13 + n + 13, 64, 64, 3)  # A + transition + B
        assert np.array_equal(out[: 13 - k], v[: 13 - k]) and np.array_equal(out[-(13 - k):], v[::-1][k:])
    for n in (9, 17, 33):
        assert pipe.generate("x", loop=True, frames=n).shape == (n, 64, 64, 3)
    assert pipe.generate("x", loop=True, image=img, frames=21).shape == (21, 64, 64, 3)
    assert pipe.generate("x", video=v, strength=0.5).shape == (13, 64, 64, 3)
    assert pipe.generate("x", video=clip(13, w=96, h=64), strength=0.5).shape == (13, 64, 96, 3)  # the video's size
    wide = pipe.generate("x", video=v, extend="forward", frames=20, size=(96, 64))
    assert wide.shape == (20, 64, 96, 3)


def test_inputs_as_short_as_the_context_stream_no_empty_block(pipe, clip):
    """An input of exactly ``context_frames`` frames is all given to the chunk at its seam, so
    no frame of it stays untouched; the stream must not hand the writer an empty block then
    (it did for a 9-frame clip extended by 4 with the bundle)."""
    v = clip(pipe.cfg.context_frames)
    for n in range(1, 10):
        for kw in (dict(video=v, extend="forward"), dict(video=v, extend="backward"), dict(connect=(v, v[::-1]))):
            blocks = list(pipe.stream("x", frames=n if "connect" in kw else len(v) + n, **kw))
            assert all(len(b) for b in blocks), (kw.get("extend", "connect"), n, [len(b) for b in blocks])
            assert sum(map(len, blocks)) == n + len(v) * (2 if "connect" in kw else 1)


def test_modes_are_deterministic_and_progress_counts_steps(pipe):
    calls = []
    a = pipe.generate("x", frames=41, seed=3, callback=lambda i, n: calls.append((i, n)))
    assert np.array_equal(a, pipe.generate("x", frames=41, seed=3))
    assert calls[-1] == (6, 6) and [i for i, _ in calls] == list(range(1, 7))  # 3 chunks x 2 steps


def test_context_guidance_applies_to_chunks_given_input_video_frames(pipe, clip, monkeypatch):
    """``context_guidance`` reaches the chunks given frames of an input video (the first chunk
    of an extend, either way; connect's), not text, image, loop or later long-video chunks,
    nor edits; an explicit ``guidance`` wins everywhere."""
    seen = []
    real = pipe.sample_latents
    monkeypatch.setattr(pipe, "sample_latents", lambda *a, **kw: seen.append(a[4]) or real(*a, **kw))
    monkeypatch.setattr(pipe.cfg, "context_guidance", 1.5)
    v, img = clip(13), clip(1)[0]

    def used(**kw):
        seen.clear()
        pipe.generate("x", steps=1, **kw)
        return seen[:]

    assert used(frames=41) == [None, None, None]  # None: the config's guidance (3.0)
    assert used(image=img, frames=25) == [None, None]
    assert used(loop=True, frames=33) == [None, None, None]
    assert used(video=v, extend="forward", frames=40) == [1.5, None, None]  # 27 new frames: 3 chunks
    assert used(video=v, extend="backward", frames=40) == [1.5, None, None]
    assert used(connect=(v, v), frames=3) == [1.5]
    assert used(connect=(v, v), frames=20) == [1.5, None, 1.5]  # from A's tail, its own frames, onto B's head
    assert used(video=v, strength=0.5) == [None]
    assert used(frames=41, guidance=4.0) == [4.0, 4.0, 4.0]


def roundtrip(pipe, frames):
    return pipe.decode(pipe.encode_frames(frames))


def test_condition_frames_come_back_within_round_trip(pipe, clip):
    v = clip(17)
    rt = psnr(roundtrip(pipe, v[:9]), v[:9])
    out = pipe.sample_chunk("x", 0, (64, 64), 17, start=v[:9])
    assert psnr(out[:9], v[:9]) >= rt - 0.01  # causal decoder: the given start decodes as its round trip
    img = v[:1]
    first = pipe.generate("x", image=img[0], frames=17)[0]
    assert abs(psnr(first, img[0]) - psnr(roundtrip(pipe, img)[0], img[0])) < 0.01
    tail = v[9:17]
    out = pipe.sample_chunk("x", 0, (64, 64), 17, end=tail)
    rt_end = psnr(roundtrip(pipe, np.concatenate([tail[:1], tail]))[1:], tail)
    assert psnr(out[9:], tail) >= rt_end - 3.0  # the end decodes after generated frames (causal context)


def peak_numpy_bytes(run):
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_long_video_memory_does_not_grow_with_length(pipe):
    """16 vs 64 latent frames: the stream holds one chunk at a time (numpy frames are traced;
    the per-chunk tensors are the same size by construction)."""
    def consume(frames):
        return lambda: sum(len(b) for b in pipe.stream("x", frames=frames, steps=1))

    short = peak_numpy_bytes(consume(1 + 4 * 15))
    long = peak_numpy_bytes(consume(1 + 4 * 63))
    extra_frames = 4 * 48 * 64 * 64 * 3  # what holding the whole video would add
    assert long - short < 0.1 * extra_frames, (short, long, extra_frames)


@pytest.mark.parametrize("kw,msg", [
    (dict(image=np.zeros((8, 8, 3), np.uint8), video=np.zeros((9, 8, 8, 3), np.uint8), extend="forward"), "give one input"),
    (dict(loop=True, connect=(np.zeros((9, 64, 64, 3), np.uint8),) * 2), "loop works"),
    (dict(extend="forward"), "needs a video"),
    (dict(video=np.zeros((3, 64, 64, 3), np.uint8), extend="forward"), "at least 5"),
    (dict(video=np.zeros((9, 64, 64, 3), np.uint8)), "extend"),
    (dict(video=np.zeros((9, 64, 64, 3), np.uint8), strength=1.5), "strength"),
    (dict(image=np.zeros((8, 8), np.uint8)), "uint8 RGB"),
    (dict(loop=True, frames=5), "at least 9"),
    (dict(frames=10), "nearest: 9"),
])
def test_bad_mode_requests_say_what_is_allowed(pipe, kw, msg):
    with pytest.raises(ValueError, match=msg):
        pipe.generate("x", **kw)
