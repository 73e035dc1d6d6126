"""A prompt's plan and the scene drawn for it: the middle of the built-in expander
(:mod:`tenku.prompts.expand` reads the prompt, then writes and checks the caption).

:func:`plan_scene` turns what a prompt states into sampler hints (one per object,
counts expanded), start regions and at most one staged interaction ("hits",
"collide", "passes behind", "in front of"). :func:`scene_for` draws whatever is
left open from the seed with :func:`tenku.world.sample.sample_scene`, simulates
and renders the scene small, and keeps the first of ``ATTEMPTS`` draws whose
ground truth shows what the plan asked (else the closest, with warnings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tenku.lang.lexicon import Item, tokenize
from tenku.lang.parse import parse_prompt
from tenku.lang.parsed import ParsedPrompt
from tenku.lang.wording import start_region
from tenku.world.render import render_scene
from tenku.world.sample import FALL_DRIFTS, THROW_DIRECTIONS, sample_scene
from tenku.world.spec import DIRECTIONS, SHAPES, SIZES, GroundTruth, SceneSpec

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
EACH_OTHER = ("each other", "one another")  # "slide towards each other", "approach one another": head on


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
    head_on: bool = False  # the pair move towards each other from the two sides (and meet)


# --- reading the prompt ------------------------------------------------------------

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
    groups being indices into ``parsed.objects`` (equal for "two discs collide"); the scenario
    "head-on" for objects that move towards each other (they meet: a collision)."""
    items = tokenize(text)
    for k, it in enumerate(items):
        nxt = items[k + 1].text if k + 1 < len(items) else ""
        if it.text in ("toward", "towards", "approach") and nxt in EACH_OTHER:
            scenario, passive, subject_moves = "head-on", False, True
        elif it.kind in ("verb", "fn") and it.text in HIT_WORDS:
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
        left, right = _np_attrs(items, k, -1), None if scenario == "head-on" else _np_attrs(items, k, +1)
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
            plan.head_on = scenario == "head-on"  # they meet: a collision
            plan.scenario, plan.pair = ("collision" if plan.head_on else scenario), (t, m)
            if plan.head_on:  # each comes from its side: the mover from the left, the target from the right
                for i, side in ((m, "right"), (t, "left")):
                    if hints[i].get("motion") in (None, "move", "bounce"):
                        hints[i]["motion"] = hints[i].get("motion") or "move"
                        hints[i]["direction"] = side
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
    if plan.head_on and plan.pair:
        _head_on(spec, *plan.pair, rng)
    for i, region in enumerate(plan.regions if hints else []):
        if region and not (plan.pair and i in plan.pair):
            note = _place(spec, i, region, rng)
            if note:
                notes.append(note)
    spec.validate()
    return spec, notes


def _head_on(spec: SceneSpec, t: int, m: int, rng: np.random.Generator) -> None:
    """Put the pair that move towards each other level, the mover in the left third and the
    target in the right, fast enough to meet within about two seconds."""
    a, b, w = spec.objects[m], spec.objects[t], spec.width
    if a.motion not in ("move", "bounce") or b.motion not in ("move", "bounce") or a.vx <= 0 or b.vx >= 0:
        return  # a stated motion that does not go sideways: left as drawn
    a.x = float(np.clip(rng.uniform(0.1, 0.3) * w, a.radius, w / 2 - a.radius))
    b.x = float(np.clip(rng.uniform(0.7, 0.9) * w, w / 2 + b.radius, w - b.radius))
    lo, hi = spec.floor_y + max(a.radius, b.radius), 1 - max(a.radius, b.radius)
    a.y = b.y = float(np.clip(b.y, lo, hi))
    a.vy = b.vy = 0.0
    gap = b.x - a.x - a.radius - b.radius
    if gap / (a.vx - b.vx) > 2.0:
        k = gap / 2.0 / (a.vx - b.vx)
        a.vx, b.vx = a.vx * k, b.vx * k


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
