"""A layout as a request's conditioning input (docs/layout.md): given by the user (``--layout``,
the API's ``layout``) or planned by the simulator (``--plan``, the API's ``plan``). A layout
describes the whole output video: for an extension the given video and the new frames, for a
connect A + transition + B. ``resolve`` settles it here (checked, retimed to the request's fps
and length, rounded as its JSON has it), the pipeline hands each chunk its slice
(``tenku.layout.window``), and the sidecar records it, so ``--layout sidecar.json`` makes the
same video again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tenku.request.spec import RequestError

KEY = "layout"  # its name in Request.conditioning / Resolved.conditioning


def read(path: str | Path) -> dict[str, Any]:
    """The layout document in a layout file, or in a video's sidecar (its ``layout``; a video
    file stands for the sidecar beside it); a ValueError naming the file otherwise."""
    if Path(path).suffix.lower() in (".mp4", ".gif"):
        path = Path(path).with_suffix(".json")
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise ValueError(f"cannot read layout {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if isinstance(doc, dict) and "objects" not in doc and "caption" in doc:  # a sidecar
        if not isinstance(doc.get(KEY), dict):
            raise ValueError(f"{path}: a sidecar of a video made without a layout (no 'layout' in it)")
        doc = doc[KEY]
    return doc


def settle(req: Any, given: Any, plan: bool, grounding: bool, names: dict[str, str] | None = None) -> None:
    """Check a resolved request's layout (``given``: a ``tenku.layout.Layout`` or its JSON
    document, or None) and ``plan`` against the model (``grounding``), and put the layout,
    retimed to the request's fps and total length, into ``req.conditioning``. A RequestError
    naming ``layout`` or ``plan`` when it cannot be used; notes for a layout of another aspect
    or length."""
    from tenku.layout import Layout, canonical, from_dict, resample

    n = lambda k: (names or {}).get(k, k)  # noqa: E731
    if not isinstance(plan, bool):
        raise RequestError(f"{n('plan')} must be true or false; got {plan!r}", "plan")
    if given is None and not plan:
        return
    if given is not None and plan:
        raise RequestError(f"give {n('layout')} (your boxes) or {n('plan')} (the simulator's), not both", "plan",
                           "invalid_combination")
    param = "plan" if plan else "layout"
    if not grounding:
        raise RequestError(f"this model has no grounding; {n(param)} needs a transformer trained to follow layouts "
                           "(DiTConfig.grounding, docs/layout.md)", param, "unsupported_request")
    if plan:
        return
    try:  # a Layout made in Python is checked too (canonical reads its JSON back)
        lay = canonical(given) if isinstance(given, Layout) else from_dict(given)
    except (ValueError, TypeError, AttributeError) as e:
        raise RequestError(str(e) if isinstance(e, ValueError) else f"layout: not a layout ({e})", "layout",
                           "invalid_layout") from None
    w, h = req.size
    if abs(lay.width / lay.height - w / h) > 0.01 * w / h:
        req.notes.append(f"the layout is for {lay.width}x{lay.height}, the video {w}x{h}: its boxes (normalised "
                         "to the frame) stretch with it")
    have, want = (lay.frames - 1) / lay.fps, (req.total - 1) / req.fps
    if abs(have - want) > 0.5 / req.fps:
        req.notes.append(f"the layout covers {have:g} s, the video {want:g} s: "
                         + ("its last boxes hold to the end" if have < want else "the rest is not used"))
    req.conditioning = {**req.conditioning, KEY: canonical(resample(lay, req.fps, req.total))}


def sketch_strength(req: Any, asked: Any, default: float, names: dict[str, str] | None = None) -> float | None:
    """The noise level a resolved request with a layout (given or planned) starts sampling from,
    its layout's sketch drawn (``tenku.sketch``): ``asked``, else the model's ``default``; None
    without a layout. A RequestError for a value outside (0, 1], a sketch without a layout, or
    with an edit (which starts from its own video)."""
    n = lambda k: (names or {}).get(k, k)  # noqa: E731
    has_layout = req.plan or req.conditioning.get(KEY) is not None
    if asked is None:
        return default if has_layout and req.mode != "edit" else None
    if isinstance(asked, bool) or not isinstance(asked, (int, float)) or not 0 < asked <= 1:
        raise RequestError(f"{n('sketch')} must be a number in (0, 1] (1: no sketch, pure noise); got {asked!r}", "sketch")
    if not has_layout:
        raise RequestError(f"{n('sketch')} draws a layout's objects: give {n('plan')} or {n('layout')} with it", "sketch",
                           "invalid_combination")
    if req.mode == "edit":
        raise RequestError(f"an edit starts from its own video ({n('strength')}); {n('sketch')} does not go with it",
                           "sketch", "invalid_combination")
    return float(asked)


def planned(req: Any, expansion: Any) -> Any:
    """The simulator's layout of the expanded scene (``expansion.spec``) over the whole output
    video, one simulation for its whole length (``tenku.layout.from_scene``), rounded as the
    sidecar will record it. With an input image or video, the objects found in its frames start
    the simulation where they are, and a loop's plan closes on itself
    (``tenku.request.layout_input``)."""
    from tenku.layout import canonical, from_scene
    from tenku.request.layout_input import from_input, periodic

    w, h = req.size
    lay = from_input(req, expansion.spec)
    if lay is None:
        lay = from_scene(expansion.spec, w, h, req.fps, req.total)
    if req.mode == "loop":  # the plan closes on its first frame, as the video does
        lay = periodic(req, lay, expansion.spec)
    return canonical(lay)


def sidecar(req: Any) -> dict[str, Any]:
    """What the sidecar records of the layout: the layout used and whether it was planned."""
    lay = req.conditioning.get(KEY)
    if lay is None or not hasattr(lay, "to_dict"):
        return {}
    out = {KEY: lay.to_dict(), "plan": bool(req.plan)}
    return out if req.sketch is None else out | {"sketch": req.sketch}
