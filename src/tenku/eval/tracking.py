"""Object tracking on world videos without downloaded networks.

Every object of the physics world has one of the palette colours, and no
background colour comes near one, so colour finds objects:

1. frames go to CIELAB (perceptual: equal distances look about equally
   different, so one threshold suits every colour); each pixel takes the
   nearest palette colour if it lies within ``MAX_DELTA_E`` of it (CIE76);
2. each colour's mask splits into connected components (8-connected); a
   component is a detection: area centroid, area, bounding box, a shape label
   from four rotation-invariant numbers (hole ratio and the strengths of 3-,
   4- and 5-fold symmetry), and two flags: it touches the frame border (may
   be partly out of frame) or another object (may be partly occluded);
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
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from tenku.world.render import View
from tenku.world.spec import PALETTE, POLYGONS, SHAPES, SceneSpec

MAX_DELTA_E = 22.0  # CIE76 distance in Lab to a palette colour; half the gap between most palette pairs
MIN_AREA_FRAC = 0.0015  # of H*H: a fifth of the smallest object, so partly hidden objects still count
GATE_FRAC = 0.3  # of H: the most an object moves in one frame (a fast fall at 8 fps is ~0.2 H)
GATE_GROWTH = 0.15  # of H per missing frame
WHOLE_AREA = 0.95  # of a track's median clean area: a detection this large shows the whole object
CONTACT_PX = 2  # pixels between two objects that still count as touching (blended edge pixels match no colour)
MAX_EXTENT = 0.3  # world units: no object is wider (the largest star spans 0.275)

_M_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                   [0.2126729, 0.7151522, 0.0721750],
                   [0.0193339, 0.1191920, 0.9503041]]) / np.array([[0.95047], [1.0], [1.08883]])
_LIN = np.where(np.arange(256) / 255 <= 0.04045, np.arange(256) / 255 / 12.92,
                ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4).astype(np.float32)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 ``(..., 3)`` -> CIELAB float32 ``(..., 3)`` (D65 white)."""
    lin = _LIN[np.asarray(rgb, dtype=np.uint8)]
    xyz = lin @ _M_XYZ.T.astype(np.float32)
    d = 6.0 / 29.0
    f = np.where(xyz > d**3, np.cbrt(xyz), xyz / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


COLORS = list(PALETTE)
PALETTE_LAB = rgb_to_lab(np.array([PALETTE[c] for c in COLORS], dtype=np.uint8))  # (C, 3)


def color_labels(frames: np.ndarray, max_delta_e: float = MAX_DELTA_E) -> np.ndarray:
    """Per pixel: index into ``COLORS`` of the nearest palette colour within ``max_delta_e``, else -1.

    ``frames`` uint8 ``(T, H, W, 3)`` -> int8 ``(T, H, W)``.
    """
    out = np.empty(frames.shape[:3], dtype=np.int8)
    pal = PALETTE_LAB.astype(np.float32)
    for t0 in range(0, len(frames), 16):  # chunks bound the (chunk, H, W, C) distance array
        lab = rgb_to_lab(frames[t0:t0 + 16]).astype(np.float32)
        # |a - p|^2 = |a|^2 - 2 a.p + |p|^2: one matrix product instead of a (..., C, 3) difference array
        d2 = (lab * lab).sum(-1, keepdims=True) - 2 * lab @ pal.T + (pal * pal).sum(-1)
        best = d2.argmin(-1)
        ok = np.take_along_axis(d2, best[..., None], -1)[..., 0] <= max_delta_e**2
        out[t0:t0 + 16] = np.where(ok, best, -1)
    return out


@dataclass
class Detection:
    """One connected component of one palette colour in one frame. Pixels: x right, y down,
    pixel (i, j) covers [i, i+1) x [j, j+1)."""

    frame: int
    color: str
    x: float  # area centroid
    y: float
    area: float  # pixels
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    shape: str
    features: tuple[float, float, float, float]  # hole ratio, m3, m4, m5 (shape_features)
    border: bool  # touches the frame edge: may be partly out of frame
    contact: bool  # touches another object's pixels: may be partly occluded

    @property
    def clean(self) -> bool:
        """Fully in view and untouched: its centroid, area and shape can be trusted."""
        return not (self.border or self.contact)


def shape_features(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(hole ratio, m3, m4, m5) of a boolean mask; all invariant to rotation, position and scale.

    hole ratio = area / area with holes filled (a ring ~0.6, anything else 1).
    m_k = |sum (z - c)^k| / sum |z - c|^k over the pixels z (complex numbers)
    around the centroid c: the strength of k-fold symmetry. A triangle has a
    large m3, a square a large m4, a five-pointed star a large m5; a disc
    has none of them.
    """
    ys, xs = np.nonzero(mask)
    area, filled = float(len(xs)), float(ndimage.binary_fill_holes(mask).sum())
    z = (xs - xs.mean()) + 1j * (ys - ys.mean())
    r = np.abs(z)
    m = [float(abs((z**k).sum()) / max(float((r**k).sum()), 1e-9)) for k in (3, 4, 5)]
    return area / max(filled, 1.0), m[0], m[1], m[2]


# Measured on 1500 random renders (every shape, size, angle, colour, background; heights
# 64-160; docs/eval.md): triangle m3 >= 0.46; star m5 >= 0.63 (but m3 up to 0.49); square
# m4 >= 0.32; circle m4 <= 0.24; squares and circles m5 <= 0.35; ring hole ratio ~0.65.
def classify_shape(features: tuple[float, float, float, float]) -> str:
    """Shape label from ``shape_features``: the thresholds sit between the measured clusters."""
    holes, m3, m4, m5 = features
    if holes < 0.85:
        return "ring"
    tri, star = m3 >= 0.46, m5 >= 0.39
    if tri and star:  # a tiny star can show some 3-fold symmetry: compare with the clusters' medians
        return "triangle" if m3 / 0.62 > m5 / 0.72 else "star"
    if tri or star:
        return "triangle" if tri else "star"
    if m4 >= 0.27:
        return "square"
    return "circle"


def detect(frames: np.ndarray, labels: np.ndarray | None = None, scale: float | None = None) -> list[list[Detection]]:
    """Detections per frame of uint8 ``(T, H, W, 3)`` frames (``labels`` from ``color_labels`` if given).

    An object partly hidden behind a thinner one shows as two pieces of its colour on either
    side of it; same-coloured pieces that touch the same other object and together span no
    more than one object (``MAX_EXTENT`` world units; ``scale`` pixels per unit, default the
    frame height) are joined into one detection.
    """
    labels = color_labels(frames) if labels is None else labels
    T, H, W = labels.shape
    span = MAX_EXTENT * (scale or H)
    min_area = max(3.0, MIN_AREA_FRAC * H * H)
    eight = np.ones((3, 3), dtype=bool)
    near = np.ones((2 * CONTACT_PX + 1, 2 * CONTACT_PX + 1), dtype=bool)
    out: list[list[Detection]] = []
    for t in range(T):
        lab = labels[t]
        ids = np.zeros((H, W), dtype=np.int32)  # piece number + 1 per pixel
        pieces: list[tuple[int, tuple[int, int, int, int]]] = []  # colour, box
        for ci in np.unique(lab):
            if ci < 0:
                continue
            comp, _ = ndimage.label(lab == ci, structure=eight)
            areas = np.bincount(comp.ravel())
            boxes = ndimage.find_objects(comp)
            for k in np.nonzero(areas[1:] >= min_area)[0] + 1:  # smaller: noise, or blended edges of another colour
                sy, sx = boxes[k - 1]
                m = comp[sy, sx] == k
                pieces.append((int(ci), (sx.start, sy.start, sx.stop, sy.stop)))
                ids[sy, sx][m] = len(pieces)
        touch: list[set[int]] = []
        for n, (ci, (x0, y0, x1, y1)) in enumerate(pieces, start=1):
            Y0, Y1, X0, X1 = max(y0 - CONTACT_PX, 0), min(y1 + CONTACT_PX, H), max(x0 - CONTACT_PX, 0), min(x1 + CONTACT_PX, W)
            m = ids[Y0:Y1, X0:X1] == n
            around = ids[Y0:Y1, X0:X1][ndimage.binary_dilation(m, near) & ~m]
            touch.append({int(v) - 1 for v in np.unique(around) if v > 0 and v != n})
        group = list(range(len(pieces)))  # union of pieces split by an occluder
        for a in range(len(pieces)):
            for b in range(a + 1, len(pieces)):
                (ca, ba), (cb, bb) = pieces[a], pieces[b]
                if ca != cb or group[a] == group[b] or not (touch[a] & touch[b]):
                    continue
                if max(ba[2], bb[2]) - min(ba[0], bb[0]) <= span and max(ba[3], bb[3]) - min(ba[1], bb[1]) <= span:
                    old = group[b]
                    group = [group[a] if g == old else g for g in group]
        dets: list[Detection] = []
        for gid in sorted(set(group)):
            members = [k for k in range(len(pieces)) if group[k] == gid]
            ci = pieces[members[0]][0]
            x0 = min(pieces[k][1][0] for k in members)
            y0 = min(pieces[k][1][1] for k in members)
            x1 = max(pieces[k][1][2] for k in members)
            y1 = max(pieces[k][1][3] for k in members)
            m = np.isin(ids[y0:y1, x0:x1], [k + 1 for k in members])
            ys, xs = np.nonzero(m)
            contact = any(touch[k] - set(members) for k in members)
            border = x0 == 0 or y0 == 0 or x1 == W or y1 == H
            feats = shape_features(m)
            dets.append(Detection(t, COLORS[ci], float(xs.mean() + x0 + 0.5), float(ys.mean() + y0 + 0.5),
                                  float(len(xs)), (x0, y0, x1, y1), classify_shape(feats), feats, border, contact))
        out.append(dets)
    return out


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


__all__ = ["COLORS", "SHAPES", "Detection", "PixelMap", "Track", "centroid_offset", "classify_shape", "color_labels",
           "detect", "link", "rgb_to_lab", "shape_features", "track_video"]
