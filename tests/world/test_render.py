"""Rendering: resolution/fps independence, pixel-exact visibility truth, determinism."""

import dataclasses

import numpy as np
import pytest

from tenku.world.render import HIDDEN_ALPHA, render_frames, render_scene
from tenku.world.sample import sample_scene
from tenku.world.spec import BACKGROUND_KINDS, FLOOR_COLORS, SHAPES, BackgroundSpec, ObjectSpec, SceneSpec


def occlusion_scene(mover_depth=0):
    front = ObjectSpec("square", "white", "large", "rest", x=0.5, y=0.5, depth=1)
    mover = ObjectSpec("circle", "blue", "small", "move", x=0.1, y=0.5, vx=0.3, walls=False, depth=mover_depth)
    return SceneSpec(width=1.0, objects=[front, mover], background=BackgroundSpec("stripes", ("navy", "slate")))


def test_trajectories_agree_across_sizes_and_fps():
    spec = sample_scene(np.random.default_rng(3), width=1.0)
    spec.objects.append(ObjectSpec("star", "orange", "medium", "throw", x=0.2, y=0.3, vx=0.3, vy=1.2, gravity=True))
    _, a = render_scene(spec, 128, 128, 8, 33)
    _, b = render_scene(spec, 224, 128, 8, 33)
    _, c = render_scene(spec, 128, 128, 24, 97)
    pa, pb, pc = (np.array(g.position) for g in (a, b, c))
    np.testing.assert_allclose(pa, pb, atol=1e-9)
    np.testing.assert_allclose(pa, pc[:, ::3], atol=2e-6)  # JSON rounding to 1e-6
    np.testing.assert_allclose(np.array(a.velocity), np.array(c.velocity)[:, ::3], atol=2e-6)


def test_occluded_exactly_while_pixels_are_hidden():
    spec = occlusion_scene()
    times = np.arange(33) / 8.0
    with_mover, _ = render_frames(spec, 128, 128, times)
    alone = dataclasses.replace(spec, objects=spec.objects[:1])
    without, _ = render_frames(alone, 128, 128, times)
    _, gt = render_scene(spec, 128, 128, 8, 33)
    diff = np.abs(with_mover - without).max(axis=(1, 2, 3))
    reasons = gt.reason[1]
    assert "occluded" in reasons and None in reasons  # hidden for a while, and seen
    for k, why in enumerate(reasons):
        if why is None:
            assert diff[k] > HIDDEN_ALPHA * 0.1, k
        else:
            assert diff[k] <= HIDDEN_ALPHA, (k, why)
    starts = [e for e in gt.events if e.type == "occlusion_start"]
    ends = [e for e in gt.events if e.type == "occlusion_end"]
    assert len(starts) == 1 and len(ends) == 1 and starts[0].objects == [1, 0]
    assert reasons[starts[0].frame] == "occluded" and reasons[ends[0].frame] is None
    assert gt.visible[1] == [r is None for r in reasons]


def test_in_front_is_never_occluded():
    _, gt = render_scene(occlusion_scene(mover_depth=2), 128, 128, 8, 33)
    assert "occluded" not in gt.reason[1] and "occluded" not in gt.reason[0]


def test_leaving_the_frame_is_marked_with_its_side():
    o = ObjectSpec("circle", "red", "medium", "move", x=0.5, y=0.5, vx=-0.5, walls=False)
    spec = SceneSpec(width=1.0, objects=[o])
    _, gt = render_scene(spec, 64, 64, 8, 17)
    leave = [e for e in gt.events if e.type == "leave_frame"]
    assert len(leave) == 1 and leave[0].where == "left"
    k = leave[0].frame
    assert gt.reason[0][k] == "out_of_frame" and gt.reason[0][k - 1] is None
    assert gt.bbox[0][k] is None and gt.bbox[0][0] is not None
    assert np.array(gt.position)[0, k, 0] < o.radius * 1.01  # its disc is past the left edge


def test_deterministic_and_antialiased():
    spec = sample_scene(np.random.default_rng(11), width=16 / 9)
    a, _ = render_scene(spec, 224, 128, 8, 9)
    b, _ = render_scene(spec, 224, 128, 8, 9)
    assert a.shape == (9, 128, 224, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    one = SceneSpec(width=1.0, objects=[ObjectSpec("circle", "white", "large", "rest", x=0.5, y=0.5)],
                    background=BackgroundSpec("solid", ("black", "black")))
    img, _ = render_scene(one, 64, 64, 8, 1)
    levels = np.unique(img[0, :, :, 0])
    assert len(levels) > 5  # edge pixels blend, not a hard 2-level mask


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_covers_about_its_area(shape):
    o = ObjectSpec(shape, "white", "large", "rest", x=0.5, y=0.5, angle=20.0)
    spec = SceneSpec(width=1.0, objects=[o], background=BackgroundSpec("solid", ("black", "black")))
    _, st = render_frames(spec, 256, 256, np.zeros(1))
    assert st["area"][0, 0] == pytest.approx(o.mass * 256**2, rel=0.01)


@pytest.mark.parametrize("kind", BACKGROUND_KINDS)
def test_backgrounds_and_pan(kind):
    spec = SceneSpec(width=1.0, objects=[ObjectSpec("circle", "red", "small", "rest", x=0.5, y=0.5)],
                     background=BackgroundSpec(kind, ("navy", "grey"), floor=True), pan=0.2)
    frames, gt = render_scene(spec, 64, 64, 8, 9)
    np.testing.assert_allclose(frames[0, -1, 32], FLOOR_COLORS["grey"], atol=2)  # floor band at the bottom
    if kind in ("stripes", "checker"):
        assert not np.array_equal(frames[0, 10], frames[8, 10])  # the pan moves the texture
    x0, x8 = gt.bbox[0][0][0], gt.bbox[0][8][0]
    assert x8 - x0 == pytest.approx(-0.2 * 1.0 * 64, abs=1)  # a resting object drifts against the pan
