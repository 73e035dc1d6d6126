"""A resolved request made into a file: the prompt expanded (``tenku.prompts``), the video
streamed through the pipeline and written, and the sidecar JSON of every parameter. The CLI
and the server's workers both call ``make``; they differ only in what they add around it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tenku.request.resolve import Resolved


def input_caption(req: Resolved) -> str | None:
    """What the request's input (an image, a video, clip A of a connect) shows, in the caption
    language (``tenku.request.recaption``); None without an input."""
    from tenku.request.recaption import describe_background

    given = req.image or req.video or (req.connect[0] if req.connect is not None else None)
    return None if given is None else describe_background(given.frames(req.fps, req.size))


def expand(req: Resolved, llm: Any = None) -> Any:
    """The request's prompt expanded into a detailed caption (``prompts.expand_prompt``), planned
    for the request's aspect, length and fps; verbatim when ``req.expand`` is off. With an input,
    expansion starts from the prompt followed by the input's own description (its background
    and floor), so the caption does not contradict what the user gave; what the prompt states
    itself comes first and wins. A request with ``plan`` gets its layout here, from the
    expanded scene (``tenku.request.layout.planned``)."""
    from tenku.prompts.expand import expand_prompt

    w, h = req.size
    prompt = req.prompt
    if req.expand:
        req.input_caption = input_caption(req)
        if req.input_caption:
            prompt = f"{prompt.rstrip().rstrip('.')}. {req.input_caption}"
    expansion = expand_prompt(prompt, req.seed, no_expand=not req.expand, llm=llm, aspect=w / h,
                              frames=req.caption_frames, fps=req.fps)
    req.scene = expansion.spec  # the sketch's background (tenku.sketch)
    if req.plan:
        from tenku.request.layout import KEY, planned

        req.conditioning = {**req.conditioning, KEY: planned(req, expansion)}
    return expansion


def sidecar(pipe: Any, req: Resolved, expansion: Any, frames: int, seconds: float) -> dict[str, Any]:
    """What a video's .json sidecar says: every parameter of ``req`` as it was made."""
    c = pipe.cfg
    side = {"prompt": req.prompt, "caption": expansion.caption, "seed": req.seed, "size": list(req.size),
            "frames": frames, "fps": req.fps, "steps": req.steps, "guidance": c.guidance if req.guidance is None else req.guidance,
            "device": str(pipe.device), "mode": req.label,
            "negative_prompt": c.negative_prompt if req.negative_prompt is None else req.negative_prompt,
            "sampler": req.sampler or c.sampler, "seconds_generated": round(seconds, 3), "expansion": expansion.to_dict(),
            "tenku": __import__("tenku").__version__}
    context = pipe.context_guidance_for(req.guidance, req.mode.startswith(("extend", "connect")))
    if context is not None:
        side["context_guidance"] = context
    if pipe.guide is not None:
        side["autoguidance"] = c.autoguidance
    if req.strength is not None:
        side["strength"] = req.strength
    if req.input_caption:
        side["input_caption"] = req.input_caption
    if req.full_size is not None:
        side["preview"] = {"full_size": list(req.full_size)}
    from tenku.request.layout import sidecar as layout_sidecar

    return side | layout_sidecar(req)


def stream(pipe: Any, req: Resolved, expansion: Any, callback: Callable[[int, int], None] | None = None) -> Iterator[np.ndarray]:
    """The request's frame blocks, sampled with the expanded caption as the prompt. A request the
    model cannot make raises here, before any step."""
    from dataclasses import replace

    return pipe.run(replace(req, prompt=expansion.caption), callback)


def make(pipe: Any, req: Resolved, out: str | Path, expansion: Any, blocks: Iterator[np.ndarray],
         watch: Callable[[np.ndarray], None] | None = None, **extra: Any) -> dict[str, Any]:
    """Write ``blocks`` (from ``stream``) to ``out`` and its sidecar beside it (``extra`` added:
    a model path, input file names...); ``watch`` sees each block as it is written. Returns the
    sidecar."""
    from tenku.io import write_video

    t0, count = time.time(), [0]

    def counted() -> Iterator[np.ndarray]:
        for block in blocks:
            if watch is not None:
                watch(block)
            count[0] += len(block)
            yield block

    out = Path(out)
    write_video(out, counted(), req.fps)
    side = sidecar(pipe, req, expansion, count[0], time.time() - t0) | extra
    import json

    out.with_suffix(".json").write_text(json.dumps(side, indent=1))
    return side
