"""Layouts (tenku.layout): validation errors name the object and frame, resampling keeps the
motion, latent boxes follow the causal VAE's grouping, and the planner's boxes are the
simulator's ground truth."""

import json

import numpy as np
import pytest

from tenku.layout import (Layout, LayoutObject, from_dict, from_ground_truth, latent_boxes, latent_frames, load, plan,
                          resample, save, window)


def doc(**kw):
    d = {"fps": 8, "frames": 3, "width": 128, "height": 128,
         "objects": [{"phrase": "a red ball", "boxes": [[0.1, 0.1, 0.3, 0.3], None, [0.5, 0.5, 0.7, 0.7]]}]}
    d.update(kw)
    return d


@pytest.mark.parametrize("objects, says", [
    ([{"phrase": "a red ball", "boxes": [[0.1, 0.1, 0.3, 0.3], [0.4, 0.1, 0.3, 0.3]]}], "object 0 ('a red ball'), frame 1: box"),
    ([{"phrase": "a red ball", "boxes": [None, None, [0.1, 0.1, 0.2]]}], "object 0 ('a red ball'), frame 2"),
    ([{"phrase": "x", "boxes": []}, {"phrase": "a cube", "boxes": [None, [1.2, 0.1, 1.5, 0.2]]}], "object 1 ('a cube'), frame 1: box"),
    ([{"phrase": "", "boxes": []}], "object 0: phrase"),
    ([{"phrase": "a", "boxes": [None] * 4}], "4 boxes for 3 frames"),
    ([{"phrase": "a", "boxes": [], "depth": "front"}], "depth must be an integer"),
    ([{"phrase": "a star", "boxes": [], "angle": "tilted"}], "object 0 ('a star'): angle must be a number of degrees"),
    ([{"phrase": "a star", "boxes": [], "angle": 720}], "from -360 to 360"),
])
def test_validation_names_the_object_and_frame(objects, says):
    with pytest.raises(ValueError) as e:
        from_dict(doc(objects=objects))
    assert says in str(e.value)


def test_bad_header_and_file_errors_are_one_line(tmp_path):
    for bad, says in ((doc(fps=0), "fps"), (doc(frames=2.5), "frames"), ({"fps": 8}, "missing 'frames'"), ([], "JSON object")):
        with pytest.raises(ValueError, match=says):
            from_dict(bad)
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(ValueError, match="x.json: not valid JSON"):
        load(tmp_path / "x.json")


def test_save_load_round_trip_and_short_box_lists_pad_with_none(tmp_path):
    lay = from_dict(doc(objects=[{"phrase": "a red ball", "boxes": [[0.1, 0.1, 0.3, 0.3]], "depth": 2},
                                 {"phrase": "a star", "boxes": [[0.5, 0.5, 0.7, 0.7]] * 3, "angle": -13.4}]))
    assert lay.objects[0].boxes[1:] == [None, None]
    save(lay, tmp_path / "l.json")
    assert load(tmp_path / "l.json") == lay
    objs = json.loads((tmp_path / "l.json").read_text())["objects"]
    assert objs[0]["depth"] == 2 and "angle" not in objs[0] and objs[1]["angle"] == -13.4
    # retiming and cutting keep what an object is: its phrase, depth and angle
    for o in (resample(lay, 16.0).objects[1], window(lay, 1, 5).objects[1]):
        assert (o.phrase, o.depth, o.angle) == ("a star", None, -13.4)


def test_resample_interpolates_between_visible_frames_and_keeps_gaps():
    lay = Layout(8.0, 3, 128, 128, [LayoutObject("a", [(0.0, 0.0, 0.2, 0.2), (0.2, 0.0, 0.4, 0.2), None])])
    up = resample(lay, 16.0)
    assert up.frames == 5 and up.fps == 16.0
    assert up.objects[0].boxes[1] == pytest.approx((0.1, 0.0, 0.3, 0.2))
    assert up.objects[0].boxes[4] is None
    assert resample(up, 8.0).objects[0].boxes[:2] == [pytest.approx(b) for b in lay.objects[0].boxes[:2]]


