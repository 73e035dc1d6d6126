"""tenku: an open, Sora-style text-to-video system."""

__version__ = "0.1.0"
SEED_MAX = 2**31 - 1  # noise seeds are 0..SEED_MAX everywhere: the CLI, the HTTP API, Pipeline
MAX_ASPECT = 4  # the widest (4:1) and tallest (1:4) video a request may ask for, everywhere
FPS_RANGE = (1.0, 120.0)  # the frame rates a request may ask for: the CLI and the HTTP API


def __getattr__(name: str):  # tenku.Pipeline without importing torch for every `tenku` command
    if name == "Pipeline":
        from tenku.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'tenku' has no attribute {name!r}")
