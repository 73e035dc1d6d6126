"""bench/sdedit_eval.py --source draft: the preview path as tenku generate runs it, scored."""

import shutil
import sys

import numpy as np
import yaml

from tenku.eval.suites import build_suite
from tenku.pipeline import Pipeline


def test_draft_then_edit_at_strength_1_is_text_to_video(bench_module, tiny_pipeline, tmp_path, monkeypatch):
    """The draft is scored at the item's full size; an edit at strength 1 starts from pure noise,
    so it must equal direct text-to-video with the same seed (the source ignored), and one at
    0.3 must not."""
    mod = bench_module("sdedit_eval")
    model, out = tmp_path / "pipe", tmp_path / "sd"
    shutil.copytree(tiny_pipeline, model)  # with the suite's 33 frames in one chunk, as an edit makes them
    cfg = yaml.safe_load((model / "pipeline.yaml").read_text())
    (model / "pipeline.yaml").write_text(yaml.safe_dump({**cfg, "frames": 33}))
    monkeypatch.setattr(sys, "argv", ["sdedit_eval.py", "--model", str(model), "--source", "draft",
                                      "--strengths", "0.3", "1", "--limit", "1", "--out", str(out)])
    mod.main()
    item = build_suite("world", 1)[0]
    draft, = (out / "draft" / "videos").glob("*.npz")
    edit, = (out / "strength-1.0" / "videos").glob("*.npz")
    assert np.load(draft)["frames"].shape == (item.frames, item.height, item.width, 3)
    pipe = Pipeline.load(model, device="cpu")
    direct = pipe.generate(item.prompt, seed=item.gen_seed, size=(item.width, item.height), frames=item.frames)
    edited = np.load(edit)["frames"]
    assert np.array_equal(edited, direct)
    kept, = (out / "strength-0.3" / "videos").glob("*.npz")  # from 0.3 the draft shows through
    assert np.abs(np.load(kept)["frames"].astype(int) - direct).mean() > 5
    assert (out / "draft" / "metrics.json").exists() and (out / "strength-1.0" / "metrics.json").exists()
