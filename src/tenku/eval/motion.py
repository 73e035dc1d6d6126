"""Trajectories against their laws: break detection, piecewise law fits, motion kinds,
and the error against the simulator's own trajectory (docs/eval.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tenku.eval.metrics import (DIRECTION_TOLERANCE, G_TOLERANCE, GRAVITY, MIN_SPEED, RETURN_TOLERANCE, ObjectTruth,
                                Samples)
from tenku.world.spec import DIRECTIONS


def _law_acc(gravity: bool) -> np.ndarray:
    return np.array([0.0, -GRAVITY if gravity else 0.0])


def _lsq(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients and residuals of ``A c = y``."""
    c, *_ = np.linalg.lstsq(A, y, rcond=None)
    return c, A @ c - y


def _piece(t: np.ndarray, p: np.ndarray, g: float | None) -> tuple[float, float, bool]:
    """Fit one piece: x(t) a line; y(t) a line (``g`` None: inertial), a parabola of
    curvature -g/2 (``g`` a number) or a free parabola (``g`` NaN); under gravity also a
    constant height (supported: resting or sliding on the floor), whichever fits better.
    Returns (largest deviation, squared error, supported)."""
    tt = t - t[0]
    lin = np.stack([np.ones_like(tt), tt], 1)
    _, rx = _lsq(lin, p[:, 0])
    if g is None:
        _, ry = _lsq(lin, p[:, 1])
        flat = False
    else:
        if math.isnan(g):
            _, ry = _lsq(np.concatenate([lin, tt[:, None] ** 2], 1), p[:, 1])
        else:
            _, ry = _lsq(lin, p[:, 1] + 0.5 * g * tt**2)
        _, rf = _lsq(lin[:, :1], p[:, 1])
        flat = len(t) >= 3 and float(np.abs(rf).max()) <= float(np.abs(ry).max())
        ry = rf if flat else ry
    d = np.hypot(rx, ry)
    return float(d.max()), float((d**2).sum()), flat


def segments(s: Samples, g: float | None, tol: float) -> list[np.ndarray]:
    """Split the clean samples into the fewest pieces that each follow the law within ``tol``
    (see ``_piece``; ``g`` None is the inertial law). Dynamic programming over where pieces
    end; two pieces may share their boundary sample (an event at a frame) or not (between
    frames); ties go to the smaller squared error. Each cut is a bounce, a collision, or a
    violation of the law. Returns indices into the samples, one array per piece."""
    idx = np.nonzero(s.clean)[0]
    n = len(idx)
    if n == 0:
        return []
    t, p = s.t[idx], s.xy[idx]
    INF = (10**9, math.inf)
    best: list[tuple[int, float]] = [INF] * n  # (pieces, squared error) covering 0..k, a piece ending at k
    back = [0] * n
    for i in range(n):
        prev = (0, 0.0) if i == 0 else min(best[i], best[i - 1])
        if prev == INF:
            continue
        for k in range(i, n):
            dev, sq, _ = _piece(t[i:k + 1], p[i:k + 1], g)
            if dev > tol:
                break  # a longer piece from i only fits worse
            cand = (prev[0] + 1, prev[1] + sq)
            if cand < best[k]:
                best[k], back[k] = cand, i
    segs, k = [], n - 1
    while True:
        i = back[k]
        segs.append(idx[i:k + 1])
        if i == 0:
            break
        k = i if best[i] <= best[i - 1] and i != k else i - 1  # the piece before ends at i (shared) or i - 1
    return segs[::-1]


@dataclass
class LawFit:
    """A piecewise fit of one trajectory to its law."""

    gravity: bool
    residual: float  # RMS distance of the samples from the fit, world units
    g: float | None  # fitted downward acceleration (gravity law, when measurable)
    segments: list[np.ndarray]
    unexplained_breaks: int
    n: int  # samples used


def _joint(s: Samples, segs: list[np.ndarray], gravity: bool) -> tuple[float, float | None]:
    """RMS residual and shared g of the whole piecewise fit: per piece x0, vx, y0, vy;
    one g over all free-flight pieces; supported pieces keep a constant height."""
    n = int(sum(len(sg) for sg in segs))
    X = np.zeros((n, 2 * len(segs)))
    Y = np.zeros((n, 2 * len(segs) + 1))
    r, flight = 0, 0
    for k, sg in enumerate(segs):
        tt = s.t[sg] - s.t[sg[0]]
        flat = gravity and _piece(s.t[sg], s.xy[sg], GRAVITY)[2]
        rows = slice(r, r + len(sg))
        X[rows, 2 * k], X[rows, 2 * k + 1] = 1.0, tt
        Y[rows, 2 * k] = 1.0
        if not flat:
            Y[rows, 2 * k + 1] = tt
            Y[rows, -1] = -0.5 * tt * tt
            flight += len(sg) >= 4 and np.ptp(tt) >= 0.35
        r += len(sg)
    order = np.concatenate(segs)
    _, rx = _lsq(X, s.xy[order, 0])
    cy, ry = _lsq(Y if gravity else Y[:, :-1], s.xy[order, 1])
    return float(np.sqrt((rx**2 + ry**2).sum() / n)), (float(cy[-1]) if gravity and flight else None)


