"""Prompt expansion: a short user prompt -> a detailed caption in the style of the
training captions (:mod:`tenku.lang.detailed`), and the world scene it implies.

The built-in expander reads the prompt with :func:`tenku.lang.parse.parse_prompt`,
turns what it says into hints (colour, shape, size, count, motion, direction,
start region, background, floor, camera pan, and one interaction: "hits",
"collide", "passes behind", "in front of"), draws whatever is left open from
the seed with :func:`tenku.world.sample.sample_scene`, simulates and renders the
scene small to get its ground truth, and writes the caption from that truth. So
the caption and ``spec`` always agree, and what the prompt stated is in both.
Words it cannot map are reported in ``unknown``, never dropped silently.

An OpenAI-compatible LLM can write the caption instead (:mod:`tenku.prompts.llm`);
its reply is parsed back and must keep every stated attribute, or the built-in
expander is used with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tenku.lang.detailed import detailed_caption
from tenku.lang.lexicon import Item, tokenize
from tenku.lang.parse import parse_prompt
from tenku.lang.parsed import ParsedPrompt
from tenku.lang.wording import start_region
from tenku.world.render import render_scene
from tenku.world.sample import FALL_DRIFTS, THROW_DIRECTIONS, sample_scene
from tenku.world.spec import DIRECTIONS, SHAPES, SIZES, GroundTruth, SceneSpec, check_width

MAX_OBJECTS = 8  # what a SceneSpec holds
ATTEMPTS = 6  # scenes drawn (per seed, deterministically) until the asked interaction and regions happen
TRUTH_HEIGHT = 64  # pixels of the small render whose ground truth the caption is written from
# Directions each motion can carry; others are dropped with a warning.
MOTION_DIRECTIONS: dict[str, tuple[str, ...]] = {
    "rest": (), "move": tuple(DIRECTIONS), "bounce": tuple(DIRECTIONS), "fall": FALL_DRIFTS, "throw": THROW_DIRECTIONS,
}
# Interaction cues (base forms, as the lexicon reduces them) -> scenario.
HIT_WORDS = ("hit", "strike", "struck", "collide", "bump", "crash", "knock", "smash", "slam", "ram", "collision")
HIDE_WORDS = ("hide", "hidden", "cover", "obscure", "conceal")


@dataclass
class Expansion:
    """A prompt expanded: the detailed ``caption`` the model is conditioned on, the
    ``spec`` it implies, the words that were not understood, where the caption
    came from ("builtin", "llm", or "none" when expansion was turned off) and warnings."""

    prompt: str
    seed: int
    caption: str
    spec: SceneSpec
    unknown: list[str] = field(default_factory=list)
    source: str = "builtin"
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for an output's sidecar."""
        return {"prompt": self.prompt, "seed": self.seed, "caption": self.caption, "caption_source": self.source,
                "unknown": list(self.unknown), "warnings": list(self.warnings), "spec": self.spec.to_dict()}


@dataclass
class Plan:
    """What a prompt pins down, one hint per object (counts expanded), in the prompt's order."""

    hints: list[dict[str, str]]
    groups: list[int]  # index of the parsed object (noun phrase) each hint comes from
    regions: list[str | None]
    background: dict[str, Any]
    pan: str | None = None
    scenario: str | None = None  # a sample.SCENARIOS value
    pair: tuple[int, int] | None = None  # (target, mover) hint indices of the staged interaction
    warnings: list[str] = field(default_factory=list)


# --- reading the prompt ------------------------------------------------------------

def unknown_words(text: str, parsed: ParsedPrompt | None = None) -> list[str]:
    """Words the world's language does not know: the parser's reports, plus any other
    word the lexicon cannot place (an unknown verb such as "wiggles" is never an error
    to the parser, but it is still something the expander could not honour)."""
    parsed = parsed or parse_prompt(text)
    out = list(parsed.unknown)
    for it in tokenize(text):
        if it.kind == "word" and it.text not in out:
            out.append(it.text)
    return out


