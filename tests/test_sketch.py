"""The sketch (tenku.sketch): a layout drawn in its phrases' colours and shapes over the scene's
background; sampling starts from it noised to the sketch strength (--sketch), in every mode
with a layout, and the request layer refuses a sketch that cannot be used, in one line."""

import json
import re

import numpy as np
import pytest

from tenku.cli import main
from tenku.io import read_video
from tenku.layout import Layout, LayoutObject, plan
from tenku.request import Input, Limits, Request, RequestError, resolve
from tenku.sketch import Sketch, appearance
from tenku.world.render import render_scene
from tenku.world.spec import PALETTE, BackgroundSpec, SceneSpec


def plain(color: str = "black") -> SceneSpec:
    return SceneSpec(1.0, [], BackgroundSpec("solid", (color, color)))


def test_appearance_reads_shape_and_colour_from_the_phrase():
    assert appearance("a large navy blue block") == ("square", tuple(c / 255 for c in PALETTE["blue"]))
    assert appearance("a small red ball")[0] == "circle" and appearance("a green star")[0] == "star"
    assert appearance("a dog") == ("circle", (0.5, 0.5, 0.5))  # nothing the world draws: a grey disc


def test_objects_fill_their_boxes_in_depth_order_and_half_visible_objects_stay_round():
    lay = Layout(8.0, 2, 64, 64, [
        LayoutObject("a red ball", [(0.25, 0.25, 0.75, 0.75), None], depth=1),
        LayoutObject("a blue square", [(0.0, 0.0, 0.5, 0.5), (0.0, 0.25, 0.25, 0.75)], depth=0)])
    f = Sketch(lay, plain(), 64, 64).frames(0, 2).astype(int)
    red, blue = np.array(PALETTE["red"]), np.array(PALETTE["blue"])
    assert np.abs(f[0, 32, 32] - red).max() <= 1  # the ball's centre
    assert np.abs(f[0, 34, 34] - red).max() <= 1  # in front of the square where they overlap
    bg = f[0, 60, 60]
    assert np.abs(f[0, 4, 4] - blue).max() <= 1 and np.abs(bg - red).max() > 50  # the square; the background
    assert (f[1, 30:34, 30:34] == bg).all()  # frame 1: the ball is not visible
    # frame 1's square is cut by the left edge (16 px wide, 32 tall): drawn as a 32 px square
    # whose left half is off frame, not squashed into the box
    assert np.abs(f[1, 32, 14] - blue).max() <= 1 and (f[1, 32, 18] == bg).all()


def test_a_planned_layouts_sketch_is_the_simulators_render():
    lay, exp = plan("a large blue triangle and a small yellow star collide", 0, width=112, height=64, frames=9)
    sketch = Sketch(lay, exp.spec, 112, 64).frames(0, 9).astype(int)
    render, _ = render_scene(exp.spec, 112, 64, 8.0, 9)
    assert np.abs(sketch - render).max() <= 2


def test_tilted_and_edge_cut_objects_are_sketched_as_rendered():
    """The plan's boxes are the exact outlines and carry each object's angle: a tilted star, a
    tilted triangle leaving through the right edge and a square behind it are drawn as the
    simulator draws them, not upright and a pixel small (the render's whole-pixel boxes cut the
    points and apexes)."""
    from tenku.layout import from_scene
    from tenku.world.spec import ObjectSpec

    objs = [ObjectSpec("star", "pink", "small", "move", 0.3, 0.5, vx=0.2, angle=-13.4),
            ObjectSpec("triangle", "orange", "medium", "move", 0.9, 0.6, vx=0.5, walls=False, angle=21.0, depth=1),
            ObjectSpec("square", "blue", "large", "rest", 0.9, 0.55, angle=7.0)]
    spec = SceneSpec(16 / 9, objs, BackgroundSpec("stripes", ("navy", "slate")))
    lay = from_scene(spec, 224, 128, 8.0, 17)
    assert [o.angle for o in lay.objects] == [-13.4, 21.0, 7.0]
    assert max(b[2] for b in lay.objects[1].boxes if b is not None) > 1  # reaches past the right edge
    sketch = Sketch(lay, spec, 224, 128).frames(0, 17).astype(int)
    render, _ = render_scene(spec, 224, 128, 8.0, 17)
    assert np.abs(sketch - render).max() <= 2


def test_frames_clamp_before_and_after_and_wrap_for_loops():
    lay = Layout(8.0, 5, 32, 32, [LayoutObject("a red ball", [(0.1 * k, 0.4, 0.1 * k + 0.2, 0.6) for k in range(5)])])
    s = Sketch(lay, plain(), 32, 32)
    assert np.array_equal(s.frames(-2, 1)[0], s.frames(0, 1)[0])
    assert np.array_equal(s.frames(6, 1)[0], s.frames(4, 1)[0])
    assert np.array_equal(s.frames(6, 1, wrap=True)[0], s.frames(1, 1)[0])


