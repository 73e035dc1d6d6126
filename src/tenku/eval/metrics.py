"""Object-level metrics of the world-model benchmark, on tracks (docs/eval.md has every formula).

All positions here are world units (``PixelMap``): the world is ``width`` x 1,
y up, so thresholds mean the same at every resolution. Each metric of one
video is a rate in [0, 1]; a prompted object that no track matches scores 0
on every per-object metric (no object, no physics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from tenku.eval.segment import Detection
from tenku.eval.tracking import PixelMap, Track
from tenku.world.spec import SIZES, ObjectSpec, shape_area

GRAVITY = 1.5  # the world's gravity, units / s^2
G_TOLERANCE = 0.25  # a fitted gravity within 25% of the world's passes
MIN_SPEED = 0.05  # units / s: slower than this is at rest
DIRECTION_TOLERANCE = 35.0  # degrees between the prompted and the measured direction
RETURN_TOLERANCE = 0.05  # units (or 25% of the distance travelled while hidden, if larger)
SIZE_TOLERANCE = 0.25  # relative change of a track's area that still counts as the same size
SIGNIFICANT_FRAMES = 3  # a track seen in fewer frames is not an object (for adherence and matching)


@dataclass
class ObjectTruth:
    """One intended object: what the prompt stated, the full spec, and (when known) the
    simulator's reference trajectory of its area centroid, world units, per frame."""

    hint: dict[str, str]
    spec: ObjectSpec
    ref: np.ndarray | None = None  # (T, 2)
    ref_visible: np.ndarray | None = None  # (T,) bool


@dataclass
class Samples:
    """A track in world units: frame indices, times (s), positions (n, 2), and whether each
    detection shows the whole object (``Track.whole``; named clean: fits use only these)."""

    frames: np.ndarray
    t: np.ndarray
    xy: np.ndarray
    clean: np.ndarray
    dets: list[Detection] = field(default_factory=list)


def samples(track: Track, pm: PixelMap, frame0: int = 0) -> Samples:
    """World-unit samples of a track (``frame0``: index of the clip's first frame in the video)."""
    fr = np.array(track.frames, dtype=int)
    dets = [track.dets[f] for f in fr]
    x, y = pm.to_world(np.array([d.x for d in dets]), np.array([d.y for d in dets]), fr + frame0)
    return Samples(fr, (fr + frame0) / pm.fps, np.stack([x, y], 1).reshape(-1, 2), track.whole(), dets)


def size_class(track: Track, pm: PixelMap) -> str:
    """Nearest size name, from the track's median clean area and its shape label."""
    r = math.sqrt(track.median_area() / pm.scale**2 / shape_area(track.shape, 1.0))
    return min(SIZES, key=lambda s: abs(math.log(r / SIZES[s])))


def significant(tracks: list[Track], T: int) -> list[Track]:
    """Tracks seen in at least ``SIGNIFICANT_FRAMES`` frames (all of a shorter clip): objects, not specks."""
    return [tr for tr in tracks if len(tr.dets) >= min(SIGNIFICANT_FRAMES, T)]


def attribute_match(obj: ObjectTruth, track: Track, pm: PixelMap) -> dict[str, bool]:
    """For each attribute the prompt stated (colour, shape, size): does the track have it?"""
    have = {"color": track.color, "shape": track.shape}
    out = {k: have[k] == v for k, v in obj.hint.items() if k in have}
    if "size" in obj.hint:
        out["size"] = size_class(track, pm) == obj.hint["size"]
    return out


def match_objects(objs: list[ObjectTruth], tracks: list[Track], pm: PixelMap, T: int) -> list[Track | None]:
    """Assign each intended object a track (or None), maximising attribute agreement.

    A track of another colour than the one stated never stands in for an object.
    Ties between identical objects break on the distance to the reference trajectory.
    """
    cand = significant(tracks, T)
    if not objs or not cand:
        return [None] * len(objs)
    cost = np.full((len(objs), len(cand)), 1e6)
    for i, o in enumerate(objs):
        color = o.hint.get("color", o.spec.color)
        for j, tr in enumerate(cand):
            if tr.color != color:
                continue
            m = attribute_match(o, tr, pm)
            c = 2.0 * sum(not v for v in m.values()) + (1 - len(tr.dets) / T)
            if o.ref is not None:
                s = samples(tr, pm)
                ok = o.ref_visible[s.frames] if o.ref_visible is not None else np.ones(len(s.frames), bool)
                if ok.any():
                    c += 0.1 * float(np.linalg.norm(s.xy[ok] - o.ref[s.frames[ok]], axis=1).mean())
            cost[i, j] = c
    rows, cols = linear_sum_assignment(cost)
    out: list[Track | None] = [None] * len(objs)
    for i, j in zip(rows, cols):
        if cost[i, j] < 1e6:
            out[i] = cand[j]
    return out


