"""The shape head (``shape_head=W``): its labels, its loss in the training loop, resume, errors."""

import json

import pytest
import torch
from safetensors.torch import load_file

from tenku.config import ConfigError
from tenku.data.objects import SHARED, box_labels, box_mask
from tenku.dit.model import load_dit
from tenku.train.dit import train
from tenku.train.shape_head import WEIGHTS

from .test_dit_train import cfg


def logs(run):
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]


def test_labels_name_each_box_and_leave_shared_cells_out():
    # object 0 in frame 0 over pixels 0..15 (cells 0-1), object 1 over 8..23 (cells 1-2); frame 1 only object 1
    gt = {"bbox": [[[0, 0, 15, 15], None], [[8, 8, 23, 23], [8, 8, 23, 23]]], "visible": [[True, False], [True, True]]}
    lab = box_labels(gt, [3, 5], (16, 2, 4, 4), 4, 8)
    assert lab.dtype == torch.int8 and lab.shape == (2, 4, 4)
    assert lab[0, 0, 0] == 3 and lab[0, 1, 1] == SHARED and lab[0, 2, 2] == 5 and lab[0, 3, 3] == 0
    assert lab[1, 1, 1] == 5 and lab[1, 0, 0] == 0  # object 0 is not seen there
    assert torch.equal(box_mask(gt, (16, 2, 4, 4), 4, 8), lab != 0)  # the object cells, shared ones too


def test_head_leaves_the_first_updates_alone_then_learns_and_resumes_exactly(tmp_path, tiny_world, tiny_vae):
    train(cfg(tmp_path / "p", tiny_world, tiny_vae, steps=4), progress=False)
    train(cfg(tmp_path / "h", tiny_world, tiny_vae, steps=4, shape_head=1.0), progress=False)
    plain, head = logs(tmp_path / "p"), logs(tmp_path / "h")
    # the head starts at zero: no gradient reaches the model at step 1, so step 2 sees the same model
    assert [r["loss"] for r in head[:2]] == [r["loss"] for r in plain[:2]]
    assert head[3]["loss"] != plain[3]["loss"]  # by then the head's gradient has moved the model
    assert all(0 <= r["shape_acc"] <= 1 and 0 <= r["shape_acc_hi"] <= 1 and r["shape_ce"] > 0 for r in head)
    assert "shape_ce" not in plain[0]
    assert head[0]["shape_ce"] == pytest.approx(torch.log(torch.tensor(6.0)).item(), rel=1e-4)  # uniform over 6 classes
    assert (tmp_path / "h" / "ckpt" / WEIGHTS).is_file() and not (tmp_path / "p" / "ckpt" / WEIGHTS).exists()
    assert not any("head" in k for k in load_dit(tmp_path / "h" / "pipeline" / "transformer").state_dict())  # never shipped

    split = cfg(tmp_path / "s", tiny_world, tiny_vae, steps=4, shape_head=1.0)
    train(split, progress=False, stop_after=2)
    train(split, progress=False)
    a, b = load_dit(tmp_path / "h" / "ckpt"), load_dit(tmp_path / "s" / "ckpt")
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    ha, hb = (load_file(str(tmp_path / r / "ckpt" / WEIGHTS)) for r in "hs")
    assert all(torch.equal(ha[k], hb[k]) for k in ha)


def test_head_learns_the_shapes_cross_entropy(tmp_path, tiny_world, tiny_vae):
    run = cfg(tmp_path / "r", tiny_world, tiny_vae, steps=40, batch_size=8, shape_head=1.0, lr=3e-3,
              **{"cond.image_prob": 0.0})
    train(run, progress=False)
    ce = [r["shape_ce"] for r in logs(tmp_path / "r")]
    assert sum(ce[-5:]) / 5 < 0.7 * ce[0]


def test_head_settings_and_data_without_shapes_are_clear_errors(tmp_path, tiny_world, tiny_vae):
    import shutil

    for bad in ("-1", "nan"):
        with pytest.raises(ConfigError, match="shape_head must be >= 0"):
            cfg(tmp_path / "x", tiny_world, tiny_vae, shape_head=bad)
    with pytest.raises(ConfigError, match="shape_head maps .* default clips policy"):
        cfg(tmp_path / "x", tiny_world, tiny_vae, shape_head=1, **{"clips.frames": 5})
    with pytest.raises(ConfigError, match=r"shape_head_block must lie in 1\.\.2"):
        train(cfg(tmp_path / "b", tiny_world, tiny_vae, steps=1, shape_head=1, shape_head_block=3), progress=False)
    bare = tmp_path / "bare"  # the same videos without their ground truth, as any video folder is
    shutil.copytree(tiny_world, bare)
    shutil.rmtree(bare / "gt")
    with pytest.raises(ConfigError, match="shape_head: .*missing ground truth"):
        train(cfg(tmp_path / "g", bare, tiny_vae, steps=1, shape_head=1), progress=False)
    meta = bare / "metadata.jsonl"  # ground truth back, but records that name no world shapes
    shutil.copytree(tiny_world / "gt", bare / "gt")
    recs = [json.loads(x) for x in meta.read_text().splitlines()]
    meta.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "spec"}) + "\n" for r in recs))
    with pytest.raises(ConfigError, match="names no world shapes"):
        train(cfg(tmp_path / "n", bare, tiny_vae, steps=1, shape_head=1), progress=False)


def test_head_accuracy_counts_object_cells_of_generated_frames_and_the_high_noise_ones():
    from tenku.dit.model import build_dit
    from tenku.train.shape_head import ShapeHead

    model = build_dit("tiny", in_channels=4, patch=(1, 1, 1))
    head = ShapeHead(model, 0.5, 0, 1e-3, torch.device("cpu"), shapes=5)
    assert head.block == 1  # the middle of 2 blocks
    with torch.no_grad():
        head.head.bias[3] = 10.0  # names shape class 3 everywhere
    labels = torch.zeros(1, 3, 2, 2, dtype=torch.long)
    labels[0, 0] = torch.tensor([[3, 3], [1, SHARED]])  # frame 0 (noise 0.9): 2 of 3 object cells are class 3
    labels[0, 1] = torch.tensor([[1, 0], [0, 0]])  # frame 1 (noise 0.3): 0 of 1
    labels[0, 2] = torch.tensor([[3, 3], [3, 3]])  # frame 2 is a condition frame: not counted
    cond = torch.tensor([[False, False, True]])
    model(torch.zeros(1, 4, 3, 2, 2), torch.zeros(1, 3), torch.zeros(1, 1, model.cfg.text_dim))  # the hook keeps block 1's output
    assert head.hidden.shape == (1, 12, model.cfg.dim)
    head.hidden = torch.zeros(1, 12, model.cfg.dim)
    loss = head.loss_sum(labels, cond, torch.tensor([[0.9, 0.3, 0.0]]))
    assert head.hidden is None  # taken, so no graph is kept past the step
    got = head.logged()
    assert got["shape_acc"] == pytest.approx(2 / 4) and got["shape_acc_hi"] == pytest.approx(2 / 3)
    assert float(loss.detach()) == pytest.approx(0.5 * 2 * got["shape_ce"])  # W x the sum over the 2 generated frames
    assert head.logged()["shape_acc"] == 0  # reset
    with pytest.raises(RuntimeError, match="nothing was kept"):
        head.loss_sum(labels, cond, torch.zeros(1, 3))
