"""Frame-level checks: temporal stability, smoothness across latent frames (issue 32) and the
generation modes' checks (issue 5).

These need no tracks, only frames, so tests, benchmarks and the pipeline's own
mode tests can call them directly. Pixel changes are mean absolute differences
in 0-255 levels over all pixels and channels (MAE).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

BG_LEVELS = 8  # a background pixel whose channels change by at most this much between frames is steady
MAX_SHIFT = 3.0  # pixels of horizontal camera motion searched for when comparing backgrounds
RATIO_LIMIT = 2.0  # seam, loop and connect changes within 2x of the typical change pass (issue 5)
RATIO_FLOOR = 0.5  # levels added to both sides of a ratio, so a static video is not 0/0
PSNR_LIMIT = 25.0  # dB: a condition image reproduced at least this well passes
PSNR_CAP = 100.0  # dB reported for identical images
SMOOTH_LIMIT = 1.5  # issue 32: the change across latent-frame boundaries within 1.5x of the change inside one
# levels: a video changing less than this both inside and across latent frames is still (no ratio); the
# inside change is floored at it, so frames frozen between jumps give a large ratio, not inf
STILL_LEVELS = 0.1


def _f(frames: np.ndarray) -> np.ndarray:
    return np.asarray(frames, dtype=np.float32)


def frame_changes(frames: np.ndarray) -> np.ndarray:
    """MAE between consecutive frames: (T - 1,) levels."""
    f = _f(frames)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3)) if len(f) > 1 else np.zeros(0)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two frames (levels)."""
    return float(np.abs(_f(a) - _f(b)).mean())


def temporal_flickering(frames: np.ndarray) -> float:
    """VBench's model-free temporal-flickering score: (255 - mean consecutive-frame MAE) / 255.

    As in VBench, a frozen video scores 1; VBench pairs it with a dynamics measure, here
    motion adherence plays that part."""
    ch = frame_changes(frames)
    return float((255.0 - ch.mean()) / 255.0) if len(ch) else 1.0


def _shift_x(img: np.ndarray, dx: float) -> np.ndarray:
    """``img`` moved right by ``dx`` pixels (linear interpolation, edges repeated)."""
    w = img.shape[1]
    src = np.clip(np.arange(w) - dx, 0, w - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, w - 1)
    a = (src - i0)[None, :, None]
    return img[:, i0] * (1 - a) + img[:, i1] * a


def background_stability(frames: np.ndarray, objects: np.ndarray) -> tuple[float, float]:
    """(steady fraction, MAE) of the background between consecutive frames.

    Background = pixels outside ``objects`` (a ``(T, H, W)`` mask of where objects are,
    e.g. their detected boxes) in both frames, 2 pixels away from them. A camera pan
    moves the background legitimately, so each pair is first aligned by the horizontal
    shift (|dx| <= ``MAX_SHIFT``, to 1/20 pixel) that minimises its MAE; what still
    changes is flicker. The steady fraction is the share
    of background pixels changing by at most ``BG_LEVELS`` in every channel (plus half the
    local horizontal step where a shift was applied: resampling an edge blurs it).
    """
    f = _f(frames)
    T, H, W = objects.shape
    if T < 2:
        return 1.0, 0.0
    obj = ndimage.binary_dilation(objects, np.ones((1, 5, 5), dtype=bool))
    m = int(math.ceil(MAX_SHIFT)) + 1
    steady, errs = [], []
    for t in range(T - 1):
        bg = ~(obj[t] | obj[t + 1])
        bg[:, :m] = bg[:, W - m:] = False
        if not bg.any():
            continue
        d = np.abs(f[t + 1] - f[t])[bg]
        dx_best = 0.0
        if d.mean() >= 0.5 and bg[::3].any():  # not still: search the pan, coarse then fine, on every third row
            a, b, m3 = f[t][::3], f[t + 1][::3], bg[::3]
            err = {0.0: float(np.abs(b - a)[m3].mean())}
            for grid in (np.arange(-MAX_SHIFT, MAX_SHIFT + 1e-6, 0.25), None):
                grid = min(err, key=err.get) + np.arange(-0.2, 0.21, 0.05) if grid is None else grid
                for dx in grid:
                    err.setdefault(round(float(dx), 3), float(np.abs(b - _shift_x(a, dx))[m3].mean()))
            dx_best = min(err, key=err.get)
            if dx_best:
                d_shift = np.abs(f[t + 1] - _shift_x(f[t], dx_best))[bg]
                if d_shift.mean() < d.mean():
                    d = d_shift
                else:
                    dx_best = 0.0
        best = (float(d.mean()), dx_best)
        errs.append(best[0])
        allowed = BG_LEVELS
        if best[1]:  # resampling blurs edges a little: allow half the local horizontal step there
            grad = np.abs(np.diff(f[t], axis=1, append=f[t][:, -1:])).max(-1)
            allowed = BG_LEVELS + 0.5 * np.maximum(grad, np.roll(grad, 1, axis=1))[bg]
        steady.append(float((d.max(-1) <= allowed).mean()))
    return (float(np.mean(steady)), float(np.mean(errs))) if steady else (1.0, 0.0)


