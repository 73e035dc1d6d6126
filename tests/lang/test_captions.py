"""Captions: deterministic per seed, varied across seeds, complete, and short ones short."""

import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # world_synth: scenes and ground truth by hand
from world_synth import make_gt, obj, random_scene  # noqa: E402

from tenku.lang import vocab  # noqa: E402
from tenku.lang.captions import captions, short_caption  # noqa: E402
from tenku.lang.detailed import detailed_caption  # noqa: E402
from tenku.lang.parse import parse_prompt  # noqa: E402
from tenku.lang.wording import start_region  # noqa: E402
from tenku.world.spec import BackgroundSpec, Event, SceneSpec  # noqa: E402


def _scene() -> tuple[SceneSpec, object]:
    """A red ball passes behind a resting white star, hits a falling green triangle, leaves on the right."""
    spec = SceneSpec(1.0, [obj("circle", "red", "small", "move", "right", x=0.1, y=0.5),
                           obj("star", "white", "large", "rest", x=0.5, y=0.5, depth=1),
                           obj("triangle", "green", "medium", "fall", x=0.85, y=0.85)],
                     BackgroundSpec("gradient", ("navy", "maroon"), True, "sand"), pan=0.05)
    gt = make_gt(spec, [Event(0.5, "occlusion_start", [0, 1]), Event(1.0, "occlusion_end", [0, 1]),
                        Event(0.7, "floor_bounce", [2], where="bottom"),
                        Event(0.9, "floor_bounce", [2], where="bottom"),
                        Event(1.2, "settle", [2]), Event(1.5, "collision", [0, 2]),
                        Event(1.9, "leave_frame", [0], where="right")])
    return spec, gt


def test_deterministic_per_seed():
    spec, gt = _scene()
    assert captions(spec, gt, 7) == captions(spec, gt, 7)
    a = detailed_caption(spec, gt, np.random.default_rng(3))
    assert a == detailed_caption(spec, gt, np.random.default_rng(3))
    assert short_caption(spec, gt, np.random.default_rng(3)) == short_caption(spec, gt, np.random.default_rng(3))


def test_wording_varies_across_seeds():
    spec, gt = _scene()
    detailed = {detailed_caption(spec, gt, np.random.default_rng(s)) for s in range(20)}
    short = {short_caption(spec, gt, np.random.default_rng(s)) for s in range(20)}
    assert len(detailed) >= 5 and len(short) >= 3
    # object order varies too: which object is introduced first
    firsts = {min(("red", "white", "green"), key=lambda c: d.find(c)) for d in detailed}
    assert len(firsts) >= 2


def test_every_object_named_with_colour_and_shape():
    for seed in range(60):
        spec, gt = random_scene(np.random.default_rng(seed))
        d = detailed_caption(spec, gt, np.random.default_rng(seed)).lower()
        s = short_caption(spec, gt, np.random.default_rng(seed))
        words = set(re.findall(r"[a-z]+", d))
        for o in spec.objects:
            assert o.color in words, (o.color, d)
            nouns = {w for w, c in vocab.SHAPE_WORDS.items() if c == o.shape}
            assert words & (nouns | {n + "s" for n in nouns}), (o.shape, d)
            assert o.size in words or words & set(vocab.CAPTION_SIZE_WORDS[o.size]) or "sized" in words
            # the short caption names the colour, perhaps by a synonym
            assert {w for w, c in vocab.COLOR_WORDS.items() if c == o.color} & set(re.findall(r"[a-z]+", s)), s


def test_short_caption_is_short_and_lowercase():
    for seed in range(150):
        spec, gt = random_scene(np.random.default_rng(seed))  # distinct colours, 1-4 objects
        s = short_caption(spec, gt, np.random.default_rng(seed))
        assert s == s.lower() and not s.endswith(".")
        assert 3 <= len(s.split()) <= 12, s


def test_short_caption_round_trips_colour_shape_motion():
    for seed in range(200):
        spec, gt = random_scene(np.random.default_rng(seed), identical=seed % 5 == 0)
        s = short_caption(spec, gt, np.random.default_rng(seed))
        p = parse_prompt(s)
        assert p.unknown == [], s
        got = sorted((o.color, o.shape, o.motion) for o in p.objects for _ in range(o.count))
        assert got == sorted((o.color, o.shape, o.motion) for o in spec.objects), s


def test_detailed_caption_tells_the_events():
    spec, gt = _scene()
    for seed in range(10):
        d = detailed_caption(spec, gt, np.random.default_rng(seed)).lower()
        assert re.search(r"behind (a|the) (large |big |huge )?white (star|one|shape)", d), d  # the occlusion
        assert re.search(r"reappear|back into view", d), d
        assert "twice" in d and re.search(r"rest|settles", d), d  # two floor bounces, then settles
        assert re.search(r"collides with|bumps into|crashes into|hits (a|the)|knocks into|struck by", d), d
        assert re.search(r"(leaves|exits|out of view).*right", d), d
        assert re.search(r"(camera|view) .*right", d), d  # pan > 0: the view moves right
        assert "navy" in d and "maroon" in d and re.search(r"gradient|fades", d), d
        assert re.search(r"(sandy|sand-coloured|beige) floor|ground at the bottom is", d), d


def test_start_regions():
    spec = SceneSpec(1.0, [obj("circle", "red", x=0.1, y=0.9), obj("square", "blue", x=0.5, y=0.5),
                           obj("star", "pink", x=0.9, y=0.15), obj("ring", "cyan", "small", "move", "right", x=-0.2),
                           obj("triangle", "green", x=0.5, y=0.85)])
    gt = make_gt(spec, [Event(0.4, "enter_frame", [3], where="left")], outside={3})
    want = ["top-left", "center", "bottom-right", "outside-left", "top"]
    assert [start_region(spec, gt, i) for i in range(5)] == want
    for seed in range(10):  # the caption says where each one starts
        p = parse_prompt(detailed_caption(spec, gt, np.random.default_rng(seed)))
        assert {o.color: o.region for o in p.objects} == {o.color: start_region(spec, gt, i)
                                                          for i, o in enumerate(spec.objects)}


def test_identical_objects_are_kept_apart():
    spec = SceneSpec(1.0, [obj("circle", "red", "small", "fall", x=0.2, y=0.8),
                           obj("circle", "red", "small", "move", "left", x=0.8, y=0.5)],
                     BackgroundSpec("solid", ("black", "black")))
    gt = make_gt(spec, [Event(0.5, "collision", [0, 1]), Event(0.7, "floor_bounce", [0], where="bottom")])
    for seed in range(20):
        d = detailed_caption(spec, gt, np.random.default_rng(seed))
        assert "another" in d.lower()
        p = parse_prompt(d)
        assert sorted((o.motion, o.direction) for o in p.objects) == [("fall", None), ("move", "left")], d
