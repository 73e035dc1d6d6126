"""Training scripts (one per model, nanoGPT style) and their shared checkpoint helpers."""