def _np_attrs(items: list[Item], k: int, step: int) -> dict[str, str] | str | None:
    """Attributes of the noun phrase next to ``items[k]`` (before it: step -1, after: +1);
    "pronoun" for it/them, "scenery" for the floor, a wall or the frame; None if there is none."""
    j, attrs, head = k + step, {}, False
    while 0 <= j < len(items):
        it = items[j]
        if it.kind == "stop":
            break
        if it.kind == "pron" and not attrs:
            return "pronoun"
        if it.kind in ("floor", "edge", "frame", "bgnoun", "camera") and not head and not attrs:
            return "scenery"  # "hits the floor", "bounces off the wall": not between two objects
        if it.kind in ("shape", "generic") or (it.kind == "count" and it.text == "one" and step < 0):
            if head and step > 0:
                break
            if it.kind == "shape":
                attrs["shape"] = it.value
            head = True
        elif it.kind in ("color", "size") and (head or step > 0):
            attrs.setdefault(it.kind, it.value)
        elif head and step < 0 and it.kind not in ("ignadj", "region", "ord"):
            break
        elif head and step > 0 and it.kind not in ("ignadj", "region"):
            break
        elif step > 0 and it.kind in ("motion", "verb", "conj") and attrs:
            break
        j += step
    return attrs if head or attrs else None


def _group(parsed: ParsedPrompt, attrs: dict[str, str] | str | None, avoid: int | None, fallback: int | None) -> int | None:
    objs = parsed.objects
    if isinstance(attrs, dict) and attrs:
        cands = [g for g, o in enumerate(objs) if all(getattr(o, a) == v for a, v in attrs.items())]
        cands = [g for g in cands if g != avoid or objs[g].count > 1] or cands
        if cands:
            return cands[0]
    return fallback if fallback is not None and 0 <= fallback < len(objs) else None


def find_interaction(text: str, parsed: ParsedPrompt) -> tuple[str, int, int] | None:
    """The first interaction the text asks for: (scenario, target group, mover group),
    groups being indices into ``parsed.objects`` (equal for "two discs collide")."""
    items = tokenize(text)
    for k, it in enumerate(items):
        nxt = items[k + 1].text if k + 1 < len(items) else ""
        if it.kind in ("verb", "fn") and it.text in HIT_WORDS:
            scenario, passive, subject_moves = "collision", nxt == "by", True
        elif it.kind == "prep" and it.text == "behind":
            scenario, passive, subject_moves = "occlusion", False, True
        elif it.kind == "prep" and it.text == "in front of":
            scenario, passive, subject_moves = "occlusion-front", False, True
        elif it.kind == "verb" and it.text in HIDE_WORDS and nxt != "behind":
            # "X hides Y": Y passes behind X; "X is hidden by Y": X passes behind Y
            scenario, passive, subject_moves = "occlusion", nxt == "by", False
        else:
            continue
        left, right = _np_attrs(items, k, -1), _np_attrs(items, k, +1)
        if "scenery" in (left, right):
            continue
        before = len(parse_prompt(" ".join(i.text for i in items[:k])).objects)
        subj = _group(parsed, left, None, before - 1)
        if subj is None:
            continue
        obj = _group(parsed, right, subj, before if before != subj else None)
        if obj is None:  # "a red ball and a blue ball collide": the other one
            others = [g for g in range(len(parsed.objects)) if g != subj]
            obj = others[-1] if others else (subj if parsed.objects[subj].count > 1 else None)
        if obj is None:
            continue
        if passive:
            subj, obj = obj, subj
        mover, target = (subj, obj) if subject_moves else (obj, subj)
        return scenario, target, mover
    return None


def plan_scene(text: str, parsed: ParsedPrompt | None = None) -> Plan:
    """Turn what ``text`` states into sampler hints, an interaction and start regions."""
    parsed = parsed or parse_prompt(text)
    hints, groups, regions, warnings = [], [], [], []
    for g, o in enumerate(parsed.objects):
        h = o.hint()
        if h.get("direction") and h.get("motion") and h["direction"] not in MOTION_DIRECTIONS[h["motion"]]:
            warnings.append(f"'{h['motion']}' cannot go {h['direction']}; the direction is left open")
            del h["direction"]
        for _ in range(max(1, o.count)):
            hints.append(dict(h))
            groups.append(g)
            regions.append(o.region)
    if len(hints) > MAX_OBJECTS:
        warnings.append(f"the prompt asks for {len(hints)} objects; a scene holds at most {MAX_OBJECTS}, "
                        f"so only the first {MAX_OBJECTS} are kept")
        hints, groups, regions = hints[:MAX_OBJECTS], groups[:MAX_OBJECTS], regions[:MAX_OBJECTS]
    bg = parsed.background_hint()
    colors = bg.get("colors")
    if colors and colors[0] == colors[1]:  # one stated colour: a plain backdrop, or the first of a pattern's two
        if bg.get("kind") in (None, "solid"):
            bg["kind"] = "solid"
        else:
            bg["colors"] = colors[:1]
    if bg.get("floor_color") and bg.get("floor") is None:
        bg["floor"] = True
    plan = Plan(hints, groups, regions, bg, parsed.background.pan, warnings=warnings)
    inter = find_interaction(text, parsed)
    if inter:
        scenario, tg, mg = inter
        t = groups.index(tg) if tg in groups else None
        m = next((i for i, g in enumerate(groups) if g == mg and i != t), None)
        if t is None or m is None:
            warnings.append("could not tell which objects interact; the interaction is left to chance")
        else:
            plan.scenario, plan.pair = scenario, (t, m)
    return plan


