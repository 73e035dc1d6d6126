"""Wording shared by the short and the detailed captions (:mod:`tenku.lang.captions`,
:mod:`tenku.lang.detailed`): direction phrases, the seeded choice among synonyms,
articles and plurals, and the region of the frame where an object starts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tenku.lang import vocab as V
from tenku.world.spec import GroundTruth, SceneSpec

_NUM = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times", 6: "six times",
        7: "seven times", 8: "eight times", 9: "nine times", 10: "ten times"}
# Phrases for each direction of spec.DIRECTIONS.
DIRECTION_PHRASES = {
    "left": ("to the left", "leftward", "left", "towards the left"),
    "right": ("to the right", "rightward", "right", "towards the right"),
    "up": ("upward", "up", "towards the top of the frame", "upwards"),
    "down": ("downward", "down", "towards the bottom of the frame", "downwards"),
    **{f"{v}-{h}": (f"{v} and to the {h}", f"towards the {n} {h}", f"diagonally {v} and to the {h}", f"{v} and {h}")
       for v, n in (("up", "top"), ("down", "bottom")) for h in ("left", "right")},
}


def choose(rng: np.random.Generator, seq: Sequence[str]) -> str:
    """One item of ``seq``, drawn from ``rng``."""
    return seq[int(rng.integers(len(seq)))]


def article(word: str) -> str:
    """The indefinite article before ``word``."""
    return "an" if word[0] in "aeiou" else "a"


def plural_noun(noun: str) -> str:
    """The plural of a shape noun (all of them are regular)."""
    return noun + ("es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


def capitalise(s: str) -> str:
    """``s`` with its first letter upper case (str.capitalize would lower the rest)."""
    return s[0].upper() + s[1:]


def shape_noun(shape: str, rng: np.random.Generator, p_syn: float = 0.5) -> str:
    """A noun for ``shape``: a synonym of ``vocab.CAPTION_SHAPE_NOUNS`` with probability ``p_syn``."""
    nouns = V.CAPTION_SHAPE_NOUNS[shape]
    return choose(rng, nouns[1:]) if rng.random() < p_syn and len(nouns) > 1 else shape


def times(n: int, rng: np.random.Generator) -> str:
    """"once", "twice", ... "ten times"; past ten, a vaguer phrase."""
    return _NUM[n] if n in _NUM else choose(rng, ("many times", "over and over", "again and again"))


def start_region(spec: SceneSpec, gt: GroundTruth, i: int) -> str:
    """Where object ``i`` is in the first frame: a region name of ``vocab.REGION_WORDS``
    ("top-left", "center", ...) or "outside-<edge>" when it starts out of frame."""
    box = gt.bbox[i][0] if gt.bbox and gt.bbox[i] else None
    if (gt.reason and gt.reason[i][0] == "out_of_frame") or (box is None and gt.bbox):
        side = next((e.where for e in gt.events if e.type == "enter_frame" and e.objects[0] == i and e.where), None)
        if side is None:
            x, y = gt.position[i][0]
            side = "left" if x < 0 else "right" if x > spec.width else "top" if y > 1 else "bottom" if y < 0 else (
                "left" if x < spec.width / 2 else "right")
        return f"outside-{side}"
    if box is not None:  # what the viewer sees, right under a panning camera too
        fx, fy = (box[0] + box[2]) / 2 / gt.width, 1 - (box[1] + box[3]) / 2 / gt.height
    else:
        fx, fy = gt.position[i][0][0] / spec.width, gt.position[i][0][1]
    h = "left" if fx < 1 / 3 else "right" if fx > 2 / 3 else ""
    v = "top" if fy > 2 / 3 else "bottom" if fy < 1 / 3 else ""
    return f"{v}-{h}" if v and h else v or h or "center"
