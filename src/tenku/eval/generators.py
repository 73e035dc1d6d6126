"""What a suite is scored on: the generators. ``PipelineGenerator`` makes each item with a model
(every mode, optionally expanded, planned or given layouts, sketched), ``AutoencoderGenerator``
gives the simulator's render after an autoencoder's round trip (the ceiling of any transformer
on its latents), and ``reference_frames`` the simulator's own render (the calibration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tenku.eval.checks import latent_frames
from tenku.eval.suites import SuiteItem


class GeneratorUnavailable(RuntimeError):
    """The model cannot be loaded (no pipeline yet, or a bad model folder)."""


_LAST: dict[str, tuple[np.ndarray, Any]] = {}


def reference_render(item: SuiteItem) -> tuple[np.ndarray, Any]:
    """``item.reference()``, remembered for the last scene (the runner asks twice per item). The
    key is what the render depends on, not the generation seed, so an item's samples share it."""
    key = json.dumps([item.spec.to_dict(), item.width, item.height, item.frames, item.fps])
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = item.reference()
    return _LAST[key]


def reference_frames(item: SuiteItem) -> np.ndarray:
    """The simulator as a generator: its own render of the item (the calibration)."""
    return reference_render(item)[0]


def expected_frames(item: SuiteItem) -> int:
    """How many frames ``generate(item)`` must return: the whole video, in every mode."""
    return item.frames


