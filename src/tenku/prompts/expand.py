"""Prompt expansion: a short user prompt -> a detailed caption in the style of the
training captions (:mod:`tenku.lang.detailed`), and the world scene it implies.

The built-in expander reads the prompt with :func:`tenku.lang.parse.parse_prompt`,
turns what it says into hints (colour, shape, size, count, motion, direction,
start region, background, floor, camera pan, and one interaction: "hits",
"collide", "passes behind", "in front of"), draws whatever is left open from
the seed with :func:`tenku.world.sample.sample_scene`, simulates and renders the
scene small to get its ground truth (both in :mod:`tenku.prompts.scene`), and
writes the caption from that truth. So the caption and ``spec`` always agree,
and what the prompt stated is in both. Words it cannot map are reported in
``unknown``, never dropped silently.

An OpenAI-compatible LLM can write the caption instead (:mod:`tenku.prompts.llm`);
its reply is parsed back and must keep every stated attribute, or the built-in
expander is used with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tenku.lang.detailed import detailed_caption
from tenku.lang.lexicon import tokenize
from tenku.lang.parse import parse_prompt
from tenku.lang.parsed import ParsedPrompt
from tenku.prompts.scene import MAX_OBJECTS, plan_scene, scene_for
from tenku.world.spec import SceneSpec, check_width


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
