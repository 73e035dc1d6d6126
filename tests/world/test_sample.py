"""sample_scene's hints that prompt expansion relies on: staged scenarios, a stated
floor colour, sideways falls and upward throws."""

import numpy as np
import pytest

from tenku.world.render import render_scene
from tenku.world.sample import SCENARIOS, sample_scene


@pytest.mark.parametrize("scenario", ["collision", "occlusion", "occlusion-front"])
def test_staged_scenarios_happen_and_keep_the_hints(scenario):
    hits = 0
    for seed in range(12):
        hints = [{"color": "red", "shape": "square"}, {"color": "blue", "motion": "move"}]
        spec = sample_scene(np.random.default_rng(seed), objects=hints, scenario=scenario)
        a, b = spec.objects
        assert (a.color, a.shape, b.color, b.motion) == ("red", "square", "blue", "move")
        _, gt = render_scene(spec, 64, 64, 8.0, 33)
        want = {"collision": ("collision", None), "occlusion": ("occlusion_start", [1, 0]),
                "occlusion-front": ("occlusion_start", [0, 1])}[scenario]
        hits += any(e.type == want[0] and (want[1] is None or e.objects == want[1]) for e in gt.events)
        if scenario != "collision":
            assert (a.depth, b.depth) == (1, 0 if scenario == "occlusion" else 2)
    assert hits >= 10, hits


def test_scenario_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown scenario"):
        sample_scene(rng, objects=[{}, {}], scenario="explode")
    with pytest.raises(ValueError, match="at least two"):
        sample_scene(rng, objects=[{}], scenario="collision")
    assert "free" in SCENARIOS and len(sample_scene(rng, objects=[{}, {}], scenario="free").objects) == 2


def test_floor_colour_sideways_fall_and_upward_throw():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        spec = sample_scene(rng, objects=[{"motion": "fall", "direction": "left"}, {"motion": "throw", "direction": "up"},
                                          {"motion": "throw", "direction": "up-right"}],
                            background={"floor": True, "floor_color": "sand"})
        fall, up, up_right = spec.objects
        assert spec.background.floor_color == "sand"
        assert fall.direction == "left" and fall.vx < 0 and fall.gravity
        assert up.direction == "up" and up.vx == 0 and up.vy > 0
        assert up_right.direction == "up-right" and up_right.vx > 0 and up_right.vy > 0
