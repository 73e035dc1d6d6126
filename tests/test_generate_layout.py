"""Layouts through the request layer (tenku.request.layout) and `tenku generate --plan / --layout`
on a tiny grounded pipeline: the layout is checked (one-line errors naming layout or plan),
retimed to the video, sliced per chunk in every mode, recorded in the sidecar and reproduced from
it; a model without grounding refuses it; without one the video is what it was."""

import json
import re

import numpy as np
import pytest

from tenku.cli import main
from tenku.io import read_video, write_video
from tenku.layout import from_dict, plan
from tenku.request import Input, Limits, Request, RequestError, resolve


@pytest.fixture(scope="module")
def gpipe(tiny_grounded_pipeline):
    from tenku.pipeline import Pipeline

    p = Pipeline.load(tiny_grounded_pipeline, device="cpu")
    p.cfg.frames, p.cfg.context_frames = 17, 5  # chunks with room for loops and transitions
    return p


def boxes_doc(frames=9, fps=8.0, x=0.1, step=0.05):
    """A layout of one object moving right by ``step`` a frame."""
    return {"fps": fps, "frames": frames, "width": 64, "height": 64,
            "objects": [{"phrase": "a red ball", "boxes": [[x + step * k, 0.4, x + step * k + 0.2, 0.6] for k in range(frames)]}]}


def test_resolve_checks_retimes_and_names_the_field(gpipe, tiny_pipeline):
    from tenku.pipeline import Pipeline

    geo = gpipe.geometry
    r = resolve(Request("a ball", frames=17, conditioning={"layout": boxes_doc(9, 4.0)}), geo, Limits(max_pixels=0))
    lay = r.conditioning["layout"]
    assert (lay.frames, lay.fps) == (17, 8.0) and lay.objects[0].boxes[2] == pytest.approx((0.15, 0.4, 0.35, 0.6))
    bad = boxes_doc()
    bad["objects"][0]["boxes"][3] = [0.5, 0.5, 0.4, 0.6]
    for req, param, says in ((Request("a", conditioning={"layout": bad}), "layout", "object 0 ('a red ball'), frame 3"),
                             (Request("a", conditioning={"layout": boxes_doc()}, plan=True), "plan", "not both"),
                             (Request("a", conditioning={"layout": [1]}), "layout", "JSON object")):
        with pytest.raises(RequestError, match=re.escape(says)) as e:
            resolve(req, geo, Limits(max_pixels=0))
        assert e.value.param == param
    free = Pipeline.load(tiny_pipeline, device="cpu")
    with pytest.raises(RequestError, match="this model has no grounding") as e:
        resolve(Request("a", plan=True), free.geometry)
    assert e.value.param == "plan"
    with pytest.raises(ValueError, match="this model has no grounding"):  # a Python caller's layout
        free.generate("a", conditioning={"layout": boxes_doc()})


@pytest.mark.parametrize("mode", ["text", "long", "image", "forward", "backward", "loop", "connect", "edit"])
def test_every_mode_gives_each_chunk_its_slice_of_the_one_layout(gpipe, clip, mode, monkeypatch):
    lay = from_dict(boxes_doc(60, 8.0, x=0.0, step=0.01))
    seen = []
    real = type(gpipe).chunk_layout
    monkeypatch.setattr(type(gpipe), "chunk_layout", lambda self, l, at, f, m: (seen.append((at, f)), real(self, l, at, f, m))[1])
    v = Input.of_array(clip(13), "video", fps=8.0)
    kw = {"text": {}, "long": {"seconds": 4}, "image": {"image": Input.of_array(clip(1)[0], "image", still=True)},
          "forward": {"video": v, "extend": "forward", "frames": 8}, "backward": {"video": v, "extend": "backward", "frames": 8},
          "loop": {"loop": True}, "connect": {"connect": (v, v), "frames": 4}, "edit": {"video": v, "strength": 0.5}}[mode]
    r = resolve(Request("a ball", steps=1, conditioning={"layout": lay}, **kw), gpipe.geometry, Limits(max_pixels=0))
    out = np.concatenate(list(gpipe.run(r)))
    assert len(out) == r.total == r.conditioning["layout"].frames
    covered = set()
    for at, f in seen:
        covered |= {(at + k) % r.total if mode == "loop" else at + k for k in range(f)}
    made = {"forward": range(13, r.total), "backward": range(r.frames), "connect": range(13, 13 + r.frames)}
    assert set(made.get(mode, range(r.total))) <= covered  # every new frame was some chunk's, at its place
    want = {"text": [(0, 17)], "forward": [(8, 13)], "backward": [(0, 13)], "edit": [(0, 13)], "connect": [(9, 13)]}.get(mode)
    if want:
        assert seen == want
    if mode == "long":
        assert [a for a, _ in seen] == [0, 12, 24] and len(seen) == 3


