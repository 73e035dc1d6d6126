"""Text encoders: token states and a mask for cross-attention."""

from tenku.text.encoder import DEFAULT_ENCODER, TextEncoder, resolve_encoder_path

__all__ = ["DEFAULT_ENCODER", "TextEncoder", "resolve_encoder_path"]