def fit_law(s: Samples, gravity: bool, tol: float, explained: Callable[[int, int], bool] | None = None) -> LawFit:
    """Fit a trajectory to its law, piece by piece (``segments``), then as a whole (``_joint``).

    Under gravity a first pass with free parabolas measures g; the pieces are then cut
    again with that g fixed, so three samples across a bounce cannot pass as a parabola.
    ``explained(frame_a, frame_b) -> bool`` says whether a cut between two frames has a cause
    (a wall, another object); floor bounces under gravity always do."""
    if not s.clean.any():
        return LawFit(gravity, math.inf, None, [], 0, 0)
    g_fix = None
    if gravity:
        _, g0 = _joint(s, segments(s, math.nan, tol), True)
        g_fix = g0 if g0 is not None and g0 > 0 else GRAVITY
    segs = segments(s, g_fix, tol)
    residual, g = _joint(s, segs, gravity)
    breaks = 0
    for a, b in zip(segs, segs[1:]):
        fa, fb = int(s.frames[a[-1]]), int(s.frames[b[0]])
        if fb - fa > 2:
            continue  # across a gap (occlusion) the permanence check judges the return
        if gravity and _floor_bounce(s, a, b):
            continue
        if explained is not None and not explained(fa, fb):
            breaks += 1
    return LawFit(gravity, residual, g, segs, breaks, int(s.clean.sum()))


def _floor_bounce(s: Samples, a: np.ndarray, b: np.ndarray) -> bool:
    """Falling before the break, not falling after it, with the sideways speed kept: a floor bounce
    (or settling), lawful anywhere under gravity since a generated floor may lie anywhere."""
    if len(a) < 2 or len(b) < 2:
        return False
    va = (s.xy[a[-1]] - s.xy[a[-2]]) / (s.t[a[-1]] - s.t[a[-2]])
    vb = (s.xy[b[1]] - s.xy[b[0]]) / (s.t[b[1]] - s.t[b[0]])
    return bool(va[1] < 0 and vb[1] > -0.25 * abs(va[1]) and abs(vb[0] - va[0]) <= 0.25 * abs(va[1]) + MIN_SPEED)


def physics_ok(fit: LawFit, tol_fit: float) -> bool:
    """The track follows its law: small residual, every break explained and, under gravity,
    a measured downward acceleration within ``G_TOLERANCE`` of the world's."""
    if fit.n < 3 or fit.residual > tol_fit or fit.unexplained_breaks:
        return False
    if fit.gravity:  # it must be seen falling, at the world's gravity (hanging still in the air fits no law)
        return fit.g is not None and abs(fit.g / GRAVITY - 1) <= G_TOLERANCE
    return True


def _angle(v: np.ndarray, d: str) -> float:
    u = np.asarray(DIRECTIONS[d])
    c = float(v @ u / (np.linalg.norm(v) + 1e-12))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _fit_poly(t: np.ndarray, p: np.ndarray, deg: int) -> np.ndarray:
    """Least-squares polynomial coefficients (lowest first) of p(t - t0): (deg + 1, 2)."""
    tt = t - t[0]
    V = np.stack([tt**k for k in range(deg + 1)], 1)
    c, *_ = np.linalg.lstsq(V, p, rcond=None)
    return c


