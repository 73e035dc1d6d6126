"""Layout grounding in the transformer (tenku.dit.grounding): closed gates or no layout give the
free model bit for bit, packed batches equal samples run alone, a free sample in a grounded batch
is untouched, and the bundled model (grafted grounding) is its free transformer without a layout."""

from dataclasses import replace

import pytest
import torch

from tenku.dit.grounding import ObjectLayout
from tenku.dit.model import DiT, build_dit, load_dit

NAN = float("nan")


def pair(mode):
    torch.manual_seed(0)
    free = build_dit("tiny", text_dim=8, in_channels=4)
    torch.nn.init.normal_(free.final.weight, std=0.1)  # a fresh model outputs zeros: make it say something
    torch.nn.init.normal_(free.t_mod[1].weight, std=0.1)
    grounded = build_dit("tiny", text_dim=8, in_channels=4, grounding=mode, grounding_dim=32)
    grounded.load_state_dict({**grounded.state_dict(), **free.state_dict()})
    return free.eval(), grounded.eval()


def inputs():
    torch.manual_seed(1)
    x, s, c = torch.randn(2, 4, 3, 8, 12), torch.rand(2, 3), torch.randn(2, 5, 8)
    boxes = torch.tensor([[[0.1, 0.1, 0.4, 0.5]] * 3, [[NAN] * 4, [0.5, 0.5, 0.9, 0.9], [0.6, 0.5, 1.0, 0.9]]])
    return x, s, c, ObjectLayout(boxes, torch.randn(2, 8), torch.tensor([0.0, 1.0]))


def open_gates(model):
    for b in model.grounding.blocks:
        b.gate.data.fill_(0.5)
    if model.grounding.null is not None:
        torch.nn.init.normal_(model.grounding.null)


@pytest.mark.parametrize("mode", ["cross", "self"])
def test_closed_gate_or_no_layout_is_the_free_model_bit_for_bit(mode):
    free, grounded = pair(mode)
    x, s, c, lay = inputs()
    want = free(x, s, c)
    assert torch.equal(grounded(x, s, c), want)
    assert torch.equal(grounded(x, s, c, layout=[lay, lay]), want)  # gates at 0
    open_gates(grounded)
    assert torch.equal(grounded(x, s, c), want)  # no layout: the pathway is skipped
    assert not torch.allclose(grounded(x, s, c, layout=[lay, lay]), want, atol=1e-3)


@pytest.mark.parametrize("mode", ["cross", "self"])
def test_packed_layouts_equal_samples_alone_and_free_samples_stay_free(mode):
    free, grounded = pair(mode)
    open_gates(grounded)
    x, s, c, lay = inputs()
    with torch.no_grad():
        alone = grounded(x[:1], s[:1], c[:1], layout=[lay])
        mixed = grounded(x, s, c, layout=[lay, None])
        packed = grounded.forward_packed([x[0], x[1, :, :2]], [s[0], s[1, :2]], [c[0], c[1]], layouts=[lay, None])
        assert torch.allclose(mixed[:1], alone, atol=1e-5)
        assert torch.equal(mixed[1:], free(x, s, c)[1:])  # the free sample: its stream untouched
        assert torch.allclose(packed[0], alone[0], atol=1e-5)
        assert torch.allclose(packed[1], free(x[1:, :, :2], s[1:, :2], c[1:])[0], atol=1e-5)


def test_every_box_matters_and_an_empty_layout_still_runs():
    _, grounded = pair("cross")
    open_gates(grounded)
    x, s, c, lay = inputs()
    moved = ObjectLayout(lay.boxes.clone(), lay.phrases, lay.depth)
    moved.boxes[0, 2] = torch.tensor([0.5, 0.1, 0.9, 0.5])
    with torch.no_grad():
        assert not torch.allclose(grounded(x, s, c, layout=[lay, lay]), grounded(x, s, c, layout=[moved, moved]), atol=1e-4)
        empty = ObjectLayout(torch.full((1, 3, 4), NAN), torch.randn(1, 8), torch.zeros(1))
        assert torch.isfinite(grounded(x, s, c, layout=[empty, None])).all()


def test_a_layout_for_a_model_without_grounding_and_bad_settings_are_clear_errors():
    free, _ = pair("cross")
    x, s, c, lay = inputs()
    with pytest.raises(ValueError, match="no grounding"):
        free(x, s, c, layout=[lay, lay])
    with pytest.raises(ValueError, match="not a grounding mode"):
        build_dit("tiny", grounding="gligen")
    with pytest.raises(ValueError, match="multiple of 32"):
        build_dit("tiny", grounding="cross", grounding_dim=48)


def test_the_bundled_transformer_is_grounded_and_free_without_a_layout():
    """The bundle carries grafted grounding weights (bench/graft_grounding.py); with no layout the
    grounding pathway is never entered, so the free path is the transformer it was before."""
    model = load_dit("models/tenku-world/transformer")
    assert model.cfg.grounding == "cross" and model.grounding is not None
    torch.manual_seed(0)
    x, sigma, ctx = torch.randn(1, 16, 3, 8, 8), torch.rand(1, 3), torch.randn(1, 5, model.cfg.text_dim)
    plain = DiT(replace(model.cfg, grounding=""))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("grounding.")})
    with torch.no_grad():
        assert torch.equal(model(x, sigma, ctx), plain.eval()(x, sigma, ctx))