def doc(frames=9):
    return {"fps": 8.0, "frames": frames, "width": 64, "height": 64,
            "objects": [{"phrase": "a red ball", "boxes": [[0.1 + 0.05 * k, 0.4, 0.3 + 0.05 * k, 0.6] for k in range(frames)]}]}


def test_resolving_settles_the_strength_and_refuses_what_cannot_be_used(tiny_grounded_pipeline):
    from tenku.pipeline import Pipeline

    geo = Pipeline.load(tiny_grounded_pipeline, device="cpu").geometry
    lim = Limits(max_pixels=0)
    assert resolve(Request("a ball", conditioning={"layout": doc()}), geo, lim).sketch == geo.sketch
    assert resolve(Request("a ball", plan=True, sketch=0.5), geo, lim).sketch == 0.5
    assert resolve(Request("a ball"), geo, lim).sketch is None  # no layout, no sketch
    v = Input.of_array(np.zeros((9, 64, 64, 3), np.uint8), "video", fps=8.0)
    for req, says in ((Request("a ball", sketch=0.5), "draws a layout's objects: give plan or layout"),
                      (Request("a ball", plan=True, sketch=0.0), "must be a number in (0, 1]"),
                      (Request("a ball", plan=True, sketch=True), "must be a number in (0, 1]"),
                      (Request("a ball", video=v, strength=0.5, plan=True, sketch=0.5), "an edit starts from its own video")):
        with pytest.raises(RequestError, match=re.escape(says)) as e:
            resolve(req, geo, lim)
        assert e.value.param == "sketch"


def run(model, tmp_path, *args, name="o.mp4"):
    out = tmp_path / name
    assert main(["generate", "a red ball falls and bounces", *args, "--model", str(model), "--steps", "4", "--seed", "3",
                 "-o", str(out), "--quiet"]) == 0
    return read_video(out)[0].astype(int), json.loads(out.with_suffix(".json").read_text())


def test_sampling_starts_from_the_sketch_and_the_sidecar_records_it(tiny_grounded_pipeline, tmp_path):
    """At a small strength the video is the sketch after the autoencoder's round trip (the tiny
    model's few steps barely move it); at 1 it is the plan without a sketch; the sidecar's
    strength and layout make the same video again."""
    from tenku.pipeline import Pipeline

    low, side = run(tiny_grounded_pipeline, tmp_path, "--plan", "--sketch", "0.02")
    free, side1 = run(tiny_grounded_pipeline, tmp_path, "--plan", "--sketch", "1", name="f.mp4")
    assert side["sketch"] == 0.02 and side1["sketch"] == 1.0
    pipe = Pipeline.load(tiny_grounded_pipeline, device="cpu")
    lay, exp = plan("a red ball falls and bounces", 3, width=64, height=64, frames=9, fps=8.0)
    sk = Sketch(lay, exp.spec, 64, 64).frames(0, 9)
    round_trip = pipe.decode(pipe.encode_frames(sk)).astype(int)
    assert np.abs(low - round_trip).mean() < 6 < np.abs(free - round_trip).mean()
    again, _ = run(tiny_grounded_pipeline, tmp_path, "--layout", str(tmp_path / "o.json"), "--sketch", "0.02", name="a.mp4")
    assert np.array_equal(again, low)


def test_a_sketch_takes_its_share_of_the_steps(tiny_grounded_pipeline, tmp_path):
    """--steps counts a full noise range's steps; a sketch from 0.5 runs half of them (as
    diffusers' image-to-image does), and the progress count says so."""
    from tenku.pipeline import Pipeline
    from tenku.sketch import sketch_steps

    assert [sketch_steps(20, s) for s in (1.0, 0.4, 0.01)] == [20, 8, 1]
    pipe = Pipeline.load(tiny_grounded_pipeline, device="cpu")
    ticks = []
    r = resolve(Request("a red ball", plan=True, sketch=0.5, steps=6, frames=9), pipe.geometry, Limits(max_pixels=0))
    from tenku.request.make import expand, stream

    list(stream(pipe, r, expand(r), lambda i, n: ticks.append((i, n))))
    assert ticks[-1] == (3, 3) and r.steps == 6  # the request (and its sidecar) keep the steps asked


def test_sketch_flag_errors_are_one_line(tiny_grounded_pipeline, tmp_path, capsys):
    for extra, says in ((["--sketch", "0.5"], "--sketch draws a layout's objects: give --plan or --layout"),
                        (["--plan", "--sketch", "1.5"], "--sketch must be a number in (0, 1]")):
        argv = ["generate", "a ball", *extra, "--model", str(tiny_grounded_pipeline), "-o", str(tmp_path / "o.mp4"),
                "--quiet"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1