def latent_frames(frames: int, time_down: int) -> np.ndarray:
    """The latent frame of a causal autoencoder (``tenku.vae``) that decodes each frame of a
    ``frames``-frame clip: frame 0 alone, then ``time_down`` frames each: ``(frames,)`` int."""
    t = np.arange(frames)
    return np.where(t == 0, 0, (t - 1) // time_down + 1)


def boundary_ratio(frames: np.ndarray, latents: np.ndarray) -> dict[str, float | None]:
    """Temporal smoothness across latent frames (issue 32): how much more the video changes
    where one latent frame (or sampling chunk) hands over to the next than within one.

    ``latents``: ``(T,)`` the latent frame that made each frame (``latent_frames``, or
    ``tenku.modes.latent_of_frames`` for any mode: ids unique across chunks, -1 for an input's
    frames). A consecutive pair is *inside* when both frames share a latent frame, a
    *boundary* when they differ and at least one was generated (a chunk seam, or the seam to
    an input, is one too); pairs of input frames count as neither. Returns the mean MAE of each
    kind (levels) and ``ratio`` = boundary / max(inside, ``STILL_LEVELS``): None when either kind
    has no pair or both means are below ``STILL_LEVELS`` (a still video: 0/0, neither smooth nor
    jumping); a video frozen inside latent frames that jumps between them gets a large finite
    ratio (the floor), never inf. Means, not medians:
    a 33-frame clip has only 8 boundary pairs, and a real jump every fourth frame moves the
    mean as surely as the median, while a motion event (a bounce, an object entering) lands
    on either kind by chance."""
    latents = np.asarray(latents)
    if latents.shape != (len(frames),):
        raise ValueError(f"latents must give one latent frame per video frame ({len(frames)}); "
                         f"got shape {latents.shape}")
    ch = frame_changes(frames)
    a, b = latents[:-1], latents[1:]
    inside = (a == b) & (a >= 0)
    boundary = (a != b) & ((a >= 0) | (b >= 0))
    mi = float(ch[inside].mean()) if inside.any() else None
    mb = float(ch[boundary].mean()) if boundary.any() else None
    ratio = None if mi is None or mb is None or max(mi, mb) < STILL_LEVELS else mb / max(mi, STILL_LEVELS)
    return {"boundary_change": mb, "inside_change": mi, "ratio": ratio}


def _ratio(change: float, typical: float) -> float:
    return (change + RATIO_FLOOR) / (typical + RATIO_FLOOR)


def _typical(frames: np.ndarray, near: list[int], skip: set[int] = frozenset(), reach: int = 4) -> float:
    """Median consecutive-frame change within ``reach`` frames of the frame indices ``near``
    (change i goes from frame i - 1 to frame i), leaving out the changes in ``skip``.
    Local, because motion that stops (an object leaving the frame) should not make a
    seam look large next to a still remainder."""
    ch = frame_changes(frames)
    keep = [c for i, c in enumerate(ch, start=1) if i not in skip and any(abs(i - n) <= reach for n in near)]
    return float(np.median(keep)) if keep else 0.0


def seam_ratio(frames: np.ndarray, seam: int) -> float:
    """Change across the seam (frame ``seam - 1`` to ``seam``) over the median consecutive-frame
    change of the 4 frames on either side. <= 2 passes (issue 5)."""
    if not 0 < seam < len(frames):
        raise ValueError(f"seam {seam} outside 1..{len(frames) - 1}")
    return _ratio(mae(frames[seam - 1], frames[seam]), _typical(frames, [seam], {seam}))


def loop_ratio(frames: np.ndarray) -> float:
    """Change from the last frame back to the first over the median consecutive change of the
    first and last 4 frames. <= 2 passes."""
    T = len(frames)
    return _ratio(mae(frames[-1], frames[0]), _typical(frames, [0, T]))


def connect_ratios(a: np.ndarray, transition: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(A's last frame -> transition's first, transition's last -> B's first), each over the
    median consecutive change of the 4 frames on either side of that junction in
    A + transition + B. Both <= 2 pass."""
    whole = np.concatenate([a, transition, b])
    j1, j2 = len(a), len(a) + len(transition)
    return (_ratio(mae(a[-1], transition[0]), _typical(whole, [j1], {j1, j2})),
            _ratio(mae(transition[-1], b[0]), _typical(whole, [j2], {j1, j2})))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images or videos (``PSNR_CAP`` when identical)."""
    m = float(((_f(a) - _f(b)) ** 2).mean())
    return PSNR_CAP if m == 0 else min(PSNR_CAP, 10 * math.log10(255.0**2 / m))
