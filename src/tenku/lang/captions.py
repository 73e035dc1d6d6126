"""Captions of world videos ("recaptioning"): a short prompt such as a user would
type (here), and a dense Sora-style description written from the scene spec and
the rendered ground truth (:mod:`tenku.lang.detailed`). :func:`captions` gives both;
the world's dataset writer (:mod:`tenku.world.dataset`) calls it for every video.

Wording is drawn from a seeded generator: synonyms, templates, sentence and
object order, active and passive voice vary, so a model learns language and
not one template. Every caption stays within what :func:`tenku.lang.parse.
parse_prompt` reads back: each object is introduced once with an article and
its size, colour and shape, and referred to afterwards unambiguously ("the red
ball", "the second small red circle"); the first motion stated for an object is
its spec motion.
"""

from __future__ import annotations

import numpy as np

from tenku.lang import vocab as V
from tenku.lang.detailed import detailed_caption
from tenku.lang.wording import DIRECTION_PHRASES, article, choose, plural_noun, shape_noun
from tenku.world.spec import GroundTruth, SceneSpec

_COUNT = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
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
    picks = [dict(noun=shape_noun(o.shape, rng),
                  color=choose(rng, V.CAPTION_COLOR_WORDS[o.color]) if rng.random() < 0.15 else o.color,
                  size=choose(rng, V.CAPTION_SIZE_WORDS[o.size]), verb=int(rng.integers(8)),
                  dir=choose(rng, DIRECTION_PHRASES[o.direction]) if o.direction in DIRECTION_PHRASES else "")
             for o in first]
    with_size = rng.random() < 0.35
    casual = rng.random() < 0.2  # users often drop articles
    joiner = choose(rng, (", ", " and ", " while "))
    hit = None
    if len(groups) == 2 and all(len(g) == 1 for g in groups) and rng.random() < 0.5:
        a, b = groups[0][0], groups[1][0]
        if objs[b].motion != "rest":
            a, b = b, a
        if objs[b].motion == "rest" and objs[a].motion != "rest" and any(
                e.type == "collision" and set(e.objects) == {a, b} for e in gt.events):
            hit = (groups.index([a]), groups.index([b]), choose(rng, ("stationary", "resting", "motionless")))

    def build(level: int) -> str:
        seen: list[tuple[str, str, str]] = []

        def np_(k: int, extra: str = "") -> str:
            o, p, n = objs[groups[k][0]], picks[k], len(groups[k])
            size = p["size"] + " " if (need_size[k] or (with_size and level < 1)) else ""
            ident = (o.size, o.color, o.shape)
            body = f"{extra}{size}{p['color']} {p['noun'] if n == 1 else plural_noun(p['noun'])}"
            art = "another" if ident in seen else article(body)
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


def captions(spec: SceneSpec, gt: GroundTruth, seed: int) -> tuple[str, str]:
    """``(short, detailed)`` captions drawn from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return short_caption(spec, gt, rng), detailed_caption(spec, gt, rng)
