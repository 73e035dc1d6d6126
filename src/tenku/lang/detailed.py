"""Detailed captions of world videos: a dense, Sora-style description written from
the scene spec and the rendered ground truth (starting regions, bounces,
collisions, occlusions, objects leaving and entering the frame, background,
camera). See :mod:`tenku.lang.captions` for the rules every caption follows.
"""

from __future__ import annotations

import numpy as np

from tenku.lang import vocab as V
from tenku.lang.wording import (DIRECTION_PHRASES, article, capitalise, choose, shape_noun, start_region,
                                times)
from tenku.world.spec import GroundTruth, SceneSpec

_ORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth"}
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
        size = o.size if self.rng.random() < 0.7 else choose(self.rng, V.CAPTION_SIZE_WORDS[o.size])
        body = f"{size} {o.color} {shape_noun(o.shape, self.rng, 0.4)}"
        art = "another" if any(self.key(j) == self.key(i) for j in self.introduced) else article(body)
        self.introduced.append(i)
        return f"{art} {body}"

    def ref(self, i: int) -> str:
        o, r, n = self.objs[i], self.rng, range(len(self.objs))
        same = [j for j in self.introduced if self.key(j) == self.key(i)]
        noun = shape_noun(o.shape, r, 0.4)
        if len(same) > 1 or sum(self.key(j) == self.key(i) for j in n) > 1:
            return f"the {_ORD[same.index(i) + 1]} {o.size} {o.color} {noun}"
        opts = []
        if sum((self.objs[j].color, self.objs[j].shape) == (o.color, o.shape) for j in n) == 1:
            opts += [f"the {o.color} {noun}"] * 4
            if sum(self.objs[j].color == o.color for j in n) == 1:
                opts += [f"the {o.color} one", f"the {o.color} shape"]
        opts.append(f"the {o.size} {o.color} {noun}")
        return choose(r, opts)

    def region_phrase(self, region: str) -> str:
        r = self.rng
        if region.startswith("outside-"):
            side = region.split("-", 1)[1]
            return f"{choose(r, ('just outside', 'beyond', 'just beyond'))} the {side} edge of the frame"
        return choose(r, _REGION[region])

    def motion_vp(self, i: int) -> str:
        o, r = self.objs[i], self.rng
        d = choose(r, DIRECTION_PHRASES[o.direction]) if o.direction in DIRECTION_PHRASES else ""
        if o.motion == "rest":
            if any(e.type == "collision" and i in e.objects for e in self.gt.events):  # knocked later: still at first
                return choose(r, ("stays still at first", "is at rest at first", "sits still until it is hit"))
            return choose(r, ("stays still", "does not move", "remains stationary", "stays put", "never moves",
                          "stays perfectly still"))
        if o.motion == "move":
            if o.direction == "up" and r.random() < 0.4:
                return choose(r, ("rises", "climbs")) + choose(r, (" steadily", " slowly", ""))
            if o.direction == "down" and r.random() < 0.4:
                return choose(r, ("sinks", "descends")) + choose(r, (" steadily", " slowly", ""))
            verb = choose(r, ("moves", "drifts", "glides", "slides", "travels", "floats", "cruises"))
            return f"{verb} {d}" if d else f"{verb} {choose(r, ('steadily', 'across the frame'))}"
        if o.motion == "bounce":
            vp = choose(r, ("bounces around the frame", "ricochets around the frame", "bounces off the walls",
                        "bounces around inside the frame", "ricochets off the walls"))
            if not d:
                return vp
            return f"{vp}, {choose(r, ('heading', 'setting off', 'starting off'))} {d}" + choose(r, (" at first", ""))
        if o.motion == "fall":
            vp = choose(r, ("falls", "drops", "tumbles", "falls under gravity", "drops straight down", "plummets"))
            return f"{vp}, drifting {d}" if d and o.direction != "down" else vp
        vp = choose(r, ("is thrown", "is tossed", "is launched", "is lobbed", "gets thrown", "is flung", "leaps"))
        return f"{vp} {d}" + choose(r, (" in an arc", " in a high arc", "")) if d else f"{vp} into the air"

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
            n = times(len(fb), r)
            vp = choose(r, (f"bounces {n} on {ground}", f"hits {ground} and bounces {n}",
                        f"lands on {ground} and bounces {n}"))
            if settle:
                vp += choose(r, (" before coming to rest", " and then settles", ", then comes to rest"))
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
                vp = choose(r, ("bounces off the walls ", "rebounds off the edges of the frame ")) + times(len(walls), r)
            out.append((walls[0].t, vp, i))
        for e in evs:
            if e.type == "collision":
                j = e.objects[1] if e.objects[0] == i else e.objects[0]
                if ("hit", min(i, j), max(i, j)) in self.told:
                    continue
                self.told.add(("hit", min(i, j), max(i, j)))
                c = sum(1 for f in evs if f.type == "collision" and j in f.objects)
                again = f" {times(c, r)}" if c > 1 else ""
                if r.random() < 0.25:
                    out.append((e.t, f"{{{j}}} is struck by {{{i}}}{again}", j))
                else:
                    verb = choose(r, ("collides with", "bumps into", "crashes into", "hits", "knocks into"))
                    out.append((e.t, f"{verb} {{{j}}}{again}", i))
            elif e.type == "occlusion_start" and e.objects[0] == i:
                j = e.objects[1]
                if ("hide", i, j) in self.told:
                    continue
                self.told.add(("hide", i, j))
                back = any(f.type == "occlusion_end" and f.objects[0] == i and f.t >= e.t for f in evs)
                tail = choose(r, (" and reappears", ", then comes back into view", " before reappearing")) if back else \
                    choose(r, (" and stays hidden until the end", " and remains hidden"))
                if j < 0:
                    out.append((e.t, "is briefly hidden from view" + tail, i))
                elif (self.objs[j].depth > o.depth and o.motion == "rest" and self.objs[j].motion != "rest"
                      and not back):
                    out.append((e.t, f"{{{j}}} passes in front of {{{i}}}, hiding it", j))
                else:
                    where = "behind" if self.objs[j].depth > o.depth else "by"
                    verb = choose(r, ("passes behind", "is hidden behind", "disappears behind", "goes behind")) \
                        if where == "behind" else "is hidden by"
                    out.append((e.t, f"{verb} {{{j}}}{tail}", i))
        start_out = self.gt.reason and self.gt.reason[i][0] == "out_of_frame"
        for e in [e for e in evs if e.type in ("leave_frame", "enter_frame")]:
            w = e.where or "left"
            if e.type == "enter_frame":
                if start_out and not any(f.type == "leave_frame" and f.t < e.t for f in evs):
                    out.append((e.t, choose(r, (f"enters the frame from the {w}", f"comes into view from the {w}")), i))
                else:
                    out.append((e.t, choose(r, (f"comes back into view from the {w}",
                                            f"re-enters the frame from the {w}")), i))
            else:
                side = choose(r, (f"on the {w}", f"through the {w} edge") if w in ("left", "right") else
                          (f"through the {w} edge",))
                out.append((e.t, choose(r, ("leaves the frame ", "passes out of view ", "exits the frame ")) + side, i))
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
            first = [f"{self.np(i)} {choose(r, ('rests', 'sits', 'lies'))} {loc} and {mvp}"]
        elif form == 0:
            first = [f"{self.np(i)} {choose(r, ('starts', 'begins', 'appears'))} {loc} and {mvp}"]
        elif form == 1:
            first = [f"{capitalise(loc)}, {self.np(i)} {mvp}"]
        elif form == 2:
            first = [f"{self.np(i)} {choose(r, ('starts', 'begins', 'is'))} {loc}", f"it {mvp}"]
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
            link = choose(r, (" and then ", ", then ", " and "))
            lead = choose(r, ("", "", "then ", "later, ")) if who == "it" else ""
            out.append(self.fill(f"{lead}{who} {link.join(vps)}"))
            last_subject = i
            k += 1
        return out

    def background(self) -> list[str]:
        bg, r, n = self.spec.background, self.rng, len(self.objs)
        c0, c1 = bg.colors
        names = {"grey": ("grey", "gray"), "navy": ("navy", "navy blue")}
        c0, c1 = choose(r, names.get(c0, (c0,))), choose(r, names.get(c1, (c1,)))
        them = "them" if n > 1 else "it"
        if bg.kind == "solid":
            s = choose(r, (f"the background is a plain {c0}", f"the backdrop is solid {c0}",
                       f"everything happens against a plain {c0} background",
                       f"the scene is set against a flat {c0} backdrop"))
        elif bg.kind == "gradient":
            s = choose(r, (f"the background is a gradient from {c0} at the top to {c1} at the bottom",
                       f"the background fades from {c0} at the top to {c1} at the bottom",
                       f"behind {them}, a {c0}-to-{c1} gradient fills the background",
                       f"the backdrop is a vertical gradient, {c0} above and {c1} below"))
        elif bg.kind == "stripes":
            s = choose(r, (f"the background is made of vertical {c0} and {c1} stripes",
                       f"vertical stripes of {c0} and {c1} fill the background",
                       f"the backdrop is striped in {c0} and {c1}",
                       f"behind {them} runs a pattern of {c0} and {c1} stripes"))
        else:
            s = choose(r, (f"the background is a {c0} and {c1} checkerboard",
                       f"the backdrop is a checker pattern of {c0} and {c1}",
                       f"a chequered {c0} and {c1} background fills the frame"))
        fc = choose(r, V.CAPTION_FLOOR_WORDS[bg.floor_color])
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
        return [choose(r, (f"the camera pans slowly to the {d}", f"the camera slowly pans {d}",
                       f"throughout the clip, the camera tracks slowly to the {d}",
                       f"meanwhile, the view drifts gently to the {d}", f"the camera pans steadily {d}ward"))]

    def write(self) -> str:
        r = self.rng
        opener = [choose(r, ("a simple 2D animation", "a short animated clip", "a minimal animated scene"))] \
            if r.random() < 0.25 else []
        bg = self.background()
        body = [s for i in r.permutation(len(self.objs)) for s in self.paragraph(int(i))]
        sentences = opener + (bg + body if r.random() < 0.5 else body + bg) + self.pan()
        return " ".join(capitalise(s) + "." for s in sentences)


def detailed_caption(spec: SceneSpec, gt: GroundTruth, rng: np.random.Generator) -> str:
    """A dense, several-sentence description: every object's size, colour, shape,
    starting region, motion and what happens to it (floor and wall bounces,
    coming to rest, collisions, passing behind other objects and reappearing,
    leaving and entering the frame), then the background, floor and camera."""
    return _Writer(spec, gt, rng).write()
