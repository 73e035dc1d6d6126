"""The tracker against the renderer's own truth: shapes, centroids within a pixel, occlusion."""

import numpy as np
import pytest

from tenku.eval.evaluate import Clip, evaluate_clip, reference
from tenku.eval.segment import detect
from tenku.eval.tracking import PixelMap, centroid_offset, track_video
from tenku.world.render import View, render_scene
from tenku.world.spec import SHAPES, SIZES, BackgroundSpec, ObjectSpec, SceneSpec

from .helpers import item


@pytest.mark.parametrize("height", [96, 128])
def test_every_shape_size_and_angle_is_classified(height):
    for shape in SHAPES:
        for size in SIZES:
            for angle in (0.0, -15.0, 9.0):
                o = ObjectSpec(shape, "orange", size, "rest", 0.5 + 0.3 / height, 0.5, angle=angle)
                frames, _ = render_scene(SceneSpec(1.0, [o], BackgroundSpec("solid", ("slate", "slate"))),
                                         height, height, 8, 1)
                dets = detect(frames)[0]
                assert [d.shape for d in dets] == [shape], (shape, size, angle, [d.features for d in dets])


def _reference_px(it, gt, i, k, pm):
    """Where the tracker should see object i at frame k: the centroid of its *area*, which
    is the simulator's position (the collision disc's centre) moved by the shape's
    centroid offset (a triangle's area centroid lies 0.3 radii below it)."""
    o = it.spec.objects[i]
    ox, oy = centroid_offset(o.shape, o.radius, o.angle)
    x, y = gt.position[i][k]
    return pm.to_px(x + ox, y + oy, k)


def _fully_visible(it, gt, i, k):
    b = gt.bbox[i][k]
    return (gt.visible_fraction[i][k] >= 0.999 and b is not None and b[0] > 0 and b[1] > 0
            and b[2] < it.width and b[3] < it.height)


PROMPTS = [("a large red triangle bounces around on a navy and slate checkerboard", (128, 128)),
           ("a small blue star moves to the right and a green box falls", (224, 128)),
           ("an orange ring is thrown to the left", (128, 224)),
           ("a white ball rests on the floor and a purple triangle is tossed to the right", (128, 128)),
           ("a yellow star bounces off the walls on a striped background", (96, 96))]


@pytest.mark.parametrize("prompt,size", PROMPTS)
def test_tracker_recovers_centroids_within_a_pixel(prompt, size):
    it = item(prompt, size)
    frames, gt = it.reference()
    pm = PixelMap(it.spec, it.width, it.height, it.fps)
    dets, tracks = track_video(frames, pm.scale)
    errors = []
    for i, o in enumerate(it.spec.objects):
        own = [tr for tr in tracks if tr.color == o.color]
        assert len(own) == 1, f"{o.color}: {len(own)} tracks"
        for k in range(it.frames):
            if _fully_visible(it, gt, i, k):
                d = own[0].dets[k]
                px, py = _reference_px(it, gt, i, k, pm)
                errors.append(np.hypot(d.x - px, d.y - py))
    assert len(errors) >= 20
    assert max(errors) < 1.0 and np.mean(errors) < 0.35, (max(errors), np.mean(errors))


def test_occluded_frames_are_missing_and_relinked_to_the_same_track():
    it = item("a large cyan box sits still and a small pink ball moves to the right behind it", (128, 128),
              staging="occlusion")
    frames, gt = it.reference()
    pm = PixelMap(it.spec, it.width, it.height, it.fps)
    dets, tracks = track_video(frames, pm.scale)
    mover = next(i for i, o in enumerate(it.spec.objects) if o.motion == "move")
    hidden = [k for k in range(it.frames) if gt.reason[mover][k] == "occluded"]
    assert len(hidden) >= 2
    pink = [tr for tr in tracks if tr.color == "pink"]
    assert len(pink) == 1, "the mover must be re-linked to its track after the occlusion"
    seen = pink[0].frames
    assert not set(hidden) & set(seen), "occluded frames are reported as missing"
    assert min(seen) < min(hidden) and max(seen) > max(hidden)
    for k in seen:  # fully visible frames: still within a pixel
        if _fully_visible(it, gt, mover, k):
            px, py = _reference_px(it, gt, mover, k, pm)
            assert np.hypot(pink[0].dets[k].x - px, pink[0].dets[k].y - py) < 1.0
    res = evaluate_clip(Clip(frames, it.spec, it.hints, it.fps, *reference(it.spec, gt)))
    row = next(r for r in res["objects"] if r["color"] == "pink")
    causes = {(kind, cause) for _, kind, cause in row["events"]}
    assert ("vanish", "occlusion") in causes and ("appear", "occlusion") in causes
    assert row["returns"] and all(err < 0.01 for _, _, err, _ in row["returns"])  # it came back where physics put it
    assert res["rates"]["permanence"] == 1.0


def test_pixel_map_matches_the_renderer_under_a_pan():
    spec = SceneSpec(16 / 9, [ObjectSpec("circle", "red", "small", "rest", 0.4, 0.3)], pan=0.05)
    pm = PixelMap(spec, 224, 128, 8.0)
    x, y = np.array([0.1, 0.9, 1.7]), np.array([0.2, 0.5, 0.95])
    for k in (0, 5, 20):
        px, py = pm.to_px(x, y, k)
        vx, vy = View(spec, 224, 128).to_px(x, y, spec.pan * k / 8.0)
        assert np.allclose(px, vx) and np.allclose(py, vy)
        bx, by = pm.to_world(px, py, k)
        assert np.allclose(bx, x) and np.allclose(by, y)


def test_a_colour_change_is_one_track_with_unstable_identity():
    it = item("a red ball bounces around", (96, 96))
    frames = it.reference()[0].copy()
    green = it.spec.objects[0].__class__(**{**it.spec.objects[0].__dict__, "color": "green"})
    spec = SceneSpec(it.spec.width, [green], it.spec.background, pan=it.spec.pan)
    other, _ = render_scene(spec, it.width, it.height, it.fps, it.frames)
    video = np.concatenate([frames[:16], other[16:]])
    _, tracks = track_video(video)
    assert len(tracks) == 1 and {d.color for d in tracks[0].dets.values()} == {"red", "green"}
    res = evaluate_clip(Clip(video, it.spec, it.hints, it.fps))
    assert res["rates"]["identity_stability"] < 0.9
