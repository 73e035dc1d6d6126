"""The request layer without a model: resolution against a geometry (defaults, rounding, mode
rules), the stored dict's round trip, and the description of an input's background that a
request's prompt expansion starts from."""

from pathlib import Path

import numpy as np
import pytest

from tenku.request import Geometry, Input, Limits, Request, RequestError, Resolved, resolve

GEO = Geometry(size_multiple=16, frame_step=4, size=(64, 64), frames=17, fps=8.0, context_frames=5)


def test_defaults_rounding_and_modes():
    r = resolve(Request("x", seconds=1.2), GEO)
    assert (r.mode, r.frames, r.size, r.fps, r.steps) == ("text-to-video", 9, (64, 64), 8.0, 20)
    assert r.notes == ["1.2 s at 8 fps rounded to 9 frames (the model makes 1 + 4k)"]
    video = Input(64, 64, 26, fps=16.0)  # 13 frames at 8 fps
    ext = resolve(Request("x", video=video, extend="backward", seconds=1), GEO)
    assert (ext.mode, ext.frames, ext.total, ext.caption_frames) == ("extend-backward", 8, 21, 21)
    edit = resolve(Request("x", video=video, strength=0.5), GEO)
    assert (edit.mode, edit.frames, edit.strength) == ("edit", 13, 0.5)
    wide = resolve(Request("x", video=Input(320, 240, 9, 8.0), extend="forward"), GEO)
    assert wide.size == (80, 64) and "larger than this model makes" in wide.notes[0]
    assert resolve(Request("x", aspect="16:9", preview=True), GEO).size == (64, 32)


@pytest.mark.parametrize("req,code,param", [
    (Request("x", size="100x64"), "invalid_size", "size"),
    (Request("x", size=(1024, 1024)), "invalid_size", "size"),
    (Request("x", frames=10), "invalid_frames", "frames"),
    (Request("x", loop=True, frames=5), "invalid_frames", "seconds"),
    (Request("x", extend="forward"), "invalid_combination", "extend"),
    (Request("x", video=Input(64, 64, 3, 8.0), extend="forward"), "invalid_value", "video"),
    (Request("x", video=Input(64, 64, 9, 8.0), strength=1.5), "invalid_value", "strength"),
    (Request("x", seconds=100), "invalid_seconds", "seconds"),
    (Request("x", seconds=1e308), "invalid_seconds", "seconds"),  # was an OverflowError: a 500 on the server
    (Request("x", video=Input(64, 64, 9, 8.0), extend="forward", seconds=1e308), "invalid_seconds", "seconds"),
    (Request("x", sampler="ddim"), "invalid_value", "sampler"),
])
def test_refusals_carry_code_and_param(req, code, param):
    with pytest.raises(RequestError) as e:
        resolve(req, GEO, Limits(max_seconds=60))
    assert (e.value.code, e.value.param) == (code, param) and "\n" not in str(e.value)


def test_no_length_overflows_without_limits():
    """The CLI has no seconds limit; an absurd length is still a one-line refusal."""
    with pytest.raises(RequestError, match="at most 10000000"):
        resolve(Request("x", seconds=1e308), GEO)


def test_stored_dict_round_trip(tmp_path):
    r = resolve(Request("x", video=Input(64, 64, 13, 8.0, path=tmp_path / "input-video.mp4"), extend="forward"), GEO)
    back = Resolved.from_dict(r.to_dict(), tmp_path)
    assert back.to_dict() == r.to_dict() and back.video.path == tmp_path / "input-video.mp4"


@pytest.mark.parametrize("kind,colors,floor,want", [
    ("checker", ["grey", "navy"], True, ("checkerboard", "grey", "navy")),
    ("stripes", ["maroon", "olive"], True, ("Vertical stripes", "maroon", "olive")),
    ("solid", ["slate", "slate"], False, ("plain slate", "no floor")),
    ("gradient", ["black", "brown"], True, ("gradient from black at the top to brown",)),
])
def test_input_background_is_described(kind, colors, floor, want):
    from tenku.request.recaption import describe_background
    from tenku.world.dataset import render_one
    from tenku.world.sample import sample_scene

    spec = sample_scene(np.random.default_rng(1), width=1.0, background={"kind": kind, "colors": colors, "floor": floor})
    text = describe_background(render_one(spec, 96, 96, 8.0, 5, 1)[0])
    floor_said = f"a {spec.background.floor_color} floor" if floor else "no floor"
    assert all(w in text for w in want) and floor_said in text, text


# ---- bounded work (issue 35, findings 3 and 5) --------------------------------------------------

