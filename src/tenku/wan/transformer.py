"""Wan's transformer (diffusers' ``WanTransformer3DModel`` folder) as tenku's own DiT.

Wan2.1 and Wan2.2 are tenku's architecture with a few different choices, each a DiTConfig
switch (``qk_norm="across"``, ``gelu="tanh"``, ``mlp_hidden``, ``cross_norm``, ``eps``);
everything else already coincides and is pinned by tests/wan: the Conv3d 1x2x2 patches and
the (pt, ph, pw, c) unpatchify order, the 3D rotary split of a head (t gets the remainder,
h = w = head_dim // 6 pairs, theta 1e4), sinusoidal time features ordered [cos, sin] of
1000 * sigma (Wan's timestep *is* sigma * 1000), the 6 * dim adaLN modulation plus a learned
table per block and the output head's (shift, scale) table, the ungated cross-attention.
Wan2.2 TI2V's per-token timestep (``expand_timesteps``: one value per latent frame, the
first frame clean) is tenku's sigma per latent frame, (B, T) = timestep / 1000.

The weights map name by name; tenku fuses self-attention's q, k, v (and cross-attention's
k, v) into one matrix, so those are concatenated on load and split on save. A folder whose
tensors do not match its config is refused with the names of the tensors. Needs no diffusers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tenku.dit.model import DiT, DiTConfig

WAN_CLASS = "WanTransformer3DModel"
WEIGHTS = "diffusion_pytorch_model.safetensors"
INDEX = WEIGHTS + ".index.json"
# config keys that change nothing tenku computes: rope_max_seq_len is the length of diffusers'
# precomputed rotary table (tenku computes any position); qk_norm is not read by diffusers'
# WanAttention either (it is always an RMSNorm across heads, whatever the value says)
_IGNORED = {"rope_max_seq_len", "qk_norm"}
_IMAGE = ("image_dim", "added_kv_proj_dim", "pos_embed_seq_len")  # Wan2.1 I2V / FLF2V: a CLIP image branch
_DEFAULTS: dict[str, Any] = dict(patch_size=[1, 2, 2], num_attention_heads=40, attention_head_dim=128, in_channels=16,
                                 out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40,
                                 cross_attn_norm=True, eps=1e-6)


def dit_config_from_wan(conf: dict[str, Any]) -> DiTConfig:
    """A diffusers ``WanTransformer3DModel`` config.json (as a dict) -> the DiTConfig that runs it.
    Variants tenku cannot run are a ValueError naming what is unsupported."""
    name = conf.get("_class_name", WAN_CLASS)
    if name != WAN_CLASS:
        raise ValueError(f"a {name} transformer is not supported (only {WAN_CLASS}: Wan2.1 T2V, Wan2.2 TI2V/T2V)")
    image = [k for k in _IMAGE if conf.get(k) is not None]
    if image or conf.get("add_img_emb"):
        raise ValueError(f"Wan's CLIP image conditioning ({', '.join(image) or 'add_img_emb'}: Wan2.1 I2V/FLF2V) is "
                         "not supported; image-to-video runs on Wan2.2 TI2V through per-frame noise levels")
    if list(conf.get("window_size", [-1, -1])) != [-1, -1]:
        raise ValueError(f"Wan's windowed attention (window_size {conf['window_size']}) is not supported")
    known = set(_DEFAULTS) | _IGNORED | set(_IMAGE) | {"window_size", "add_img_emb"}
    unknown = sorted(k for k in conf if not k.startswith("_") and k not in known)
    if unknown:
        raise ValueError(f"unknown {WAN_CLASS} config keys {unknown}: this tenku does not know what they change")
    c = {**_DEFAULTS, **{k: v for k, v in conf.items() if k in _DEFAULTS and v is not None}}
    c["out_channels"] = conf.get("out_channels") or c["in_channels"]  # as diffusers: none given, as many as in
    if c["out_channels"] != c["in_channels"]:
        raise ValueError(f"in_channels {c['in_channels']} != out_channels {c['out_channels']}: channel-concatenated "
                         "image conditioning (Wan2.2 I2V-A14B) is not supported")
    heads, hd = int(c["num_attention_heads"]), int(c["attention_head_dim"])
    if hd % 2 or len(c["patch_size"]) != 3:
        raise ValueError(f"attention_head_dim must be even (got {hd}) and patch_size 3 numbers (got {c['patch_size']})")
    dim = heads * hd
    return DiTConfig(in_channels=int(c["in_channels"]), patch=tuple(int(p) for p in c["patch_size"]), dim=dim,
                     depth=int(c["num_layers"]), heads=heads, mlp_ratio=c["ffn_dim"] / dim, text_dim=int(c["text_dim"]),
                     freq_dim=int(c["freq_dim"]), rope_theta=10000.0, qk_norm="across", gelu="tanh",
                     mlp_hidden=int(c["ffn_dim"]), cross_norm=bool(c["cross_attn_norm"]), eps=float(c["eps"]))


def wan_config_from_dit(cfg: DiTConfig) -> dict[str, Any]:
    """The diffusers config.json of a Wan-compatible DiTConfig (the inverse of ``dit_config_from_wan``)."""
    wan_like = (cfg.qk_norm == "across" and cfg.gelu == "tanh" and not cfg.grounding and cfg.rope_theta == 10000.0
                and cfg.dim % cfg.heads == 0)
    if not wan_like:
        raise ValueError("this DiT is not a Wan transformer (needs qk_norm='across', gelu='tanh', rope_theta 1e4, "
                         "no grounding): save it with tenku.dit.save_dit instead")
    return {"_class_name": WAN_CLASS, "_diffusers_version": "0.33.0", "patch_size": list(cfg.patch),
            "num_attention_heads": cfg.heads, "attention_head_dim": cfg.dim // cfg.heads,
            "in_channels": cfg.in_channels, "out_channels": cfg.in_channels, "text_dim": cfg.text_dim,
            "freq_dim": cfg.freq_dim, "ffn_dim": cfg.mlp_hidden or int(cfg.dim * cfg.mlp_ratio),
            "num_layers": cfg.depth, "cross_attn_norm": cfg.cross_norm, "qk_norm": "rms_norm_across_heads",
            "eps": cfg.eps, "image_dim": None, "added_kv_proj_dim": None, "rope_max_seq_len": 1024,
            "pos_embed_seq_len": None}


def key_map(cfg: DiTConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(tenku tensor, the diffusers tensors it is made of, concatenated along dim 0) for every tensor."""
    m: list[tuple[str, tuple[str, ...]]] = []

    def lin(ours: str, *theirs: str) -> None:  # a Linear (or Conv/LayerNorm): weight and bias
        m.extend((f"{ours}.{p}", tuple(f"{t}.{p}" for t in theirs)) for p in ("weight", "bias"))

    lin("patch_embed", "patch_embedding")
    lin("text_proj.0", "condition_embedder.text_embedder.linear_1")
    lin("text_proj.2", "condition_embedder.text_embedder.linear_2")
    lin("t_embed.0", "condition_embedder.time_embedder.linear_1")
    lin("t_embed.2", "condition_embedder.time_embedder.linear_2")
    lin("t_mod.1", "condition_embedder.time_proj")
    for i in range(cfg.depth):
        b = f"blocks.{i}"
        for ours, theirs in (("attn", "attn1"), ("cross", "attn2")):
            if ours == "attn":
                lin(f"{b}.attn.qkv", *(f"{b}.attn1.to_{c}" for c in "qkv"))
            else:
                lin(f"{b}.cross.q", f"{b}.attn2.to_q")
                lin(f"{b}.cross.kv", f"{b}.attn2.to_k", f"{b}.attn2.to_v")
            m.append((f"{b}.{ours}.q_norm.weight", (f"{b}.{theirs}.norm_q.weight",)))
            m.append((f"{b}.{ours}.k_norm.weight", (f"{b}.{theirs}.norm_k.weight",)))
            lin(f"{b}.{ours}.out", f"{b}.{theirs}.to_out.0")
        if cfg.cross_norm:
            lin(f"{b}.norm_cross", f"{b}.norm2")
        lin(f"{b}.mlp.0", f"{b}.ffn.net.0.proj")
        lin(f"{b}.mlp.2", f"{b}.ffn.net.2")
        m.append((f"{b}.table", (f"{b}.scale_shift_table",)))  # (6, D) here, (1, 6, D) there
    lin("final", "proj_out")
    m.append(("final_table", ("scale_shift_table",)))  # (2, D) here, (1, 2, D) there
    return m


