"""Wan's text encoder behind tenku's interface: UMT5 from a Wan folder's ``text_encoder/``, the
tokenizer from its ``tokenizer/`` (whatever class it names), and Wan's padding convention.

WanPipeline pads every prompt to ``max_sequence_length`` (512) tokens, zeroes the states past
the prompt's real length and hands all 512 to the transformer without a mask: the zero states
are attended to (after the text projection they are not zero), so the transformer was trained
with them. ``encode`` does the same: (B, 512, D) states, zero past each prompt, a mask of all
True, so tenku's cross-attention sees exactly what Wan's does."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import torch

from tenku.text.encoder import TextEncoder

WAN_MAX_TOKENS = 512  # WanPipeline's max_sequence_length


def prompt_clean(text: str) -> str:
    """WanPipeline's prompt cleaning: ftfy when installed, HTML entities undone twice, runs of
    whitespace made one space."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:
        pass
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


class WanTextEncoder(TextEncoder):
    """``encode(prompts) -> (states (B, max_length, D) float32, mask (B, max_length) all True)``,
    cached per prompt. ``folder``: a Wan pipeline folder (its text_encoder/ and tokenizer/);
    ``dtype``: the encoder's weights (bf16 halves UMT5-XXL's 22 GB); it lives on ``device``, and
    with ``offload_to`` (a GPU) moves there only while it encodes (model offload)."""

    def __init__(self, folder: str | Path, max_length: int = WAN_MAX_TOKENS, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, offload_to: torch.device | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers
        from transformers import AutoTokenizer, UMT5EncoderModel

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        folder = Path(folder)
        for sub in ("text_encoder", "tokenizer"):
            if not (folder / sub).is_dir():
                raise ValueError(f"{folder}: a Wan folder needs {sub}/ (the UMT5 encoder and its tokenizer)")
        if not 1 <= max_length <= WAN_MAX_TOKENS:
            raise ValueError(f"max_text_tokens: 1 to {WAN_MAX_TOKENS} for a Wan text encoder; got {max_length!r}")
        self.name, self.max_length, self.device = str(folder / "text_encoder"), max_length, torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        model = UMT5EncoderModel.from_pretrained(folder / "text_encoder", local_files_only=True, dtype=dtype)
        self.model = model.eval().to(self.device).requires_grad_(False)
        self.dim = int(model.config.d_model)
        self.offload_to = None if offload_to is None or torch.device(offload_to).type == "cpu" else offload_to
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def _states(self, prompts: list[str]) -> list[torch.Tensor]:
        tok = self.tokenizer([prompt_clean(p) for p in prompts], padding="max_length", max_length=self.max_length,
                             truncation=True, add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        dev = self.offload_to or self.device
        ids, mask = tok.input_ids.to(dev), tok.attention_mask.to(dev)
        try:
            out = self.model.to(dev)(ids, mask).last_hidden_state.float()  # (B, L, D)
        finally:
            self.model.to(self.device)
        lengths = mask.gt(0).sum(1).tolist()
        return [out[i, : int(n)].cpu() for i, n in enumerate(lengths)]

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """States (B, max_length, D), zero past each prompt's tokens, and a mask of all True
        (Wan attends to the zero states too: see the module docstring)."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._states(missing)))
        out = torch.zeros(len(prompts), self.max_length, self.dim)
        for i, p in enumerate(prompts):
            s = self._cache[p]
            out[i, : s.shape[0]] = s
        return out, torch.ones(len(prompts), self.max_length, dtype=torch.bool)
