"""Datasets for the diffusion transformer: cached latents and text states, bucketed by shape."""
