"""Is model B better than model A? Paired differences of two `tenku eval` runs.

    python bench/compare_evals.py runs/eval-bundle runs/eval-candidate [--suite world]

Both runs must have scored the same items (the same suite, limit and height). Per item,
each run's samples (`tenku eval --samples`) are averaged first; the difference B - A per
item is then averaged over the items present in both, with its standard error over items.
Pairing removes what the items share (some scenes are hard for every model), so the error
of a difference is smaller than either run's own error bar. Besides the rates it compares
where object adherence is lost: the share of prompted objects whose track has the prompted
shape ("shapes right") or every stated attribute ("objects right"), and the significant tracks
beyond the prompted objects ("extra tracks", fewer is better), which adherence also divides by.
Temporal smoothness pairs the share of videos within 1.5x ("temporal_smoothness") and the ratio of
the change across latent-frame boundaries to the change inside ("boundary_ratio", lower is better,
1 is smooth; still videos have none and leave their item out).
A difference more than twice its standard error is marked with `*`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

RATES = ("object_adherence", "motion_adherence", "count_consistency", "identity_stability", "physics_fidelity",
         "temporal_smoothness")
EXTRA = ("shapes_right", "objects_right", "extra_tracks", "boundary_ratio")  # fewer extra tracks, lower ratio: better


def shapes_right(rec: dict) -> float:
    """The share of an item's prompted objects tracked in the prompted shape (NaN: none)."""
    objs = rec.get("objects") or []
    return float(np.mean([o.get("track_shape") == o["shape"] for o in objs])) if objs else math.nan


def objects_right(rec: dict) -> float:
    """The share of an item's prompted objects tracked with every stated attribute (NaN: none,
    or a run scored before the attributes were recorded)."""
    objs = rec.get("objects") or []
    if not objs or any(o.get("matched") and "attributes" not in o for o in objs):
        return math.nan
    return float(np.mean([bool(o.get("matched")) and all(o["attributes"].values()) for o in objs]))


def per_item(path: Path, suite: str) -> dict[str, dict[str, float]]:
    """Item id -> metric -> the mean over the item's samples (NaNs skipped)."""
    doc = json.loads((path / "metrics.json").read_text())
    if suite not in doc.get("suites", {}):
        raise SystemExit(f"{path}: no suite {suite!r} (it has {', '.join(doc.get('suites', {})) or 'none'})")
    acc: dict[str, dict[str, list[float]]] = {}
    for rec in doc["suites"][suite]["items"]:
        vals = {m: rec["rates"].get(m) for m in RATES}
        vals["shapes_right"] = shapes_right(rec)
        vals["objects_right"] = objects_right(rec)
        vals["extra_tracks"] = (rec.get("values") or {}).get("extra_tracks")
        vals["boundary_ratio"] = (rec.get("values") or {}).get("boundary_ratio")
        d = acc.setdefault(rec["id"], {})
        for m, v in vals.items():
            if v is not None and not math.isnan(v):
                d.setdefault(m, []).append(float(v))
    return {i: {m: float(np.mean(v)) for m, v in d.items()} for i, d in acc.items()}


def compare(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> list[tuple[str, int, float, float, float, float]]:
    """Per metric: (metric, items, mean A, mean B, mean of B - A, its standard error)."""
    rows = []
    for m in RATES + EXTRA:
        ids = [i for i in a if i in b and m in a[i] and m in b[i]]
        xa = np.array([a[i][m] for i in ids])
        xb = np.array([b[i][m] for i in ids])
        d = xb - xa
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
        rows.append((m, len(ids), float(xa.mean()) if len(ids) else math.nan,
                     float(xb.mean()) if len(ids) else math.nan, float(d.mean()) if len(ids) else math.nan, se))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="the baseline's eval folder")
    ap.add_argument("b", type=Path, help="the candidate's eval folder")
    ap.add_argument("--suite", default="world")
    args = ap.parse_args(argv)
    for p in (args.a, args.b):
        if not (p / "metrics.json").is_file():
            print(f"compare_evals: {p} holds no metrics.json (run tenku eval --out {p} first)", file=sys.stderr)
            return 2
    a, b = per_item(args.a, args.suite), per_item(args.b, args.suite)
    common = len(set(a) & set(b))
    if common < 2:
        print(f"compare_evals: the runs share {common} items of suite {args.suite!r}; need 2 or more", file=sys.stderr)
        return 2
    print(f"{args.suite}: {common} items in both (A {len(a)}, B {len(b)})")
    print(f"{'metric':20s} {'items':>5s} {'A':>7s} {'B':>7s} {'B - A':>8s} {'+-se':>7s}")
    for m, n, ma, mb, d, se in compare(a, b):
        if n == 0:  # a metric neither run has (an older run without temporal smoothness)
            continue
        star = " *" if math.isfinite(se) and abs(d) > 2 * se else ""
        print(f"{m:20s} {n:5d} {ma:7.3f} {mb:7.3f} {d:+8.3f} {se:7.3f}{star}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
