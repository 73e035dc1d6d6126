"""The bundled model's recipe (configs/tenku-world.yaml) at debug size: its first steps must
reproduce the stored loss curve, so a change to the recipe, the data pipeline, the condition
masks or the model shows up here. Regenerate after an intended change with
``TENKU_UPDATE_CURVES=1 python -m pytest tests/test_recipe.py``."""

import json
import os
from pathlib import Path

from tenku.train.dit import load_train_config, train

ROOT = Path(__file__).resolve().parents[1]
CURVE = Path(__file__).parent / "data" / "recipe_debug_loss.json"
STEPS = 12


def test_debug_recipe_reproduces_the_stored_loss_curve(tmp_path, tiny_world, tiny_vae):
    # the real recipe file, shrunk: tiny model, tiny data, fp32 (bf16 rounding differs between CPUs)
    over = [f"data=[{tiny_world}]", f"vae={tiny_vae}", "size=tiny", "model={}", "batch_size=4", f"steps={STEPS}",
            f"out={tmp_path / 'run'}", f"cache={tmp_path / 'cache'}", "sample_every=0", "ckpt_every=1000",
            "log_every=1", "warmup=3", "bf16=false"]
    cfg = load_train_config(ROOT / "configs" / "tenku-world.yaml", over)
    train(cfg, progress=False)
    loss = [json.loads(x)["loss"] for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(loss) == STEPS
    if os.environ.get("TENKU_UPDATE_CURVES"):
        CURVE.write_text(json.dumps({"steps": STEPS, "loss": loss}, indent=1))
    stored = json.loads(CURVE.read_text())["loss"]
    for i, (a, b) in enumerate(zip(loss, stored)):
        assert abs(a - b) <= 1e-3 * abs(b) + 1e-6, f"step {i + 1}: loss {a:.6f}, stored {b:.6f}"