def run(model, tmp_path, *args, name="o.mp4"):
    out = tmp_path / name
    assert main(["generate", *args, "--model", str(model), "--steps", "1", "--seed", "3", "-o", str(out), "--quiet"]) == 0
    return read_video(out)[0], json.loads(out.with_suffix(".json").read_text()), out


def test_plan_is_recorded_and_reproduced_from_the_sidecar(tiny_grounded_pipeline, tmp_path):
    f, side, out = run(tiny_grounded_pipeline, tmp_path, "a red ball falls and bounces", "--plan")
    want, _ = plan("a red ball falls and bounces", 3, width=64, height=64, fps=8.0, frames=9)
    assert side["plan"] is True and from_dict(side["layout"]) == from_dict(want.to_dict())
    g, side2, _ = run(tiny_grounded_pipeline, tmp_path, "a red ball falls and bounces", "--layout", str(out.with_suffix(".json")),
                      name="b.mp4")
    assert np.array_equal(f, g) and side2["layout"] == side["layout"] and side2["plan"] is False
    h, side3, _ = run(tiny_grounded_pipeline, tmp_path, "a red ball falls and bounces", name="c.mp4")
    assert "layout" not in side3 and not np.array_equal(f, h)  # the layout is followed; without it, free
    k, _, _ = run(tiny_grounded_pipeline, tmp_path, "a red ball falls and bounces", "--layout", str(out), name="d.mp4")
    assert np.array_equal(f, k)  # a video names the sidecar beside it