def motion_ok(s: Samples, motion: str, direction: str | None, tol: float) -> bool:
    """Does the trajectory show ``motion`` (rest, move, bounce, fall, throw) in ``direction``
    (if given)? Judged on its first piece (``segments``): what the object does before its
    first bounce or collision, since the prompt describes how it starts."""
    sub = Samples(s.frames, s.t, s.xy, s.clean if s.clean.sum() >= 3 else np.ones(len(s.dets), dtype=bool), s.dets)
    if sub.clean.sum() < 2:
        return False
    gravity = motion in ("fall", "throw")
    first = segments(sub, math.nan if gravity else None, tol)[0]
    if motion == "rest":  # the piece's straight-line fit barely moves (a knock at its end does not count)
        return len(first) >= 2 and float(np.linalg.norm(_fit_poly(sub.t[first], sub.xy[first], 1)[1])) < MIN_SPEED
    if len(first) < 2:
        return False
    tf, pf = sub.t[first], sub.xy[first]
    long_enough = len(first) >= 4 and np.ptp(tf) >= 0.5
    if motion in ("move", "bounce"):
        c = _fit_poly(tf, pf, 2 if long_enough else 1)
        v = c[1] + (c[2] * (tf[-1] - tf[0]) if long_enough else 0)  # mean velocity over the segment
        if np.linalg.norm(v) < MIN_SPEED or (long_enough and abs(2 * c[2, 1]) > 0.5 * GRAVITY):
            return False
        return direction is None or _angle(v, direction) <= DIRECTION_TOLERANCE
    # fall / throw: the first flight accelerates downward; a throw starts upward
    if len(first) < 3:
        return False
    c = _fit_poly(tf, pf, 2)
    ay, vy0, vx = 2 * c[2, 1], c[1, 1], c[1, 0]
    if ay > -0.5 * GRAVITY:
        return False
    if motion == "fall" and vy0 > 0.15:
        return False
    if motion == "throw" and vy0 <= 0.1:
        return False
    if direction in ("left", "right"):
        return (vx < -MIN_SPEED / 2) if direction == "left" else (vx > MIN_SPEED / 2)
    return True


def trajectory_error(s: Samples, obj: ObjectTruth) -> tuple[float, float, int]:
    """(ADE, FDE, frames compared): distance, world units, between the track's clean
    centroids and the simulator's area-centroid trajectory where both are visible."""
    if obj.ref is None or len(s.frames) == 0:
        return math.nan, math.nan, 0
    ok = s.clean.copy()
    valid = s.frames < len(obj.ref)
    ok &= valid
    if obj.ref_visible is not None:
        ok[valid] &= obj.ref_visible[s.frames[valid]]
    if not ok.any():
        return math.nan, math.nan, 0
    d = np.linalg.norm(s.xy[ok] - obj.ref[s.frames[ok]], axis=1)
    return float(d.mean()), float(d[-1]), int(ok.sum())


@dataclass
class Return:
    """An object coming back from behind another: where it was seen again against
    where its law, fitted just before it was hidden, puts it."""

    hidden_from: int  # first missing frame
    seen_at: int  # first clean frame after the gap
    error: float  # world units
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance


def returns(s: Samples, gaps: list[tuple[int, int]], gravity: bool, tol: float,
            bounds: tuple[float, float, float] | None = None) -> list[Return]:
    """Check each ``(last_seen, seen_again)`` frame pair: fit the law to up to 8 clean samples
    before the gap (after the last break) and extrapolate to the first clean sample after it.
    Tolerance: ``RETURN_TOLERANCE`` or a quarter of the predicted distance, whichever is larger.

    A gap in which the predicted path would bounce is skipped (the bounce is not predicted):
    one that reaches the lowest height the track ever shows (its floor), or leaves the world
    ``bounds`` = (width, floor, margin)."""
    out: list[Return] = []
    segs = segments(s, math.nan if gravity else None, tol)
    low = float(s.xy[s.clean, 1].min()) if s.clean.any() else -math.inf
    for a, b in gaps:
        before = [sg for sg in segs if len(sg) and s.frames[sg[0]] <= a]
        if not before:
            continue
        seg = before[-1][s.frames[before[-1]] <= a][-8:]
        after = np.nonzero(s.clean & (s.frames >= b))[0]
        if len(seg) < 3 or not len(after):
            continue
        j = after[0]
        tf, pf = s.t[seg], s.xy[seg]
        acc = _law_acc(gravity and np.ptp(pf[:, 1]) >= tol)  # resting on the floor: no fall
        c = _fit_poly(tf, pf - np.outer((tf - tf[0]) ** 2, acc) / 2, 1)
        t_last = s.t[s.frames == a][0] if (s.frames == a).any() else tf[-1]
        dts = np.linspace(t_last - tf[0], s.t[j] - tf[0], 16)[:, None]  # the hidden stretch only
        path = c[0] + c[1] * dts + acc * dts * dts / 2
        if acc[1] < 0 and path[:, 1].min() < low + tol:
            continue  # it would land on its floor while hidden
        if bounds is not None:
            width, floor, m = bounds
            x, y = path[:, 0], path[:, 1]
            if x.min() < m or x.max() > width - m or y.min() < floor + m or y.max() > 1 - m:
                continue  # it would bounce off a wall while hidden
        pred = path[-1]
        travel = float(np.linalg.norm(pred - pf[-1]))
        out.append(Return(int(a) + 1, int(s.frames[j]), float(np.linalg.norm(s.xy[j] - pred)),
                          max(RETURN_TOLERANCE, 0.25 * travel)))
    return out
