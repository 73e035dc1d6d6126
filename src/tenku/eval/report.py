"""Writing a run: metrics.json, a Markdown report with per-metric tables, plots of
generated against true trajectories (matplotlib) and contact sheets of the worst cases."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from tenku.eval.evaluate import RATES
from tenku.eval.run import item_score, load_video, reference_render
from tenku.eval.suites import SUITE_VERSION
from tenku.io import save_contact_sheet

VALUES = ("fit_residual", "gravity_fit", "ade", "fde", "ade_size", "background_mae", "extra_tracks", "boundary_ratio")
DOCS = "docs/eval.md"


def _clean(x: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _item_record(r: dict[str, Any]) -> dict[str, Any]:
    it = r["item"]
    rec = {"id": it.id, "sample": it.sample, "prompt": it.prompt, "seed": it.seed, "gen_seed": it.gen_seed,
           "size": [it.width, it.height], "frames": it.frames, "fps": it.fps, "mode": it.mode, "tags": it.tags, "score": item_score(r), "rates": r["rates"],
           "values": r["values"],
           "objects": [{k: v for k, v in o.items() if k not in ("xy", "frames")} for o in r["objects"]]}
    for k in ("mode_check", "drift", "windows"):
        if k in r:
            rec[k] = r[k]
    return rec


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _pm(summary: dict[str, Any], metric: str) -> str:
    """A rate's suite mean with its standard error (when there is one)."""
    v, se = summary["rates"].get(metric), summary.get("stderr", {}).get(metric)
    if v is None or se is None or not math.isfinite(se):
        return _fmt(v)
    return f"{_fmt(v)} ± {_fmt(se)}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def smoothness_line(sm: dict[str, Any]) -> str:
    """One sentence on a suite's temporal smoothness (``summarize``'s ``smoothness``)."""
    still = f"; {sm['still']} still, no ratio" if sm["still"] else ""
    return (f"Temporal smoothness: the change across latent-frame boundaries is {_fmt(sm['ratio'], 2)} ± "
            f"{_fmt(sm['stderr'], 2)} times the change inside a latent frame ({sm['videos']} videos{still}); "
            f"{_fmt(sm['within'], 3)} of the videos within {sm['limit']:g}x (the target).")


