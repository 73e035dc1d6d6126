"""All metrics of one clip: frames in, rates and measurements out (docs/eval.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tenku.eval.checks import background_stability, temporal_flickering
from tenku.eval.metrics import (Context, ObjectTruth, attribute_match, count_consistency, identity, match_objects,
                                near_other, near_wall, object_adherence, presence_events, samples, significant, step)
from tenku.eval.motion import fit_law, motion_ok, physics_ok, returns, trajectory_error
from tenku.eval.segment import Detection, color_labels, detect
from tenku.eval.tracking import PixelMap, centroid_offset, link
from tenku.world.spec import GroundTruth, SceneSpec

RATES = ("object_adherence", "motion_adherence", "count_consistency", "permanence", "identity_stability",
         "physics_fidelity", "temporal_flickering", "background_stability")


@dataclass
class Clip:
    """A video to score and what it should show.

    ``spec`` is the intended scene (its width, camera pan and floor give the
    pixel geometry; its objects the expected count); ``hints`` what the prompt
    stated about each object; ``ref``/``ref_visible`` the simulator's trajectory
    of each object's area centroid, world units, ``(N, T, 2)`` / ``(N, T)``, when
    known. ``frame0`` is where the clip starts in a longer video.
    """

    frames: np.ndarray
    spec: SceneSpec
    hints: list[dict[str, str]]
    fps: float
    ref: np.ndarray | None = None
    ref_visible: np.ndarray | None = None
    frame0: int = 0

    def window(self, start: int, stop: int) -> "Clip":
        """The frames ``[start, stop)`` as a clip of their own."""
        sl = slice(start, stop)
        return Clip(self.frames[sl], self.spec, self.hints, self.fps,
                    None if self.ref is None else self.ref[:, sl],
                    None if self.ref_visible is None else self.ref_visible[:, sl], self.frame0 + start)


def reference(spec: SceneSpec, gt: GroundTruth) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's area-centroid trajectories ``(N, T, 2)`` and full-visibility flags
    ``(N, T)`` (visible fraction >= 0.999) from a render's ground truth."""
    pos = np.asarray(gt.position, dtype=float)
    off = np.array([centroid_offset(o.shape, o.radius, o.angle) for o in spec.objects]).reshape(-1, 1, 2)
    vis = np.asarray(gt.visible_fraction, dtype=float) >= 0.999
    return pos + off, vis


def object_mask(dets: list[list[Detection]], shape: tuple[int, int, int]) -> np.ndarray:
    """(T, H, W) bool: the boxes of every detection (what background stability leaves out)."""
    m = np.zeros(shape, dtype=bool)
    for t, ds in enumerate(dets):
        for d in ds:
            x0, y0, x1, y1 = d.bbox
            m[t, y0:y1, x0:x1] = True
    return m


def tolerances(pm: PixelMap) -> tuple[float, float]:
    """(break tolerance, fit tolerance) in world units: what tracking noise allows at this size."""
    return max(0.008, 1.5 / pm.scale), max(0.004, 0.75 / pm.scale)


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return float(np.mean(xs)) if xs else math.nan


