"""Object tracking on world videos without downloaded networks.

:mod:`tenku.eval.segment` finds the objects in each frame by colour (steps 1
and 2: palette colours in CIELAB, connected components with shape labels and
border/contact flags); this module follows them through the video:

3. detections link into tracks, per colour, by the Hungarian algorithm on
   the distance to each track's constant-velocity prediction, with a gate
   that grows with the frames a track has been missing, so an object that
   was occluded or out of frame is re-linked when it comes back; a track
   ending in the open next to one of another colour starting is one object
   that changed colour.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from tenku.eval.segment import COLORS, Detection, detect
from tenku.world.render import View
from tenku.world.spec import POLYGONS, SceneSpec

GATE_FRAC = 0.3  # of H: the most an object moves in one frame (a fast fall at 8 fps is ~0.2 H)
GATE_GROWTH = 0.15  # of H per missing frame
WHOLE_AREA = 0.95  # of a track's median clean area: a detection this large shows the whole object


@dataclass
class Track:
    """One object followed through the video. ``dets`` maps frame -> detection; frames
    in between that are missing are gaps (occluded, out of frame, or vanished)."""

    id: int
    dets: dict[int, Detection] = field(default_factory=dict)
    merged: set[int] = field(default_factory=set)  # frames it was hidden inside a same-colour blob

    @property
    def frames(self) -> list[int]:
        return sorted(self.dets)

    @property
    def first(self) -> int:
        return min(self.dets)

    @property
    def last(self) -> int:
        return max(self.dets)

    def whole(self) -> np.ndarray:
        """Per detection (frame order): is the object seen whole, so its centroid, area and
        shape can be trusted? A clean detection is; one at the frame edge or touching another
        object is too when its area is at least ``WHOLE_AREA`` of the track's median clean
        area (resting on the frame's bottom edge, or just touching a neighbour, hides nothing)."""
        ds = [self.dets[f] for f in self.frames]
        ref = [d.area for d in ds if d.clean]
        med = float(np.median(ref)) if ref else np.inf
        return np.array([d.clean or d.area >= WHOLE_AREA * med for d in ds], dtype=bool)

    def _vote(self, attr: str) -> str:
        ok = self.whole()
        ds = [self.dets[f] for f, w in zip(self.frames, ok) if w] or list(self.dets.values())
        return Counter(getattr(d, attr) for d in ds).most_common(1)[0][0]

    @property
    def color(self) -> str:
        """Majority colour (over whole detections when there are any)."""
        return self._vote("color")

    @property
    def shape(self) -> str:
        """Majority shape label (over whole detections when there are any)."""
        return self._vote("shape")

    def median_area(self) -> float:
        """Median pixel area over whole detections (all detections if none is whole)."""
        ok = self.whole()
        a = [self.dets[f].area for f, w in zip(self.frames, ok) if w] or [d.area for d in self.dets.values()]
        return float(np.median(a))

    def speed(self) -> float:
        """Pixels per frame between the last two detections (0 with one)."""
        fr = self.frames
        if len(fr) < 2:
            return 0.0
        a, b = self.dets[fr[-1]], self.dets[fr[-2]]
        return float(np.hypot(a.x - b.x, a.y - b.y)) / (fr[-1] - fr[-2])

    def predict(self, t: int) -> tuple[float, float]:
        """Constant-velocity prediction of the centroid at frame ``t`` from the last two detections."""
        fr = self.frames
        a = self.dets[fr[-1]]
        if len(fr) < 2:
            return a.x, a.y
        b = self.dets[fr[-2]]
        k = (t - fr[-1]) / (fr[-1] - fr[-2])
        return a.x + k * (a.x - b.x), a.y + k * (a.y - b.y)


def _link_color(dets: list[list[Detection]], color: str, H: int, next_id: int) -> list[Track]:
    tracks: list[Track] = []
    for t, frame_dets in enumerate(dets):
        cand = [d for d in frame_dets if d.color == color]
        if not cand:
            continue
        live = [tr for tr in tracks if tr.last < t]
        matched: set[int] = set()
        if live:
            cost = np.full((len(live), len(cand)), 1e9)
            for i, tr in enumerate(live):
                px, py = tr.predict(t)
                gap = t - tr.last
                # a bounce reverses the velocity: the prediction can miss by twice the speed
                gate = H * min(GATE_FRAC + GATE_GROWTH * (gap - 1), 1.5) + 2 * tr.speed() * gap
                for j, d in enumerate(cand):
                    dist = float(np.hypot(d.x - px, d.y - py))
                    if dist <= gate:
                        cost[i, j] = dist + 0.02 * H * (gap - 1)  # prefer tracks seen just now
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols):
                if cost[i, j] < 1e9:
                    live[i].dets[t] = cand[j]
                    matched.add(j)
        for j, d in enumerate(cand):
            if j not in matched:
                tracks.append(Track(next_id + len(tracks), {t: d}))
    return tracks


