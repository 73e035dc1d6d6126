"""Planning from an input's frames (image-to-video, extend, connect, loop): filled in below."""

from __future__ import annotations

from typing import Any


def from_input(req: Any, spec: Any) -> Any:
    """None: plan from the prompt alone."""
    return None
