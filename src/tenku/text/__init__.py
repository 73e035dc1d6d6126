"""Text encoders: token states and a mask for cross-attention."""

from tenku.text.encoder import (DEFAULT_ENCODER, MAX_TOKENS, TextEncoder, check_max_tokens, load_text_encoder,
                                resolve_encoder_path)

__all__ = ["DEFAULT_ENCODER", "MAX_TOKENS", "TextEncoder",
    "check_max_tokens", "load_text_encoder", "resolve_encoder_path"]
