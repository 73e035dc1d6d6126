"""A request settled against a model: the mode combination rules, every default (size, length,
fps, steps, strength), rounding and limits, and the chunk plan checked, in one place. The CLI,
the server, ``Pipeline.stream`` and eval all resolve here, so they cannot disagree; a request
the model cannot make is a ``RequestError`` before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tenku.flow.sampler import SAMPLERS
from tenku.modes.plans import loop_split, plan_connect, plan_rollout
from tenku.request.geometry import Geometry, check_aspect, parse_aspect, parse_size, size_for_aspect
from tenku.request.spec import Input, Limits, Request, RequestError, check_types

MAX_FRAMES = 10_000_000  # what any length must stay under: 87 days at 1 fps, streamed, is no one's request

MODES = ("text-to-video", "image-to-video", "extend-forward", "extend-backward", "loop", "connect", "edit")


@dataclass
class Resolved:
    """A request with every default settled, ready to run. ``frames``: the new frames of an
    extension or transition, the whole video otherwise; ``total``: frames of the output (a
    connect: A + transition + B); ``caption_frames``: the length the prompt's expansion plans
    for; ``full_size``: a preview's full size; ``input_caption``: the input's description that
    the prompt's expansion started from; ``notes``: what the front end should tell the user."""

    mode: str
    label: str
    prompt: str
    seed: int
    size: tuple[int, int]
    frames: int
    total: int
    fps: float
    steps: int
    guidance: float | None = None
    strength: float | None = None
    negative_prompt: str | None = None
    sampler: str | None = None
    expand: bool = True
    image: Input | None = None
    video: Input | None = None
    connect: tuple[Input, Input] | None = None
    caption_frames: int = 0
    full_size: tuple[int, int] | None = None
    input_caption: str | None = None  # what the input shows, where expansion starts (request.make)
    notes: list[str] = field(default_factory=list)
    conditioning: dict[str, Any] = field(default_factory=dict)
    work: int = 0  # frames sampled (every chunk's, context included) x pixels x steps: what the budget counts
    plan: bool = False  # the layout is the simulator's (tenku.request.layout.planned), made after expansion
    sketch: float | None = None  # with a layout: sampling starts from its sketch noised to this (tenku.sketch)
    scene: Any = None  # the expanded scene (request.make.expand): the sketch's background; not stored

    @property
    def inputs(self) -> dict[str, Input]:
        """The inputs by role: image, video, or a and b (connect)."""
        named = {"image": self.image, "video": self.video}
        if self.connect is not None:
            named |= {"a": self.connect[0], "b": self.connect[1]}
        return {k: v for k, v in named.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON (a server job's stored parameters; inputs by file name)."""
        keys = ("mode", "label", "prompt", "seed", "frames", "total", "fps", "steps", "guidance", "strength",
                "negative_prompt", "sampler", "expand", "caption_frames", "plan", "sketch")
        d = {k: getattr(self, k) for k in keys} | {"size": list(self.size)}
        d["inputs"] = {k: v.path.name for k, v in self.inputs.items() if v.path is not None}
        if self.conditioning.get("layout") is not None:  # a given layout, settled (a plan is made again)
            d["layout"] = self.conditioning["layout"].to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], folder: Any) -> "Resolved":
        """``to_dict``'s JSON back, its inputs read from ``folder`` when the request runs."""
        from tenku.layout import from_dict

        r = cls(**{k: v for k, v in d.items() if k not in ("size", "inputs", "layout")}, size=tuple(d["size"]))
        if d.get("layout") is not None:
            r.conditioning = {"layout": from_dict(d["layout"])}
        files = {k: Input(0, 0, 0, path=folder / name, still=k == "image") for k, name in d.get("inputs", {}).items()}
        r.image, r.video = files.get("image"), files.get("video")
        r.connect = (files["a"], files["b"]) if "a" in files else None
        return r


