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
