"""Anti-aliased, vectorised rendering of a simulated scene, plus the pixel-level
ground truth (visibility, occlusion, bounding boxes) that only a render knows.

The world box (``spec.width`` x 1) is scaled to *cover* the frame and centred,
so any resolution and aspect ratio shows the same scene (cropped, never
stretched). Objects are composited front to back with a transmittance buffer,
which gives the frame and each object's visible coverage in one pass.
"""

from __future__ import annotations

import numpy as np

from tenku.world.physics import Trajectory, simulate
from tenku.world.spec import (
    BACKGROUNDS,
    FLOOR_COLORS,
    PALETTE,
    POLYGONS,
    RING_INNER,
    Event,
    GroundTruth,
    SceneSpec,
    shape_area,
)

HIDDEN_ALPHA = 1.0 / 64  # an object counts as hidden when no pixel shows more of it than this
IN_FRAME_AREA = 0.5  # pixels of coverage below which an object is out of frame


class View:
    """Maps world units to pixels for one frame size and camera offset."""

    def __init__(self, spec: SceneSpec, width: int, height: int):
        self.w, self.h = width, height
        self.world_w = spec.width
        self.scale = max(width / spec.width, height / 1.0)  # pixels per world unit

    def to_px(self, x: np.ndarray, y: np.ndarray, cam: float) -> tuple[np.ndarray, np.ndarray]:
        px = (x - cam - self.world_w / 2) * self.scale + self.w / 2
        py = self.h / 2 - (y - 0.5) * self.scale
        return px, py

    def grid(self, cam: float) -> tuple[np.ndarray, np.ndarray]:
        """World coordinates of pixel centres: x (W,), y (H,)."""
        xs = cam + self.world_w / 2 + (np.arange(self.w) + 0.5 - self.w / 2) / self.scale
        ys = 0.5 - (np.arange(self.h) + 0.5 - self.h / 2) / self.scale
        return xs, ys


def _rgb(table: dict[str, tuple[int, int, int]], name: str) -> np.ndarray:
    return np.asarray(table[name], dtype=np.float32) / 255.0


def _band(coord: np.ndarray, period: float, px_per_unit: float) -> np.ndarray:
    """1 inside odd bands of ``period``, 0 in even ones, anti-aliased at edges."""
    f = np.mod(coord / period, 2.0)
    d = np.minimum(np.mod(f, 1.0), 1.0 - np.mod(f, 1.0)) * period * px_per_unit  # px to nearest edge
    inside = (f >= 1.0).astype(np.float32)
    w = np.clip(0.5 + d, 0.0, 1.0)
    return inside * w + (1 - inside) * (1 - w)


def background(spec: SceneSpec, view: View, cam: float) -> np.ndarray:
    """The background and floor, float32 (H, W, 3) in [0, 1]."""
    bg = spec.background
    c1, c2 = _rgb(BACKGROUNDS, bg.colors[0]), _rgb(BACKGROUNDS, bg.colors[1])
    xs, ys = view.grid(cam)
    if bg.kind == "solid":
        img = np.broadcast_to(c1, (view.h, view.w, 3)).copy()
    elif bg.kind == "gradient":  # c1 at the top, c2 at the bottom
        k = np.clip(ys, 0.0, 1.0).astype(np.float32)[:, None, None]
        img = np.broadcast_to(k * c1 + (1 - k) * c2, (view.h, view.w, 3)).copy()
    elif bg.kind == "stripes":
        k = _band(xs, bg.scale, view.scale)[None, :, None]
        img = np.broadcast_to((1 - k) * c1 + k * c2, (view.h, view.w, 3)).copy()
    else:  # checker
        kx = _band(xs, bg.scale, view.scale)[None, :]
        ky = _band(ys, bg.scale, view.scale)[:, None]
        k = (kx * (1 - ky) + ky * (1 - kx))[..., None]
        img = (1 - k) * c1 + k * c2
    if bg.floor:
        k = np.clip(0.5 + (spec.floor_y - ys) * view.scale, 0.0, 1.0).astype(np.float32)[:, None, None]
        img = img * (1 - k) + _rgb(FLOOR_COLORS, bg.floor_color) * k
    return img.astype(np.float32)


