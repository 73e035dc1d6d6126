"""Shared helpers of the eval tests: small suite items and broken videos."""

from __future__ import annotations

import copy

import numpy as np

from tenku.eval.run import reference_frames
from tenku.eval.suites import SuiteItem, make_item
from tenku.world.render import render_scene


def item(prompt: str, size: tuple[int, int] = (96, 96), staging: str = "", frames: int = 33, mode: str = "t2v",
         cond: int = 0, seed: int = 0) -> SuiteItem:
    """A suite item for ``prompt`` (the suite's own recipe: parse, sample with a judgeable seed, stage)."""
    return make_item("test-000", "test", prompt, size, frames, 8.0, staging, mode, cond, base_seed=seed)


def noise(it: SuiteItem) -> np.ndarray:
    """Uniform noise frames of the item's shape."""
    return np.random.default_rng(0).integers(0, 256, (it.frames, it.height, it.width, 3), dtype=np.uint8)


def frozen(it: SuiteItem) -> np.ndarray:
    """The reference's first frame, repeated."""
    f = reference_frames(it)
    return np.repeat(f[:1], len(f), axis=0)


def deleted(it: SuiteItem, which: int = -1) -> np.ndarray:
    """The reference for the first half, then the same scene rendered without one object."""
    spec = copy.deepcopy(it.spec)
    del spec.objects[which]
    without, _ = render_scene(spec, it.width, it.height, it.fps, it.frames)
    half = it.frames // 2
    return np.concatenate([reference_frames(it)[:half], without[half:]])
