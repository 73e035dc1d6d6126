"""`tenku eval`: the calibration run writes metrics and a report, resumes, and refuses bad input."""

import json

from tenku.cli import main


def test_reference_run_writes_metrics_and_report_and_resumes(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["eval", "--suite", "world", "--reference", "--out", str(out), "--limit", "3", "--quiet"]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    world = doc["suites"]["world"]
    assert doc["generator"] == "reference" and world["summary"]["items"] == 3 and world["cached"] == 0
    assert all(v >= 0.98 for v in world["summary"]["rates"].values())
    assert "smoothness" not in world["summary"]  # the simulator has no latent frames
    assert [i["id"] for i in world["items"]] == ["world-000", "world-001", "world-002"]
    report = (out / "report.md").read_text()
    assert "| object_adherence |" in report and "plots/world-000.png" in report
    assert "of 3 prompted objects (in 3 videos), 0 have no track of their colour" in report
    assert "Shapes drawn" in report and "| prompted |" in report
    assert len(list((out / "plots").glob("*.png"))) == 3 and len(list((out / "sheets").glob("*.png"))) == 3
    assert len(list((out / "videos").glob("*.npz"))) == 3
    capsys.readouterr()
    assert main(["eval", "--suite", "world", "--reference", "--out", str(out), "--limit", "3", "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["suites"]["world"]["cached"] == 3
    printed = capsys.readouterr().out
    assert "3 cached" in printed and "prompted objects 3: right 3," in printed and "extra tracks 0" in printed


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    cases = [
        ["eval", "--suite", "nope", "--reference", "--out", str(tmp_path / "a")],
        ["eval", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "b")],
        ["eval", "--reference", "--height", "72", "--out", str(tmp_path / "c")],
        ["eval", "--autoencoder", str(tmp_path / "missing"), "--out", str(tmp_path / "e")],
        ["eval", "--autoencoder", str(tmp_path), "--steps", "2", "--out", str(tmp_path / "f")],
        ["eval", "--reference", "--expand", "--out", str(tmp_path / "g")],
        ["eval", "--reference", "--samples", "3", "--out", str(tmp_path / "h")],
        ["eval", "--reference", "--guidance", "3", "--out", str(tmp_path / "i")],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("tenku eval: error:") and "\n" not in err and "Traceback" not in err
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "eval.json").write_text(json.dumps({"format": "tenku-eval", "suite_version": 2,
                                                          "generator": "model:/x:steps=None"}))
    assert main(["eval", "--reference", "--out", str(tmp_path / "d"), "--limit", "1", "--quiet"]) == 2
    assert "choose another --out" in capsys.readouterr().err


def test_model_run_through_the_pipeline(tiny_pipeline, tmp_path, capsys):
    out = tmp_path / "m"
    rc = main(["eval", "--model", str(tiny_pipeline), "--suite", "world", "--out", str(out), "--limit", "1",
               "--height", "64", "--steps", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["generator"].startswith("model:") and doc["suites"]["world"]["summary"]["items"] == 1
    rates = doc["suites"]["world"]["summary"]["rates"]
    assert set(rates) >= {"object_adherence", "physics_fidelity", "temporal_flickering", "temporal_smoothness"}
    sm, values = doc["suites"]["world"]["summary"]["smoothness"], doc["suites"]["world"]["items"][0]["values"]
    assert sm["limit"] == 1.5 and sm["videos"] == 1 and sm["ratio"] == values["boundary_ratio"] > 0
    assert rates["temporal_smoothness"] == float(values["boundary_ratio"] <= 1.5)
    assert "Temporal smoothness: the change across latent-frame boundaries is" in capsys.readouterr().out
    assert "Temporal smoothness:" in (out / "report.md").read_text()


def test_samples_draw_other_seeds_of_the_same_scenes(tiny_pipeline, tmp_path, capsys):
    """--samples 2: each item twice, the second with another generation seed (so another video)
    but the same scene and prompt; the summary counts items and videos apart, and the sample-0
    videos are the ones a plain run makes (its cache is reused)."""
    import numpy as np

    out = tmp_path / "s"
    argv = ["eval", "--model", str(tiny_pipeline), "--suite", "world", "--out", str(out), "--limit", "2",
            "--height", "64", "--steps", "1", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    assert main(argv + ["--samples", "2"]) == 0, capsys.readouterr().err
    assert "2 items, 4 videos, 2 cached" in capsys.readouterr().out
    doc = json.loads((out / "metrics.json").read_text())["suites"]["world"]
    assert doc["summary"]["items"] == 2 and doc["summary"]["videos"] == 4
    recs = doc["items"]
    assert [(r["id"], r["sample"]) for r in recs] == [("world-000", 0), ("world-001", 0), ("world-000", 1), ("world-001", 1)]
    assert len({r["gen_seed"] for r in recs} | {r["seed"] for r in recs}) == 6  # no video drawn with a scene's seed
    assert recs[0]["seed"] == recs[2]["seed"] and recs[0]["prompt"] == recs[2]["prompt"]
    vids = sorted((out / "videos").glob("world-000-*.npz"))
    assert len(vids) == 2
    a, b = (np.load(v)["frames"] for v in vids)
    assert not np.array_equal(a, b)
    assert set(doc["summary"]["stderr"]) == set(doc["summary"]["rates"])


def test_guidance_reaches_the_pipeline_and_names_the_run(tiny_pipeline, tmp_path, capsys):
    import numpy as np

    from tenku.eval.run import PipelineGenerator
    from tenku.eval.suites import build_suite

    item = build_suite("world", 1, 64)[0]
    gen = PipelineGenerator(tiny_pipeline, steps=2)
    default = gen.pipe.cfg.guidance  # 3 in the tiny pipeline
    got = {g: PipelineGenerator(tiny_pipeline, steps=2, guidance=g)(item) for g in (1.0, default, 9.0)}
    assert np.array_equal(gen(item), got[default]) and not np.array_equal(got[1.0], got[9.0])
    out = tmp_path / "g"
    argv = ["eval", "--model", str(tiny_pipeline), "--suite", "world", "--out", str(out), "--limit", "1",
            "--height", "64", "--steps", "1", "--quiet", "--guidance", "2.5"]
    assert main(argv) == 0, capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["generator"].endswith(":guidance=2.5")
    assert main(argv[:-1] + ["3"]) == 2  # another guidance: another run, not this folder
    assert "choose another --out" in capsys.readouterr().err


def test_stderr_averages_an_items_samples_first():
    import math

    from tenku.eval.run import stderr
    from tenku.eval.suites import build_suite

    a, b = build_suite("world", 2, 64)
    res = [{"item": a, "rates": {"m": 1.0}}, {"item": a, "rates": {"m": 0.0}},  # item a: mean 0.5
           {"item": b, "rates": {"m": 1.0}}, {"item": b, "rates": {"m": float("nan")}}]  # item b: 1.0 (NaN skipped)
    assert math.isclose(stderr(res, "m"), 0.25)  # std([0.5, 1.0], ddof=1) / sqrt(2)
    assert math.isnan(stderr(res[:2], "m"))  # one item: no error bar


def test_expand_gives_the_model_the_detailed_caption_and_judges_the_prompt(tiny_pipeline, tmp_path, capsys):
    from tenku.eval.run import PipelineGenerator
    from tenku.eval.suites import build_suite
    from tenku.prompts.expand import expand_prompt

    item = build_suite("world", 1, 64)[0]
    gen = PipelineGenerator(tiny_pipeline, steps=1, expand=True)
    caption = gen.caption(item)
    assert caption == expand_prompt(item.prompt, item.gen_seed, aspect=item.width / item.height, frames=item.frames,
                                    fps=item.fps).caption
    assert caption != item.prompt and "star" in caption and "blue" in caption  # "a small blue star moves to the left"
    assert PipelineGenerator(tiny_pipeline, steps=1).caption(item) == item.prompt
    out = tmp_path / "x"
    rc = main(["eval", "--model", str(tiny_pipeline), "--expand", "--suite", "world", "--out", str(out), "--limit", "1",
               "--height", "64", "--steps", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["generator"].endswith(":expand") and doc["suites"]["world"]["items"][0]["prompt"] == item.prompt


def test_autoencoder_run_scores_the_round_trip_of_the_reference(tiny_pipeline, tmp_path, capsys):
    """--autoencoder scores exactly the reference after the VAE's encode and decode (a pipeline
    folder's vae/ is found), not the reference itself."""
    import numpy as np
    import torch

    from tenku.eval.run import reference_frames
    from tenku.eval.suites import build_suite
    from tenku.io import from_uint8, to_uint8
    from tenku.vae.model import VAE

    out = tmp_path / "ae"
    rc = main(["eval", "--autoencoder", str(tiny_pipeline), "--suite", "world", "--out", str(out), "--limit", "1",
               "--height", "64", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["generator"] == f"autoencoder:{(tiny_pipeline / 'vae').resolve()}"
    item = build_suite("world", 1, 64)[0]
    ref = reference_frames(item)
    vae = VAE.load(tiny_pipeline / "vae").eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = to_uint8(vae.decode(vae.encode(from_uint8(ref)[None])).float().clamp(-1, 1)[0])
    got = np.load(next((out / "videos").glob("world-000-*.npz")))["frames"]
    assert np.array_equal(got, want) and not np.array_equal(got, ref)


def test_plan_and_layout_runs_follow_the_items_scenes(tiny_grounded_pipeline, tiny_pipeline, tmp_path, capsys):
    """--plan gives each item the simulator's layout of its own scene; --layout DIR the item's
    ID.json (a sidecar too); both name the run and need a model with grounding."""
    import numpy as np

    from tenku.eval.run import PipelineGenerator
    from tenku.eval.suites import build_suite
    from tenku.layout import from_scene, save

    item = build_suite("world", 1, 64)[0]
    planned = PipelineGenerator(tiny_grounded_pipeline, steps=1, plan=True)
    want = from_scene(item.spec, item.width, item.height, item.fps, item.frames)
    assert planned.request(item).conditioning["layout"] == want
    (tmp_path / "lay").mkdir()
    save(want, tmp_path / "lay" / f"{item.id}.json")
    given = PipelineGenerator(tiny_grounded_pipeline, steps=1, layouts=tmp_path / "lay")
    free = PipelineGenerator(tiny_grounded_pipeline, steps=1)
    assert np.array_equal(planned(item), given(item)) and not np.array_equal(planned(item), free(item))
    out = tmp_path / "p"
    base = ["eval", "--model", str(tiny_grounded_pipeline), "--suite", "world", "--limit", "1", "--height", "64",
            "--steps", "1", "--quiet"]
    assert main(base + ["--out", str(out), "--plan"]) == 0, capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["generator"].endswith(":plan")
    for argv, says in ((base + ["--out", str(tmp_path / "q"), "--layout", str(tmp_path)], "no layout for 1 item(s)"),
                       (base + ["--out", str(tmp_path / "r"), "--plan", "--layout", str(tmp_path)], "not both"),
                       (["eval", "--model", str(tiny_pipeline), "--out", str(tmp_path / "s"), "--plan"], "no grounding"),
                       (["eval", "--reference", "--out", str(tmp_path / "t"), "--plan"], "--plan applies to --model")):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err, err