SERVER = Limits(max_pixels=16 * 64 * 64, max_seconds=60, max_steps=200, max_input_frames=20_000, max_work=2e8,
                where="this server")


def test_work_counts_every_sampled_frame():
    """The work is frames sampled (every chunk's, context frames included) x pixels x steps."""
    assert resolve(Request("x", frames=9), GEO).work == 9 * 64 * 64 * 20
    long = resolve(Request("x", frames=41, steps=2), GEO)  # chunks of 17 with 5 context frames: 17 + 17 + 17
    assert long.work == (17 + 17 + 17) * 64 * 64 * 2
    edit = resolve(Request("x", video=Input(64, 64, 13, 8.0), strength=0.5, steps=4), GEO)
    assert edit.work == 13 * 64 * 64 * 4


def test_limits_multiply_into_one_budget():
    """Finding 5: seconds, fps, steps and size each within its own limit, together far over."""
    with pytest.raises(RequestError) as e:
        resolve(Request("x", seconds=60, fps=120, steps=200, size=(256, 256)), GEO, SERVER)
    msg = str(e.value)
    assert e.value.code == "over_budget" and "2e+08" in msg and "lower" in msg and "\n" not in msg
    assert "x 256x256 x 200 steps" in msg  # the request's cost, spelled out
    resolve(Request("x", seconds=4, size=(256, 256)), GEO, SERVER)  # a large but ordinary request passes


def test_max_seconds_counts_the_whole_output_after_resampling():
    """Finding 3: an edit or extension of a long upload was queued past max_seconds."""
    long = Input(16, 16, 2000, fps=8.0)  # 250 s
    with pytest.raises(RequestError) as e:
        resolve(Request("x", video=long, strength=0.5), GEO, SERVER)
    assert (e.value.code, e.value.param) == ("invalid_seconds", "video")
    with pytest.raises(RequestError) as e:
        resolve(Request("x", video=long, extend="forward", seconds=1), GEO, SERVER)
    assert (e.value.code, e.value.param) == ("invalid_seconds", "video")
    short = Input(16, 16, 400, fps=8.0)  # 50 s: its extension by 20 s is 70 s
    with pytest.raises(RequestError) as e:
        resolve(Request("x", video=short, extend="forward", seconds=20), GEO, SERVER)
    assert (e.value.code, e.value.param) == ("invalid_seconds", "seconds")
    resolve(Request("x", video=short, extend="forward", seconds=2), GEO, SERVER)


def test_input_frame_cap_applies_after_the_fps_change():
    """Finding 3: 20,000 frames at 1 fps asked at 120 fps are 2.4 million frames."""
    with pytest.raises(RequestError) as e:
        resolve(Request("x", video=Input(16, 16, 20_000, fps=1.0), extend="forward", fps=120), GEO,
                Limits(max_input_frames=20_000))
    assert (e.value.code, e.value.param) == ("invalid_file", "video") and "2399" in str(e.value)


def test_seconds_shorter_than_a_frame_is_refused():
    """Finding 7: seconds 1e-300 was made as a 1-frame video."""
    for req in (Request("x", seconds=1e-300), Request("x", video=Input(64, 64, 9, 8.0), extend="forward", seconds=1e-300)):
        with pytest.raises(RequestError) as e:
            resolve(req, GEO)
        assert (e.value.code, e.value.param) == ("invalid_seconds", "seconds") and "shorter than one frame" in str(e.value)


def test_a_file_input_is_decoded_frame_by_frame_at_the_output_size(tmp_path):
    """Issue 35, finding 4: the worker decoded a whole upload at full resolution (300 black
    1024x1024 frames, 16 KB, took 6 GB). Now each frame is fitted as it is decoded and decoding
    stops after the frames needed; the result is what fitting the whole video gives."""
    import tracemalloc

    from tenku.io import read_video, write_video
    from tenku.modes.frames import cover_resize, resample_fps

    path = write_video(tmp_path / "big.mp4", np.zeros((40, 512, 512, 3), np.uint8), 16.0)  # 30 MB decoded
    tracemalloc.start()
    try:
        frames = Input(0, 0, 0, path=path).frames(8.0, (64, 64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames.shape == (20, 64, 64, 3) and peak < 6e6, peak  # a few frames, never the 30 MB
    whole, fps = read_video(path)
    assert np.array_equal(frames, cover_resize(resample_fps(whole, fps, 8.0), 64, 64))
    short = Input(0, 0, 0, path=path)
    assert np.array_equal(short.frames(8.0, (64, 64), count=5), frames[:5]) and short.fps == 16.0
