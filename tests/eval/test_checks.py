"""Frame-level checks: VBench flickering, background stability, the modes' checks, PSNR."""

import numpy as np
import pytest

from tenku.eval.checks import (PSNR_CAP, RATIO_LIMIT, SMOOTH_LIMIT, STILL_LEVELS, background_stability, boundary_ratio,
                               connect_ratios, latent_frames, loop_ratio, psnr, seam_ratio, temporal_flickering)
from tenku.eval.run import reference_frames
from tenku.eval.evaluate import object_mask
from tenku.eval.segment import detect

from .helpers import item, noise


def test_vbench_flickering_known_answers():
    still = np.full((5, 16, 16, 3), 77, np.uint8)
    assert temporal_flickering(still) == 1.0
    # two independent uniform images differ by 85.33 levels on average: (255 - 85.33) / 255
    rng = np.random.default_rng(0)
    n = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    assert abs(temporal_flickering(n) - (255 - 256 * 255 / 3 / 256) / 255) < 0.01
    step = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 10, 20)])
    assert np.isclose(temporal_flickering(step), (255 - 10) / 255)


def test_background_stability_ignores_objects_and_pans_but_not_flicker():
    it = item("the camera pans left over a red box that rests on the floor on a striped background", (128, 128))
    assert it.spec.pan != 0 and it.spec.background.kind == "stripes"
    def stability(frames):
        return background_stability(frames, object_mask(detect(frames), frames.shape[:3]))

    frames = reference_frames(it)
    steady, err = stability(frames)
    assert steady >= 0.98 and err < 1.0
    flicker = frames.astype(np.int16)
    flicker[1::2] += 30  # every other frame brighter
    assert stability(np.clip(flicker, 0, 255).astype(np.uint8))[0] < 0.1
    assert stability(noise(it))[0] < 0.5


def test_seam_ratio_passes_a_true_continuation_and_fails_a_cut():
    it = item("a green ball moves to the right and a blue box rests on the floor", (96, 96), mode="extend_forward",
              cond=9)
    video = reference_frames(it)
    assert seam_ratio(video, 9) <= RATIO_LIMIT
    other = reference_frames(item("a yellow star bounces around on a black background", (96, 96)))
    cut = np.concatenate([video[:9], other[9:]])
    assert seam_ratio(cut, 9) > RATIO_LIMIT


def test_loop_ratio_of_a_periodic_scene_and_of_one_that_does_not_return():
    it = item("a red ball bounces off the left and right walls", (96, 96), staging="loop", mode="loop")
    video = reference_frames(it)
    assert loop_ratio(video) <= RATIO_LIMIT
    assert loop_ratio(video[: len(video) // 2 + 3]) > RATIO_LIMIT  # half a period: the ball is elsewhere


def test_connect_ratios_of_the_true_middle_and_of_a_foreign_one():
    it = item("a pink ball moves to the left", (96, 96), mode="connect", cond=9)
    v, _ = it.reference()  # the whole scene: a connect generator returns A + transition + B
    assert np.array_equal(reference_frames(it), v)
    a, mid, b = v[:9], v[9:-9], v[-9:]
    assert max(connect_ratios(a, mid, b)) <= RATIO_LIMIT
    other = reference_frames(item("a white box falls on a striped background", (96, 96)))
    assert min(connect_ratios(a, other[9:-9], b)) > RATIO_LIMIT


def test_psnr():
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(img, img) == PSNR_CAP
    noisy = np.clip(img.astype(int) + 4, 0, 255).astype(np.uint8)
    assert 35 < psnr(img, noisy) < 37  # MSE ~16: 10 log10(255^2 / 16) = 36.1 dB
    assert psnr(img, 255 - img) < 12


def _levels(values) -> np.ndarray:
    """A video of flat 8x8 frames at the given grey levels."""
    return np.stack([np.full((8, 8, 3), v, np.uint8) for v in values])


def test_latent_frames_of_the_causal_autoencoder():
    assert latent_frames(9, 4).tolist() == [0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert latent_frames(5, 2).tolist() == [0, 1, 1, 2, 2]


def test_boundary_ratio_jumps_ramp_and_still():
    lat = latent_frames(33, 4)
    # inside a latent frame 2 levels a frame, across a boundary (frames 4k -> 4k + 1) 12
    jumps = _levels(np.cumsum([0] + [12 if t % 4 == 0 else 2 for t in range(32)]))
    sm = boundary_ratio(jumps, lat)
    assert sm["boundary_change"] == 12 and sm["inside_change"] == 2 and sm["ratio"] == 6 > SMOOTH_LIMIT
    ramp = _levels(np.arange(33) * 3)
    assert boundary_ratio(ramp, lat)["ratio"] == 1.0
    still = _levels([90] * 33)
    assert boundary_ratio(still, lat) == {"boundary_change": 0.0, "inside_change": 0.0, "ratio": None}
    frozen_inside = _levels(np.repeat([0] + list(range(10, 90, 10)), [1] + [4] * 8))  # each latent's 4 frames alike
    assert boundary_ratio(frozen_inside, lat)["ratio"] == 10 / STILL_LEVELS  # finite: the inside change is floored
    assert boundary_ratio(ramp, latent_frames(33, 1))["ratio"] is None  # time_down 1: nothing inside a latent frame


def test_boundary_ratio_counts_seams_and_leaves_input_pairs_out():
    # two chunks and an input: frames 0-2 given (-1), then latents 5 (3-4), 6 (5-6), 9 (7-8) of a second chunk
    lat = np.array([-1, -1, -1, 5, 5, 6, 6, 9, 9])
    video = _levels([0, 50, 100, 110, 111, 121, 122, 132, 133])  # input pairs change 50, seams 10, inside 1
    sm = boundary_ratio(video, lat)
    assert sm["boundary_change"] == 10 and sm["inside_change"] == 1 and sm["ratio"] == 10
    with pytest.raises(ValueError, match="one latent frame per video frame"):
        boundary_ratio(video, lat[:-1])
