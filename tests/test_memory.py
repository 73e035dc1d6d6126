"""tenku.memory: bf16 matrices keep tenku's fp32 parameters fp32, and wrong settings are
refused with what is allowed. (Offload moves weights between the CPU and a GPU: on the CPU
every mode is the same, so what it saves is only measurable on a GPU; docs/wan.md.)"""

import pytest
import torch

from tenku.dit.model import build_dit
from tenku.memory import cast_matrices, check_offload, place, weights_dtype


def test_cast_matrices_keeps_norms_and_tables_fp32():
    dit = cast_matrices(build_dit("tiny", in_channels=4, text_dim=8), torch.bfloat16)
    assert dit.final.weight.dtype == dit.blocks[0].attn.qkv.bias.dtype == dit.patch_embed.weight.dtype == torch.bfloat16
    assert dit.blocks[0].table.dtype == dit.blocks[0].attn.q_norm.weight.dtype == dit.final_table.dtype == torch.float32
    x, s, ctx = torch.randn(1, 4, 2, 4, 4), torch.rand(1, 2), torch.randn(1, 3, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert dit(x, s, ctx).shape == x.shape


def test_wrong_settings_are_refused():
    assert weights_dtype("bf16", "bfloat16") == torch.bfloat16 and weights_dtype("fp32", "float32") == torch.float32
    with pytest.raises(ValueError, match="set compute to bf16"):
        weights_dtype("fp32", "bfloat16")
    with pytest.raises(ValueError, match="compute must be bf16 or fp32"):
        weights_dtype("fp16", "float32")
    with pytest.raises(ValueError, match="offload must be one of none, model, block"):
        check_offload("layers")
    dit = build_dit("tiny", in_channels=4, text_dim=8)
    assert place(dit, torch.device("cpu"), "block") is dit and not dit.blocks[0]._forward_pre_hooks  # nothing to move