def object_adherence(objs: list[ObjectTruth], matched: list[Track | None], tracks: list[Track], pm: PixelMap, T: int) -> float:
    """(prompted objects whose track has every stated attribute) / max(prompted, significant tracks)."""
    good = sum(1 for o, tr in zip(objs, matched) if tr is not None and all(attribute_match(o, tr, pm).values()))
    denom = max(len(objs), len(significant(tracks, T)))
    return good / denom if denom else 1.0



# --- presence: appearing, vanishing, count ---------------------------------------------

@dataclass
class Context:
    """What the metrics of one clip need besides the tracks."""

    pm: PixelMap
    dets: list[list[Detection]]
    width: int  # pixels
    height: int
    world_width: float
    floor_y: float
    frame0: int = 0  # index of the clip's first frame in the whole video (camera pan)

    @property
    def T(self) -> int:
        return len(self.dets)


def _pad(d: Detection) -> float:
    return 2.0 + 0.15 * math.sqrt(d.area)


def _box_gap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    dx = max(a[0] - b[2], b[0] - a[2], 0)
    dy = max(a[1] - b[3], b[1] - a[3], 0)
    return float(math.hypot(dx, dy))


def near_other(d: Detection, others: list[Detection], step: float = 0.0) -> bool:
    """Another detection's box lies within reach of ``d``'s box: it may hide it, or touch it
    (objects collide as discs, so shapes can meet with a gap between their pixels), within
    ``2 * step`` more pixels (``step``: how far the object moves in a frame; the other may
    come as fast: an event between frames)."""
    return any(o is not d and _box_gap(d.bbox, o.bbox) <= _pad(d) + _pad(o) - 2.0 + 2 * step for o in others)


def near_edge(d: Detection, ctx: Context, step: float = 0.0) -> bool:
    """``d`` touches, or is within its pad plus ``step`` pixels of, the frame edge."""
    x0, y0, x1, y1 = d.bbox
    m = _pad(d) + step
    return d.border or min(x0, y0, ctx.width - x1, ctx.height - y1) <= m


def near_wall(d: Detection, ctx: Context, step: float = 0.0) -> bool:
    """``d`` is within reach of a world boundary (walls, ceiling, bottom, floor), give or take
    ``step`` pixels (a frame's travel): a bounce there is lawful. Reach is the collision radius,
    1.6 x the radius of a disc of the same area covering every shape, plus a pad."""
    x, y = ctx.pm.to_world(d.x, d.y, d.frame + ctx.frame0)
    reach = (1.6 * math.sqrt(d.area / math.pi) + _pad(d) + step) / ctx.pm.scale
    dist = min(float(x), ctx.world_width - float(x), float(y), 1.0 - float(y), abs(float(y) - ctx.floor_y))
    return dist <= reach or near_edge(d, ctx, step)


def step(track: Track, k: int) -> float:
    """The most pixels the track moved in one frame around frame ``k`` (0 if unknown): the
    uncertainty of where an event between two frames happened."""
    fr = [f for f in track.frames if abs(f - k) <= 2]
    moves = [math.hypot(track.dets[b].x - track.dets[a].x, track.dets[b].y - track.dets[a].y) / (b - a)
             for a, b in zip(fr, fr[1:])]
    return float(max(moves, default=0.0))


@dataclass
class PresenceEvent:
    """A track starting to be missing (``vanish``: ``frame`` is the last frame seen) or
    being seen again (``appear``: ``frame`` is the first frame seen), with its cause."""

    frame: int
    kind: str  # "vanish" | "appear"
    cause: str | None  # "edge", "occlusion", "merged" (into a same-coloured object) or None: unexplained


def presence_events(track: Track, ctx: Context) -> list[PresenceEvent]:
    """Every appearance after frame 0 and every disappearance before the last frame, explained
    by the frame edge (entering, leaving) or another object (hiding it, merging with it)."""
    out: list[PresenceEvent] = []
    fr = track.frames
    for k, f in enumerate(fr):
        d, st = track.dets[f], step(track, f)
        if f > 0 and (k == 0 or fr[k - 1] < f - 1):
            cause = ("edge" if _through_edge(track, f, ctx, -1) else "occlusion"
                     if d.contact or near_other(d, ctx.dets[f], st) or near_other(d, ctx.dets[f - 1], st) else None)
            out.append(PresenceEvent(f, "appear", cause))
        if f < ctx.T - 1 and (k == len(fr) - 1 or fr[k + 1] > f + 1):
            px, py = track.predict(f + 1) if k == len(fr) - 1 else _lerp(track, f, fr[k + 1], f + 1)
            pad = _pad(d) + st
            hidden = any(o.bbox[0] - pad <= px <= o.bbox[2] + pad and o.bbox[1] - pad <= py <= o.bbox[3] + pad
                         for o in ctx.dets[f + 1])
            cause = ("edge" if _through_edge(track, f, ctx, 1) else "merged" if f + 1 in track.merged else
                     "occlusion" if d.contact or hidden or near_other(d, ctx.dets[f], st) else None)
            if cause in ("occlusion", "merged") and k == len(fr) - 1 and not _still_hidden(track, ctx):
                cause = None  # hidden for good, yet nothing covers where it should be at the end
            out.append(PresenceEvent(f, "vanish", cause))
    return out


