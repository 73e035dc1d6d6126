"""The Wan family (Wan2.1, Wan2.2) in tenku: diffusers-format folders read into tenku's own
interfaces. The transformer loads into tenku's DiT (tenku.wan.transformer)."""

from tenku.wan.transformer import dit_config_from_wan, dit_from_wan_state, load_wan_transformer, save_wan_transformer

__all__ = ["dit_config_from_wan", "dit_from_wan_state", "load_wan_transformer", "save_wan_transformer"]
