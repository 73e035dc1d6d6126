"""What the parser of :mod:`tenku.lang.parse` returns: the objects, background and
unknown words a prompt or caption states, and the hints the scene sampler
(:func:`tenku.world.sample.sample_scene`) takes from them. Field values are the
canonical names of :mod:`tenku.world.spec`; None means the text did not say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HINT_KEYS = ("shape", "color", "size", "motion", "direction")


@dataclass
class ParsedObject:
    """One object (or ``count`` identical ones) as the text describes it; None = not said."""

    color: str | None = None
    shape: str | None = None
    size: str | None = None
    motion: str | None = None
    direction: str | None = None
    count: int = 1
    region: str | None = None  # where it starts: "top-left", "center", "outside-left", ...

    def hint(self) -> dict[str, str]:
        """The attributes that were stated, as a scene-sampler hint."""
        return {k: getattr(self, k) for k in HINT_KEYS if getattr(self, k) is not None}


@dataclass
class ParsedBackground:
    kind: str | None = None  # one of BACKGROUND_KINDS
    colors: tuple[str, str] | None = None  # names in BACKGROUNDS; a single stated colour is doubled
    floor: bool | None = None  # None: not mentioned
    floor_color: str | None = None
    pan: str | None = None  # "left" or "right": where the camera pans


@dataclass
class ParsedPrompt:
    objects: list[ParsedObject]
    background: ParsedBackground
    unknown: list[str]
    # colour words that are not the world colour they are drawn as: "navy blue drawn as blue
    # (nearest world colour)", "magenta drawn as pink (a synonym in the world's vocabulary)"
    color_notes: list[str] = field(default_factory=list)

    def object_hints(self) -> list[dict[str, str]]:
        """One hint dict per object (counts expanded), for ``sample_scene(objects=...)``."""
        return [o.hint() for o in self.objects for _ in range(max(1, o.count))]

    def background_hint(self) -> dict[str, Any]:
        """The stated background fields, for ``sample_scene(background=...)``."""
        b = self.background
        d = {"kind": b.kind, "colors": list(b.colors) if b.colors else None, "floor": b.floor,
             "floor_color": b.floor_color}
        return {k: v for k, v in d.items() if v is not None}