def check_combination(r: Request, names: dict[str, str] | None = None) -> None:
    """Inputs and mode switches that do not go together (only which fields are set matters, so a
    front end can check before it reads any input); fields named as ``names`` spells them."""
    n = lambda k: (names or {}).get(k, k)  # noqa: E731
    given = [k for k in ("image", "video", "connect") if getattr(r, k) is not None]
    if len(given) > 1:
        raise RequestError(f"{' and '.join(n(k) for k in given)} do not go together; give one input", given[-1],
                           "invalid_combination")
    if r.loop and (r.video is not None or r.connect is not None):
        raise RequestError(f"{n('loop')} works with a text prompt or {n('image')}, not with {n('connect')} or {n('video')}",
                           "loop", "invalid_combination")
    if r.extend not in (None, "forward", "backward"):
        raise RequestError(f"{n('extend')} must be 'forward' or 'backward'; got {r.extend!r}", "extend")
    if r.extend is not None and r.video is None:
        raise RequestError(f"{n('extend')} needs {n('video')} (the video to extend)", "extend", "invalid_combination")
    if r.strength is not None and r.video is None:
        raise RequestError(f"{n('strength')} needs {n('video')} (the video to edit)", "strength", "invalid_combination")
    if r.video is not None and (r.extend is None) == (r.strength is None):
        raise RequestError(f"with {n('video')}, give {n('extend')} (forward or backward) or {n('strength')} (an edit), "
                           "one of them", "strength" if r.strength is not None else "extend", "invalid_combination")
    if r.strength is not None and not 0 < r.strength <= 1:
        raise RequestError(f"{n('strength')} must be in (0, 1]; got {r.strength:g}", "strength")
    if r.preview and (r.video is not None or r.connect is not None):
        raise RequestError(f"{n('preview')} makes a draft from text (or {n('image')}); it does not go with {n('video')} "
                           f"or {n('connect')}", "preview", "invalid_combination")
    if r.aspect is not None and r.size is not None:
        raise RequestError(f"give {n('size')} or {n('aspect')}, not both", "aspect", "invalid_combination")
    if (r.height or r.width) and not r.aspect:
        raise RequestError(f"{n('height')}/{n('width')} go with {n('aspect')} (or use {n('size')} WxH)", "aspect",
                           "invalid_combination")
    if r.sampler is not None and r.sampler not in SAMPLERS:
        raise RequestError(f"unknown sampler {r.sampler!r}; allowed: {', '.join(SAMPLERS)}", "sampler")


def _size(r: Request, geo: Geometry, lim: Limits, n: Any, notes: list[str]) -> tuple[int, int]:
    """The output size: asked (a size, or an aspect ratio), else the input video's (fitted and
    within the limit), else the model's."""
    max_pixels = lim.max_pixels or geo.max_pixels
    first = r.video if r.video is not None else r.connect[0] if r.connect is not None else None
    asked = r.size is not None or r.aspect is not None
    default = geo.size
    if first is not None:
        default = geo.input_size(first.width, first.height, max_pixels)
        what = n("video") if r.video is not None else n("connect")
        if not asked:
            try:
                check_aspect(*default)
            except ValueError:
                raise RequestError(f"{what} is {first.width}x{first.height}, wider than 4:1 or taller than 1:4; give "
                                   f"{n('size')} or {n('aspect')} to crop its centre", "size", "invalid_size") from None
            if default != geo.fit_size(first.width, first.height):
                notes.append(f"{what} is {first.width}x{first.height}, larger than this model makes; making "
                             f"{default[0]}x{default[1]} ({n('size')} WxH to choose, at most {max_pixels} pixels)")
    try:
        if r.aspect is not None:
            w, h = size_for_aspect(parse_aspect(r.aspect), geo.size_multiple, min(geo.size), r.width, r.height)
        else:
            w, h = geo.check_size(tuple(r.size) if r.size is not None else default)
    except RequestError:
        raise
    except ValueError as e:
        raise RequestError(str(e), "aspect" if r.aspect else "size", "invalid_size") from None
    if lim.max_pixels != 0 and w * h > max_pixels:
        dw, dh = geo.size
        raise RequestError(f"size {w}x{h} is larger than {lim.where} makes: at most {max_pixels} pixels "
                           f"(the model's default is {dw}x{dh})", "size", "invalid_size")
    return w, h


def _frames(r: Request, geo: Geometry, lim: Limits, fps: float, exact: bool, n: Any, notes: list[str]) -> int | None:
    """Frames asked (``exact``: new frames of an extension or transition, any count; else the
    whole video, rounded to 1 + step k from seconds, checked when given as frames)."""
    if r.frames is not None:
        if not exact:
            try:
                geo.check_frames(r.frames)
            except ValueError as e:
                raise RequestError(str(e), "frames", "invalid_frames") from None
        count = r.frames
    elif r.seconds is not None:
        # checked before any rounding: 1e308 s is a refusal, not an OverflowError (a 500)
        if r.seconds * fps < 0.5:  # 1e-300 s: no frame interval at all
            raise RequestError(f"{r.seconds:g} s is shorter than one frame at {fps:g} fps; at least {0.5 / fps:g} s "
                               f"(or {n('frames')} 1)", "seconds", "invalid_seconds")
        if lim.max_seconds is not None and r.seconds > lim.max_seconds:
            raise RequestError(f"{r.seconds:g} s is longer than {lim.where} makes (at most {lim.max_seconds:g} s)",
                               "seconds", "invalid_seconds")
        if r.seconds * fps > MAX_FRAMES:
            raise RequestError(f"{r.seconds:g} s at {fps:g} fps is {r.seconds * fps:.3g} frames; at most {MAX_FRAMES}",
                               "seconds", "invalid_seconds")
        count = max(1, round(r.seconds * fps)) if exact else round(r.seconds * fps) + 1
        if not exact:
            fitted = geo.fit_frames(count)
            if fitted != count:
                notes.append(f"{r.seconds:g} s at {fps:g} fps rounded to {fitted} frames (the model makes "
                             f"1 + {geo.frame_step}k)")
            count = fitted
    else:
        return None
    if lim.max_seconds is not None and (count if exact else count - 1) / fps > lim.max_seconds:
        raise RequestError(f"{count} frames at {fps:g} fps is longer than {lim.where} makes (at most "
                           f"{lim.max_seconds:g} s)", "seconds", "invalid_seconds")
    return count


