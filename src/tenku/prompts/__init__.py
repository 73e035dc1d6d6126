"""Prompt expansion and recaptioning: a short prompt becomes a detailed caption in
the style of the training captions (built in, or any OpenAI-compatible LLM), and
``tenku caption`` recaptions dataset folders (ground truth, or a vision LLM)."""

from tenku.prompts.expand import Expansion, expand, expand_prompt, lost_attributes, unknown_words
from tenku.prompts.llm import LLMConfig, LLMError

__all__ = ["Expansion", "LLMConfig", "LLMError", "expand", "expand_prompt", "lost_attributes", "unknown_words"]
