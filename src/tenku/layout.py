"""Layouts: where each object is in every frame, the plan the transformer's grounding follows
(docs/layout.md). A layout is JSON:

    {"fps": 8, "frames": 33, "width": 128, "height": 128,
     "objects": [{"phrase": "a large red ball", "depth": 0,
                  "boxes": [[x0, y0, x1, y1], ..., null, ...]}]}

Boxes are normalised to the frame (0, 0 top left, 1, 1 bottom right), one per frame, ``null``
(or a short list) where the object is not visible; ``depth`` is optional (higher is in front),
``angle`` too (degrees anticlockwise: how the sketch turns the object's outline in its box).
``plan`` makes one from a prompt through the built-in expander and the simulator,
``from_ground_truth`` from a world render's ground truth.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]
MAX_FRAMES = 24 * 60 * 4  # a minute at 96 fps: more is a mistake, not a video


@dataclass
class LayoutObject:
    """One object: a short phrase ("a large red ball"), a box per frame (None: not visible), an
    optional depth (higher is drawn in front) and an optional fixed rotation of its outline in
    degrees anticlockwise (what the sketch draws; the world's objects are tilted so)."""

    phrase: str
    boxes: list[Box | None]
    depth: int | None = None
    angle: float | None = None


@dataclass
class Layout:
    fps: float
    frames: int
    width: int
    height: int
    objects: list[LayoutObject] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (boxes rounded to 1e-4 of the frame: a hundredth of a pixel at 100 px)."""
        objs = []
        for o in self.objects:
            d: dict[str, Any] = {"phrase": o.phrase, "boxes": [None if b is None else [round(c, 4) for c in b] for b in o.boxes]}
            if o.depth is not None:
                d["depth"] = o.depth
            if o.angle:
                d["angle"] = round(o.angle, 2)
            objs.append(d)
        return {"fps": self.fps, "frames": self.frames, "width": self.width, "height": self.height, "objects": objs}


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def from_dict(doc: Any) -> Layout:
    """Validate a layout document; ValueError naming the object and frame of the first fault."""
    if not isinstance(doc, dict):
        raise ValueError(f"a layout is a JSON object with fps, frames, width, height and objects; got {type(doc).__name__}")
    for key in ("fps", "frames", "width", "height", "objects"):
        if key not in doc:
            raise ValueError(f"layout: missing {key!r} (a layout needs fps, frames, width, height and objects)")
    fps, frames, w, h = doc["fps"], doc["frames"], doc["width"], doc["height"]
    if not _num(fps) or fps <= 0:
        raise ValueError(f"layout: fps must be a positive number; got {fps!r}")
    for key, v, top in (("frames", frames, MAX_FRAMES), ("width", w, 8192), ("height", h, 8192)):
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= top:
            raise ValueError(f"layout: {key} must be an integer from 1 to {top}; got {v!r}")
    if not isinstance(doc["objects"], list):
        raise ValueError("layout: objects must be a list")
    objects = []
    for i, o in enumerate(doc["objects"]):
        where = f"layout object {i}"
        if not isinstance(o, dict):
            raise ValueError(f"{where}: must be an object with phrase and boxes")
        phrase = o.get("phrase")
        if not isinstance(phrase, str) or not phrase.strip():
            raise ValueError(f"{where}: phrase must be a non-empty string (e.g. \"a large red ball\")")
        where = f"layout object {i} ({phrase!r})"
        boxes = o.get("boxes")
        if not isinstance(boxes, list):
            raise ValueError(f"{where}: boxes must be a list with one [x0, y0, x1, y1] or null per frame")
        if len(boxes) > frames:
            raise ValueError(f"{where}: {len(boxes)} boxes for {frames} frames")
        depth = o.get("depth")
        if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)):
            raise ValueError(f"{where}: depth must be an integer (higher is in front); got {depth!r}")
        angle = o.get("angle")
        if angle is not None and (not _num(angle) or abs(angle) > 360):
            raise ValueError(f"{where}: angle must be a number of degrees from -360 to 360 (the outline's "
                             f"rotation, anticlockwise); got {angle!r}")
        out: list[Box | None] = []
        for f, b in enumerate(boxes):
            if b is None:
                out.append(None)
                continue
            if not isinstance(b, (list, tuple)) or len(b) != 4 or not all(_num(c) for c in b):
                raise ValueError(f"{where}, frame {f}: a box is [x0, y0, x1, y1] (numbers) or null; got {b!r}")
            x0, y0, x1, y1 = (float(c) for c in b)
            if not (x0 < x1 and y0 < y1):
                raise ValueError(f"{where}, frame {f}: box {list(b)} needs x0 < x1 and y0 < y1")
            if x1 <= 0 or y1 <= 0 or x0 >= 1 or y0 >= 1 or min(x0, y0) < -1 or max(x1, y1) > 2:
                raise ValueError(f"{where}, frame {f}: box {list(b)} lies outside the frame (coordinates are "
                                 f"normalised to 0..1; use null where the object is not visible)")
            out.append((x0, y0, x1, y1))
        objects.append(LayoutObject(phrase.strip(), out + [None] * (frames - len(out)), depth,
                                    float(angle or 0.0) or None))  # 0 is upright: as if unstated
    return Layout(float(fps), frames, w, h, objects)


def load(path: str | Path) -> Layout:
    """Read and validate a layout file; ValueError with the file's name on any fault."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise ValueError(f"cannot read layout {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    try:
        return from_dict(doc)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def save(layout: Layout, path: str | Path) -> None:
    """Write a layout as JSON, a box a line (readable and editable)."""
    doc = layout.to_dict()
    objs = ",\n".join("  {" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in o.items() if k != "boxes")
                       + ', "boxes": [\n' + ",\n".join(f"    {json.dumps(b)}" for b in o["boxes"]) + "]}" for o in doc["objects"])
    head = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items() if k != "objects")
    Path(path).write_text("{" + head + ', "objects": [\n' + objs + "\n]}\n")