def _plan(kind: str, geo: Geometry, count: int, given: int = 0, b: int = 0, backward: bool = False) -> int:
    """The chunk plan the runner (``tenku.modes.Runner``) will make, so that a request the
    model's chunk geometry cannot do is refused now rather than failing after sampling began.
    Returns the frames it samples: every chunk's, given context frames included."""
    chunk, ov, st = geo.frames, geo.overlap, geo.frame_step
    try:
        if kind == "loop":
            x = loop_split(count, chunk - 2 * ov, st)
            pre, last, qb = plan_connect(count - x, x, x, chunk, ov, st)
            chunks, tail = plan_rollout(x - given, given, chunk, ov, st) + pre, last.frames + qb
        elif kind == "connect":
            pre, last, qb = plan_connect(count, given, b, chunk, ov, st)
            chunks, tail = pre, last.frames + qb
        else:
            chunks, tail = plan_rollout(count, given, chunk, ov, st, backward), 0
    except ValueError as e:
        raise RequestError(f"{kind}: {e} (this model samples {chunk}-frame chunks with up to {ov} context frames)",
                           None, "unsupported_request") from None
    return sum(c.frames for c in chunks) + tail


def _check_inputs(r: Request, lim: Limits, fps: float, n: Any) -> None:
    """Each input's frames after resampling to ``fps`` within ``lim.max_input_frames`` (20,000
    frames at 1 fps asked at 120 fps are 2.4 million)."""
    cap = lim.max_input_frames
    named = [("video", r.video)] + ([] if r.connect is None else [("connect", c) for c in r.connect])
    for what, given in named:
        if cap is not None and given is not None and (k := given.length(fps)) > cap:
            rate = f" at {given.fps:g} fps" if given.fps else ""
            raise RequestError(f"{n(what)} has {given.count} frames{rate}: {k} frames at {fps:g} fps; at most {cap} "
                               f"(on {lim.where})", what, "invalid_file")


def _check_total(res: Resolved, lim: Limits, given: int, what: str) -> None:
    """The whole output (an extension's input included, an edit's whole length) within
    ``lim.max_seconds``; ``given``: the input frames in it, whose field ``what`` is at fault
    when they alone are too long."""
    if lim.max_seconds is None or (res.total - 1) / res.fps <= lim.max_seconds:
        return
    param = what if (given - 1) / res.fps > lim.max_seconds else "seconds"
    raise RequestError(f"the output would be {res.total} frames at {res.fps:g} fps ({(res.total - 1) / res.fps:g} s, "
                       f"{given} of them from the input); {lim.where} makes at most {lim.max_seconds:g} s", param,
                       "invalid_seconds")


