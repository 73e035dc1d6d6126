"""tenku: an open, Sora-style text-to-video system."""

__version__ = "0.1.0"