def _stitch_colour_changes(tracks: list[Track], height: int) -> list[Track]:
    """Join a track that ends in the open to one of another colour that starts in the open
    right after, close by: one object that changed colour (identity stability sees it)."""
    pairs = []
    for a in tracks:
        da = a.dets[a.last]
        if not da.clean:
            continue
        for b in tracks:
            db = b.dets[b.first]
            if b is a or db.color == da.color or not db.clean or not 0 < b.first - a.last <= 2:
                continue
            px, py = a.predict(b.first)
            dist = float(np.hypot(db.x - px, db.y - py))
            if dist <= GATE_FRAC * height:
                pairs.append((dist, a.id, b.id))
    by_id = {tr.id: tr for tr in tracks}
    parent: dict[int, int] = {}  # track joined onto -> the track it joined
    ended: set[int] = set()  # tracks whose end has been joined
    for _, ia, ib in sorted(pairs):  # closest first; each end and each start joins once
        if ia in ended or ib in parent:
            continue
        root = ia
        while root in parent:  # a chain of colour changes joins onto its first track
            root = parent[root]
        if root == ib:
            continue
        by_id[root].dets.update(by_id[ib].dets)
        parent[ib] = root
        ended.add(ia)
    return [tr for tr in tracks if tr.id not in parent]


def _inside(x: float, y: float, box: tuple[int, int, int, int], pad: float) -> bool:
    return box[0] - pad <= x <= box[2] + pad and box[1] - pad <= y <= box[3] + pad


def link(dets: list[list[Detection]], height: int) -> list[Track]:
    """Link per-frame detections into tracks (per colour), then mark frames in which a
    track is missing because it merged into a same-coloured blob another track holds."""
    tracks: list[Track] = []
    for color in COLORS:
        tracks += _link_color(dets, color, height, len(tracks))
    tracks = _stitch_colour_changes(tracks, height)
    for tr in tracks:
        fr = tr.frames
        for a, b in zip(fr, fr[1:]):
            da, db = tr.dets[a], tr.dets[b]
            pad = 2.0 + float(np.hypot(db.x - da.x, db.y - da.y)) / (b - a)  # it may have bounced off the other
            for t in range(a + 1, b):
                px, py = _interp(tr, a, b, t)
                if any(d.color == tr.color and _inside(px, py, d.bbox, pad) for d in dets[t]):
                    tr.merged.add(t)
    return sorted(tracks, key=lambda tr: (tr.first, tr.id))


def _interp(tr: Track, a: int, b: int, t: int) -> tuple[float, float]:
    da, db = tr.dets[a], tr.dets[b]
    k = (t - a) / (b - a)
    return da.x + k * (db.x - da.x), da.y + k * (db.y - da.y)


def track_video(frames: np.ndarray, scale: float | None = None) -> tuple[list[list[Detection]], list[Track]]:
    """Detections per frame and the tracks linking them, for uint8 ``(T, H, W, 3)`` frames
    (``scale``: pixels per world unit, default the frame height)."""
    dets = detect(frames, scale=scale)
    return dets, link(dets, frames.shape[1])


def centroid_offset(shape: str, radius: float, angle: float) -> tuple[float, float]:
    """World offset (dx, dy) from an object's position to the centroid of its area.

    The simulator's position is the centre of the collision disc; a triangle's
    area centroid lies 0.3 radii below it (rotated with the shape). The tracker
    sees areas, so this is what links its centroids to the simulator's truth.
    """
    if shape not in POLYGONS:
        return 0.0, 0.0
    x, y = POLYGONS[shape].T
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = cross.sum() / 2
    cx, cy = ((x + xn) * cross).sum() / (6 * a), ((y + yn) * cross).sum() / (6 * a)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return float(radius * (c * cx - s * cy)), float(radius * (s * cx + c * cy))


class PixelMap:
    """Pixels <-> world units for one suite item: the renderer's geometry (the world box
    scaled to cover the frame, centred, the camera moving ``spec.pan`` units/s)."""

    def __init__(self, spec: SceneSpec, width: int, height: int, fps: float):
        self.view, self.pan, self.fps = View(spec, width, height), spec.pan, fps

    @property
    def scale(self) -> float:
        """Pixels per world unit."""
        return self.view.scale

    def to_world(self, px: np.ndarray | float, py: np.ndarray | float, frame: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates at frame index ``frame`` -> world (x, y)."""
        v = self.view
        cam = self.pan * np.asarray(frame, dtype=float) / self.fps
        x = (np.asarray(px, dtype=float) - v.w / 2) / v.scale + cam + v.world_w / 2
        y = 0.5 - (np.asarray(py, dtype=float) - v.h / 2) / v.scale
        return x, y

    def to_px(self, x: np.ndarray | float, y: np.ndarray | float, frame: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """World (x, y) at frame index ``frame`` -> pixel coordinates."""
        cam = self.pan * np.asarray(frame, dtype=float) / self.fps
        return self.view.to_px(np.asarray(x, dtype=float), np.asarray(y, dtype=float), cam)


__all__ = ["PixelMap", "Track", "centroid_offset", "link", "track_video"]