def plot_trajectories(result: dict[str, Any], path: Path) -> Path:
    """Generated (tracked, dots) against true (simulator, line) trajectories of one item:
    the path in the world box and the height over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tenku.eval.evaluate import reference

    item = result["item"]
    _, gt = reference_render(item)
    ref, vis = reference(item.spec, gt)
    fig, (ax, ay) = plt.subplots(1, 2, figsize=(10, 4))
    for i, o in enumerate(result["objects"]):
        color = tuple(c / 255 for c in _rgb(o["color"]))
        t = np.arange(item.frames) / item.fps
        ax.plot(ref[i, :, 0], ref[i, :, 1], "-", color=color, lw=1.5, alpha=0.6)
        ay.plot(t, ref[i, :, 1], "-", color=color, lw=1.5, alpha=0.6, label=f"{o['color']} {o['shape']} (true)")
        if o.get("xy"):
            xy = np.asarray(o["xy"])
            ax.plot(xy[:, 0], xy[:, 1], ".", color=color, ms=5, mec="black", mew=0.3)
            ay.plot(np.asarray(o["frames"]) / item.fps, xy[:, 1], ".", color=color, ms=5, mec="black", mew=0.3)
    ax.add_patch(plt.Rectangle((0, 0), item.spec.width, 1, fill=False, ls=":", color="grey"))
    ax.set_aspect("equal")
    ax.set_xlabel("x (world units)")
    ax.set_ylabel("y")
    ax.set_title("path: line true, dots tracked")
    lo, hi = ay.get_ylim()
    if hi - lo < 0.2:  # sub-pixel noise should not look like motion
        mid = (hi + lo) / 2
        ay.set_ylim(mid - 0.1, mid + 0.1)
    ay.set_xlabel("t (s)")
    ay.set_ylabel("y (world units)")
    ay.set_title("height over time")
    ay.legend(fontsize=7, loc="best")
    fig.suptitle(f"{item.label}: {item.prompt}"[:110], fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _rgb(name: str) -> tuple[int, int, int]:
    from tenku.world.spec import PALETTE

    return PALETTE.get(name, (128, 128, 128))


def contact_sheet_of(video: np.ndarray, path: Path, max_frames: int = 12) -> Path:
    """Every k-th frame (at most ``max_frames``) of a video as one PNG grid."""
    step = max(1, math.ceil(len(video) / max_frames))
    return save_contact_sheet(path, video[::step], cols=min(6, math.ceil(len(video) / step)))


def write_report(out: str | Path, runs: dict[str, dict[str, Any]], generator: str, seconds: float,
                 worst: int = 5) -> dict[str, Any]:
    """Write ``out/metrics.json``, ``out/report.md``, ``out/plots/`` and ``out/sheets/`` for the
    suites in ``runs`` (suite name -> ``run_suite`` output). Returns the metrics document."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"format": "tenku-eval", "suite_version": SUITE_VERSION, "generator": generator,
                           "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 1), "suites": {}}
    md = [f"# tenku eval: {generator}\n",
          f"Suite version {SUITE_VERSION}, {doc['created']}, {sum(len(r['results']) for r in runs.values())} videos "
          f"in {seconds:.0f} s. Metric definitions and thresholds: `{DOCS}`. Rates are in [0, 1], higher is better; "
          "values are in world units (the world is 1 unit tall). ± is the standard error of the mean "
          "over items (an item's samples averaged first).\n"]
    names = list(runs)
    rates = [m for m in list(RATES) + ["mode_check", "temporal_smoothness"]
             if any(m in r["summary"]["rates"] for r in runs.values())]
    md.append("## Summary\n")
    rows = [[m] + [_pm(runs[n]["summary"], m) for n in names] for m in rates]
    rows += [[v] + [_fmt(runs[n]["summary"]["values"].get(v), 4) for n in names] for v in VALUES
             if any(v in runs[n]["summary"]["values"] for n in names)]
    rows.append(["items"] + [str(runs[n]["summary"]["items"]) for n in names])
    rows.append(["videos (samples of the items)"] + [str(runs[n]["summary"]["videos"]) for n in names])
    md.append(_table(["metric"] + names, rows))
    for name in names:
        run = runs[name]
        s = run["summary"]
        md.append(f"## Suite `{name}`\n")
        tags = list(s["by_tag"])
        if tags:
            cols = [m for m in rates if m in s["rates"]]
            md.append(_table(["tag", "items"] + cols,
                             [[t, str(s["by_tag"][t]["items"])] + [_fmt(s["by_tag"][t].get(m)) for m in cols] for t in tags]))
        f = s.get("objects") or {}
        if f.get("objects"):
            md.append(f"\nWhere object adherence is lost: of {f['objects']} prompted objects (in {s['videos']} videos), "
                      f"{f['missing']} have no track of their colour, {f['wrong_shape']} the wrong shape, "
                      f"{f['wrong_size']} the wrong size, and {f['right']} every stated attribute right; "
                      f"{f['extra_tracks']} more tracks were seen than objects prompted, and adherence divides by "
                      "them too.\n")
        if s.get("smoothness"):
            md.append(f"\n{smoothness_line(s['smoothness'])}\n")
        conf = s.get("shapes") or {}
        if conf:
            drawn = sorted({d for row in conf.values() for d in row}, key=lambda d: (d == "none", d))
            md.append("\nShapes drawn (rows: the prompt's shape; columns: the shape of the object's track, "
                      "`none`: no track of its colour):\n\n")
            md.append(_table(["prompted", *drawn], [[p, *[str(row.get(d, 0)) for d in drawn]] for p, row in conf.items()]))
        modes = [r for r in run["results"] if "mode_check" in r]
        if modes:
            keys = [k for k in modes[0]["mode_check"] if k != "ok"]
            md.append("\nMode checks (ratios pass at <= 2, PSNR at >= 25 dB):\n\n")
            md.append(_table(["item", "mode", *keys, "pass"],
                             [[r["item"].label, r["item"].mode, *[_fmt(r["mode_check"].get(k), 2) for k in keys],
                               "yes" if r["mode_check"]["ok"] else "**no**"] for r in modes]))
        longs = [r for r in run["results"] if "windows" in r]
        if longs:
            md.append("\nPer 4-second window (mean over the long videos):\n\n")
            nw = min(len(r["windows"]) for r in longs)
            md.append(_table(["window start (s)"] + list(RATES),
                             [[_fmt(longs[0]["windows"][w]["start"], 0)] +
                              [_fmt(float(np.nanmean([r["windows"][w]["rates"][m] for r in longs]))) for m in RATES]
                              for w in range(nw)]))
            md.append("\nDrift (last window minus first): " + ", ".join(
                f"{m} {_fmt(s['drift'][m])}" for m in RATES) + "\n")
        ranked = sorted(run["results"], key=item_score)[:worst]
        md.append(f"\nWorst {len(ranked)} of `{name}`:\n")
        for r in ranked:
            it = r["item"]
            low = ", ".join(f"{m} {_fmt(v, 2)}" for m, v in r["rates"].items() if v is not None and v < 0.98)
            md.append(f"\n- `{it.label}` ({it.width}x{it.height}) \"{it.prompt}\": score {_fmt(item_score(r))}"
                      f"{'; ' + low if low else ''}")
            plot_trajectories(r, out / "plots" / f"{it.label}.png")
            md.append(f"\n  ![trajectories](plots/{it.label}.png)")
            video = load_video(r)
            if video is not None:
                contact_sheet_of(video, out / "sheets" / f"{it.label}.png")
                md.append(f"\n  ![frames](sheets/{it.label}.png)")
        md.append("\n")
        doc["suites"][name] = {"summary": s, "cached": run.get("cached", 0),
                               "items": [_item_record(r) for r in run["results"]]}
    doc = _clean(doc)
    (out / "metrics.json").write_text(json.dumps(doc, indent=1))
    (out / "report.md").write_text("\n".join(md))
    return doc
