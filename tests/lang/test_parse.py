"""The parser reads the world's language: detailed captions round-trip to their
specs, paraphrases agree, counts and references work, unknown words are named."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from world_synth import make_gt, obj, parsed_objects, random_scene, spec_objects  # noqa: E402

from tenku.lang import vocab  # noqa: E402
from tenku.lang.captions import captions  # noqa: E402
from tenku.lang.detailed import detailed_caption  # noqa: E402
from tenku.lang.parse import parse_prompt  # noqa: E402
from tenku.lang.wording import start_region  # noqa: E402
from tenku.world.spec import (BACKGROUND_KINDS, BACKGROUNDS, DIRECTIONS, FLOOR_COLORS, MOTIONS,  # noqa: E402
                              PALETTE, SHAPES, SIZES, SceneSpec)


def _pan(spec: SceneSpec) -> str | None:
    return None if spec.pan == 0 else "right" if spec.pan > 0 else "left"


def _one(text: str) -> tuple:
    p = parse_prompt(text)
    assert len(p.objects) == 1 and p.unknown == [], (text, p)
    o = p.objects[0]
    return o.color, o.shape, o.size, o.motion, o.direction


def test_detailed_captions_round_trip_to_the_spec():
    for seed in range(400):
        rng = np.random.default_rng(seed)
        spec, gt = random_scene(rng, identical=seed % 9 == 0)
        text = detailed_caption(spec, gt, np.random.default_rng(seed + 1))
        p = parse_prompt(text)
        assert p.unknown == [], text
        assert parsed_objects(p) == spec_objects(spec), text
        assert all(o.count == 1 for o in p.objects)
        bg = spec.background
        assert (p.background.kind, p.background.colors, p.background.floor) == (bg.kind, bg.colors, bg.floor), text
        assert p.background.floor_color == (bg.floor_color if bg.floor else None), text
        assert p.background.pan == _pan(spec), text
        want = sorted((o.color, start_region(spec, gt, i)) for i, o in enumerate(spec.objects))
        assert sorted((o.color, o.region) for o in p.objects) == want, text


def test_objects_come_back_in_the_order_introduced():
    spec = SceneSpec(1.0, [obj("circle", "red", "small", "fall", x=0.2, y=0.8), obj("star", "blue", "large"),
                           obj("ring", "green", "medium", "move", "up-left")])
    gt = make_gt(spec, [])
    for seed in range(10):
        text = detailed_caption(spec, gt, np.random.default_rng(seed))
        order = sorted(["red", "blue", "green"], key=lambda c: text.find(c))
        assert [o.color for o in parse_prompt(text).objects] == order, text


@pytest.mark.parametrize("group", [
    ["a red ball falls", "crimson disc drops", "A scarlet sphere tumbles.", "the red circle falls and bounces",
     "a red ball bounces", "a red ball bounces twice on the floor", "falling red ball", "a red orb plummets"],
    ["a big blue box slides leftward", "a large blue square moves to the left", "a huge cobalt cube glides left",
     "a giant azure block drifts towards the left", "a large blue tile travels left"],
    ["a tiny teal star zooms up and to the right", "a small cyan star moves towards the top right",
     "a little aqua star flies diagonally up and right", "a small turquoise star floats upward and to the right"],
    ["a golden ring is tossed to the right", "a yellow hoop is thrown rightward", "a gold donut gets launched right",
     "a yellow doughnut is lobbed to the right"],
    ["a pink triangle ricochets around", "a rose wedge bounces off the walls",
     "a magenta pyramid bounces around the frame",
     "a pink triangle bounces off the edges of the frame",
     "a pink triangle bounces back and forth between the left and right walls",
     "a pink triangle bouncing from side to side"],
    ["a white circle sits still", "an ivory orb rests", "a snow-white dot stays put", "a white ball is stationary",
     "a white disc does not move", "a white circle floats motionless", "a white ball doesn't move"],
    ["a medium purple ring rises", "a medium-sized violet hoop moves up", "a mid-sized lilac donut drifts upward"],
])
def test_paraphrases_agree(group):
    parsed = {_one(t) for t in group}
    assert len(parsed) == 1, parsed


def test_bare_bounce_means_fall_and_wall_cues_mean_bounce():
    assert _one("a red ball bounces")[3] == "fall"
    assert _one("a red ball bounces on the floor")[3] == "fall"
    assert _one("a red ball bounces three times")[3] == "fall"
    assert _one("a red ball bounces around")[3] == "bounce"
    assert _one("a red ball bounces off the walls")[3] == "bounce"
    assert _one("a red ball bounces off the left wall")[3] == "bounce"
    assert _one("a red ball ricochets")[3] == "bounce"
    # the first motion stated wins: later event words do not overwrite it
    assert _one("a red ball falls and bounces off the left wall")[3] == "fall"
    assert _one("a red ball is thrown to the left. it bounces twice and comes to rest")[3:] == ("throw", "left")


def test_counts_and_plurals():
    p = parse_prompt("two red balls fall")
    assert [(o.count, o.color, o.shape, o.motion) for o in p.objects] == [(2, "red", "circle", "fall")]
    assert p.object_hints() == [{"color": "red", "shape": "circle", "motion": "fall"}] * 2
    assert [o.count for o in parse_prompt("a pair of green cubes and three small stars").objects] == [2, 3]
    assert parse_prompt("red balls bounce").objects[0].count == 2
    assert parse_prompt("4 blue rings").objects[0].count == 4


def test_references_and_clause_subjects():
    p = parse_prompt("A red ball and a blue box sit in the middle. The red ball falls, and the blue box "
                     "slides to the left. It leaves the frame.")
    assert [(o.color, o.motion, o.direction) for o in p.objects] == [("red", "rest", None), ("blue", "rest", None)]
    p = parse_prompt("A red ball and a blue box. The red ball falls, and the blue box slides to the left.")
    assert [(o.color, o.motion, o.direction) for o in p.objects] == [("red", "fall", None), ("blue", "move", "left")]
    p = parse_prompt("a red ball hits a blue box, which slides to the right")
    assert [(o.color, o.motion, o.direction) for o in p.objects] == [("red", None, None), ("blue", "move", "right")]
    p = parse_prompt("a red ball falls while a blue box drifts left and a green star rests")
    assert [o.motion for o in p.objects] == ["fall", "move", "rest"]
    p = parse_prompt("a red ball and a blue ball fall")
    assert [o.motion for o in p.objects] == ["fall", "fall"]
    p = parse_prompt("a small red ball and a large red ball. the large red ball rises. the second red ball ...")
    assert [(o.size, o.motion) for o in p.objects] == [("small", None), ("large", "move")]
    p = parse_prompt("a red ball. another red ball. the second red ball drifts right")
    assert [o.motion for o in p.objects] == [None, "move"]


def test_unknown_words_are_reported():
    assert parse_prompt("a zebra ball").unknown == ["zebra"]
    assert parse_prompt("a red dog jumps").unknown == ["dog"]
    assert parse_prompt("zebras fall").unknown == ["zebras"]
    assert parse_prompt("a red ball falls onto a trampoline").unknown == ["trampoline"]
    assert parse_prompt("a shiny red ball quickly falls to the ground and then it slowly comes to rest").unknown == []
    assert parse_prompt("there is a small red ball in the top left corner of the frame").unknown == []


def test_background_floor_and_camera():
    p = parse_prompt("a red ball falls on a striped navy and maroon background with a sandy floor, "
                     "while the camera pans slowly to the left")
    b = p.background
    assert (b.kind, b.colors, b.floor, b.floor_color, b.pan) == ("stripes", ("navy", "maroon"), True, "sand", "left")
    assert p.background_hint() == {"kind": "stripes", "colors": ["navy", "maroon"], "floor": True,
                                   "floor_color": "sand"}
    b = parse_prompt("a chequered black and slate backdrop. there is no floor.").background
    assert (b.kind, b.colors, b.floor) == ("checker", ("black", "slate"), False)
    p = parse_prompt("The background is a plain dark grey. The floor is brown. The view tracks right.")
    b = p.background  # "dark grey" is a colour name of its own: the darker charcoal, not grey
    assert (b.kind, b.colors, b.floor, b.floor_color, b.pan) == ("solid", ("charcoal", "charcoal"), True, "brown", "right")
    assert p.color_notes == ["dark grey drawn as charcoal (nearest world colour)"]
    b = parse_prompt("a blue cube").background
    assert (b.kind, b.colors, b.floor, b.pan) == (None, None, None, None)


def test_regions():
    assert parse_prompt("a red ball in the top left falls").objects[0].region == "top-left"
    assert parse_prompt("In the centre of the frame, a red ball rests.").objects[0].region == "center"
    assert parse_prompt("a red ball starts just outside the right edge").objects[0].region == "outside-right"


def test_vocab_maps_onto_the_spec():
    tables = [(vocab.COLOR_WORDS, PALETTE), (vocab.BACKGROUND_COLOR_WORDS, BACKGROUNDS),
              (vocab.FLOOR_COLOR_WORDS, FLOOR_COLORS), (vocab.SHAPE_WORDS, SHAPES), (vocab.SIZE_WORDS, SIZES),
              (vocab.MOTION_WORDS, MOTIONS), (vocab.DIRECTION_WORDS, DIRECTIONS),
              (vocab.BACKGROUND_KIND_WORDS, BACKGROUND_KINDS)]
    for table, allowed in tables:
        assert set(table.values()) <= set(allowed)
    assert not set(vocab.COLOR_WORDS) & set(vocab.BACKGROUND_COLOR_WORDS)  # "navy" is never blue
    for kind in BACKGROUND_KINDS:
        assert parse_prompt(f"a navy and slate {kind} background").background.kind == kind
    for name in PALETTE:
        assert _one(f"a {name} ball")[0] == name
    for shape in SHAPES:
        assert _one(f"a red {shape}")[1] == shape
    for d in DIRECTIONS:
        assert _one(f"a red ball moves {d.replace('-', ' and to the ')}")[4] == d


def test_real_scenes_round_trip():
    """Sampled, simulated and rendered scenes: captions parse back to the spec's objects."""
    from tenku.world.render import render_scene
    from tenku.world.sample import sample_scene

    for seed in range(30):
        rng = np.random.default_rng(seed)
        spec = sample_scene(rng, width=float(rng.choice([1.0, 16 / 9, 0.75])))
        _, gt = render_scene(spec, 64, 64, 8, 17)
        short, detailed = captions(spec, gt, seed)
        p, q = parse_prompt(detailed), parse_prompt(short)
        assert p.unknown == [] and q.unknown == [], (detailed, short)
        want = sorted((o.size, o.color, o.shape, o.motion) for o in spec.objects)
        assert sorted((o.size, o.color, o.shape, o.motion) for o in p.objects) == want, detailed
        assert sorted((o.color, o.shape, o.motion) for o in q.objects for _ in range(o.count)) == \
            sorted(w[1:] for w in want), short
        assert (p.background.kind, p.background.floor) == (spec.background.kind, spec.background.floor)


def test_a_patterned_floor_patterns_the_backdrop():
    """The world's floor is one colour: "a checkered floor" keeps the floor and gives the pattern
    to the backdrop above it, instead of dropping the word without a trace."""
    bg = parse_prompt("a green star and a yellow triangle collide over a checkered floor").background
    assert (bg.kind, bg.floor) == ("checker", True)
    bg = parse_prompt("a red ball rolls on a striped grey floor in front of a checkered wall").background
    assert bg.kind == "stripes" and bg.floor and bg.floor_color == "grey"
    assert parse_prompt("a red ball with no striped floor").background.kind is None
