"""The Wan family (Wan2.1 T2V, Wan2.2 TI2V) in tenku: a diffusers Wan folder read into tenku's
Pipeline (``load_wan``), its text encoder, autoencoder and scheduler behind tenku's interfaces."""

from tenku.wan.folder import is_wan_folder, load_wan
from tenku.wan.scheduler import WanSchedule, read_schedule
from tenku.wan.text import WanTextEncoder, prompt_clean
from tenku.wan.vae import WanVAE

__all__ = ["WanSchedule", "WanTextEncoder", "WanVAE", "is_wan_folder", "load_wan", "prompt_clean", "read_schedule"]