# --- drawing the scene ------------------------------------------------------------------

def _draw(plan: Plan, rng: np.random.Generator, aspect: float) -> tuple[SceneSpec, list[str]]:
    """One scene for the plan, objects in the plan's order; also what could not be placed."""
    hints = [dict(h) for h in plan.hints]
    notes: list[str] = []
    shared: dict[tuple[int, str], str] = {}  # "two red balls": one size and shape for the group
    for h, g in zip(hints, plan.groups):
        if plan.groups.count(g) > 1:
            for key, options in (("size", list(SIZES)), ("shape", list(SHAPES))):
                if key not in h:
                    h[key] = shared.setdefault((g, key), options[int(rng.integers(len(options)))])
        if h.get("direction") and not h.get("motion"):  # "a red ball to the left": a motion that can go there
            ok = [m for m, ds in MOTION_DIRECTIONS.items() if h["direction"] in ds]
            h["motion"] = ok[int(rng.integers(len(ok)))]
    pan = None
    if plan.pan:
        pan = (1.0 if plan.pan == "right" else -1.0) * float(rng.uniform(0.03, 0.08))
    order = list(range(len(hints)))
    if plan.pair:
        t, m = plan.pair
        order = [t, m] + [i for i in order if i not in (t, m)]
    spec = sample_scene(rng, width=aspect, objects=[hints[i] for i in order] or None, background=plan.background,
                        pan=pan, scenario=plan.scenario if plan.pair else None)
    if hints:
        objs = [None] * len(order)
        for k, i in enumerate(order):
            objs[i] = spec.objects[k]
        spec.objects = objs  # type: ignore[assignment]
    for i, region in enumerate(plan.regions if hints else []):
        if region and not (plan.pair and i in plan.pair):
            note = _place(spec, i, region, rng)
            if note:
                notes.append(note)
    spec.validate()
    return spec, notes


def _parts(region: str) -> tuple[str, str]:
    """(vertical, horizontal) parts of a region name; "" where it says nothing."""
    if "-" in region:
        v, h = region.split("-", 1)
        return v, h
    return (region, "") if region in ("top", "bottom") else ("", "" if region == "center" else region)


def _place(spec: SceneSpec, i: int, region: str, rng: np.random.Generator) -> str | None:
    """Move object ``i`` to start in ``region`` as far as its motion allows."""
    o, w, floor = spec.objects[i], spec.width, spec.floor_y
    r = o.radius
    if region.startswith("outside-"):
        side = region.split("-", 1)[1]
        if o.motion != "move":
            return f"only a moving object can start outside the frame ({region})"
        o.walls = False
        if side in ("left", "right"):
            o.x = -1.3 * r if side == "left" else w + 1.3 * r
        else:
            o.y = 1 + 1.3 * r if side == "top" else -1.3 * r
        return None
    v, h = _parts(region)
    fx = {"left": 1 / 6, "right": 5 / 6}.get(h, 0.5)
    fy = {"top": 5 / 6, "bottom": 1 / 6}.get(v, 0.5)
    o.x = float(np.clip((fx + rng.uniform(-0.06, 0.06)) * w, r, w - r))
    y = float(np.clip(fy + rng.uniform(-0.06, 0.06), floor + r, 1 - r))
    if o.motion == "rest" and o.gravity and v == "top":
        o.gravity = False  # rests up there, not on the floor
    if o.motion in ("move", "bounce") or (o.motion == "rest" and not o.gravity):
        o.y = y
    elif o.motion == "fall" and v == "top":
        o.y = max(o.y, y)
    return None


