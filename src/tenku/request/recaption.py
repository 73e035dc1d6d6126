"""What an input image or video shows, in the world's caption language, so that a request's
prompt expansion starts from it: the caption of an extension or an image-to-video then
describes the background and floor the user gave, not a random one (before this, extending
a clip on a checkered background was captioned "vertical stripes of gray and navy blue").

Read from the pixels, offline: the per-pixel median over the input's frames (moving objects
drop out) is matched against the world's background kinds and colours (``tenku.world.spec``):
plain, a vertical gradient, vertical stripes or a checkerboard of two background colours, and
a floor along the bottom in one of the floor colours, or none."""

from __future__ import annotations

import numpy as np

from tenku.world.spec import BACKGROUNDS, FLOOR_COLORS, FLOOR_HEIGHT

_NAMES = {"grey": "grey", "navy": "navy"}  # caption names the parser reads back


def _nearest(rgb: np.ndarray, table: dict[str, tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest table colour for each pixel (N, 3), and its distance."""
    colours = np.array(list(table.values()), np.float32)
    d = np.linalg.norm(rgb[:, None, :] - colours[None], axis=-1)
    return d.argmin(1), d.min(1)


def describe_background(frames: np.ndarray) -> str:
    """One sentence on the background and floor of uint8 frames (T, H, W, 3), as the world's
    captions phrase them (``tenku.prompts`` parses it back)."""
    still = np.median(frames[:: max(1, len(frames) // 16)].astype(np.float32), axis=0)  # (H, W, 3)
    h = still.shape[0]
    top = still[: int(h * (1 - 1.5 * FLOOR_HEIGHT))]  # above the floor and its anti-aliased edge
    names = list(BACKGROUNDS)
    idx, dist = _nearest(top.reshape(-1, 3), BACKGROUNDS)
    counts = np.bincount(idx[dist < 40], minlength=len(names))
    first, second = np.argsort(counts)[::-1][:2]
    c0, c1 = names[first], names[second]
    rows = np.median(top, 1)  # (H', 3)
    row_spread = np.median(np.abs(top - rows[:, None]))  # a gradient varies only from row to row
    if np.abs(rows[0] - rows[-1]).max() > 12 and row_spread < 4:
        ys = np.linspace(1.0, 1.5 * FLOOR_HEIGHT, len(rows))  # world height of each row
        slope = (rows[0] - rows[-1]) / (ys[0] - ys[-1])
        bottom = rows[-1] - slope * ys[-1]  # the gradient's colour at the world's bottom (under the floor)
        c0 = names[_nearest(rows[:1], BACKGROUNDS)[0][0]]
        c1 = names[_nearest(bottom[None], BACKGROUNDS)[0][0]]
        sentence = f"The background is a gradient from {c0} at the top to {c1} at the bottom"
    elif counts[second] < 0.1 * max(1, counts.sum()):
        sentence = f"The background is a plain {c0}"
    else:
        mask = (_nearest(top.reshape(-1, 3), {c0: BACKGROUNDS[c0], c1: BACKGROUNDS[c1]})[0]).reshape(top.shape[:2])
        column = (mask.mean(0) > 0.5)[None]
        stripes = (mask == column).mean() > 0.85  # each column one colour
        sentence = (f"Vertical stripes of {c0} and {c1} fill the background" if stripes
                    else f"The background is a {c0} and {c1} checkerboard")
    floor = still[int(h * (1 - 0.5 * FLOOR_HEIGHT)):].reshape(-1, 3)
    fi, fd = _nearest(np.median(floor, 0)[None], FLOOR_COLORS)
    bi, bd = _nearest(np.median(floor, 0)[None], BACKGROUNDS)
    if fd[0] < bd[0]:
        return f"{sentence}, with a {list(FLOOR_COLORS)[fi[0]]} floor along the bottom."
    return f"{sentence}. There is no floor."
