"""Colour names people type map to the nearest world colour, with a note when not exact."""

import numpy as np
import pytest

from tenku.lang.colors import CSS4_NAMES, NAMED_COLORS, delta_e, lab, nearest
from tenku.lang.parse import parse_prompt
from tenku.prompts.expand import expand
from tenku.world.spec import BACKGROUNDS, FLOOR_COLORS, PALETTE

NEAREST = "(nearest world colour)"
SYNONYM = "(a synonym in the world's vocabulary)"

# typed object colour -> (world colour, note); None: exact, no note
OBJECTS = [
    ("red", "red", None),
    ("navy blue", "blue", f"navy blue drawn as blue {NEAREST}"),
    ("navy", "blue", f"navy drawn as blue {NEAREST}"),
    ("chartreuse", "yellow", f"chartreuse drawn as yellow {NEAREST}"),
    ("sky blue", "cyan", f"sky blue drawn as cyan {NEAREST}"),
    ("dark green", "green", f"dark green drawn as green {NEAREST}"),
    ("light grey", "white", f"light grey drawn as white {NEAREST}"),
    ("forest green", "green", f"forest green drawn as green {NEAREST}"),
    ("dodgerblue", "blue", f"dodgerblue drawn as blue {NEAREST}"),
    ("gray", "white", f"gray drawn as white {NEAREST}"),  # a grey goes to the hueless white
    ("magenta", "pink", f"magenta drawn as pink {SYNONYM}"),
    ("crimson", "red", f"crimson drawn as red {SYNONYM}"),
]


@pytest.mark.parametrize("typed,world,note", OBJECTS)
def test_object_colour_names(typed, world, note):
    p = parse_prompt(f"a {typed} cube falls")
    assert [(o.color, o.shape, o.motion) for o in p.objects] == [(world, "square", "fall")]
    assert p.unknown == []
    assert p.color_notes == ([note] if note else [])


def test_scenery_colours_go_to_the_nearest_of_their_role():
    p = parse_prompt("a red ball on a sky blue background with a black floor")
    assert p.background_hint() == {"colors": ["slate", "slate"], "floor": True, "floor_color": "grey"}
    assert p.color_notes == [f"sky blue drawn as slate {NEAREST}", f"black drawn as grey {NEAREST}"]
    p = parse_prompt("a gray ball on a navy blue backdrop with a gray floor")  # own names: exact
    assert (p.objects[0].color, p.background.colors, p.background.floor_color) == ("white", ("navy", "navy"), "grey")
    assert p.color_notes == [f"gray drawn as white {NEAREST}"]  # grey is a backdrop colour, not an object's


def test_expansion_warns_and_world_colours_stay_silent():
    out = expand("a navy blue block falls", seed=0)
    assert out.spec.objects[0].color == "blue" and out.spec.objects[0].shape == "square"
    assert out.warnings[0] == f"navy blue drawn as blue {NEAREST}"
    assert out.unknown == []
    for prompt in ("a red ball falls and bounces", "a blue square slides to the right", "a green ball rolls",
                   "a yellow star spins", "a purple triangle falls", "a white ring and a cyan disc",
                   "an orange box and a pink star on a charcoal background with a sand floor"):
        assert parse_prompt(prompt).color_notes == [], prompt


def test_every_css4_name_maps_to_a_world_colour():
    assert len(CSS4_NAMES) == 148
    for name in CSS4_NAMES:
        p = parse_prompt(f"a {name} ball")
        assert p.unknown == [] and p.objects[0].color in PALETTE, name
        assert p.objects[0].color == name or p.color_notes, name
        b = parse_prompt(f"a {name} background with a {name} floor").background
        assert b.colors[0] in BACKGROUNDS and b.floor_color in FLOOR_COLORS, name


def test_unknown_non_colour_words_are_untouched():
    assert parse_prompt("a zebra ball bounces on a trampoline").unknown == ["zebra", "trampoline"]
    p = parse_prompt("a red ball rolls past a tomato")  # a colour name, but not used as a colour
    assert (p.unknown, p.color_notes, len(p.objects)) == (["tomato"], [], 1)
    p = parse_prompt("a medium blue ball and a dark ball")  # a size and a colour; an ignored adjective
    assert [o.hint() for o in p.objects] == [{"shape": "circle", "color": "blue", "size": "medium"}, {"shape": "circle"}]
    assert p.color_notes == []


def test_delta_e_is_ciede2000():
    # reference pairs from Sharma, Wu and Dalal (2005), Table 1
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425), ((50, -1.3802, -84.2814), (50, 0, -82.7485), 1.0),
             ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
             ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
             ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381)]
    got = delta_e(np.array([a for a, _, _ in pairs]), np.array([b for _, b, _ in pairs]))
    np.testing.assert_allclose(got, [d for _, _, d in pairs], atol=1e-4)
    np.testing.assert_allclose(lab(np.array([255, 255, 255])), [100, 0, 0], atol=0.01)
    assert all(nearest(rgb, PALETTE) == name for name, rgb in PALETTE.items())
    assert NAMED_COLORS["navy blue"] == (0, 17, 70)  # XKCD's navy blue, from matplotlib's table