def evaluate_clip(clip: Clip, details: bool = True) -> dict[str, Any]:
    """Track the clip and compute every metric. Returns ``{"rates", "values", "objects"}``:
    rates in [0, 1] (NaN where a metric does not apply), values in world units."""
    frames = np.asarray(clip.frames)
    T, H, W = frames.shape[:3]
    labels = color_labels(frames)
    pm = PixelMap(clip.spec, W, H, clip.fps)
    dets = detect(frames, labels, pm.scale)
    tracks = link(dets, H)
    ctx = Context(pm, dets, W, H, clip.spec.width, clip.spec.floor_y, clip.frame0)
    tol_break, tol_fit = tolerances(pm)
    objs = [ObjectTruth(h, o, None if clip.ref is None else clip.ref[i],
                        None if clip.ref_visible is None else clip.ref_visible[i])
            for i, (h, o) in enumerate(zip(clip.hints, clip.spec.objects))]
    matched = match_objects(objs, tracks, pm, T)
    events = {tr.id: presence_events(tr, ctx) for tr in tracks}
    rows: list[dict[str, Any]] = []
    for o, tr in zip(objs, matched):
        motion = o.hint.get("motion")
        row: dict[str, Any] = {"color": o.spec.color, "shape": o.spec.shape, "matched": tr is not None,
                               "motion": motion, "motion_ok": False if motion else None, "physics_ok": False,
                               "permanent": False, "identity": 0.0, "residual": math.nan, "g": None,
                               "ade": math.nan, "fde": math.nan, "ade_size": math.nan}
        if tr is not None:
            s = samples(tr, pm, clip.frame0)
            gravity = (motion or o.spec.motion) in ("fall", "throw")

            def explained(fa: int, fb: int, tr=tr) -> bool:  # a wall, the floor line, or another object
                near = [tr.dets[f] for f in range(fa - 1, fb + 2) if f in tr.dets]  # breaks place events +-1 frame
                return any(near_wall(d, ctx, step(tr, d.frame)) or d.contact
                           or near_other(d, dets[d.frame], step(tr, d.frame)) for d in near)

            fit = fit_law(s, gravity, tol_break, explained)
            ev = events[tr.id]
            hidden = {e.frame for e in ev if e.kind == "vanish" and e.cause == "occlusion"}
            fr = tr.frames
            radius = math.sqrt(tr.median_area() / math.pi) / pm.scale
            rets = returns(s, [(a, b) for a, b in zip(fr, fr[1:]) if b - a >= 2 and a in hidden], gravity, tol_break,
                           (clip.spec.width, clip.spec.floor_y, 1.25 * radius))
            ade, fde, n_cmp = trajectory_error(s, o)
            ident = identity(tr, pm)
            row.update(
                track=tr.id, seen=len(fr), track_color=tr.color, track_shape=tr.shape,
                attributes=attribute_match(o, tr, pm),
                motion_ok=motion_ok(s, motion, o.hint.get("direction"), tol_break) if motion else None,
                physics_ok=physics_ok(fit, tol_fit) if fit.n >= 3 else None, law="gravity" if gravity else "inertial",
                residual=fit.residual, g=fit.g, breaks=len(fit.segments) - 1, unexplained_breaks=fit.unexplained_breaks,
                permanent=all(e.cause for e in ev) and all(r.ok for r in rets),
                events=[(e.frame, e.kind, e.cause) for e in ev],
                returns=[(r.hidden_from, r.seen_at, r.error, r.tolerance) for r in rets],
                identity=(ident or {}).get("score"), ade=ade, fde=fde, compared=n_cmp,
                ade_size=ade / (2 * o.spec.radius))  # in object sizes (diameters): the "< 1/4 size"
            if details:
                row["xy"] = s.xy.round(5).tolist()
                row["frames"] = (s.frames + clip.frame0).tolist()
        rows.append(row)
    matched_ids = {tr.id for tr in matched if tr is not None}
    strays = [tr for tr in tracks if tr.id not in matched_ids and any(e.cause is None for e in events[tr.id])]
    steady, bg_mae = background_stability(frames, object_mask(dets, (T, H, W)))
    n = len(objs)
    motions = [r["motion_ok"] for r in rows if r["motion_ok"] is not None]
    rates = {
        "object_adherence": object_adherence(objs, matched, tracks, pm, T),
        "motion_adherence": float(np.mean(motions)) if motions else math.nan,
        "count_consistency": count_consistency(tracks, events, n, T),
        "permanence": sum(r["permanent"] for r in rows) / (n + len(strays)) if n + len(strays) else 1.0,
        "identity_stability": _mean([r["identity"] for r in rows]),
        "physics_fidelity": _mean([r["physics_ok"] for r in rows]),
        "temporal_flickering": temporal_flickering(frames),
        "background_stability": steady,
    }
    values = {
        "fit_residual": _mean([r["residual"] for r in rows if r["physics_ok"] is not None]),
        "gravity_fit": _mean([r["g"] for r in rows if r["g"] is not None]),
        "ade": _mean([r["ade"] for r in rows]),
        "fde": _mean([r["fde"] for r in rows]),
        "ade_size": _mean([r["ade_size"] for r in rows]),
        "background_mae": bg_mae,
        "tracks": len(tracks),
        "extra_tracks": max(0, len(significant(tracks, T)) - n),  # what object adherence divides by beyond n
        "returns": sum(len(r.get("returns", [])) for r in rows),
        "returns_ok": sum(sum(1 for x in r.get("returns", []) if x[2] <= x[3]) for r in rows),
    }
    return {"rates": rates, "values": values, "objects": rows}