def _budget(res: Resolved, sampled: int, lim: Limits) -> Resolved:
    """``res`` with its work (frames sampled x pixels x steps), refused over ``lim.max_work``
    with what it costs and what to lower."""
    w, h = res.size
    res.work = sampled * w * h * res.steps
    if lim.max_work is not None and res.work > lim.max_work:
        fit = int(lim.max_work // (w * h * res.steps))
        raise RequestError(f"this request is {res.work:.3g} units of work ({sampled} frames sampled x {w}x{h} x "
                           f"{res.steps} steps); {lim.where} allows at most {lim.max_work:.3g}: lower seconds, fps, "
                           f"steps or size (at {w}x{h} and {res.steps} steps, {fit} frames fit)", None, "over_budget")
    return res


def _clean_frames(geo: Geometry, r: Request, count: int = 0) -> None:
    """Refuse a request that gives the model clean frames when it cannot keep them (Wan2.1):
    an input image, an extension, a transition, a loop, or text-to-video longer than a chunk."""
    if not geo.clean_frames_refused:
        return
    what = ("image-to-video" if r.image is not None else f"extend {r.extend}" if r.extend else
            "connect" if r.connect is not None else "loop" if r.loop else
            f"a video longer than one chunk ({geo.frames} frames)" if count > geo.frames else None)
    if what:
        raise RequestError(f"{what}: {geo.clean_frames_refused}", None, "unsupported_request")


def resolve(r: Request, geo: Geometry, limits: Limits | None = None, names: dict[str, str] | None = None) -> Resolved:
    """Settle ``r`` against a model's ``geo`` within ``limits``; a RequestError (naming fields as
    ``names`` spells them: the CLI's flags, the API's parameters) when it cannot be made. A
    layout (``conditioning["layout"]``) or ``plan`` is settled last (``tenku.request.layout``)."""
    from tenku.request import layout

    rest = {k: v for k, v in r.conditioning.items() if k != layout.KEY}
    out = _resolve(replace(r, conditioning=rest), geo, limits, names)
    layout.settle(out, r.conditioning.get(layout.KEY), r.plan, geo.grounding, names)
    out.plan = r.plan
    out.sketch = layout.sketch_strength(out, r.sketch, geo.sketch, names)
    return out


def _resolve(r: Request, geo: Geometry, limits: Limits | None, names: dict[str, str] | None) -> Resolved:
    lim = limits or Limits()
    n = lambda k: (names or {}).get(k, k)  # noqa: E731
    if isinstance(r.size, str):  # "WxH", as the CLI and the API take it
        try:
            r = replace(r, size=parse_size(r.size))
        except ValueError as e:
            raise RequestError(str(e), "size", "invalid_size") from None
    check_types(r)
    check_combination(r, names)
    _clean_frames(geo, r)
    if lim.max_steps is not None and r.steps is not None and r.steps > lim.max_steps:
        raise RequestError(f"steps: at most {lim.max_steps} on {lim.where}", "steps")
    fps = float(r.fps or geo.fps)
    steps = r.steps or geo.steps
    _check_inputs(r, lim, fps, n)
    notes: list[str] = []
    w, h = _size(r, geo, lim, n, notes)
    full = None
    if r.preview:
        full, (w, h) = (w, h), geo.fit_size(w // 2, h // 2)
    ov = geo.overlap
    base = dict(prompt=r.prompt, seed=int(r.seed), size=(w, h), fps=fps, steps=steps, guidance=r.guidance,
                negative_prompt=r.negative_prompt, sampler=r.sampler, expand=r.expand, full_size=full, notes=notes,
                conditioning=r.conditioning)
    asked = _frames(r, geo, lim, fps, r.extend is not None or r.connect is not None, n, notes)
    if r.video is not None and r.strength is not None:  # an edit: the whole video, its length kept
        if asked is not None:
            raise RequestError(f"an edit keeps the video's length; drop {n('frames')}/{n('seconds')}", "seconds",
                               "invalid_combination")
        count = geo.usable_frames(r.video.length(fps))
        res = Resolved("edit", r.label or "edit", frames=count, total=count, strength=r.strength, video=r.video,
                       caption_frames=geo.frames, **base)
        _check_total(res, lim, count, "video")
        return _budget(res, count, lim)  # the whole video in one sampling call
    if r.video is not None:
        have = r.video.length(fps)
        if have < ov:
            raise RequestError(f"the video has {have} frames at {fps:g} fps; extending needs at least {ov}", "video")
        new = asked if asked is not None else geo.frames - ov
        sampled = _plan(f"extend {r.extend}", geo, new, have, backward=r.extend == "backward")
        mode = f"extend-{r.extend}"
        res = Resolved(mode, r.label or mode, frames=new, total=have + new, video=r.video,
                       caption_frames=geo.frames if asked is None else have + new, **base)
        _check_total(res, lim, have, "video")
        return _budget(res, sampled, lim)
    if r.connect is not None:
        lens = [c.length(fps) for c in r.connect]
        for name, k in zip("AB", lens):
            if k < ov:
                raise RequestError(f"clip {name} has {k} frames; connect needs at least {ov}", "connect")
        new = asked if asked is not None else geo.frames - 2 * ov
        sampled = _plan("connect", geo, new, lens[0], lens[1])
        res = Resolved("connect", r.label or "connect", frames=new, total=sum(lens) + new, connect=r.connect,
                       caption_frames=asked or geo.frames, **base)
        _check_total(res, lim, sum(lens), "connect")
        return _budget(res, sampled, lim)
    count = asked or geo.frames
    if r.loop:
        if count < 2 * ov - 1:
            raise RequestError(f"a loop needs at least {2 * ov - 1} frames ({(2 * ov - 2) / fps:g} s at {fps:g} fps); "
                               f"got {count}", "seconds", "invalid_frames")
    _clean_frames(geo, r, count)
    k = 0 if r.image is None else 1
    sampled = _plan("loop", geo, count, k) if r.loop else _plan("forward", geo, count - k, k) if count > k else k
    mode = "loop" if r.loop else "image-to-video" if r.image is not None else "text-to-video"
    label = r.label or ("preview" if r.preview and mode == "text-to-video" else mode)
    res = Resolved(mode, label, frames=count, total=count, image=r.image, caption_frames=count, **base)
    return _budget(res, sampled, lim)