def _interp(boxes: list[Box | None], t: float) -> Box | None:
    """The box at fractional frame ``t``: linear between two visible neighbours, else the nearest
    frame's (None where that one is not visible)."""
    f0 = min(max(int(math.floor(t)), 0), len(boxes) - 1)
    f1 = min(f0 + 1, len(boxes) - 1)
    a, b, u = boxes[f0], boxes[f1], t - f0
    if a is not None and b is not None:
        return tuple(float(p + (q - p) * u) for p, q in zip(a, b))  # type: ignore[return-value]
    return a if u < 0.5 else b


def resample(layout: Layout, fps: float, frames: int | None = None) -> Layout:
    """The same motion at another frame rate: frame k at time k / fps. ``frames`` defaults to the
    same duration; frames past the layout's end keep its last box."""
    if not fps > 0:
        raise ValueError(f"fps must be positive; got {fps}")
    n = frames if frames is not None else max(1, int(round((layout.frames - 1) * fps / layout.fps)) + 1)
    times = [k * layout.fps / fps for k in range(n)]
    objs = [replace(o, boxes=[_interp(o.boxes, t) for t in times]) for o in layout.objects]
    return Layout(float(fps), n, layout.width, layout.height, objs)


def window(layout: Layout, start: int, frames: int, wrap: bool = False) -> Layout:
    """Frames ``start .. start + frames - 1`` of ``layout`` (one chunk of a long video): indices
    before the start or past the end take the first or last frame's box, or with ``wrap`` (a
    loop, whose last chunk lands on its first frames) wrap around."""
    n = layout.frames
    idx = [(start + k) % n if wrap else min(max(start + k, 0), n - 1) for k in range(frames)]
    objs = [replace(o, boxes=[o.boxes[i] for i in idx]) for o in layout.objects]
    return Layout(layout.fps, frames, layout.width, layout.height, objs)


def canonical(layout: Layout) -> Layout:
    """The layout as its JSON has it (boxes rounded by ``to_dict``), so that a layout read back
    from a sidecar gives the model exactly what the one it records gave."""
    return from_dict(layout.to_dict())