def _through_edge(track: Track, f: int, ctx: Context, sign: int) -> bool:
    """Did the object leave (``sign`` 1: one frame after ``f``) or enter (-1: one frame
    before ``f``) through the frame edge? It is cut by the edge, or, moving at its current
    velocity towards an edge (faster than a quarter pixel a frame), its box reaches that
    edge within the frame. An object whole and at rest against the edge has not left when
    it disappears."""
    d = track.dets[f]
    fr = track.frames
    k = fr.index(f)
    if d.border and not track.whole()[k]:
        return True  # cut by the edge: half out already (its centroid lags the motion)
    other = fr[k - 1] if sign > 0 and k > 0 else fr[k + 1] if sign < 0 and k + 1 < len(fr) else None
    if other is None:  # seen once: near the edge is all there is to go on
        return near_edge(d, ctx)
    o = track.dets[other]
    # pixels per frame in the direction of the event (forward when leaving, backward when entering)
    vx, vy = sign * (d.x - o.x) / (f - other), sign * (d.y - o.y) / (f - other)
    x0, y0, x1, y1 = d.bbox
    return ((vx < -0.25 and x0 + vx <= 1) or (vy < -0.25 and y0 + vy <= 1)
            or (vx > 0.25 and x1 + vx >= ctx.width - 1) or (vy > 0.25 and y1 + vy >= ctx.height - 1))


def _lerp(track: Track, a: int, b: int, t: int) -> tuple[float, float]:
    da, db = track.dets[a], track.dets[b]
    w = (t - a) / (b - a)
    return da.x + w * (db.x - da.x), da.y + w * (db.y - da.y)


def _still_hidden(track: Track, ctx: Context) -> bool:
    """At the last frame, some detection covers the track's last position or its
    constant-velocity extrapolation: an object that went behind another and stays there."""
    last = ctx.T - 1
    d = track.dets[track.last]
    pts = [(d.x, d.y), track.predict(last)]
    return any(o.bbox[0] - _pad(o) <= x <= o.bbox[2] + _pad(o) and o.bbox[1] - _pad(o) <= y <= o.bbox[3] + _pad(o)
               for o in ctx.dets[last] for x, y in pts)


def accounted(track: Track, events: list[PresenceEvent], T: int) -> np.ndarray:
    """(T,) bool: frames in which the track is an object of the scene: seen, or missing
    for an explained reason. Before an unexplained appearance and after an unexplained
    disappearance it is not (it came from, or went to, nowhere)."""
    acc = np.ones(T, dtype=bool)
    ev = sorted(events, key=lambda e: (e.frame, e.kind != "vanish"))
    if track.first > 0 and not any(e.kind == "appear" and e.frame == track.first and e.cause for e in ev):
        acc[: track.first] = False
    fr = track.frames
    for a, b in zip(fr, fr[1:] + [None]):
        if b is not None and b == a + 1:
            continue
        end = T if b is None else b
        v = next((e for e in ev if e.kind == "vanish" and e.frame == a), None)
        ap = next((e for e in ev if e.kind == "appear" and e.frame == b), None) if b is not None else None
        if (v is not None and v.cause is None) or (ap is not None and ap.cause is None):
            acc[a + 1: end] = False
    return acc


def count_consistency(tracks: list[Track], events: dict[int, list[PresenceEvent]], n_expected: int, T: int) -> float:
    """Fraction of frames whose number of accounted objects equals the prompted number."""
    n = np.zeros(T, dtype=int)
    for tr in tracks:
        n += accounted(tr, events[tr.id], T)
    return float(np.mean(n == n_expected))


def identity(track: Track, pm: PixelMap) -> dict[str, float] | None:
    """Fractions of a track's whole detections (``whole``) that keep its majority colour,
    its majority shape, and its median area within ``SIZE_TOLERANCE``; ``score`` is their
    mean. None when fewer than 3 are whole (an object only ever seen in part)."""
    ds = [track.dets[f] for f, w in zip(track.frames, track.whole()) if w]
    if len(ds) < 3:
        return None
    med = float(np.median([d.area for d in ds]))
    color, shape = track.color, track.shape
    out = {"color": float(np.mean([d.color == color for d in ds])),
           "shape": float(np.mean([d.shape == shape for d in ds])),
           "size": float(np.mean([abs(d.area / med - 1) <= SIZE_TOLERANCE for d in ds]))}
    out["score"] = (out["color"] + out["shape"] + out["size"]) / 3
    return out
