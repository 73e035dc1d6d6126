"""The words of the world's language: text -> typed items (a word or a phrase of
:mod:`tenku.lang.vocab` reduced to its canonical value), for :mod:`tenku.lang.parse`.

Tokens are reduced to base forms (``balls`` -> ``ball``, ``sliding`` ->
``slide``, irregulars from ``vocab.IRREGULAR``), then the longest known phrase
wins. A word with two roles in the vocabulary is an error at import time.
Bare "bounce" is resolved here: a wall cue later in its clause ("around",
"off the walls", "the left edge") makes it the ``bounce`` motion, anything else
``fall`` (see ``vocab.AMBIGUOUS_BOUNCE``).
Colour names the vocabulary lacks ("chartreuse", "sky blue") come from the colour
tables of :mod:`tenku.lang.colors` as ``namedcolor`` items holding their sRGB; the
parser maps them to the nearest world colour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tenku.lang import vocab as V
from tenku.lang.colors import COLOR_TERMS, NAMED_COLORS


def _build() -> dict[tuple[str, ...], tuple[str, Any]]:
    lex: dict[tuple[str, ...], tuple[str, Any]] = {}

    def add(words: Any, kind: str, value: Any = None) -> None:
        items = words.items() if isinstance(words, dict) else ((w, value) for w in words)
        for w, v in items:
            key = tuple(w.replace("-", " ").split())
            if key in lex and lex[key] != (kind, v):  # a word in two roles is a vocab bug
                raise RuntimeError(f"vocab conflict for {w!r}: {lex[key]} and {(kind, v)}")
            lex[key] = (kind, v)

    add(V.COLOR_WORDS, "color")
    add(V.BACKGROUND_COLOR_WORDS, "bgcolor")
    add(V.FLOOR_COLOR_WORDS, "floorcolor")
    add(V.SHAPE_WORDS, "shape")
    add(V.GENERIC_NOUNS, "generic")
    add(V.SIZE_WORDS, "size")
    add({w: (m, None, w in V.REST_MODIFIERS) for w, m in V.MOTION_WORDS.items()}, "motion")
    add({w: ("bounce?", None, False) for w in V.AMBIGUOUS_BOUNCE}, "motion")
    add({w: (m, d, False) for w, (m, d) in V.MOTION_DIRECTION_WORDS.items()}, "motion")
    add(V.SETTLE_WORDS, "settle")
    add(V.DIRECTION_WORDS, "dir")
    add(V.REGION_WORDS, "region")
    add(V.COUNT_WORDS, "count")
    add(V.NEW_DETERMINERS, "det_new")
    add(V.DEFINITE_DETERMINERS, "det_def")
    add(V.ORDINALS, "ord")
    add(V.BACKGROUND_KIND_WORDS, "bgkind")
    for words, kind in ((V.BACKGROUND_NOUNS, "bgnoun"), (V.FLOOR_NOUNS, "floor"), (V.CAMERA_NOUNS, "camera"),
                        (V.FRAME_NOUNS, "frame"), (V.EDGE_NOUNS, "edge"), (V.PAN_WORDS, "pan"),
                        (V.LOCATION_PREPOSITIONS, "loc"), (V.OUTSIDE_PREPOSITIONS, "out"),
                        (V.PREPOSITIONS, "prep"), (V.CONJUNCTIONS, "conj"), (V.PRONOUNS, "pron"),
                        (V.RELATIVE_PRONOUNS, "rel"), (V.EXISTENTIALS, "there"), (V.INTRO_VERBS, "intro"),
                        (V.NEGATIONS, "neg"), (V.IGNORED_VERBS, "verb"), (V.IGNORED_ADJECTIVES, "ignadj"),
                        (V.FUNCTION_WORDS, "fn")):
        add(words, kind)
    return lex


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,;:!?]")
_LEX = _build()
_WORDS = {k[0] for k in _LEX if len(k) == 1}  # what inflected words are reduced to


def _lemma(w: str) -> str:
    if w in _WORDS:
        return w
    if w in V.IRREGULAR:
        return V.IRREGULAR[w]
    c: list[str] = []
    if w.endswith("ies"):
        c.append(w[:-3] + "y")
    if w.endswith("es"):
        c.append(w[:-2])
    if w.endswith("s"):
        c.append(w[:-1])
    if w.endswith("ing"):
        b = w[:-3]
        c += [b, b + "e", b[:-1] if len(b) > 2 and b[-1] == b[-2] else ""]
    if w.endswith("ed"):
        b = w[:-2]
        c += [b, w[:-1], b[:-1] if len(b) > 2 and b[-1] == b[-2] else "", b[:-1] + "y" if b.endswith("i") else ""]
    return next((x for x in c if x in _WORDS), w)


def _normalise(lex: dict[tuple[str, ...], tuple[str, Any]]) -> dict[tuple[str, ...], tuple[str, Any]]:
    """Phrases are matched on base forms, so reduce their words the way tokens are reduced."""
    out: dict[tuple[str, ...], tuple[str, Any]] = {}
    for k, v in lex.items():
        key = tuple(_lemma(w) for w in k)
        if out.get(key, v) != v:
            raise RuntimeError(f"vocab conflict for {' '.join(k)!r}: {out[key]} and {v}")
        out[key] = v
    return out


_LEX = _normalise(_LEX)
_COLOR_KINDS = ("color", "bgcolor", "floorcolor")


def _add_named_colors(lex: dict[tuple[str, ...], tuple[str, Any]]) -> None:
    """Names of the colour tables (:mod:`tenku.lang.colors`) the vocabulary lacks, as
    ``namedcolor`` items holding their sRGB. A name of several words must end in a
    colour word, and every word of it that the vocabulary knows must be a colour or
    an ignored adjective ("dark", "pale"): so "medium blue" stays a size and a colour."""
    for name, rgb in NAMED_COLORS.items():
        words = name.split()
        key = tuple(_lemma(w) for w in words)
        if key in lex:  # the vocabulary's own meaning wins ("navy blue", "hot pink")
            continue
        if len(words) > 1 and (words[-1] not in COLOR_TERMS or any(
                lex.get((w,), ("color",))[0] not in _COLOR_KINDS + ("namedcolor", "ignadj") for w in key)):
            continue
        lex[key] = ("namedcolor", rgb)


_add_named_colors(_LEX)
_MAXLEN = max(len(k) for k in _LEX)
# What may follow a colour name of one word for it to be read as a colour ("a chartreuse
# cube", "a salmon medium ball"); elsewhere it is just a word ("rolls past a tomato").
_BEFORE_HEAD = {"color", "bgcolor", "floorcolor", "namedcolor", "size", "ignadj", "shape", "generic", "bgkind",
                "bgnoun", "floor"}


@dataclass
class Item:
    """A word or phrase: its kind (color, shape, motion, dir, det_new, prep, word, ...), the
    canonical value it names, its base form, and whether a noun was plural."""

    kind: str
    value: Any
    text: str
    plural: bool = False


def tokenize(text: str) -> list[Item]:
    """Words and phrases of ``text`` as typed items, longest known phrase first."""
    text = re.sub(r"[-_/]", " ", text.lower().replace("\u2019", "'"))
    toks = [t[:-2] if t.endswith("'s") else t for t in _TOKEN.findall(text)]
    lems = [_lemma(t) for t in toks]
    out: list[Item] = []
    k = 0
    while k < len(toks):
        for n in range(min(_MAXLEN, len(toks) - k), 0, -1):
            hit = _LEX.get(tuple(lems[k : k + n]))
            if hit:
                plural = n == 1 and toks[k] != lems[k] and toks[k].endswith("s")
                out.append(Item(hit[0], hit[1], " ".join(lems[k : k + n]), plural))
                k += n
                break
        else:
            t = toks[k]
            if t in ".;:!?":
                out.append(Item("stop", None, t))
            elif t == ",":
                out.append(Item("conj", None, t))
            elif t.isdigit():
                out.append(Item("count", int(t), t))
            elif t.endswith("ly") and len(t) > 4:  # adverbs say how, never what
                out.append(Item("fn", None, t))
            else:
                out.append(Item("word", None, t))
            k += 1
    for k, it in enumerate(out):  # a colour name of one word is a colour only before a noun or after "is"
        if it.kind == "namedcolor" and " " not in it.text:
            nxt, prev = out[k + 1] if k + 1 < len(out) else None, out[k - 1] if k else None
            if not ((nxt and (nxt.kind in _BEFORE_HEAD or (nxt.kind == "count" and nxt.text == "one")))
                    or (prev and prev.kind == "verb" and prev.text in ("be", "is", "are", "was", "were"))):
                out[k] = Item("word", None, it.text)
    for k, it in enumerate(out):  # bare "bounce": wall cue -> bounce, else fall
        if it.kind == "motion" and it.value[0] == "bounce?":
            m = "fall"
            for nxt in out[k + 1 : k + 8]:
                if nxt.kind in ("stop", "conj"):
                    break
                words = set(nxt.text.split())
                if nxt.kind == "floor" or words & set(V.BOUNCE_FLOOR_CUES):
                    break
                if nxt.kind in ("edge", "frame") or words & set(V.BOUNCE_WALL_CUES) or (
                        nxt.kind == "region" and not nxt.value.startswith("bottom")):
                    m = "bounce"
                    break
            it.value = (m, None, False)
    return out
