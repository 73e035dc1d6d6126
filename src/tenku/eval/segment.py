"""Colour segmentation of world videos: pixels -> per-frame object detections.

Every object of the physics world has one of the palette colours, and no
background colour comes near one, so colour finds objects:

1. frames go to CIELAB (perceptual: equal distances look about equally
   different, so one threshold suits every colour); each pixel takes the
   nearest palette colour if it lies within ``MAX_DELTA_E`` of it (CIE76);
2. each colour's mask splits into connected components (8-connected); a
   component is a detection: area centroid, area, bounding box, a shape label
   from four rotation-invariant numbers (hole ratio and the strengths of 3-,
   4- and 5-fold symmetry), and two flags: it touches the frame border (may
   be partly out of frame) or another object (may be partly occluded).

:mod:`tenku.eval.tracking` links the detections into tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tenku.world.spec import PALETTE

MAX_DELTA_E = 22.0  # CIE76 distance in Lab to a palette colour; half the gap between most palette pairs
MIN_AREA_FRAC = 0.0015  # of H*H: a fifth of the smallest object, so partly hidden objects still count
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


__all__ = ["COLORS", "Detection", "classify_shape", "color_labels", "detect", "rgb_to_lab", "shape_features"]
