"""`tenku caption DIR`: world folders from ground truth, real folders through a
(fake) vision endpoint; per-file failures, resume, atomic metadata rewrite."""

import base64
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI  # noqa: E402

from tenku.cli import main  # noqa: E402
from tenku.io import write_video  # noqa: E402
from tenku.prompts import recaption as rc  # noqa: E402
from tenku.lang.captions import captions  # noqa: E402
from tenku.world.dataset import load_metadata, render_dataset  # noqa: E402
from tenku.lang.parse import parse_prompt  # noqa: E402
from tenku.world.spec import GroundTruth, SceneSpec  # noqa: E402

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("w") / "world"
    render_dataset(out, 3, [(32, 32)], 5, 8.0, seed=0, progress=False)
    return out


def test_world_folder_is_captioned_from_ground_truth(world, capsys):
    before = load_metadata(world)
    assert main(["caption", str(world), "--quiet", "--seed", "7"]) == 0
    after = load_metadata(world)
    assert [r["file"] for r in after] == [r["file"] for r in before]
    for r in after:
        doc = json.loads((world / r["ground_truth"]).read_text())
        spec, gt = SceneSpec.from_dict(doc["spec"]), GroundTruth.from_dict(doc["ground_truth"])
        short, detailed = captions(spec, gt, rc.caption_seed(r["file"], 7))
        assert (r["caption"], r["short_caption"], r["caption_source"]) == (detailed, short, "ground_truth")
        assert doc["caption"] == doc["record"]["caption"] == detailed  # the gt copy follows
        got = sorted((o.color, o.shape, o.size, o.motion) for o in parse_prompt(r["caption"]).objects)
        assert got == sorted((o.color, o.shape, o.size, o.motion) for o in spec.objects)
        assert r["spec"] == doc["spec"]  # everything else is kept
    assert "3 captioned" in capsys.readouterr().out
    assert main(["caption", str(world), "--quiet", "--seed", "7"]) == 0  # all done: skipped
    assert "0 captioned, 3 already done" in capsys.readouterr().out
    assert main(["caption", str(world), "--quiet", "--seed", "8", "--redo"]) == 0
    assert load_metadata(world)[0]["caption"] != after[0]["caption"] or load_metadata(world)[1]["caption"] != after[1]["caption"]


def _real_folder(root: Path) -> Path:
    root.mkdir()
    for name, rgb in COLORS.items():
        frames = np.zeros((5, 32, 32, 3), np.uint8)
        frames[...] = rgb
        frames[:, :4] = 255  # something that changes nothing but is not flat
        write_video(root / f"{name}.mp4", frames, 8.0)
    (root / "broken.mp4").write_bytes(b"not a video at all")
    recs = [{"file": f"{n}.mp4"} for n in COLORS] + [{"file": "broken.mp4", "caption": "old"}]
    recs[0]["caption"] = "a user caption"
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root


def _colour_of(body) -> str:
    """What the fake vision model 'sees': the dominant channel of the first image."""
    parts = body["messages"][1]["content"]
    assert parts[0]["type"] == "text" and "frames sampled evenly" in parts[0]["text"]
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,") and len(parts) == 1 + 3
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    return list(COLORS)[int(img[16:, :].reshape(-1, 3).mean(0).argmax())]


def test_real_folder_through_a_vision_endpoint_with_failures_and_resume(tmp_path, capsys):
    root = _real_folder(tmp_path / "real")
    fail_blue = {"on": True}

    def answer(body):
        c = _colour_of(body)
        if c == "blue" and fail_blue["on"]:
            return ("status", 500)
        return f"A flat {c} field fills the whole video, with a white band along its top edge, and nothing moves."

    args = ["--llm-model", "vision", "--jobs", "2", "--frames", "3", "--retries", "0", "--timeout", "5", "--quiet"]
    with FakeOpenAI(answer) as server:
        assert main(["caption", str(root), "--llm-url", server.url, *args]) == 1  # two files failed
        err = capsys.readouterr().err
        assert "blue.mp4" in err and "HTTP 500" in err and "broken.mp4" in err and "cannot" in err
        recs = {r["file"]: r for r in load_metadata(root)}
        assert "red field" in recs["red.mp4"]["caption"] and recs["red.mp4"]["caption_source"] == "llm:vision"
        assert recs["red.mp4"]["original_caption"] == "a user caption"
        assert "green field" in recs["green.mp4"]["caption"] and "caption" not in recs["blue.mp4"]
        assert recs["broken.mp4"]["caption"] == "old"
        assert len(rc.read_progress(root / rc.PROGRESS)) == 2
        n = len(server.requests)
        assert n == 3  # red, green, blue (no retries asked)

        fail_blue["on"] = False
        write_video(root / "broken.mp4", np.full((5, 32, 32, 3), 200, np.uint8), 8.0)
        assert main(["caption", str(root), "--llm-url", server.url, *args]) == 0  # resumes: only the two left
        assert len(server.requests) == n + 2
        assert "2 captioned, 2 already done" in capsys.readouterr().out
    recs = {r["file"]: r for r in load_metadata(root)}
    assert "blue field" in recs["blue.mp4"]["caption"] and recs["broken.mp4"]["original_caption"] == "old"
    assert not [p for p in root.iterdir() if ".tmp" in p.name]


def test_real_folder_needs_an_endpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TENKU_LLM_URL", raising=False)
    monkeypatch.delenv("TENKU_LLM_MODEL", raising=False)
    root = _real_folder(tmp_path / "real")
    assert main(["caption", str(root), "--quiet"]) == 2
    assert "--llm-url" in capsys.readouterr().err
    assert main(["caption", str(tmp_path / "nothing")]) == 2


def test_metadata_is_replaced_atomically_and_an_interrupted_run_loses_nothing(tmp_path, monkeypatch):
    root = _real_folder(tmp_path / "real")
    recs = load_metadata(root)[:3]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    old = root / "old-link.jsonl"
    os.link(root / "metadata.jsonl", old)  # a second name for the old file: it must not change
    before = old.read_text()
    calls, interrupt = [], [True]

    def fake(root_, record, llm, frames, max_side, seed):
        calls.append(record["file"])
        if len(calls) == 2 and interrupt.pop():
            raise KeyboardInterrupt
        return {"file": record["file"], "caption": f"caption of {record['file']}", "caption_source": "llm:x"}

    monkeypatch.setattr(rc, "caption_video", fake)
    cfg = rc.LLMConfig("http://127.0.0.1:9/v1", "x")
    with pytest.raises(KeyboardInterrupt):
        rc.recaption(root, cfg, jobs=1, progress=False)
    assert old.read_text() == before  # replaced, never written in place
    recs = {r["file"]: r for r in load_metadata(root)}
    done = set(rc.read_progress(root / rc.PROGRESS))  # red, and blue if it finished before the interrupt was seen
    assert "red.mp4" in done and "green.mp4" not in done
    assert {f for f, r in recs.items() if r.get("caption", "").startswith("caption of")} == done
    with open(root / rc.PROGRESS, "a") as fh:
        fh.write('{"file": "green.mp4", "capt')  # a torn last line from a killed run is ignored
    calls.clear()
    interrupt.append(False)
    s = rc.recaption(root, cfg, jobs=1, progress=False)
    left = [f for f in ("green.mp4", "blue.mp4") if f not in done]
    assert calls == left and (s.captioned, s.skipped, s.failed) == (len(left), 3 - len(left), [])
    assert all(r["caption"] == f"caption of {r['file']}" for r in load_metadata(root))
