"""Captions of world videos ("recaptioning"): a short prompt such as a user would
type, and a dense Sora-style description written from the scene spec and the
rendered ground truth (starting regions, bounces, collisions, occlusions,
objects leaving and entering the frame, background, camera).

Wording is drawn from a seeded generator: synonyms, templates, sentence and
object order, active and passive voice vary, so a model learns language and
not one template. Every caption stays within what :func:`tenku.world.parse.
parse_prompt` reads back: each object is introduced once with an article and
its size, colour and shape, and referred to afterwards unambiguously ("the red
ball", "the second small red circle"); the first motion stated for an object is
its spec motion.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tenku.world import vocab as V
from tenku.world.spec import GroundTruth, SceneSpec

_NUM = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times", 6: "six times",
        7: "seven times", 8: "eight times", 9: "nine times", 10: "ten times"}
_COUNT = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
_ORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth"}
_DIR = {
    "left": ("to the left", "leftward", "left", "towards the left"),
    "right": ("to the right", "rightward", "right", "towards the right"),
    "up": ("upward", "up", "towards the top of the frame", "upwards"),
    "down": ("downward", "down", "towards the bottom of the frame", "downwards"),
    **{f"{v}-{h}": (f"{v} and to the {h}", f"towards the {n} {h}", f"diagonally {v} and to the {h}", f"{v} and {h}")
       for v, n in (("up", "top"), ("down", "bottom")) for h in ("left", "right")},
}
_REGION = {  # where an object starts, with its preposition
    **{f"{v}-{h}": (f"in the {v} {h} of the frame", f"in the {v} {h} corner", f"near the {v} {h} corner",
                    f"in the {u} {h}", f"at the {u} {h}") for v, u in (("top", "upper"), ("bottom", "lower"))
       for h in ("left", "right")},
    **{v: (f"at the {v} of the frame", f"near the {v} centre", f"in the {v} middle of the frame",
           f"near the {v} of the frame") for v in ("top", "bottom")},
    **{h: (f"on the {h} side of the frame", f"in the middle {h} of the frame", f"near the {h} side of the frame",
           f"at the {h} of the frame") for h in ("left", "right")},
    "center": ("in the centre of the frame", "in the middle of the frame", "near the center of the frame",
               "in the middle"),
}
# (singular, plural) verb phrases of a short caption per motion; ones of one word come first
_SHORT = {
    "rest": (("rests", "rest"), ("sits", "sit"), ("sits still", "sit still"), ("stays still", "stay still"),
             ("does not move", "do not move")),
    "move": (("drifts", "drift"), ("glides", "glide"), ("slides", "slide"), ("moves", "move"),
             ("floats", "float")),
    "bounce": (("ricochets", "ricochet"), ("bounces around", "bounce around"),
               ("bounces off the walls", "bounce off the walls"), ("ricochets around", "ricochet around")),
    "fall": (("falls", "fall"), ("drops", "drop"), ("bounces", "bounce"), ("tumbles", "tumble"),
             ("falls and bounces", "fall and bounce")),
    "throw": (("arcs", "arc"), ("leaps", "leap"), ("is thrown", "are thrown"), ("is tossed", "are tossed"),
              ("is launched", "are launched")),
}


def _c(rng: np.random.Generator, seq: Sequence[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


def _an(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def _noun(shape: str, rng: np.random.Generator, p_syn: float = 0.5) -> str:
    nouns = V.CAPTION_SHAPE_NOUNS[shape]
    return _c(rng, nouns[1:]) if rng.random() < p_syn and len(nouns) > 1 else shape


def _times(n: int, rng: np.random.Generator) -> str:
    return _NUM[n] if n in _NUM else _c(rng, ("many times", "over and over", "again and again"))


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


# --- short captions --------------------------------------------------------------------

def short_caption(spec: SceneSpec, gt: GroundTruth, rng: np.random.Generator) -> str:
    """What a user would type: lowercase, about 3-12 words, every object's colour,
    shape and main motion ("a red ball falls and bounces", "two blue boxes drift
    left"). Identical objects with the same motion are counted; past four
    distinct objects the 12-word budget cannot hold and is exceeded."""
    objs = spec.objects
    by_kind: dict[tuple, list[int]] = {}  # identical objects doing the same thing are counted
    for i, o in enumerate(objs):
        by_kind.setdefault((o.size, o.color, o.shape, o.motion, o.direction), []).append(i)
    groups = list(by_kind.values())
    first = [objs[g[0]] for g in groups]
    # a red ball and a bigger red ball need their sizes; identical objects need "another"
    need_size = [any((a.color, a.shape) == (b.color, b.shape) and a.size != b.size for a in first) for b in first]
    picks = [dict(noun=_noun(o.shape, rng),
                  color=_c(rng, V.CAPTION_COLOR_WORDS[o.color]) if rng.random() < 0.15 else o.color,
                  size=_c(rng, V.CAPTION_SIZE_WORDS[o.size]), verb=int(rng.integers(8)),
                  dir=_c(rng, _DIR[o.direction]) if o.direction in _DIR else "")
             for o in first]
    with_size = rng.random() < 0.35
    casual = rng.random() < 0.2  # users often drop articles
    joiner = _c(rng, (", ", " and ", " while "))
    hit = None
    if len(groups) == 2 and all(len(g) == 1 for g in groups) and rng.random() < 0.5:
        a, b = groups[0][0], groups[1][0]
        if objs[b].motion != "rest":
            a, b = b, a
        if objs[b].motion == "rest" and objs[a].motion != "rest" and any(
                e.type == "collision" and set(e.objects) == {a, b} for e in gt.events):
            hit = (groups.index([a]), groups.index([b]), _c(rng, ("stationary", "resting", "motionless")))

    def build(level: int) -> str:
        seen: list[tuple[str, str, str]] = []

        def np_(k: int, extra: str = "") -> str:
            o, p, n = objs[groups[k][0]], picks[k], len(groups[k])
            size = p["size"] + " " if (need_size[k] or (with_size and level < 1)) else ""
            ident = (o.size, o.color, o.shape)
            body = f"{extra}{size}{p['color']} {p['noun'] if n == 1 else _plural(p['noun'])}"
            art = "another" if ident in seen else _an(body)
            seen.append(ident)
            if n > 1:
                return f"{_COUNT.get(n, str(n))} {body}"
            return body if (casual or level >= 4) and art != "another" and not extra else f"{art} {body}"

        def vp(k: int, plural: bool) -> str:
            o, p = objs[groups[k][0]], picks[k]
            forms = _SHORT[o.motion]
            form = forms[0 if level >= 2 else p["verb"] % len(forms)][1 if plural else 0]
            if o.motion == "fall" and o.direction in ("left", "right") and level < 3:
                return f"{form}, drifting {p['dir']}"
            return f"{form} {p['dir']}" if p["dir"] and level < 3 and o.motion in ("move", "throw") else form

        if hit:
            a, b, adj = hit
            return f"{np_(a)} {vp(a, False)} and hits {np_(b, adj + ' ')}"
        clauses: list[tuple[list[int], str]] = []  # groups that share a verb phrase share a clause
        for k in range(len(groups)):
            same = next((c for c in clauses if vp(c[0][0], False) == vp(k, False)), None)
            same[0].append(k) if same and level < 5 else clauses.append(([k], vp(k, False)))
        parts = []
        for ks, _ in clauses:
            subj = [np_(k) for k in ks]
            plural = len(ks) > 1 or len(groups[ks[0]]) > 1
            parts.append(f"{' and '.join([', '.join(subj[:-1]), subj[-1]] if len(subj) > 1 else subj)} "
                         f"{vp(ks[0], plural)}")
        if level >= 5:  # the tightest form: "red ball falls, blue box rests, green star drifts"
            return ", ".join(parts)
        if len(parts) <= 2:
            return joiner.join(parts)
        return ", ".join(parts[:-1]) + " and " + parts[-1]

    text = build(0)
    for level in range(1, 6):
        if len(text.split()) <= 12:
            break
        text = build(level)
    return text.lower()


# --- detailed captions --------------------------------------------------------------------

class _Writer:
    def __init__(self, spec: SceneSpec, gt: GroundTruth, rng: np.random.Generator):
        self.spec, self.gt, self.rng, self.objs = spec, gt, rng, spec.objects
        self.introduced: list[int] = []
        self.told: set[tuple[str, int, int]] = set()  # collision/occlusion pairs already narrated

    def key(self, j: int) -> tuple[str, str, str]:
        o = self.objs[j]
        return (o.size, o.color, o.shape)

    def np(self, i: int) -> str:
        """The first mention introduces the object; later ones refer back."""
        if i in self.introduced:
            return self.ref(i)
        o = self.objs[i]
        size = o.size if self.rng.random() < 0.7 else _c(self.rng, V.CAPTION_SIZE_WORDS[o.size])
        body = f"{size} {o.color} {_noun(o.shape, self.rng, 0.4)}"
        art = "another" if any(self.key(j) == self.key(i) for j in self.introduced) else _an(body)
        self.introduced.append(i)
        return f"{art} {body}"

    def ref(self, i: int) -> str:
        o, r, n = self.objs[i], self.rng, range(len(self.objs))
        same = [j for j in self.introduced if self.key(j) == self.key(i)]
        noun = _noun(o.shape, r, 0.4)
        if len(same) > 1 or sum(self.key(j) == self.key(i) for j in n) > 1:
            return f"the {_ORD[same.index(i) + 1]} {o.size} {o.color} {noun}"
        opts = []
        if sum((self.objs[j].color, self.objs[j].shape) == (o.color, o.shape) for j in n) == 1:
            opts += [f"the {o.color} {noun}"] * 4
            if sum(self.objs[j].color == o.color for j in n) == 1:
                opts += [f"the {o.color} one", f"the {o.color} shape"]
        opts.append(f"the {o.size} {o.color} {noun}")
        return _c(r, opts)

    def region_phrase(self, region: str) -> str:
        r = self.rng
        if region.startswith("outside-"):
            side = region.split("-", 1)[1]
            return f"{_c(r, ('just outside', 'beyond', 'just beyond'))} the {side} edge of the frame"
        return _c(r, _REGION[region])

    def motion_vp(self, i: int) -> str:
        o, r = self.objs[i], self.rng
        d = _c(r, _DIR[o.direction]) if o.direction in _DIR else ""
        if o.motion == "rest":
            if any(e.type == "collision" and i in e.objects for e in self.gt.events):  # knocked later: still at first
                return _c(r, ("stays still at first", "is at rest at first", "sits still until it is hit"))
            return _c(r, ("stays still", "does not move", "remains stationary", "stays put", "never moves",
                          "stays perfectly still"))
        if o.motion == "move":
            if o.direction == "up" and r.random() < 0.4:
                return _c(r, ("rises", "climbs")) + _c(r, (" steadily", " slowly", ""))
            if o.direction == "down" and r.random() < 0.4:
                return _c(r, ("sinks", "descends")) + _c(r, (" steadily", " slowly", ""))
            verb = _c(r, ("moves", "drifts", "glides", "slides", "travels", "floats", "cruises"))
            return f"{verb} {d}" if d else f"{verb} {_c(r, ('steadily', 'across the frame'))}"
        if o.motion == "bounce":
            vp = _c(r, ("bounces around the frame", "ricochets around the frame", "bounces off the walls",
                        "bounces around inside the frame", "ricochets off the walls"))
            if not d:
                return vp
            return f"{vp}, {_c(r, ('heading', 'setting off', 'starting off'))} {d}" + _c(r, (" at first", ""))
        if o.motion == "fall":
            vp = _c(r, ("falls", "drops", "tumbles", "falls under gravity", "drops straight down", "plummets"))
            return f"{vp}, drifting {d}" if d and o.direction != "down" else vp
        vp = _c(r, ("is thrown", "is tossed", "is launched", "is lobbed", "gets thrown", "is flung", "leaps"))
        return f"{vp} {d}" + _c(r, (" in an arc", " in a high arc", "")) if d else f"{vp} into the air"

    def facts(self, i: int) -> list[tuple[float, str, int]]:
        """Event clauses of object i in time order: (t, text, subject). Subject i means the text
        is a verb phrase about i; another subject means the text is a whole clause about that one."""
        o, r, floor = self.objs[i], self.rng, self.spec.background.floor
        evs = [e for e in self.gt.events if i in e.objects]
        first_hit = min((e.t for e in evs if e.type == "collision"), default=np.inf)
        if o.motion == "rest":  # a resting object's own landing is not news, a knock is
            evs = [e for e in evs if e.type not in ("floor_bounce", "settle") or e.t > first_hit]
        out: list[tuple[float, str, int]] = []
        ground = "the floor" if floor else "the bottom of the frame"
        fb = [e for e in evs if e.type == "floor_bounce"]
        settle = next((e for e in evs if e.type == "settle"), None)
        if fb:
            n = _times(len(fb), r)
            vp = _c(r, (f"bounces {n} on {ground}", f"hits {ground} and bounces {n}",
                        f"lands on {ground} and bounces {n}"))
            if settle:
                vp += _c(r, (" before coming to rest", " and then settles", ", then comes to rest"))
            out.append((fb[0].t, vp, i))
        elif settle:
            out.append((settle.t, f"lands on {ground} and settles", i))
        walls = [e for e in evs if e.type == "wall_bounce"]
        if walls:
            names = {"left": "the left wall", "right": "the right wall", "top": "the top edge",
                     "bottom": "the floor" if floor else "the bottom edge"}
            seen = list(dict.fromkeys(e.where or "left" for e in walls))
            if len(walls) <= 2:
                vp = f"bounces off {names[seen[0]]}" + (f" and then off {names[seen[1]]}" if len(seen) > 1 else "")
            else:
                vp = _c(r, ("bounces off the walls ", "rebounds off the edges of the frame ")) + _times(len(walls), r)
            out.append((walls[0].t, vp, i))
        for e in evs:
            if e.type == "collision":
                j = e.objects[1] if e.objects[0] == i else e.objects[0]
                if ("hit", min(i, j), max(i, j)) in self.told:
                    continue
                self.told.add(("hit", min(i, j), max(i, j)))
                c = sum(1 for f in evs if f.type == "collision" and j in f.objects)
                again = f" {_times(c, r)}" if c > 1 else ""
                if r.random() < 0.25:
                    out.append((e.t, f"{{{j}}} is struck by {{{i}}}{again}", j))
                else:
                    verb = _c(r, ("collides with", "bumps into", "crashes into", "hits", "knocks into"))
                    out.append((e.t, f"{verb} {{{j}}}{again}", i))
            elif e.type == "occlusion_start" and e.objects[0] == i:
                j = e.objects[1]
                if ("hide", i, j) in self.told:
                    continue
                self.told.add(("hide", i, j))
                back = any(f.type == "occlusion_end" and f.objects[0] == i and f.t >= e.t for f in evs)
                tail = _c(r, (" and reappears", ", then comes back into view", " before reappearing")) if back else \
                    _c(r, (" and stays hidden until the end", " and remains hidden"))
                if j < 0:
                    out.append((e.t, "is briefly hidden from view" + tail, i))
                elif (self.objs[j].depth > o.depth and o.motion == "rest" and self.objs[j].motion != "rest"
                      and not back):
                    out.append((e.t, f"{{{j}}} passes in front of {{{i}}}, hiding it", j))
                else:
                    where = "behind" if self.objs[j].depth > o.depth else "by"
                    verb = _c(r, ("passes behind", "is hidden behind", "disappears behind", "goes behind")) \
                        if where == "behind" else "is hidden by"
                    out.append((e.t, f"{verb} {{{j}}}{tail}", i))
        start_out = self.gt.reason and self.gt.reason[i][0] == "out_of_frame"
        for e in [e for e in evs if e.type in ("leave_frame", "enter_frame")]:
            w = e.where or "left"
            if e.type == "enter_frame":
                if start_out and not any(f.type == "leave_frame" and f.t < e.t for f in evs):
                    out.append((e.t, _c(r, (f"enters the frame from the {w}", f"comes into view from the {w}")), i))
                else:
                    out.append((e.t, _c(r, (f"comes back into view from the {w}",
                                            f"re-enters the frame from the {w}")), i))
            else:
                side = _c(r, (f"on the {w}", f"through the {w} edge") if w in ("left", "right") else
                          (f"through the {w} edge",))
                out.append((e.t, _c(r, ("leaves the frame ", "passes out of view ", "exits the frame ")) + side, i))
        out.sort(key=lambda f: f[0])
        return out[:6]

    def fill(self, text: str) -> str:
        """Put noun phrases for {j} placeholders in reading order (first mention introduces)."""
        while "{" in text:
            a = text.index("{")
            b = text.index("}", a)
            text = text[:a] + self.np(int(text[a + 1 : b])) + text[b + 1 :]
        return text

    def paragraph(self, i: int) -> list[str]:
        o, r = self.objs[i], self.rng
        region = start_region(self.spec, self.gt, i)
        loc = self.region_phrase(region)
        if o.motion == "rest" and o.gravity and self.spec.background.floor and not region.startswith("outside"):
            loc = "on the floor " + loc
        mvp = self.motion_vp(i)
        new = i not in self.introduced
        form = int(r.integers(5 if new else 3))
        if o.motion == "rest" and form in (0, 2):
            first = [f"{self.np(i)} {_c(r, ('rests', 'sits', 'lies'))} {loc} and {mvp}"]
        elif form == 0:
            first = [f"{self.np(i)} {_c(r, ('starts', 'begins', 'appears'))} {loc} and {mvp}"]
        elif form == 1:
            first = [f"{_cap(loc)}, {self.np(i)} {mvp}"]
        elif form == 2:
            first = [f"{self.np(i)} {_c(r, ('starts', 'begins', 'is'))} {loc}", f"it {mvp}"]
        elif form == 3:
            first = [f"there is {self.np(i)} {loc}", f"it {mvp}"]
        else:
            first = [f"{self.np(i)}, {loc}, {mvp}"]
        out = [self.fill(s) for s in first]
        last_subject = i
        facts = self.facts(i)
        k = 0
        while k < len(facts):
            _, text, subj = facts[k]
            if subj != i:
                out.append(self.fill(text))
                last_subject = subj
                k += 1
                continue
            vps = [text]
            if k + 1 < len(facts) and facts[k + 1][2] == i and r.random() < 0.5:
                vps.append(facts[k + 1][1])
                k += 1
            who = "it" if last_subject == i and r.random() < 0.7 else self.ref(i)
            link = _c(r, (" and then ", ", then ", " and "))
            lead = _c(r, ("", "", "then ", "later, ")) if who == "it" else ""
            out.append(self.fill(f"{lead}{who} {link.join(vps)}"))
            last_subject = i
            k += 1
        return out

    def background(self) -> list[str]:
        bg, r, n = self.spec.background, self.rng, len(self.objs)
        c0, c1 = bg.colors
        names = {"grey": ("grey", "gray"), "navy": ("navy", "navy blue")}
        c0, c1 = _c(r, names.get(c0, (c0,))), _c(r, names.get(c1, (c1,)))
        them = "them" if n > 1 else "it"
        if bg.kind == "solid":
            s = _c(r, (f"the background is a plain {c0}", f"the backdrop is solid {c0}",
                       f"everything happens against a plain {c0} background",
                       f"the scene is set against a flat {c0} backdrop"))
        elif bg.kind == "gradient":
            s = _c(r, (f"the background is a gradient from {c0} at the top to {c1} at the bottom",
                       f"the background fades from {c0} at the top to {c1} at the bottom",
                       f"behind {them}, a {c0}-to-{c1} gradient fills the background",
                       f"the backdrop is a vertical gradient, {c0} above and {c1} below"))
        elif bg.kind == "stripes":
            s = _c(r, (f"the background is made of vertical {c0} and {c1} stripes",
                       f"vertical stripes of {c0} and {c1} fill the background",
                       f"the backdrop is striped in {c0} and {c1}",
                       f"behind {them} runs a pattern of {c0} and {c1} stripes"))
        else:
            s = _c(r, (f"the background is a {c0} and {c1} checkerboard",
                       f"the backdrop is a checker pattern of {c0} and {c1}",
                       f"a chequered {c0} and {c1} background fills the frame"))
        fc = _c(r, V.CAPTION_FLOOR_WORDS[bg.floor_color])
        if bg.floor:
            opts = ([f"{s}, with a {fc} floor along the bottom"],
                    [s, f"a {fc} floor runs along the bottom of the frame"],
                    [s, f"there is a {fc} floor at the bottom"], [s, f"the ground at the bottom is {fc}"])
        else:
            opts = ([f"{s}, with no floor"], [s, "there is no floor"], [s, "no floor is visible"])
        return list(opts[int(r.integers(len(opts)))])

    def pan(self) -> list[str]:
        if not self.spec.pan:
            return []
        d, r = ("right" if self.spec.pan > 0 else "left"), self.rng
        return [_c(r, (f"the camera pans slowly to the {d}", f"the camera slowly pans {d}",
                       f"throughout the clip, the camera tracks slowly to the {d}",
                       f"meanwhile, the view drifts gently to the {d}", f"the camera pans steadily {d}ward"))]

    def write(self) -> str:
        r = self.rng
        opener = [_c(r, ("a simple 2D animation", "a short animated clip", "a minimal animated scene"))] \
            if r.random() < 0.25 else []
        bg = self.background()
        body = [s for i in r.permutation(len(self.objs)) for s in self.paragraph(int(i))]
        sentences = opener + (bg + body if r.random() < 0.5 else body + bg) + self.pan()
        return " ".join(_cap(s) + "." for s in sentences)


def detailed_caption(spec: SceneSpec, gt: GroundTruth, rng: np.random.Generator) -> str:
    """A dense, several-sentence description: every object's size, colour, shape,
    starting region, motion and what happens to it (floor and wall bounces,
    coming to rest, collisions, passing behind other objects and reappearing,
    leaving and entering the frame), then the background, floor and camera."""
    return _Writer(spec, gt, rng).write()


def captions(spec: SceneSpec, gt: GroundTruth, seed: int) -> tuple[str, str]:
    """``(short, detailed)`` captions drawn from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return short_caption(spec, gt, rng), detailed_caption(spec, gt, rng)

