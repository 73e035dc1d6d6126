"""The Wan family (Wan2.1 T2V, Wan2.2 TI2V) in tenku: diffusers-format folders read into tenku's
own interfaces. The transformer loads into tenku's DiT (tenku.wan.transformer); a whole folder
becomes a tenku Pipeline (``load_wan``), its text encoder, autoencoder and scheduler behind
tenku's interfaces (tenku.wan.text, .vae, .scheduler)."""

from tenku.wan.folder import is_wan_folder, load_wan
from tenku.wan.scheduler import WanSchedule, read_schedule
from tenku.wan.text import WanTextEncoder, prompt_clean
from tenku.wan.transformer import dit_config_from_wan, dit_from_wan_state, load_wan_transformer, save_wan_transformer
from tenku.wan.vae import WanVAE

__all__ = ["WanSchedule", "WanTextEncoder", "WanVAE", "dit_config_from_wan", "dit_from_wan_state", "is_wan_folder",
           "load_wan", "load_wan_transformer", "prompt_clean", "read_schedule", "save_wan_transformer"]