def _polygon_sdf(u: np.ndarray, v: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Exact signed distance to a closed polygon (negative inside)."""
    u, v = np.broadcast_arrays(u, v)
    d = np.full(u.shape, np.inf)
    inside = np.zeros(u.shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(poly, np.roll(poly, -1, axis=0)):
        ex, ey = bx - ax, by - ay
        wx, wy = u - ax, v - ay
        h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        d = np.minimum(d, (wx - ex * h) ** 2 + (wy - ey * h) ** 2)
        # crossing-number test for the sign
        crosses = ((ay > v) != (by > v)) & (u < ex * (v - ay) / (ey if ey != 0 else 1e-30) + ax)
        inside ^= crosses
    return np.where(inside, -1.0, 1.0) * np.sqrt(d)


def coverage(shape: str, u: np.ndarray, v: np.ndarray, r: float, angle: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape of pixel radius ``r`` at offsets (u, v) px, y up."""
    if angle:
        c, s = np.cos(np.radians(-angle)), np.sin(np.radians(-angle))
        u, v = c * u - s * v, s * u + c * v
    if shape == "circle":
        sdf = np.hypot(u, v) - r
    elif shape == "ring":
        mid, half = r * (1 + RING_INNER) / 2, r * (1 - RING_INNER) / 2
        sdf = np.abs(np.hypot(u, v) - mid) - half
    else:
        sdf = _polygon_sdf(u / r, v / r, POLYGONS[shape]) * r
    return np.clip(0.5 - sdf, 0.0, 1.0).astype(np.float32)


def render_frames(
    spec: SceneSpec, width: int, height: int, times: np.ndarray, traj: Trajectory | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render float frames (T, H, W, 3) in [0, 1] at ``times`` and per-object pixel stats.

    Stats (arrays (N, T)): ``area`` in-frame coverage, ``visible`` visible coverage,
    ``peak`` max visible alpha, ``occluder`` index of the front object hiding most
    of it (-1 if none), ``bbox`` (N, T, 4) of pixels with coverage >= 0.5 (NaN if none).
    """
    traj = traj if traj is not None else simulate(spec, float(times.max()) if len(times) else 0.0)
    view = View(spec, width, height)
    pos, _ = traj.state(times)
    n, T = len(spec.objects), len(times)
    # front to back: higher depth first, later index first within a depth
    order = sorted(range(n), key=lambda i: (-spec.objects[i].depth, -i))
    colors = [_rgb(PALETTE, o.color) for o in spec.objects]
    frames = np.empty((T, height, width, 3), dtype=np.float32)
    stats = {k: np.zeros((n, T)) for k in ("area", "visible", "peak")}
    stats["occluder"] = np.full((n, T), -1)
    stats["bbox"] = np.full((n, T, 4), np.nan)
    static_bg = background(spec, view, 0.0) if spec.pan == 0 else None
    for k, t in enumerate(times):
        cam = spec.pan * float(t)
        px, py = view.to_px(pos[:, k, 0], pos[:, k, 1], cam)
        trans = np.ones((height, width), dtype=np.float32)
        acc = np.zeros((height, width, 3), dtype=np.float32)
        drawn: list[tuple[int, tuple[int, int, int, int], np.ndarray]] = []
        for i in order:
            o = spec.objects[i]
            r = o.radius * view.scale
            ext = 1.3 * r + 2  # every outline lies within 1.25 r
            x0, x1 = max(int(px[i] - ext), 0), min(int(px[i] + ext) + 1, width)
            y0, y1 = max(int(py[i] - ext), 0), min(int(py[i] + ext) + 1, height)
            if x0 >= x1 or y0 >= y1:
                continue
            u = (np.arange(x0, x1) + 0.5 - px[i])[None, :]
            v = (py[i] - (np.arange(y0, y1) + 0.5))[:, None]
            a = coverage(o.shape, u, v, r, o.angle)
            vis = a * trans[y0:y1, x0:x1]
            acc[y0:y1, x0:x1] += vis[..., None] * colors[i]
            trans[y0:y1, x0:x1] *= 1 - a
            stats["area"][i, k] = a.sum()
            stats["visible"][i, k] = vis.sum()
            stats["peak"][i, k] = vis.max()
            ys, xs = np.nonzero(a >= 0.5)
            if len(xs):
                stats["bbox"][i, k] = [x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1]
            if a.sum() >= IN_FRAME_AREA and vis.max() < HIDDEN_ALPHA:
                box = (y0, y1, x0, x1)
                best = max(drawn, key=lambda d: _overlap(d, box, a), default=None)
                stats["occluder"][i, k] = best[0] if best is not None else -1
            drawn.append((i, (y0, y1, x0, x1), a))
        bg = static_bg if static_bg is not None else background(spec, view, cam)
        frames[k] = acc + trans[..., None] * bg
    return frames, stats


def _overlap(d: tuple[int, tuple[int, int, int, int], np.ndarray], box: tuple[int, int, int, int], a: np.ndarray) -> float:
    _, (y0, y1, x0, x1), b = d
    Y0, Y1, X0, X1 = max(y0, box[0]), min(y1, box[1]), max(x0, box[2]), min(x1, box[3])
    if Y0 >= Y1 or X0 >= X1:
        return 0.0
    return float((b[Y0 - y0 : Y1 - y0, X0 - x0 : X1 - x0] * a[Y0 - box[0] : Y1 - box[0], X0 - box[2] : X1 - box[2]]).sum())


def _side(spec: SceneSpec, x: float, y: float, cam: float) -> str:
    """Which frame edge a point outside (or near the border of) the view is past."""
    dx = min(x - cam, cam + spec.width - x)
    dy = min(y, 1.0 - y)
    if dx < dy:
        return "left" if x - cam < cam + spec.width - x else "right"
    return "bottom" if y < 0.5 else "top"


def render_scene(
    spec: SceneSpec, width: int, height: int, fps: float, frames: int
) -> tuple[np.ndarray, GroundTruth]:
    """Render ``frames`` frames at ``fps``: uint8 (T, H, W, 3) and the ground truth."""
    if width < 1 or height < 1 or frames < 1 or fps <= 0:
        raise ValueError(f"bad render size {width}x{height}, frames {frames}, fps {fps}")
    times = np.arange(frames) / float(fps)
    traj = simulate(spec, float(times[-1]))
    img, st = render_frames(spec, width, height, times, traj)
    pos, vel = traj.state(times)
    n = len(spec.objects)
    full = np.array([shape_area(o.shape, o.radius) for o in spec.objects]) * View(spec, width, height).scale ** 2
    out = st["area"] < IN_FRAME_AREA
    hidden = ~out & (st["peak"] < HIDDEN_ALPHA)
    reason = [[("out_of_frame" if out[i, k] else "occluded" if hidden[i, k] else None) for k in range(frames)] for i in range(n)]
    events = [e for e in traj.events]
    for e in events:
        e.frame = int(np.ceil(e.t * fps - 1e-9))
    for i in range(n):
        for k in range(1, frames):
            was, now = reason[i][k - 1], reason[i][k]
            if was == now:
                continue
            t = float(times[k])
            if was == "occluded":
                events.append(Event(t, "occlusion_end", [i, int(st["occluder"][i, k - 1])], k))
            if now == "occluded":
                events.append(Event(t, "occlusion_start", [i, int(st["occluder"][i, k])], k))
            if now == "out_of_frame":
                events.append(Event(t, "leave_frame", [i], k, _side(spec, *pos[i, k], spec.pan * t)))
            if was == "out_of_frame":
                events.append(Event(t, "enter_frame", [i], k, _side(spec, *pos[i, k - 1], spec.pan * times[k - 1])))
    events.sort(key=lambda e: (e.t, e.type, e.objects))
    bbox = [[None if np.isnan(b[0]) else [float(x) for x in b] for b in st["bbox"][i]] for i in range(n)]
    gt = GroundTruth(
        fps=float(fps),
        frames=frames,
        width=width,
        height=height,
        position=pos.round(6).tolist(),
        velocity=vel.round(6).tolist(),
        visible=[[r is None for r in row] for row in reason],
        reason=reason,
        visible_fraction=np.minimum(st["visible"] / full[:, None], 1.0).round(4).tolist(),
        bbox=bbox,
        events=events,
    )
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), gt