def latent_frames(frames: int, time_down: int = 4) -> int:
    """Latent frames of a video of ``frames`` frames under the causal VAE: 1 + ceil((frames - 1) / time_down)."""
    return 1 + -(-(frames - 1) // time_down)


def latent_boxes(layout: Layout, time_down: int = 4) -> np.ndarray:
    """(objects, latent frames, 4) float32 boxes per latent frame, NaN where the object is not
    visible in any of its frames. The causal VAE's latent frame 0 holds frame 0 alone, frame k
    the frames (k-1)*time_down + 1 .. k*time_down: each latent frame gets the union of its
    frames' boxes (where the object is anywhere in it)."""
    t = latent_frames(layout.frames, time_down)
    out = np.full((len(layout.objects), t, 4), np.nan, dtype=np.float32)
    for i, o in enumerate(layout.objects):
        for f, b in enumerate(o.boxes):
            if b is None:
                continue
            k = 0 if f == 0 else (f - 1) // time_down + 1
            cur = out[i, k]
            out[i, k] = b if np.isnan(cur[0]) else [min(cur[0], b[0]), min(cur[1], b[1]), max(cur[2], b[2]), max(cur[3], b[3])]
    return out


# ---- from the world ---------------------------------------------------------------------------


def phrase(obj: dict[str, Any]) -> str:
    """The phrase of a world object spec (``SceneSpec.to_dict()['objects'][i]``): "a small blue square"."""
    from tenku.world.spec import SHAPES

    if obj.get("shape") not in SHAPES:
        raise ValueError(f"world object {obj}: no shape from {', '.join(SHAPES)}")
    return f"a {obj['size']} {obj['color']} {obj['shape']}"


def from_ground_truth(gt: dict[str, Any], spec: dict[str, Any]) -> Layout:
    """The layout of a world render: ``gt`` its ground truth (``bbox`` in pixels, x1 and y1
    exclusive; ``visible``), ``spec`` its scene (for phrases and depth). A box where the
    object is visible (in frame and not hidden), None elsewhere."""
    w, h = int(gt["width"]), int(gt["height"])
    objs = []
    for o, boxes, seen in zip(spec["objects"], gt["bbox"], gt["visible"]):
        bs: list[Box | None] = [None if b is None or not v else (b[0] / w, b[1] / h, b[2] / w, b[3] / h)
                                for b, v in zip(boxes, seen)]
        objs.append(LayoutObject(phrase(o), bs, int(o.get("depth", 0)), float(o.get("angle", 0.0)) or None))
    return Layout(float(gt["fps"]), int(gt["frames"]), w, h, objs)


# ---- to the model ---------------------------------------------------------------------------


def pool_phrases(text: Any, phrases: list[str], cache: dict[str, Any] | None = None) -> Any:
    """(N, text_dim) float32: each phrase's text states (``text.encode``) averaged over its tokens,
    what a grounding token carries of its object. ``cache`` keeps them by phrase."""
    import torch

    cache = cache if cache is not None else {}
    missing = [p for p in dict.fromkeys(phrases) if p not in cache]
    if missing:
        states, mask = text.encode(missing)
        m = mask.float()[..., None]
        for p, s in zip(missing, (states.float() * m).sum(1) / m.sum(1).clamp_min(1)):
            cache[p] = s
    if not phrases:
        return torch.zeros(0, text.encode([""])[0].shape[-1])
    return torch.stack([cache[p] for p in phrases])


def to_model(layout: Layout, phrase_states: Any, time_down: int = 4, latent_t: int | None = None) -> Any:
    """The transformer's input for one sample (``tenku.dit.grounding.ObjectLayout``): boxes per
    latent frame (``latent_boxes``, the first ``latent_t`` of them) and the pooled phrases
    (``pool_phrases``' rows, one per object). Depth: the stated one, or 0."""
    import torch

    from tenku.dit.grounding import ObjectLayout

    boxes = torch.from_numpy(latent_boxes(layout, time_down)).clamp(0.0, 1.0)  # as trained: in-frame boxes (NaN stays)
    if latent_t is not None:
        if latent_t > boxes.shape[1]:
            raise ValueError(f"a layout of {layout.frames} frames has {boxes.shape[1]} latent frames; {latent_t} asked")
        boxes = boxes[:, :latent_t]
    depth = torch.tensor([float(o.depth or 0) for o in layout.objects])
    return ObjectLayout(boxes, phrase_states, depth)


# ---- the planner ----------------------------------------------------------------------------

PLAN_PIXELS = 256 * 256  # the simulator's boxes are read from a render of at most this many pixels a frame


def from_scene(spec: Any, width: int, height: int, fps: float, frames: int) -> Layout:
    """The layout of a world scene (``tenku.world.spec.SceneSpec``) over ``frames`` frames at
    ``fps``: one simulation for the whole length. Each box is the object's outline where the
    simulator puts it, to the sub-pixel (its centre plus the turned outline's extent, reaching
    past the frame's edge for an object half out of it; a render's ground truth, ``bbox``, is
    whole pixels of coverage >= 0.5, which cuts a star's points and a triangle's apex, so a
    sketch filling those boxes drew them a pixel or two small), with the object's angle; visible
    where the renderer counts it visible (in frame and not wholly hidden), read from a render at
    this size, or for a frame over ``PLAN_PIXELS`` at a smaller one of the same aspect."""
    from tenku.world.physics import simulate
    from tenku.world.render import View, render_frames
    from tenku.world.spec import outline_extent

    scale = min(1.0, math.sqrt(PLAN_PIXELS / (width * height)))
    w, h = max(2, int(round(width * scale))), max(2, int(round(height * scale)))
    times = np.arange(frames) / float(fps)
    traj = simulate(spec, float(times[-1]))
    _, st = render_frames(spec, w, h, times, traj)
    view, (pos, _) = View(spec, w, h), traj.state(times)
    seen = _visible(st)
    objs = []
    for i, o in enumerate(spec.objects):
        ex0, ey0, ex1, ey1 = outline_extent(o.shape, o.angle)
        r = o.radius * view.scale
        boxes: list[Box | None] = []
        for k, t in enumerate(times):
            if not seen[i][k]:
                boxes.append(None)
                continue
            px, py = view.to_px(pos[i, k, 0], pos[i, k, 1], spec.pan * float(t))
            boxes.append((float(px + ex0 * r) / w, float(py - ey1 * r) / h, float(px + ex1 * r) / w, float(py - ey0 * r) / h))
        objs.append(LayoutObject(phrase(asdict(o)), boxes, int(o.depth), float(o.angle) or None))
    return Layout(float(fps), frames, width, height, objs)


def _visible(st: dict[str, np.ndarray]) -> list[list[bool]]:
    """The renderer's visibility (``render_scene``): in frame and not wholly hidden."""
    from tenku.world.render import HIDDEN_ALPHA, IN_FRAME_AREA

    return ((st["area"] >= IN_FRAME_AREA) & (st["peak"] >= HIDDEN_ALPHA)).tolist()


def plan(prompt: str, seed: int = 0, *, width: int = 128, height: int = 128, fps: float = 8.0, frames: int = 33,
         llm: Any = None) -> tuple[Layout, Any]:
    """Prompt -> the expander's scene (``tenku.prompts.expand``, built-in or ``llm``) -> one
    simulation of the whole clip -> its layout. Returns the layout and the expansion (its
    caption, scene and warnings). Up to a minute of video."""
    from tenku.prompts.expand import expand

    if frames < 1 or (frames - 1) / fps > 60:
        raise ValueError(f"a plan covers 1 frame to a minute; {frames} frames at {fps:g} fps is {(frames - 1) / fps:.1f} s")
    exp = expand(prompt, seed, llm=llm, aspect=width / height, frames=frames, fps=fps)
    return from_scene(exp.spec, width, height, fps, frames), exp


def add_parser(sub: Any) -> None:
    """``tenku layout PROMPT -o boxes.json``: see (and edit) the plan a prompt gets."""
    from tenku.cli import fps_float, positive_float, seed_int

    p = sub.add_parser("layout", help="plan a prompt's motion with the simulator: a layout JSON of every object's boxes")
    p.add_argument("prompt")
    p.add_argument("-o", "--out", default="layout.json", help="output .json (docs/layout.md)")
    p.add_argument("--size", default="128x128", help="WxH of even integers")
    p.add_argument("--fps", type=fps_float, default=8.0)
    p.add_argument("--seconds", type=positive_float, default=4.0, help="length, up to 60")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--sketch", default=None, metavar="VIDEO",
                   help="also write the plan's sketch (what --plan's sampling starts from, before noise; tenku.sketch) "
                        "as an .mp4 or .gif")
    p.set_defaults(func=_cmd, command="layout")


def _cmd(args: Any) -> int:
    from tenku.cli import UsageError, parse_size

    w, h = parse_size(args.size)
    try:
        lay, exp = plan(args.prompt, args.seed, width=w, height=h, fps=args.fps, frames=int(round(args.seconds * args.fps)) + 1)
        save(lay, args.out)
        if args.sketch:
            from tenku.io import write_video
            from tenku.sketch import Sketch

            sk = Sketch(lay, exp.spec, w, h)
            write_video(args.sketch, (sk.frames(k, min(32, lay.frames - k)) for k in range(0, lay.frames, 32)), lay.fps)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write {e.filename or args.out}: {e.strerror or e}") from None
    for warning in exp.warnings:
        print(f"warning: {warning}")
    print(exp.caption)
    print(f"wrote {args.out}: {len(lay.objects)} object(s), {lay.frames} frames at {lay.fps:g} fps, {w}x{h}"
          + (f"; its sketch: {args.sketch}" if args.sketch else ""))
    return 0