class PipelineGenerator:
    """Generates suite items with ``tenku.pipeline.Pipeline`` (imported only when used).

    Builds a ``tenku.request.Request`` per item (``request``): the prompt, seed, size, frames, fps,
    steps, guidance and, per mode, an image (i2v: the reference's first frame), a video to
    extend forward or backward (the reference's first or last ``cond`` frames), a loop, or two
    clips to connect (the output is A + transition + B); the pipeline runs it resolved. With
    ``expand``, the prompt is first expanded into a detailed caption (seed, size and
    length), as ``tenku generate`` does by default; the item is still judged on its prompt.
    The seed is the item's ``gen_seed``, one per sample (``tenku eval --samples``) and never
    the seed that drew the item's scene. ``plan``: each item follows the simulator's layout
    (``tenku.layout.from_scene``) of its own scene (``"scene"``: the scene the item is judged
    on, so a grounded and a free run score the same items, and trajectory errors measure how
    well the layout is followed) or of its prompt's expansion (``"prompt"``: what ``tenku
    generate --plan`` makes; the expansion's scene places objects its own way, so only the
    prompt-level rates compare); ``layouts``: a folder of ``ID.json`` layouts (or sidecars), one
    per item id. Both need a model with grounding. ``sketch``: the sketch strength
    (``tenku.sketch``; None: the model's), over the scene's background (the item's, or the
    expansion's).
    """

    def __init__(self, model_dir: str | Path, steps: int | None = None, device: str = "cpu", expand: bool = False,
                 guidance: float | None = None, plan: bool | str = False, layouts: str | Path | None = None,
                 sketch: float | None = None, offload: str | None = None):
        try:
            from tenku.pipeline import Pipeline  # type: ignore[import-not-found]
        except ImportError as e:
            raise GeneratorUnavailable(f"cannot load a model: tenku.pipeline is not available ({e}); "
                                       "use --reference to score the simulator") from None
        if not Path(model_dir).is_dir():
            raise GeneratorUnavailable(f"model folder {model_dir} does not exist")
        self.pipe = Pipeline.load(str(model_dir), device=device, offload=offload)
        if (plan or layouts) and not self.pipe.dit.cfg.grounding:
            raise GeneratorUnavailable(f"this model has no grounding; --{'plan' if plan else 'layout'} needs a "
                                       "transformer trained to follow layouts (docs/layout.md)")
        if layouts is not None and not Path(layouts).is_dir():
            raise GeneratorUnavailable(f"--layout {layouts}: no such folder (one ID.json layout per suite item)")
        self.steps, self.expand, self.guidance = steps, expand, guidance
        self.plan = "scene" if plan is True else plan or None
        if self.plan not in (None, "scene", "prompt"):
            raise GeneratorUnavailable(f"plan must be 'scene' or 'prompt'; got {plan!r}")
        self.layouts, self.sketch = None if layouts is None else Path(layouts), sketch
        self._expanded: tuple[Any, Any] = (None, None)  # (item key, its expansion): the last one made
        self.tag = (f"model:{Path(model_dir).resolve()}:steps={steps}" + (":expand" if expand else "")
                    + (f":guidance={guidance:g}" if guidance is not None else "")
                    + {None: "", "scene": ":plan", "prompt": ":plan=prompt"}[self.plan]
                    + (f":layout={self.layouts.resolve()}" if self.layouts is not None else "")
                    + (f":sketch={sketch:g}" if sketch is not None else ""))

    def __call__(self, item: SuiteItem) -> np.ndarray:
        return np.concatenate(list(self.pipe.run(self.resolved(item))))

    def resolved(self, item: SuiteItem) -> Any:
        """``request(item)`` resolved against the model (``tenku.request.resolve``): what ``run`` makes."""
        from tenku.request import Limits, resolve

        req = resolve(self.request(item), self.pipe.geometry, Limits(max_pixels=0))
        if self.plan or self.layouts is not None:  # only a layout's sketch draws the scene
            req.scene = self.scene(item)
        return req

    def frame_latents(self, item: SuiteItem) -> np.ndarray:
        """Which latent frame made each frame of the item's video (``Pipeline.frame_latents``)."""
        return self.pipe.frame_latents(self.resolved(item))

    def refuses(self, item: SuiteItem) -> str:
        """Why this model cannot make ``item`` at all (the request rules' ``unsupported_request``
        for a model that refuses clean frames: Wan2.1), or "" when it can; ``tenku eval`` then
        skips the suite. Other models make every mode: no check (it would render each input twice)."""
        from tenku.request import Limits, RequestError, resolve

        if not self.pipe.geometry.clean_frames_refused:
            return ""
        try:
            resolve(self.request(item), self.pipe.geometry, Limits(max_pixels=0))
        except RequestError as e:
            if e.code == "unsupported_request":
                return str(e)
        return ""

    def expansion(self, item: SuiteItem) -> Any:
        """The item's prompt expanded as ``tenku generate`` expands it (verbatim without ``expand``:
        the scene it implies all the same)."""
        from tenku.prompts.expand import expand_prompt

        key = (item.prompt, item.gen_seed, item.width, item.height, item.frames, item.fps)
        if self._expanded[0] != key:  # the caption, the plan and the sketch ask for the same one
            self._expanded = (key, expand_prompt(item.prompt, item.gen_seed, no_expand=not self.expand,
                                                 aspect=item.width / item.height, frames=item.frames, fps=item.fps))
        return self._expanded[1]

    def scene(self, item: SuiteItem) -> Any:
        """The scene a layout of ``item`` is planned from and its sketch drawn over: the item's own
        objects and camera over the background its caption describes (the expansion's), or
        (``plan="prompt"``, or a layout of the user's) its prompt's expansion's."""
        from dataclasses import replace

        spec = self.expansion(item).spec
        return replace(item.spec, background=spec.background) if self.plan == "scene" else spec

    def request(self, item: SuiteItem) -> Any:
        """The ``tenku.request.Request`` that makes ``item`` (inputs cut from the simulator's render)."""
        from tenku.request import Input, Request

        r = Request(self.caption(item), seed=item.gen_seed, size=(item.width, item.height), frames=item.frames,
                    fps=item.fps, steps=self.steps or None, guidance=self.guidance, expand=False, loop=item.mode == "loop",
                    sketch=self.sketch)
        if item.mode not in ("t2v", "loop"):
            ref = reference_frames(SuiteItem(**{**item.__dict__, "mode": "t2v"}))
            if item.mode == "i2v":
                r.image = Input.of_array(ref[0], "image", still=True)
            elif item.mode.startswith("extend"):
                fwd = item.mode == "extend_forward"
                r.video = Input.of_array(ref[: item.cond] if fwd else ref[-item.cond:], "video")
                r.extend, r.frames = "forward" if fwd else "backward", item.frames - item.cond
            elif item.mode == "connect":
                r.connect = (Input.of_array(ref[: item.cond], "video"), Input.of_array(ref[-item.cond:], "video"))
                r.frames = item.frames - 2 * item.cond
        layout = self.layout(item)
        if layout is not None:
            r.conditioning = {"layout": layout}
        return r

    def layout(self, item: SuiteItem) -> Any:
        """The layout ``item`` follows over its whole video (``plan``, ``layouts``), or None."""
        if self.plan:
            from tenku.layout import from_scene

            return from_scene(self.scene(item), item.width, item.height, item.fps, item.frames)
        if self.layouts is None:
            return None
        from tenku.request.layout import read

        return read(self.layouts / f"{item.id}.json")

    def missing_layouts(self, items: list[SuiteItem]) -> list[str]:
        """Ids of ``items`` with no layout file in ``layouts``."""
        return [] if self.layouts is None else sorted({i.id for i in items if not (self.layouts / f"{i.id}.json").is_file()})

    def caption(self, item: SuiteItem) -> str:
        """What the model is given: the prompt, or (``expand``) its detailed caption."""
        return self.expansion(item).caption if self.expand else item.prompt


class AutoencoderGenerator:
    """The simulator's render after an autoencoder's round trip (encode, decode): what a
    perfect transformer on that autoencoder's latents would score, its ceiling.

    ``folder``: a VAE folder, or a pipeline folder (its ``vae/``)."""

    def __init__(self, folder: str | Path):
        from tenku.vae.model import VAE

        folder = Path(folder)
        if (folder / "vae").is_dir():
            folder = folder / "vae"
        try:
            self.vae = VAE.load(folder).eval()
        except ValueError as e:
            raise GeneratorUnavailable(str(e)) from None
        self.tag = f"autoencoder:{folder.resolve()}"

    def frame_latents(self, item: SuiteItem) -> np.ndarray:
        """The latent frame of each frame: one clip through the causal encoder and decoder."""
        return latent_frames(item.frames, self.vae.cfg.time_down)

    def __call__(self, item: SuiteItem) -> np.ndarray:
        import torch

        from tenku.io import from_uint8, to_uint8

        ref = reference_frames(item)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # as the pipeline decodes
            z = self.vae.encode(from_uint8(ref)[None])
            return to_uint8(self.vae.decode(z).float().clamp(-1, 1)[0])
