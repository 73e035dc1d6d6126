"""A rule-based parser of the physics world's language: prompts such as
``"a red ball bounces"`` and the detailed captions of :mod:`tenku.lang.detailed`.

How it reads text:

- Words are reduced to base forms and grouped into the longest phrases that
  :mod:`tenku.lang.vocab` knows (``"up and to the right"``, ``"navy blue"``).
- A noun phrase (:mod:`tenku.lang.phrases`) is ``[article|count] [ordinal] modifiers* head``. An article
  (``a``, ``an``, ``another``) or a count introduces a new object; ``the``
  refers back to the first earlier object whose attributes agree (the
  ``n``-th one after an ordinal: ``"the second red ball"``) and introduces one
  only if none does. A phrase without article refers back when an earlier
  object agrees and is new otherwise.
- **Counts**: ``"two red balls"`` is *one* :class:`ParsedObject` with
  ``count=2``; a plural without a number gets ``count=2``.
  :meth:`ParsedPrompt.object_hints` expands counts into one hint per object.
- Motions and directions attach to the subject of their clause (``"it"``
  and ``"which"`` included); the first motion and the first direction stated
  for an object win, so later event words ("it bounces off the left wall")
  never overwrite the main motion. ``"still"``/``"motionless"`` right after
  a motion verb turns it into rest ("floats motionless").
- **Bare "bounces"** means ``fall`` (a dropped ball bouncing on the floor); it
  means ``bounce`` (around the frame) when a wall cue follows in its clause:
  "bounces around", "off the walls", "off the left edge".
- ``unknown`` lists content words it could not map: words inside a noun
  phrase ("a *zebra* ball", "a red *dog*", "onto a *trampoline*") and unknown
  nouns in subject position ("*zebras* fall"). Function words, adverbs and
  common verbs are never reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tenku.lang import vocab as V
from tenku.lang.lexicon import Item, tokenize
from tenku.lang.parsed import ParsedBackground, ParsedObject, ParsedPrompt
from tenku.lang.colors import world_color
from tenku.lang.phrases import COLOR_KINDS, HEADS, NP_START, NounPhrase, noun_phrase

# Item kinds after which a bare "left"/"right" is a direction ("drifts left"), not a region.
_VERBISH = {"motion", "verb", "pan", "settle", "intro"}

# --- the parser -----------------------------------------------------------------------

@dataclass
class _Clause:
    subj: list[Any] = field(default_factory=list)  # ParsedObject or "camera"/"bg"/"floor"/"frame"
    verb: bool = False
    conn: bool = False
    pending: list[Any] | None = None
    expect: bool = False
    last_np: list[Any] = field(default_factory=list)
    just_set: set[int] = field(default_factory=set)
    pan: bool = False
    neg: int = -1
    prev: str | None = None
    prev_text: str = ""
    loose: list[tuple[int, str]] = field(default_factory=list)
    pend_motion: tuple[str, str | None] | None = None
    pend_dir: str | None = None
    pend_region: str | None = None


def _objs(ents: list[Any] | None) -> list[ParsedObject]:
    return [e for e in ents or [] if isinstance(e, ParsedObject)]


class _Parser:
    def __init__(self) -> None:
        self.objects: list[ParsedObject] = []
        self.bg = ParsedBackground()
        self.bg_colors: list[str] = []
        self.color_notes: list[str] = []
        self.unknown: list[str] = []
        self.focus: list[Any] = []

    def report(self, *words: str) -> None:
        self.unknown += [w for w in words if w not in self.unknown]

    def sentence(self, items: list[Item]) -> None:
        st, k = _Clause(), 0
        while k < len(items):
            it = items[k]
            kind = it.kind
            if kind == "region" and st.prev in _VERBISH and it.value in V.BARE_DIRECTIONS and not (
                    k + 1 < len(items) and items[k + 1].kind in HEADS):
                self.direction(V.BARE_DIRECTIONS[it.value], st)  # "drifts left", "pans right"
            elif kind in NP_START or (kind == "pron" and it.text == "both" and k + 1 < len(items)
                                       and items[k + 1].kind in ("shape", "generic", "color", "size")):
                np_, k2 = noun_phrase(items, k)
                self.noun_phrase(np_, st, k)
                st.prev, st.prev_text = "np", ""
                k = k2
                continue
            elif kind == "conj":
                st.conn, st.just_set = True, set()
            elif kind == "word":
                st.loose.append((k, it.text))
                k += 1
                continue
            elif kind in ("fn", "ignadj", "ord"):
                k += 1
                continue  # adverbs between a verb and its direction keep the verb as prev
            elif kind == "dir":
                if not self.is_location(items, k):
                    self.direction(it.value, st)
            elif kind == "pron":
                self.pronoun(it, st)
            elif kind == "rel":
                st.pending = st.last_np or st.subj
            elif kind == "there":
                st.expect = True
            elif kind == "neg":
                st.neg = k + 4
            elif kind in _VERBISH:
                self.verb(it, st, k)
            st.prev, st.prev_text = kind, it.text
            k += 1
        if st.subj:
            self.focus = st.subj

    @staticmethod
    def is_location(items: list[Item], k: int) -> bool:
        """'to the left of the blue box' places, it does not move."""
        it = items[k]
        if not it.text.startswith(("to ", "toward")) or k + 1 >= len(items) or items[k + 1].text != "of":
            return False
        return any(x.kind in ("shape", "generic", "color") for x in items[k + 2 : k + 6])

    def set_subject(self, st: _Clause, ents: list[Any]) -> None:
        st.subj, st.pending, st.pan, st.just_set = list(ents), None, False, set()
        for o in _objs(ents):
            if st.pend_motion:
                self.set_motion(o, *st.pend_motion, False, st)
            if st.pend_dir and o.direction is None:
                o.direction = st.pend_dir
            if st.pend_region and o.region is None:
                o.region = st.pend_region
        st.pend_motion = st.pend_dir = st.pend_region = None

    def pronoun(self, it: Item, st: _Clause) -> None:
        if st.prev not in (None, "conj"):
            return  # object of a verb or preposition: "hiding it", "behind them"
        if not st.verb:
            if not st.subj:
                self.set_subject(st, st.subj or self.focus)
        else:
            st.pending = list(st.subj or self.focus)

    def verb(self, it: Item, st: _Clause, k: int) -> None:
        if st.pending is not None:
            self.set_subject(st, st.pending)
        if not st.subj and not st.verb and st.loose and st.loose[-1][0] == k - 1:
            self.report(*[w for _, w in st.loose])  # an unknown noun as subject: "zebras fall"
        st.loose.clear()
        st.verb, st.conn = True, False
        if it.kind == "pan":
            st.pan = True
        elif it.kind == "intro":
            st.expect = True
        elif it.kind == "motion":
            m, d, restmod = it.value
            if k <= st.neg and m == "move":  # "does not move"
                m = "rest"
            if st.pan or "camera" in st.subj:  # "the camera pans over a box resting on the floor"
                targets = _objs(st.last_np)
            else:
                targets = self.targets(st)
            if not targets and not st.subj:  # a leading participle: "falling red ball"
                st.pend_motion, st.verb = (m, d), False
            for o in targets:
                self.set_motion(o, m, d, restmod, st)

    def targets(self, st: _Clause) -> list[ParsedObject]:
        objs = _objs(st.subj)
        if objs:
            return objs
        if st.subj and _objs(st.last_np):  # "a grey background with a red ball falling"
            return _objs(st.last_np)
        return _objs(self.focus) if not st.subj and not st.pending else []

    @staticmethod
    def set_motion(o: ParsedObject, m: str, d: str | None, restmod: bool, st: _Clause) -> None:
        if o.motion is None:
            o.motion = m
            st.just_set.add(id(o))
            if d and o.direction is None:
                o.direction = d
        elif restmod and id(o) in st.just_set:  # "floats motionless"
            o.motion = "rest"

    def direction(self, d: str, st: _Clause) -> None:
        if st.pan or "camera" in st.subj:
            if d in ("left", "right") and self.bg.pan is None:
                self.bg.pan = d
            return
        targets = self.targets(st)
        if not targets:
            st.pend_dir = d
        for o in targets:
            # a fall is downward anyway: "drops straight down, drifting left" drifts left
            if o.direction is None and not (o.motion == "fall" and d == "down"):
                o.direction = d

    def region(self, value: str, st: _Clause) -> None:
        objs = _objs(st.subj)
        if not st.subj:
            st.pend_region = value
        for o in objs:
            if o.region is None:
                o.region = value

    def match(self, attrs: dict[str, str], ordinal: int | None) -> ParsedObject | None:
        ok = [o for o in self.objects if all(getattr(o, a) in (None, v) for a, v in attrs.items())]
        exact = [o for o in ok if all(getattr(o, a) == v for a, v in attrs.items())]
        cands = exact or ok
        if ordinal:
            return cands[ordinal - 1] if ordinal <= len(cands) else None
        return cands[0] if cands else None

    def noun_phrase(self, np_: NounPhrase, st: _Clause, k: int) -> None:
        before, before_text = st.prev, st.prev_text
        hk = np_.head.kind if np_.head else None
        negated = k <= st.neg
        if np_.unknown and not (np_.det_text in ("its", "their") and hk is None):
            self.report(*np_.unknown)
        if st.loose and st.loose[-1][0] == k - 1 and hk in ("shape", "generic", "bgnoun", "floor"):
            self.report(*[w for _, w in st.loose])  # "a zebra ball", "zebra ball"
        st.loose.clear()
        # object colours and scenery colours decide what the phrase is; what each colour
        # word means is then decided for that role (a "navy" ball is drawn blue)
        colors, sizes, bgc, kinds = np_.of("color", "namedcolor"), np_.of("size"), np_.of("bgcolor", "floorcolor"), \
            np_.of("bgkind")
        paints = [m for m in np_.mods if m.kind in COLOR_KINDS]
        scenery = hk is None and st.verb and not sizes and ("bg" in st.subj or "floor" in st.subj)
        ents: list[Any] = []
        if hk == "bgkind" or hk == "bgnoun" or (hk is None and (bgc or kinds) and not colors and not sizes) or scenery:
            kinds += [np_.head.value] if hk == "bgkind" else []
            if self.bg.kind is None and kinds:
                self.bg.kind = kinds[0]
            if hk is None and "floor" in st.subj:  # "the floor is grey"
                self.floor_colors(np_)
            else:
                self.bg_colors += [self.paint(m, "background") for m in paints]
            ents = ["bg"] if hk else []
        elif hk == "floor":
            if self.bg.floor is None:
                self.bg.floor = not negated
            if kinds and self.bg.kind is None and not negated:  # "a checkered floor": the world's floor is one
                self.bg.kind = kinds[0]  # colour, so the pattern goes to the backdrop above it, not lost
            self.floor_colors(np_)
            ents = ["floor"]
        elif hk in ("camera", "frame"):
            if hk == "frame" and kinds and self.bg.kind is None:
                self.bg.kind = kinds[0]
            ents = [hk]
        elif hk == "edge" or (hk is None and not colors and not sizes):
            regions = np_.of("region")
            if regions and (before in ("loc", "out") or (before == "prep" and before_text == "from")):
                self.region(("outside-" if before == "out" else "") + regions[0], st)
            return
        else:  # an object
            colors = [self.paint(m, "object") for m in paints]
            if hk is None and np_.det is None and st.verb and _objs(st.subj) and before not in ("prep", "loc", "out"):
                for o in _objs(st.subj):  # predicate: "the ball is red"
                    o.color = o.color or (colors[0] if colors else None)
                    o.size = o.size or (sizes[0] if sizes else None)
                return
            if not colors and not sizes and hk == "generic" and np_.det != "new" and not np_.count:
                return  # "the shape", "star-shaped object": nothing new is said
            ents = [self.object(np_, colors, sizes)]
            for m in np_.motions:
                self.set_motion(ents[0], *m.value[:2], m.value[2], st)
        if not ents:
            return
        if st.expect:
            st.expect = False
            self.set_subject(st, ents)
        elif before in ("prep", "loc", "out"):
            pass
        elif not st.verb:
            self.set_subject(st, st.subj + ents)
        elif st.conn:
            st.pending = (st.pending or []) + ents  # "..., and a blue box and a green star rest"
        st.conn = False
        if _objs(ents):
            st.last_np = ents

    def floor_colors(self, np_: NounPhrase) -> None:
        for m in np_.mods:
            if m.kind in COLOR_KINDS:
                self.bg.floor_color = self.bg.floor_color or self.paint(m, "floor")

    def paint(self, m: Item, role: str) -> str:
        """The world colour of colour word ``m`` as an object's, a backdrop's or a floor's;
        a note when that is not the colour the word names."""
        name, note = world_color(m.text, m.value, role)
        if note and note not in self.color_notes:
            self.color_notes.append(note)
        return name

    def object(self, np_: NounPhrase, colors: list[str], sizes: list[str]) -> ParsedObject:
        attrs = {"color": colors[0] if colors else None,
                 "shape": np_.head.value if np_.head and np_.head.kind == "shape" else None,
                 "size": sizes[0] if sizes else None}
        attrs = {a: v for a, v in attrs.items() if v is not None}
        o = None if np_.det == "new" or not attrs else self.match(attrs, np_.ordinal)
        if o is None:
            count = np_.count or (2 if np_.head is not None and np_.head.plural else 1)
            o = ParsedObject(count=count, **attrs)
            self.objects.append(o)
        for a, v in attrs.items():
            if getattr(o, a) is None:
                setattr(o, a, v)
        return o

    def result(self) -> ParsedPrompt:
        for o in self.objects:
            if o.motion == "rest" or (o.motion == "fall" and o.direction == "down"):
                o.direction = None  # a fall is downward by definition
        if self.bg_colors:
            self.bg.colors = (self.bg_colors[0], self.bg_colors[1] if len(self.bg_colors) > 1 else self.bg_colors[0])
        return ParsedPrompt(self.objects, self.bg, self.unknown, self.color_notes)


def parse_prompt(text: str) -> ParsedPrompt:
    """Parse a prompt or caption of the physics world into objects, background and unknown words."""
    p = _Parser()
    sentence: list[Item] = []
    for it in tokenize(text) + [Item("stop", None, ".")]:
        if it.kind == "stop":
            if sentence:
                p.sentence(sentence)
            sentence = []
        else:
            sentence.append(it)
    return p.result()
