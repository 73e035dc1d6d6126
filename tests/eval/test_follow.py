"""Layout following (tenku.eval.follow): a layout's own sketch follows it exactly, a shifted video
scores its shift, a blob the layout does not have is an extra track, wrong inputs are one line."""

import math

import numpy as np
import pytest

from tenku.eval.follow import reference_points, score
from tenku.layout import Layout, LayoutObject
from tenku.sketch import Sketch
from tenku.world.spec import BackgroundSpec, SceneSpec

T, S = 17, 96


def scene() -> SceneSpec:
    return SceneSpec(1.0, [], BackgroundSpec("solid", ("slate", "slate")))


def box(cx: float, cy: float, size: float) -> tuple[float, float, float, float]:
    return cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2


def layout(extra: bool = False) -> Layout:
    """A red ball on a circle, a blue square crossing in front of a yellow triangle, the square
    entering from the left; ``extra``: a green ball at rest besides."""
    ball = [box(0.5 + 0.25 * math.cos(k / 3), 0.4 + 0.2 * math.sin(k / 3), 0.2) for k in range(T)]
    square = [box(-0.02 + 0.06 * k, 0.75, 0.18) for k in range(T)]
    tri = [None] * 3 + [box(0.85 - 0.03 * k, 0.6, 0.22) for k in range(3, T)]  # appears at frame 3
    objs = [LayoutObject("a red ball", ball), LayoutObject("a blue square", square, depth=1),
            LayoutObject("a yellow triangle", tri, depth=0)]
    if extra:
        objs.append(LayoutObject("a green ball", [box(0.15, 0.2, 0.15)] * T))
    return Layout(8.0, T, S, S, objs)


def test_the_layouts_own_sketch_follows_it():
    lay = layout()
    out = score(Sketch(lay, scene(), S, S).frames(0, T), lay)
    assert out["extra_tracks"] == 0 and out["found"] == 1.0
    for o in out["objects"]:
        assert o["found"] and o["ade"] < 0.03 and o["coverage"] > 0.8, o
    assert out["objects"][2]["visible"] == T - 3  # null boxes have no reference point


def test_reference_points_are_area_centroids_of_what_shows():
    lay = layout()
    pts, sizes = reference_points(lay)
    b = lay.objects[0].boxes[0]
    assert np.allclose(pts[0, 0], [(b[0] + b[2]) / 2 * S, (b[1] + b[3]) / 2 * S], atol=0.05)  # a ball: its box centre
    b = lay.objects[2].boxes[5]
    assert pts[2, 5, 1] > (b[1] + b[3]) / 2 * S + 1  # a triangle's centroid lies below its box centre
    b = lay.objects[1].boxes[0]  # the square, cut by the left edge: the visible part's centre
    assert pts[1, 0, 0] == pytest.approx(b[2] * S / 2, abs=0.1) and sizes[1, 0] == pytest.approx(0.18 * S)
    assert np.isnan(pts[2, :3]).all() and np.isnan(sizes[2, :3]).all()


def test_a_shifted_video_scores_its_shift():
    ball = [box(0.5 + 0.2 * math.cos(k / 3), 0.45 + 0.2 * math.sin(k / 3), 0.2) for k in range(T)]
    lay = Layout(8.0, T, S, S, [LayoutObject("a red ball", ball)])
    frames = np.roll(Sketch(lay, scene(), S, S).frames(0, T), 5, axis=2)  # 5 px right: the background is uniform
    o = score(frames, lay)["objects"][0]
    assert o["ade_px"] == pytest.approx(5.0, abs=0.1) and o["ade"] == pytest.approx(5.0 / (0.2 * S), rel=0.03)


def test_a_blob_the_layout_does_not_have_is_an_extra_track():
    frames = Sketch(layout(extra=True), scene(), S, S).frames(0, T)
    out = score(frames, layout())
    assert out["extra_tracks"] == 1 and out["found"] == 1.0 and out["ade"] < 0.03


def test_wrong_inputs_are_one_line():
    lay = layout()
    with pytest.raises(ValueError, match="frames are 17 x 64x64 but the layout is 17 x 96x96"):
        score(np.zeros((T, 64, 64, 3), np.uint8), lay)
    with pytest.raises(ValueError, match="uint8"):
        score(np.zeros((T, S, S, 3)), lay)
    grey = Layout(8.0, T, S, S, [LayoutObject("a dog", [box(0.5, 0.5, 0.2)] * T)])
    with pytest.raises(ValueError, match=r"layout object 0 \('a dog'\): its phrase names no world colour"):
        score(np.zeros((T, S, S, 3), np.uint8), grey)
