"""Session fixtures of the eval tests (the world suite is built once)."""

import pytest

from tenku.eval.suites import build_suite


@pytest.fixture(scope="session")
def world96():
    """The whole world suite at height 96 (the suite's own sizes scaled down, for speed)."""
    return build_suite("world", height=96)


@pytest.fixture(scope="session")
def calibration_items(world96):
    """Two items of every tag group of the world suite: each motion, multi, count, occlusion
    (behind and in front), collision (aimed and head-on), pan."""
    picked, seen = [], {}
    for it in world96:
        group = next((t for t in ("occlusion", "collision", "count", "pan") if t in it.tags), None) or \
            ("multi" if "multi" in it.tags else next(t for t in it.tags if t.startswith("motion:")))
        if seen.get(group, 0) < (3 if group == "occlusion" else 2):
            seen[group] = seen.get(group, 0) + 1
            picked.append(it)
    return picked
