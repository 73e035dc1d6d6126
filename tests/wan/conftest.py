"""Tiny random Wan folders built offline with the peers' own classes (diffusers, transformers):
the Wan2.1 T2V layout (VAE 4x8x8, one timestep per sample) and the Wan2.2 TI2V layout (VAE
4x16x16 with a 2x2 pixel patch, 48 latent channels cut to 12 here, per-token timesteps)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

WORDS = ["a", "red", "ball", "the", "cat", "blue", "cube", "falls", "rolls", "on", "floor"]


def tiny_tokenizer():
    """A T5-style unigram tokenizer (pad 0, eos 1, unk 2) over letters and a few words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(c, -2.0 - 0.01 * i) for i, c in enumerate("▁abcdefghijklmnopqrstuvwxyz")]
    vocab += [("▁" + w, -1.0) for w in WORDS]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0)


def tiny_wan_folder(folder: str | Path, wan22: bool = False, scheduler: str = "euler", seed: int = 0):
    """Save a tiny random WanPipeline folder with ``save_pretrained``. ``wan22``: the TI2V layout
    (expand_timesteps, VAE 4x16x16); ``scheduler``: "euler" (FlowMatchEulerDiscrete, shift 3)
    or "unipc" (UniPCMultistep with flow_shift 5, as the released folders). Returns the folder and
    the diffusers pipeline it was saved from (the reference)."""
    from diffusers import (AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler, WanPipeline,
                           WanTransformer3DModel)
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    z = 12 if wan22 else 16
    vae_kw = dict(base_dim=12 if wan22 else 8, z_dim=z, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                  temperal_downsample=[False, True, True], latents_mean=torch.randn(z).mul(0.3).tolist(),
                  latents_std=torch.rand(z).add(0.5).tolist())
    if wan22:
        vae_kw |= dict(is_residual=True, in_channels=12, out_channels=12, patch_size=2, scale_factor_spatial=16,
                       decoder_base_dim=16, dim_mult=[1, 1, 2, 2])
    vae = AutoencoderKLWan(**vae_kw).eval()
    text = UMT5EncoderModel(UMT5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                       relative_attention_num_buckets=8, is_encoder_decoder=True)).eval()
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=z, out_channels=z, text_dim=32, freq_dim=256, ffn_dim=32,
                                        num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32).eval()
    for p in transformer.parameters():  # the released init zeroes the output head: make every weight speak
        p.data.add_(torch.randn_like(p) * 0.02)
    if scheduler == "euler":
        sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    else:
        sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    pipe = WanPipeline(tokenizer=tiny_tokenizer(), text_encoder=text, vae=vae, scheduler=sched,
                       transformer=transformer, expand_timesteps=wan22)
    pipe.save_pretrained(folder)
    return Path(folder), pipe


@pytest.fixture(scope="session")
def wan21(tmp_path_factory):
    """(folder, diffusers WanPipeline): the Wan2.1 T2V layout, flow-match Euler with shift 3."""
    return tiny_wan_folder(tmp_path_factory.mktemp("wan21") / "Wan2.1-T2V-tiny")


@pytest.fixture(scope="session")
def wan22(tmp_path_factory):
    """(folder, diffusers WanPipeline): the Wan2.2 TI2V layout, UniPC with flow_shift 5."""
    return tiny_wan_folder(tmp_path_factory.mktemp("wan22") / "Wan2.2-TI2V-tiny", wan22=True, scheduler="unipc")
