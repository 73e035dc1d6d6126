"""The causal video autoencoder (``model``) and its training losses (``losses``)."""

from tenku.vae.model import VAE, VAE_CONFIGS, VAEConfig, vae_config
from tenku.weights import load_vae, save_vae

__all__ = ["VAE", "VAE_CONFIGS", "VAEConfig", "load_vae", "save_vae", "vae_config"]