def test_latent_boxes_take_the_union_of_each_latent_frames_frames():
    boxes = [(0.1 * f, 0.0, 0.1 * f + 0.1, 0.1) for f in range(5)] + [None] * 4
    t = latent_boxes(Layout(8.0, 9, 64, 64, [LayoutObject("a", boxes)]), time_down=4)
    assert t.shape == (1, latent_frames(9), 4) == (1, 3, 4)
    assert t[0, 0] == pytest.approx([0.0, 0.0, 0.1, 0.1])
    assert t[0, 1] == pytest.approx([0.1, 0.0, 0.5, 0.1])  # frames 1-4
    assert np.isnan(t[0, 2]).all()  # frames 5-8: never visible


def test_from_ground_truth_is_the_renders_boxes(tiny_world):
    gt = json.loads(next((tiny_world / "gt").glob("*.json")).read_text())
    lay = from_ground_truth(gt["ground_truth"], gt["spec"])
    truth = gt["ground_truth"]
    for o, boxes, seen in zip(lay.objects, truth["bbox"], truth["visible"]):
        for b, t, v in zip(o.boxes, boxes, seen):
            assert (b is None) == (t is None or not v)
            if b is not None:
                assert [b[0] * 64, b[1] * 64, b[2] * 64, b[3] * 64] == pytest.approx(t)


def test_plan_is_the_simulators_ground_truth_for_the_expanded_scene():
    from tenku.world.render import render_scene

    lay, exp = plan("a red ball bounces while a blue square slides left", seed=3, width=96, height=64, fps=12, frames=30)
    _, gt = render_scene(exp.spec, 96, 64, 12, 30)
    truth = from_ground_truth(gt.to_dict(), exp.spec.to_dict())
    assert (lay.fps, lay.frames, lay.width, lay.height) == (12.0, 30, 96, 64)
    assert [(o.phrase, o.depth, o.angle) for o in lay.objects] == [(o.phrase, o.depth, o.angle) for o in truth.objects]
    for o, t in zip(lay.objects, truth.objects):
        assert [b is None for b in o.boxes] == [b is None for b in t.boxes]  # visible where the render says
        # the exact outline (which may reach past the edge): in the frame within a pixel of the render's whole pixels
        for b, tb in zip(o.boxes, t.boxes):
            if b is not None:
                px = np.array([b[0] * 96, b[1] * 64, b[2] * 96, b[3] * 64])
                assert np.abs(np.clip(px, 0, [96, 64, 96, 64]) - np.array([tb[0] * 96, tb[1] * 64, tb[2] * 96, tb[3] * 64])).max() < 1.0
    assert any("red" in o.phrase for o in lay.objects) and any("blue square" in o.phrase for o in lay.objects)
    with pytest.raises(ValueError, match="a minute"):
        plan("a red ball", frames=8 * 61 + 1, fps=8)


def test_the_layout_command_writes_a_loadable_plan_and_refuses_more_than_a_minute(tmp_path, capsys):
    from tenku.cli import main

    assert main(["layout", "a red ball falls", "-o", str(tmp_path / "b.json"), "--seconds", "1", "--size", "96x64"]) == 0
    lay = load(tmp_path / "b.json")
    assert (lay.frames, lay.width, lay.height) == (9, 96, 64) and any("red" in o.phrase for o in lay.objects)
    assert main(["layout", "a red ball", "-o", str(tmp_path / "c.json"), "--seconds", "61"]) == 2
    assert "a minute" in capsys.readouterr().err


def test_the_layout_command_writes_the_plans_sketch(tmp_path, capsys):
    from tenku.cli import main
    from tenku.io import read_video
    from tenku.sketch import Sketch

    argv = ["layout", "a red ball falls", "-o", str(tmp_path / "b.json"), "--seconds", "1", "--size", "96x64"]
    assert main([*argv, "--sketch", str(tmp_path / "s.gif")]) == 0
    frames = read_video(tmp_path / "s.gif")[0]
    lay, exp = plan("a red ball falls", 0, width=96, height=64, fps=8.0, frames=9)
    assert frames.shape == (9, 64, 96, 3) and np.array_equal(frames, Sketch(lay, exp.spec, 96, 64).frames(0, 9))
    assert main([*argv, "--sketch", str(tmp_path / "b.json" / "s.mp4")]) == 2  # under a file
    err = capsys.readouterr().err.strip()
    assert "cannot write" in err and len(err.splitlines()) == 1