def _region_ok(asked: str, actual: str) -> bool:
    """Does the start region agree with what was asked, in the parts the prompt stated?"""
    if asked.startswith("outside-") or actual.startswith("outside-"):
        return asked == actual
    (v, h), (av, ah) = _parts(asked), _parts(actual)
    if asked == "center":
        return ah == ""
    return (not v or v == av) and (not h or h == ah)


def _truth(spec: SceneSpec, aspect: float, frames: int, fps: float) -> GroundTruth:
    h = TRUTH_HEIGHT
    w = max(2, int(round(h * aspect / 2)) * 2)
    return render_scene(spec, w, h, fps, frames)[1]


def _checks(plan: Plan, spec: SceneSpec, gt: GroundTruth) -> list[str]:
    """What the plan asked for that this scene does not show."""
    out = []
    if plan.pair:
        t, m = plan.pair
        ev = gt.events
        if plan.scenario == "collision":
            ok = any(e.type == "collision" and set(e.objects) == {t, m} for e in ev)
        elif plan.scenario == "occlusion":
            ok = any(e.type == "occlusion_start" and e.objects == [m, t] for e in ev)
        else:
            ok = any(e.type == "occlusion_start" and e.objects == [t, m] for e in ev)
        if not ok:
            what = {"collision": "hit", "occlusion": "pass behind", "occlusion-front": "pass in front of"}
            out.append(f"could not stage the {spec.objects[m].color} {spec.objects[m].shape} to "
                       f"{what[plan.scenario or 'collision']} the {spec.objects[t].color} {spec.objects[t].shape} "
                       f"within the clip")
    for i, region in enumerate(plan.regions if plan.hints else []):
        if region and not (plan.pair and i in plan.pair) and not _region_ok(region, start_region(spec, gt, i)):
            out.append(f"the {spec.objects[i].color} {spec.objects[i].shape} starts "
                       f"{start_region(spec, gt, i)}, not {region} as asked")
    return out


def scene_for(plan: Plan, seed: int, aspect: float = 1.0, frames: int = 33, fps: float = 8.0
              ) -> tuple[SceneSpec, GroundTruth, list[str]]:
    """Draw (deterministically for ``seed``) a scene that does what the plan asks;
    up to ``ATTEMPTS`` draws, keeping the first that passes every check (else the one
    that fails fewest, with warnings saying what is missing)."""
    best = None
    for attempt in range(ATTEMPTS if (plan.pair or any(plan.regions)) else 1):
        spec, notes = _draw(plan, np.random.default_rng([seed, attempt]), aspect)
        gt = _truth(spec, aspect, frames, fps)
        fails = notes + _checks(plan, spec, gt)
        if best is None or len(fails) < len(best[2]):
            best = (spec, gt, fails)
        if not fails:
            break
    assert best is not None
    return best


# --- checking captions against the prompt ---------------------------------------------------

def _describe(h: dict[str, str]) -> str:
    words = [h.get("size"), h.get("color"), h.get("shape") or "object"]
    tail = f" that {h['motion']}s" if h.get("motion") else ""
    tail += f" {h['direction']}" if h.get("direction") else ""
    return " ".join(w for w in words if w) + tail


def _match(want: list[dict[str, str]], got: list[dict[str, str]]) -> list[dict[str, str]]:
    """The wanted objects left over by a maximum one-to-one matching onto ``got``
    (a wanted object matches one that has every attribute it states)."""
    owner = [-1] * len(got)

    def fits(i: int, j: int) -> bool:
        return all(got[j].get(a) == v for a, v in want[i].items())

    def augment(i: int, seen: set[int]) -> bool:
        for j in range(len(got)):
            if j not in seen and fits(i, j):
                seen.add(j)
                if owner[j] < 0 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return [want[i] for i in range(len(want)) if not augment(i, set())]


def lost_attributes(user: ParsedPrompt, caption: ParsedPrompt, limit: int = MAX_OBJECTS) -> list[str]:
    """What the user stated that a caption does not keep: objects (colour, shape,
    size, count, motion, direction) and the background, floor and camera. Empty when
    everything survives."""
    want, got = user.object_hints()[:limit], caption.object_hints()
    out = []
    if want and len(got) != len(want):
        out.append(f"the prompt has {len(want)} object(s), the caption {len(got)}")
    if not got:
        out.append("the caption names no object")
    out += [f"lost: {_describe(h)}" for h in _match(want, got)]
    ub, cb = user.background_hint(), caption.background_hint()
    for key, value in ub.items():
        if key == "colors":
            have = cb.get("colors") or []
            ok = value[0] in have if value[0] == value[1] else list(value) == list(have)
        else:
            ok = cb.get(key) == value
        if not ok:
            out.append(f"lost: background {key} {value} (caption: {cb.get(key)})")
    if user.background.pan and caption.background.pan != user.background.pan:
        out.append(f"lost: camera pan {user.background.pan}")
    return out


