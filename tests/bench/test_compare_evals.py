"""bench/compare_evals.py: paired differences of two eval runs, samples averaged per item."""

import json
import math


def _run(tmp_path, name, items):
    """An eval folder whose world suite holds ``items``: (id, object_adherence, [(shape, track_shape)])."""
    recs = [{"id": i, "rates": {"object_adherence": v, "motion_adherence": None},
             "objects": [{"shape": s, "track_shape": t} for s, t in objs]} for i, v, objs in items]
    folder = tmp_path / name
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"suites": {"world": {"items": recs}}}))
    return folder


def test_pairs_items_averages_samples_and_gives_the_error_of_the_difference(bench_module, tmp_path):
    mod = bench_module("compare_evals")
    a = mod.per_item(_run(tmp_path, "a", [("w0", 0.0, [("star", "star")]), ("w1", 0.5, [("ring", None)]),
                                         ("w2", 1.0, [])]), "world")
    b = mod.per_item(_run(tmp_path, "b", [("w0", 1.0, [("star", "star")]), ("w0", 0.0, [("star", "circle")]),
                                         ("w1", 1.0, [("ring", "ring")])]), "world")  # w0 twice: 2 samples
    assert a["w0"]["object_adherence"] == 0.0 and b["w0"]["object_adherence"] == 0.5
    assert "motion_adherence" not in a["w0"]  # None is not a score
    rows = {r[0]: r[1:] for r in mod.compare(a, b)}
    n, ma, mb, d, se = rows["object_adherence"]
    assert n == 2 and math.isclose(ma, 0.25) and math.isclose(mb, 0.75) and math.isclose(d, 0.5)
    assert math.isclose(se, 0.0)  # both items differ by exactly 0.5
    n, ma, mb, d, se = rows["shapes_right"]  # w0: 1 -> 0.5, w1: 0 -> 1 (w2 has no objects)
    assert n == 2 and math.isclose(d, 0.25) and math.isclose(se, 0.75)


def test_bad_folders_are_one_line_errors(bench_module, tmp_path, capsys):
    mod = bench_module("compare_evals")
    good = _run(tmp_path, "a", [("w0", 0.0, []), ("w1", 1.0, [])])
    assert mod.main([str(good), str(tmp_path / "missing")]) == 2
    assert "holds no metrics.json" in capsys.readouterr().err
    other = _run(tmp_path, "b", [("x0", 0.0, [])])
    assert mod.main([str(good), str(other)]) == 2
    assert "share 0 items" in capsys.readouterr().err
    assert mod.main([str(good), str(good)]) == 0
    assert "object_adherence" in capsys.readouterr().out


def test_objects_right_and_extra_tracks_are_compared(bench_module, tmp_path):
    mod = bench_module("compare_evals")

    def run(name, recs):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"suites": {"world": {"items": recs}}}))
        return mod.per_item(folder, "world")

    right = {"shape": "star", "matched": True, "attributes": {"color": True, "shape": True}}
    small = {"shape": "star", "matched": True, "attributes": {"color": True, "shape": True, "size": False}}
    missing = {"shape": "ring", "matched": False}
    a = run("a", [{"id": "w0", "rates": {}, "values": {"extra_tracks": 3}, "objects": [right, missing]},
                  {"id": "w1", "rates": {}, "values": {"extra_tracks": 1}, "objects": [small]}])
    b = run("b", [{"id": "w0", "rates": {}, "values": {"extra_tracks": 0}, "objects": [right, right]},
                  {"id": "w1", "rates": {}, "values": {"extra_tracks": 1}, "objects": [right]}])
    old = run("old", [{"id": "w0", "rates": {}, "objects": [{"shape": "star", "matched": True, "track_shape": "star"}]}])
    assert a["w0"]["objects_right"] == 0.5 and a["w1"]["objects_right"] == 0.0
    assert "objects_right" not in old["w0"] and "extra_tracks" not in old["w0"]  # not recorded then: not compared
    rows = {r[0]: r[1:] for r in mod.compare(a, b)}
    assert math.isclose(rows["objects_right"][3], 0.75) and math.isclose(rows["extra_tracks"][3], -1.5)


def test_temporal_smoothness_is_paired_and_still_videos_leave_their_item_out(bench_module, tmp_path):
    mod = bench_module("compare_evals")

    def run(name, ratios):
        recs = [{"id": f"w{i}", "rates": {"temporal_smoothness": None if r is None else float(r <= 1.5)},
                 "values": {"boundary_ratio": r}, "objects": []} for i, r in enumerate(ratios)]
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"suites": {"world": {"items": recs}}}))
        return mod.per_item(folder, "world")

    rows = {r[0]: r[1:] for r in mod.compare(run("a", [4.0, 3.0, None]), run("b", [1.2, 2.0, 1.0]))}
    n, ma, mb, d, _ = rows["boundary_ratio"]
    assert n == 2 and math.isclose(ma, 3.5) and math.isclose(mb, 1.6) and math.isclose(d, -1.9)
    assert rows["temporal_smoothness"][:2] == (2, 0.0) and math.isclose(rows["temporal_smoothness"][3], 0.5)