def _theirs(ours: str, t: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """One tenku tensor -> its diffusers tensors (split fused projections, tables get a batch axis)."""
    if ours.endswith("table"):
        return {names[0]: t[None]}
    return dict(zip(names, t.chunk(len(names), dim=0)))


def to_wan_state(dit: DiT) -> dict[str, torch.Tensor]:
    """tenku DiT -> diffusers ``WanTransformer3DModel`` state dict (new contiguous tensors)."""
    own = dit.state_dict()
    return {k: v.contiguous() for ours, names in key_map(dit.cfg) for k, v in _theirs(ours, own[ours], names).items()}


def _files(folder: Path) -> list[Path]:
    if (folder / INDEX).is_file():
        try:
            shards = sorted(set(json.loads((folder / INDEX).read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{folder / INDEX}: not a safetensors index ({e})") from None
        return [folder / s for s in shards]
    if (folder / WEIGHTS).is_file():
        return [folder / WEIGHTS]
    raise ValueError(f"{folder}: no {WEIGHTS} (or its .index.json for a sharded one); only safetensors are read")


def _names(kind: str, names: list[str], shown: int = 8) -> str:
    more = f" ... ({len(names)} in all)" if len(names) > shown else ""
    return f"{kind}: {', '.join(names[:shown])}{more}"


def load_wan_transformer(folder: str | Path, dtype: torch.dtype = torch.float32,
                         device: str | torch.device = "cpu") -> DiT:
    """A diffusers Wan transformer folder (config.json + diffusion_pytorch_model*.safetensors; a
    pipeline folder's ``transformer/`` is found too) -> tenku's DiT in eval mode, weights in
    ``dtype`` (bf16: run it under ``torch.autocast``, as tenku's pipeline does) except the
    modulation tables and norm weights, which tenku reads in fp32 and keeps in fp32. A folder
    whose tensors do not match its config is a ValueError naming the missing, unexpected and
    mismatched-shape tensors."""
    folder = Path(folder)
    if not (folder / "config.json").is_file() and (folder / "transformer" / "config.json").is_file():
        folder = folder / "transformer"
    try:
        conf = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{folder}: not a diffusers transformer folder (config.json: {e})") from None
    if not isinstance(conf, dict):
        raise ValueError(f"{folder}/config.json: not a JSON object")
    try:
        cfg = dit_config_from_wan(conf)
    except ValueError as e:
        raise ValueError(f"{folder}: {e}") from None
    where, shapes = {}, {}
    try:
        for f in _files(folder):
            h = safe_open(str(f), "pt", device="cpu")
            for k in h.keys():
                where[k], shapes[k] = h, tuple(h.get_slice(k).get_shape())
    except (OSError, ValueError, RuntimeError) as e:  # safetensors raises several types for a bad file
        raise ValueError(f"{folder}: unreadable weights ({e})") from None
    try:
        return _build(cfg, shapes, lambda k: where[k].get_tensor(k), dtype, device)
    except ValueError as e:
        raise ValueError(f"{folder}: {e}") from None


def dit_from_wan_state(conf: dict[str, Any], state: dict[str, torch.Tensor], dtype: torch.dtype | None = None,
                       device: str | torch.device = "cpu") -> DiT:
    """tenku's DiT from a diffusers Wan config dict and state dict in memory (e.g. a live
    ``WanTransformer3DModel``'s). Tensors already in the target dtype and device are shared, not
    copied (only the fused q/k/v are new); ``dtype`` None keeps each tensor's own dtype."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    return _build(dit_config_from_wan(conf), shapes, state.__getitem__, dtype, device)


def _build(cfg: DiTConfig, shapes: dict[str, tuple[int, ...]], get: Callable[[str], torch.Tensor],
           dtype: torch.dtype | None, device: str | torch.device) -> DiT:
    """Check the tensors' names and shapes against ``cfg`` (all mismatches named), then fill a DiT.
    bf16 weights carry a bf16 residual stream (``residual="weights"``), as diffusers runs them: the
    same memory as diffusers; fp32 (and training's fp32 master weights) keep tenku's fp32 stream."""
    if dtype is not None and dtype != torch.float32:
        cfg = dataclasses.replace(cfg, residual="weights")
    with torch.device("meta"):
        dit = DiT(cfg)
    kmap = key_map(cfg)
    meta = dit.state_dict()
    expected = {k: tuple(v.shape) for ours, names in kmap for k, v in _theirs(ours, meta[ours], names).items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(f"{k} {list(shapes[k])} (expected {list(expected[k])})"
                   for k in set(expected) & set(shapes) if shapes[k] != expected[k])
    if missing or unexpected or wrong:
        parts = [_names(kind, n) for kind, n in (("missing", missing), ("unexpected", unexpected),
                                                  ("wrong shape", wrong)) if n]
        raise ValueError("the weights do not match config.json; " + "; ".join(parts))
    state = {}
    for ours, names in kmap:
        t = torch.cat([get(n) for n in names]) if len(names) > 1 else get(names[0])
        keep32 = ours.endswith(("table", "norm.weight")) or ".norm_cross." in ours  # read in fp32 by tenku
        to = torch.float32 if keep32 else dtype or t.dtype
        state[ours] = t.reshape(meta[ours].shape).to(device, to)
    dit.load_state_dict(state, strict=True, assign=True)
    return dit.eval()


def save_wan_transformer(dit: DiT, folder: str | Path) -> Path:
    """Write ``dit`` as a diffusers ``WanTransformer3DModel`` folder (config.json and one
    diffusion_pytorch_model.safetensors, tensors in the dtypes they have); loading it back with
    ``load_wan_transformer`` gives the same tensors, and diffusers' ``from_pretrained`` reads it."""
    conf = wan_config_from_dit(dit.cfg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in to_wan_state(dit).items()}
    tmp = folder / f".{WEIGHTS}.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(folder / WEIGHTS)
    (folder / INDEX).unlink(missing_ok=True)  # a single file now: a stale shard index would shadow it
    (folder / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    return folder