# --- the expander ---------------------------------------------------------------------------

def expand_builtin(prompt: str, seed: int = 0, aspect: float = 1.0, frames: int = 33, fps: float = 8.0) -> Expansion:
    """The offline expander (see the module docstring)."""
    parsed = parse_prompt(prompt)
    unknown = unknown_words(prompt, parsed)
    plan = plan_scene(prompt, parsed)
    warnings = parsed.color_notes + plan.warnings  # "navy blue drawn as blue (nearest world colour)"
    if not prompt.strip():
        warnings.append("empty prompt: the whole scene is drawn from the seed")
    elif not parsed.objects:
        warnings.append("the prompt names no object the world knows; objects are drawn from the seed")
    if unknown:
        warnings.append(f"not understood, so not in the caption: {', '.join(unknown)}")
    spec, gt, fails = scene_for(plan, seed, aspect, frames, fps)
    warnings += fails
    caption = detailed_caption(spec, gt, np.random.default_rng([seed, 1]))
    lost = lost_attributes(parsed, parse_prompt(caption))
    warnings += [f"caption check: {w}" for w in lost]  # never expected; said rather than hidden
    return Expansion(prompt, seed, caption, spec, unknown, "builtin", warnings)


def expand(prompt: str, seed: int = 0, *, llm: Any = None, aspect: float = 1.0, frames: int = 33,
           fps: float = 8.0) -> Expansion:
    """Expand a short prompt into a detailed caption in the style of the training captions.

    Deterministic for a seed: the built-in expander always; an LLM as far as the
    endpoint honours ``seed`` and temperature. ``llm``: an :class:`tenku.prompts.llm.LLMConfig`
    to let an OpenAI-compatible model write the caption; when it fails or its reply
    drops something the prompt stated, the built-in expander answers with a warning.
    ``aspect`` (width / height), ``frames`` and ``fps`` describe the clip to be
    generated, so the caption tells what happens within it.
    """
    check_width(aspect)
    if llm is None:
        return expand_builtin(prompt, seed, aspect, frames, fps)
    from tenku.prompts.llm import LLMError, llm_expand

    parsed = parse_prompt(prompt)
    try:
        caption, notes = llm_expand(prompt, seed, llm, check=lambda text: lost_attributes(parsed, parse_prompt(text)))
    except LLMError as e:
        out = expand_builtin(prompt, seed, aspect, frames, fps)
        out.warnings.insert(0, f"LLM expansion failed ({e}); used the built-in expander")
        return out
    cparsed = parse_prompt(caption)
    plan = plan_scene(caption, cparsed)
    spec, _, fails = scene_for(plan, seed, aspect, frames, fps)
    unknown = unknown_words(prompt, parsed)
    warnings = parsed.color_notes + list(notes) + plan.warnings + fails
    if unknown:
        warnings.append(f"not understood by the world's parser: {', '.join(unknown)}")
    extra = [w for w in unknown_words(caption, cparsed) if w not in unknown]
    if extra:
        warnings.append(f"the LLM caption uses words outside the world's vocabulary: {', '.join(extra)}")
    return Expansion(prompt, seed, caption, spec, unknown, "llm", warnings)


def expand_prompt(prompt: str, seed: int, no_expand: bool = False, llm: Any = None, *, aspect: float = 1.0,
                  frames: int = 33, fps: float = 8.0) -> Expansion:
    """What the generation pipeline calls. Expands by default; ``no_expand`` keeps the
    prompt verbatim as the caption (``source == "none"``) while still reporting unknown
    words and the scene it implies. Store ``Expansion.to_dict()`` in the output's sidecar."""
    if not no_expand:
        return expand(prompt, seed, llm=llm, aspect=aspect, frames=frames, fps=fps)
    out = expand_builtin(prompt, seed, aspect, frames, fps)
    return Expansion(prompt, seed, " ".join(prompt.split()), out.spec, out.unknown, "none",
                     [w for w in out.warnings if not w.startswith("caption check")])
