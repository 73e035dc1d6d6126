"""Noun phrases of the world's language, for :mod:`tenku.lang.parse`.

A noun phrase is ``[article|count] [ordinal] modifiers* head``: modifiers are
colours, sizes, regions, background kinds and ignored adjectives; the head is a
shape, a generic noun ("object", "the red one"), or scenery (background, floor,
camera, frame, edge). Unknown words inside a phrase are kept, so the parser can
report them ("a *zebra* ball").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tenku.lang.lexicon import Item

# Item kinds that can start a noun phrase, modify its head, or be its head.
NP_START = {"det_new", "det_def", "count", "color", "bgcolor", "floorcolor", "namedcolor", "size", "shape",
            "generic", "bgkind", "bgnoun", "floor", "camera", "frame", "edge", "region"}
MODIFIERS = {"color", "bgcolor", "floorcolor", "namedcolor", "size", "region", "ignadj", "bgkind"}
COLOR_KINDS = ("color", "bgcolor", "floorcolor", "namedcolor")  # a world colour of some role, or a named one
HEADS = {"shape", "generic", "bgnoun", "floor", "camera", "frame", "edge"}


@dataclass
class NounPhrase:
    """A noun phrase starting at item ``start``: its determiner, count, ordinal,
    modifiers, participles ("a *bouncing* ball"), head and the unknown words in it."""

    start: int
    det: str | None = None  # "new", "def" or None (bare)
    det_text: str = ""
    count: int | None = None
    ordinal: int | None = None
    mods: list[Item] = field(default_factory=list)
    motions: list[Item] = field(default_factory=list)
    head: Item | None = None
    unknown: list[str] = field(default_factory=list)

    def of(self, *kinds: str) -> list[Any]:
        """Values of the modifiers of these kinds, in order."""
        return [m.value for m in self.mods if m.kind in kinds]


def noun_phrase(items: list[Item], k: int) -> tuple[NounPhrase, int]:
    """The noun phrase starting at ``items[k]`` and the index of the item after it."""
    np_, j, n = NounPhrase(k), k, len(items)
    it = items[j]
    if it.kind in ("det_new", "det_def"):
        np_.det, np_.det_text, j = ("new" if it.kind == "det_new" else "def"), it.text, j + 1
    elif it.kind == "count":
        np_.det, np_.count, j = "new", it.value, j + 1
    elif it.kind == "pron":  # "both balls"
        np_.det, np_.count, j = "def", 2, j + 1
    while j < n:
        it, nxt = items[j], items[j + 1] if j + 1 < n else None
        if it.kind == "count" and it.text == "one" and (np_.mods or np_.unknown):  # "the red one"
            np_.head, j = Item("generic", None, "one"), j + 1
            break
        if it.kind == "count" and not np_.mods and np_.count is None:  # "the two balls"
            np_.count, j = it.value, j + 1
            continue
        if it.kind == "ord" and np_.det and not np_.mods:
            np_.ordinal, j = it.value, j + 1
            continue
        if it.kind == "bgkind" and not (nxt and (nxt.kind in MODIFIERS or nxt.kind in HEADS)):
            np_.head, j = it, j + 1  # "a gradient", "navy stripes"
            break
        if it.kind in MODIFIERS:
            np_.mods.append(it)
            j += 1
            continue
        if (it.kind == "conj" and it.text in ("and", ",") and np_.mods and np_.mods[-1].kind == "bgcolor"
                and nxt and nxt.kind == "bgcolor"):  # "a navy and slate checkerboard"
            j += 1
            continue
        if it.kind == "motion" and (np_.det or np_.mods) and nxt and (nxt.kind in MODIFIERS or nxt.kind in HEADS):
            np_.motions.append(it)  # "a bouncing red ball", "a stationary blue box"
            j += 1
            continue
        if it.kind == "word":
            np_.unknown.append(it.text)
            j += 1
            continue
        if it.kind in HEADS:
            np_.head, j = it, j + 1
        break
    return np_, j