@pytest.mark.parametrize("args, says", [
    (["--plan", "--layout", "L"], "give --layout (your boxes) or --plan"),
    (["--layout", "missing.json"], "--layout cannot read layout missing.json"),
    (["--layout", "BAD"], "layout object 0 ('a red ball'), frame 3: box"),
    (["--layout", "SIDE"], "a sidecar of a video made without a layout"),
])
def test_layout_errors_are_one_line(tiny_grounded_pipeline, tmp_path, capsys, args, says, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = boxes_doc()
    bad["objects"][0]["boxes"][3] = [0.5, 0.5, 0.4, 0.6]
    (tmp_path / "L").write_text(json.dumps(boxes_doc()))
    (tmp_path / "BAD").write_text(json.dumps(bad))
    (tmp_path / "SIDE").write_text(json.dumps({"prompt": "a", "caption": "a"}))
    argv = ["generate", "a red ball", *args, "--model", str(tiny_grounded_pipeline), "-o", str(tmp_path / "o.mp4"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_a_model_without_grounding_says_so(tiny_pipeline, tmp_path, capsys):
    write_video(tmp_path / "v.mp4", np.zeros((9, 64, 64, 3), np.uint8), 8.0)
    for extra in (["--plan"], ["--layout", str(tmp_path / "l.json")]):
        (tmp_path / "l.json").write_text(json.dumps(boxes_doc()))
        assert main(["generate", "a ball", *extra, "--model", str(tiny_pipeline), "-o", str(tmp_path / "o.mp4"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert "this model has no grounding" in err and len(err.splitlines()) == 1


def test_plan_continues_the_objects_of_the_given_frames_across_the_seam(gpipe):
    """Extending the simulator's own clip with --plan: the object tracked in the given frames
    keeps its place and velocity, so the planned boxes after the seam are the simulator's
    ground truth of the whole clip (to two pixels of 64), where a plan from the prompt alone is not."""
    from tenku.eval.suites import build_suite
    from tenku.layout import from_scene
    from tenku.request.make import expand

    item = build_suite("world", 4, 64)[3]  # a yellow box moves to the right
    truth = from_scene(item.spec, item.width, item.height, item.fps, item.frames)
    given = Input.of_array(item.reference()[0][:13], "video", fps=item.fps)
    r = resolve(Request(item.prompt, video=given, extend="forward", frames=item.frames - 13, size=(64, 64), fps=item.fps,
                        plan=True), gpipe.geometry, Limits(max_pixels=0))
    exp = expand(r)
    lay, alone = r.conditioning["layout"], from_scene(exp.spec, 64, 64, item.fps, item.frames)
    assert lay.frames == item.frames and [o.phrase for o in lay.objects] == [o.phrase for o in truth.objects]

    def err(a):  # the largest coordinate error after the seam where both are visible; frames seen by one only
        pairs = list(zip(a.objects[0].boxes[13:], truth.objects[0].boxes[13:]))
        both = [np.abs(np.subtract(p, q)).max() for p, q in pairs if p is not None and q is not None]
        return max(both, default=1.0), sum((p is None) != (q is None) for p, q in pairs)

    (e, odd), (e_alone, odd_alone) = err(lay), err(alone)
    assert e < 2.5 / 64 and odd <= 1 and (e_alone > 8 / 64 or odd_alone > 3), (e, odd, e_alone, odd_alone)
    assert lay.objects[0].boxes[5] == pytest.approx(truth.objects[0].boxes[5], abs=1.5 / 64)  # the given frames: tracked


def test_plan_of_a_backward_extension_runs_the_given_objects_back_in_time(gpipe):
    """Extending the simulator's clip backward with --plan: the object tracked in the given
    (later) frames is followed into the past, so the planned boxes before the seam are the
    simulator's ground truth of the clip's start (to three pixels of 64: the box tracked at the
    seam is a pixel or two off the render's), where a plan from the prompt alone is not."""
    from tenku.eval.suites import build_suite
    from tenku.layout import from_scene
    from tenku.request.make import expand

    item = build_suite("world", 4, 64)[3]  # a yellow box moves to the right
    truth = from_scene(item.spec, item.width, item.height, item.fps, item.frames)
    new = item.frames - 13
    given = Input.of_array(item.reference()[0][new:], "video", fps=item.fps)
    r = resolve(Request(item.prompt, video=given, extend="backward", frames=new, size=(64, 64), fps=item.fps, plan=True),
                gpipe.geometry, Limits(max_pixels=0))
    exp = expand(r)
    lay, alone = r.conditioning["layout"], from_scene(exp.spec, 64, 64, item.fps, item.frames)
    assert lay.frames == item.frames

    def err(a):  # the largest coordinate error before the seam where both are visible; frames seen by one only
        pairs = list(zip(a.objects[0].boxes[:new], truth.objects[0].boxes[:new]))
        both = [np.abs(np.subtract(p, q)).max() for p, q in pairs if p is not None and q is not None]
        return max(both, default=1.0), sum((p is None) != (q is None) for p, q in pairs)

    (e, odd), (e_alone, odd_alone) = err(lay), err(alone)
    assert e < 3.5 / 64 and odd <= 1 and (e_alone > 8 / 64 or odd_alone > 3), (e, odd, e_alone, odd_alone)
    assert lay.objects[0].boxes[-5] == pytest.approx(truth.objects[0].boxes[-5], abs=1.5 / 64)  # the given frames: tracked


def test_plan_of_a_connect_lands_on_clip_bs_objects(gpipe):
    """Connecting the simulator's first 13 frames of a clip to its last 13 (truth frames 20 to 32)
    with 3 transition frames, too few for the physics to get there: a plan from A alone would
    move one frame's motion a step and jump five at B's seam; the plan that also runs back from
    B and blends the two spreads the eight frames' motion over the four steps."""
    from tenku.eval.suites import build_suite
    from tenku.layout import from_scene
    from tenku.request.make import expand

    item = build_suite("world", 4, 64)[3]  # a yellow box moves to the right at a constant speed
    ref, truth = item.reference()[0], from_scene(item.spec, item.width, item.height, item.fps, item.frames)
    a, b = Input.of_array(ref[:13], "video", fps=item.fps), Input.of_array(ref[-13:], "video", fps=item.fps)
    r = resolve(Request(item.prompt, connect=(a, b), frames=3, size=(64, 64), fps=item.fps, plan=True),
                gpipe.geometry, Limits(max_pixels=0))
    expand(r)
    boxes = r.conditioning["layout"].objects[0].boxes
    x = lambda box: (box[0] + box[2]) / 2  # noqa: E731
    v = (x(truth.objects[0].boxes[12]) - x(truth.objects[0].boxes[0])) / 12  # one frame's motion
    steps = [x(boxes[k + 1]) - x(boxes[k]) for k in range(12, 16)]
    assert len(boxes) == 29 and v > 0
    assert all(1.2 * v < s < 2.8 * v for s in steps), (v, steps)  # 2 v a step, against 1 v and a 5 v jump
    assert x(boxes[16]) == pytest.approx(x(truth.objects[0].boxes[20]), abs=2 / 64)  # B's own box


def test_a_planned_loop_closes_on_its_first_frame(gpipe):
    """A loop of a box moving right: the plan's last frame is where the box was a frame before the
    first (the loop flows on), not 32 frames further on, off the frame."""
    from tenku.eval.suites import build_suite
    from tenku.request.make import expand

    item = build_suite("world", 4, 64)[3]  # a yellow box moves to the right
    r = resolve(Request(item.prompt, loop=True, frames=33, size=(64, 64), fps=item.fps, plan=True, seed=1),
                gpipe.geometry, Limits(max_pixels=0))
    expand(r)
    boxes = r.conditioning["layout"].objects[0].boxes
    x = lambda box: (box[0] + box[2]) / 2  # noqa: E731
    assert boxes[0] is not None and boxes[-1] is not None
    v = x(boxes[1]) - x(boxes[0])
    assert abs(x(boxes[-1]) - (x(boxes[0]) - v)) < 2 / 64, (x(boxes[0]), v, x(boxes[-1]))
