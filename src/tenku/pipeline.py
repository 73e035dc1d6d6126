"""Generation: prompt -> text states -> flow sampling of latents with the DiT ->
the causal VAE decodes -> frames. Every mode (the modes issue) is built on the
one sampler here, through per-frame sigma: condition frames are clean latents.

A pipeline folder holds ``vae/`` and ``transformer/`` (model folders), optionally ``guide/``
(a weaker transformer for autoguidance), and ``pipeline.yaml`` (text encoder, defaults).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np
import torch

from tenku import SEED_MAX
from tenku.config import load_config, save_config
from tenku.dit.model import DiT, load_dit, save_dit
from tenku.flow import GuidedModel, resolution_shift, sample, sampling_sigmas
from tenku.flow.sampler import SAMPLERS
from tenku.io import from_uint8, to_uint8
from tenku.modes import (Chunk, as_frames, check_aspect, check_request, cover_resize, end_latents, fade_from, fade_into, fit_multiple,
                         input_size, loop_split, plan_connect, plan_rollout, ramp, start_latents)
from tenku.text import MAX_TOKENS, TextEncoder, load_text_encoder
from tenku.vae.model import VAE


@dataclass
class PipelineConfig:
    text_encoder: str = "minilm"
    max_text_tokens: int = MAX_TOKENS
    fps: float = 8.0
    size: tuple[int, int] = (128, 128)  # default (width, height)
    frames: int = 33
    steps: int = 20
    guidance: float = 5.0
    # guidance of the chunks given frames of an input video (extend, connect); None:
    # ``guidance``. A lower scale follows the given motion more and the text less
    # (docs/modes.md). An explicit ``guidance`` sets both.
    context_guidance: float | None = None
    base_tokens: int = 256  # sampling shift grows with tokens past this (flow.resolution_shift)
    max_shift: float = 3.0
    cond_sigma: float = 0.0  # noise level of condition frames (noise augmentation used in training)
    sampler: str = "euler"  # flow.SAMPLERS: euler or dpm++2m
    negative_prompt: str = ""  # the unconditional input of guidance
    context_frames: int = 9  # most given frames a chunk is conditioned on (extend, long videos, connect)
    strength: float = 0.6  # default SDEdit strength of edits and upscales
    # weight of autoguidance by the folder's guide/ transformer (a smaller, less trained model of
    # the same latents and captions; flow.GuidedModel); 0: off
    autoguidance: float = 0.0


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when present, else cpu; 'cuda' without a GPU is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked, but no CUDA GPU is available (use auto or cpu)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda; got {name!r}")
    return torch.device(name)


def save_pipeline(folder: str | Path, vae: VAE, dit: DiT, cfg: PipelineConfig, dtype: torch.dtype | None = None,
                  guide: DiT | None = None) -> Path:
    """Write a pipeline folder: vae/, transformer/, guide/ (if any), pipeline.yaml, model_index.json
    (weights in ``dtype`` if given: bf16 halves the folder and computes as before under bf16 autocast)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vae.save(folder / "vae", dtype)
    save_dit(folder / "transformer", dit, dtype)
    if guide is not None:
        save_dit(folder / "guide", guide, dtype)
    save_config(cfg, folder / "pipeline.yaml")
    index = {"_class_name": "tenku.Pipeline", "_tenku_version": __import__("tenku").__version__,
             "vae": "vae", "transformer": "transformer", "text_encoder": cfg.text_encoder, "config": "pipeline.yaml"}
    if guide is not None:
        index["guide"] = "guide"
    (folder / "model_index.json").write_text(json.dumps(index, indent=1))
    return folder


class Pipeline:
    """Holds the VAE, the DiT and the text encoder; ``generate`` makes a video."""

    def __init__(self, vae: VAE, dit: DiT, text: TextEncoder, cfg: PipelineConfig, device: torch.device,
                 guide: DiT | None = None):
        if dit.cfg.in_channels != vae.cfg.latent_channels:
            raise ValueError(f"DiT expects {dit.cfg.in_channels} latent channels, VAE gives {vae.cfg.latent_channels}")
        if dit.cfg.text_dim != text.dim:
            raise ValueError(f"DiT expects text states of size {dit.cfg.text_dim}, encoder {cfg.text_encoder!r} gives {text.dim}")
        if guide is not None and (guide.cfg.in_channels, guide.cfg.text_dim, guide.cfg.patch) != (
                dit.cfg.in_channels, dit.cfg.text_dim, dit.cfg.patch):
            raise ValueError("the guide transformer must take the transformer's latents, text states and patch: "
                             f"{guide.cfg.in_channels} channels, text {guide.cfg.text_dim}, patch {list(guide.cfg.patch)} "
                             f"against {dit.cfg.in_channels}, {dit.cfg.text_dim}, {list(dit.cfg.patch)}")
        if cfg.autoguidance < 0:
            raise ValueError(f"autoguidance={cfg.autoguidance}: must be 0 (off) or more")
        if cfg.autoguidance and guide is None:
            raise ValueError(f"autoguidance={cfg.autoguidance} needs a guide transformer (a guide/ folder); set it to 0 or add one")
        self.vae, self.dit, self.text, self.cfg, self.device = vae.eval(), dit.eval().to(device), text, cfg, device
        self.guide = None if guide is None else guide.eval().to(device)

    @classmethod
    def load(cls, folder: str | Path, device: str = "auto") -> "Pipeline":
        """Load a pipeline folder: vae/, transformer/ (``dit/`` in folders from before 0.1),
        pipeline.yaml (text encoder, sampler and defaults), model_index.json."""
        folder = Path(folder)
        if not (folder / "pipeline.yaml").exists():
            raise ValueError(f"{folder}: not a tenku pipeline folder (expected pipeline.yaml, vae/, transformer/)")
        cfg = load_config(PipelineConfig, folder / "pipeline.yaml")
        dev = pick_device(device)
        dit = folder / "transformer" if (folder / "transformer").exists() else folder / "dit"
        guide = load_dit(str(folder / "guide")) if (folder / "guide").is_dir() else None
        return cls(VAE.load(folder / "vae"), load_dit(dit), load_text_encoder(cfg.text_encoder, cfg.max_text_tokens), cfg, dev,
                   guide)

    def save(self, folder: str | Path, dtype: torch.dtype | None = None) -> None:
        save_pipeline(folder, self.vae, self.dit, self.cfg, dtype, self.guide)

    # the call shape of diffusers' video pipelines
    from_pretrained = load
    save_pretrained = save

    def __call__(self, prompt: str, negative_prompt: str | None = None, height: int | None = None,
                 width: int | None = None, num_frames: int | None = None, fps: float | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None, seed: int | None = None,
                 generator: torch.Generator | None = None, callback: Callable[[int, int], None] | None = None,
                 **mode: Any) -> np.ndarray:
        """``generate`` with diffusers' argument names; ``generator`` (if no ``seed``) draws the seed."""
        if seed is None:
            seed = 0 if generator is None else int(torch.randint(SEED_MAX + 1, (1,), generator=generator))
        size = (self.cfg.size[0] if width is None else width, self.cfg.size[1] if height is None else height)
        return self.generate(prompt, seed, size, num_frames, fps, num_inference_steps,
                             guidance_scale, callback, negative_prompt=negative_prompt, **mode)

    # ---- what sizes the model can make ------------------------------------------------

    @property
    def size_multiple(self) -> int:
        """Width and height must be multiples of this (VAE downsampling x DiT patch)."""
        return self.vae.cfg.space_down * max(self.dit.cfg.patch[1], self.dit.cfg.patch[2])

    @property
    def frame_step(self) -> int:
        return self.vae.cfg.time_down * self.dit.cfg.patch[0]

    def fit_size(self, width: int, height: int) -> tuple[int, int]:
        """The nearest size the model can make (multiples of ``size_multiple``, at least one)."""
        return fit_multiple(width, self.size_multiple), fit_multiple(height, self.size_multiple)

    @property
    def max_pixels(self) -> int:
        """The largest width x height the CLI and the server make by default: 16x the default
        size's area (512x512 for a 128x128 model), far beyond the sizes it was trained at and
        minutes a video on a CPU already."""
        return 16 * self.cfg.size[0] * self.cfg.size[1]

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The output size for an input video of this size (``tenku.modes.input_size``)."""
        return input_size(width, height, self.size_multiple, self.cfg.size, self.max_pixels)

    def fit_frames(self, frames: int) -> int:
        """The nearest frame count of the form 1 + frame_step * k."""
        s = self.frame_step
        return 1 + max(0, round((frames - 1) / s)) * s

    # ---- sampling ------------------------------------------------------------------------

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        states, mask = self.text.encode(prompts)
        return states.to(self.device), mask.to(self.device)

    def _velocity(self, x: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.dit(x, sigma, ctx, mask).float()  # under sample_latents' bf16 autocast

    def _guide_velocity(self, x: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.guide(x, sigma, ctx, mask).float()  # type: ignore[misc]

    @torch.no_grad()
    def sample_latents(self, prompt: str, seed: int, shape: tuple[int, int, int, int], steps: int | None = None,
                       guidance: float | None = None, cond: torch.Tensor | None = None,
                       cond_mask: torch.Tensor | None = None, x_start: torch.Tensor | None = None,
                       start_sigma: float = 1.0, callback: Callable[[int, int], None] | None = None,
                       negative_prompt: str | None = None, sampler: str | None = None) -> torch.Tensor:
        """Sample a normalised latent (1, C, T', H', W') for ``prompt``; ``cond``/``cond_mask``
        fix clean frames, ``x_start``/``start_sigma`` start from a noised latent (SDEdit);
        guidance pushes away from ``negative_prompt`` (default: the config's, normally empty)."""
        steps = steps or self.cfg.steps
        guidance = self.cfg.guidance if guidance is None else guidance
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn((1, *shape), generator=g).to(self.device)
        tokens = math.prod(shape[1:]) // math.prod(self.dit.cfg.patch)
        shift = resolution_shift(tokens, self.cfg.base_tokens, 1.0, 16 * self.cfg.base_tokens, self.cfg.max_shift)
        sigmas = sampling_sigmas(steps, shift, start_sigma)
        negative = self.cfg.negative_prompt if negative_prompt is None else negative_prompt
        model = GuidedModel(self._velocity, self.encode_text([prompt]), self.encode_text([negative]), guidance,
                            self._guide_velocity if self.guide is not None else None, self.cfg.autoguidance)
        dev = lambda t: None if t is None else t.to(self.device)  # noqa: E731
        # one autocast context for all steps: the bf16 copies of the weights are made once, not per step
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return sample(model, noise, sigmas, dev(cond), dev(cond_mask), self.cfg.cond_sigma, dev(x_start), callback,
                          sampler or self.cfg.sampler)

    # The VAE runs under bf16 autocast: on the bundled VAE the decoded frames differ from fp32
    # by at most 1/255 (60 dB apart) and decoding a 4-second clip is 4.5x faster on CPU.

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """Normalised latent (1, C, T', H', W') -> uint8 frames (T, H, W, 3)."""
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return to_uint8(self.vae.decode(latent.float().cpu()).float().clamp(-1, 1)[0])

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (1 + time_down k, H, W, 3) -> normalised latent (1, C, 1 + k, H', W')."""
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.vae.encode(from_uint8(frames)[None]).float()

    def check_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if (w, h) != self.fit_size(w, h):
            fw, fh = self.fit_size(w, h)
            raise ValueError(f"size {w}x{h}: width and height must be multiples of {self.size_multiple}; nearest: {fw}x{fh}")
        check_aspect(w, h)
        return w, h

    def check_frames(self, n: int) -> int:
        if n != self.fit_frames(n):
            raise ValueError(f"{n} frames: the model makes 1 + {self.frame_step}k frames; nearest: {self.fit_frames(n)}")
        return n

    def sample_chunk(self, prompt: str, seed: int, size: tuple[int, int], frames: int, start: np.ndarray | None = None,
                     end: np.ndarray | None = None, steps: int | None = None, guidance: float | None = None,
                     callback: Callable[[int, int], None] | None = None, x_start: np.ndarray | None = None,
                     strength: float = 1.0, **sampling: Any) -> np.ndarray:
        """One sampling call: ``frames`` uint8 frames whose first ``len(start)`` and last
        ``len(end)`` frames are given (the latent frames they fill completely are clean
        conditions; see modes.py), or that start from ``x_start`` noised to ``strength``
        (SDEdit). ``sampling``: negative_prompt, sampler (see ``sample_latents``). Returns the
        whole decoded chunk, given frames included."""
        w, h = size
        shape = self.vae.latent_shape(frames, h, w)
        td, T = self.vae.cfg.time_down, shape[1]
        cond = torch.zeros((1, *shape))
        mask = torch.zeros(1, T, dtype=torch.bool)
        if start is not None and len(start):
            k = start_latents(len(start), td)
            cond[:, :, :k] = self.encode_frames(start[: 1 + td * (k - 1)])
            mask[:, :k] = True
        if end is not None and end_latents(len(end), td):
            k = end_latents(len(end), td)
            tail = end[len(end) - td * k :]
            cond[:, :, T - k :] = self.encode_frames(np.concatenate([tail[:1], tail]))[:, :, 1:]
            mask[:, T - k :] = True
        if mask.all():
            raise ValueError(f"nothing to generate: all {T} latent frames of the chunk are given")
        given = bool(mask.any())
        z0 = None if x_start is None else self.encode_frames(x_start)
        z = self.sample_latents(prompt, seed, shape, steps, guidance, cond=cond if given else None,
                                cond_mask=mask if given else None, x_start=z0, start_sigma=strength, callback=callback,
                                **sampling)
        return self.decode(z)

    # ---- modes (the table in DESIGN.md; the chunk arithmetic is in modes.py) -------------

    def generate(self, prompt: str, seed: int = 0, size: tuple[int, int] | None = None, frames: int | None = None,
                 fps: float | None = None, steps: int | None = None, guidance: float | None = None,
                 callback: Callable[[int, int], None] | None = None, **mode: Any) -> np.ndarray:
        """``stream`` gathered into one uint8 array (T, H, W, 3)."""
        return np.concatenate(list(self.stream(prompt, seed, size, frames, fps, steps, guidance, callback, **mode)))

    def stream(self, prompt: str, seed: int = 0, size: tuple[int, int] | None = None, frames: int | None = None,
               fps: float | None = None, steps: int | None = None, guidance: float | None = None,
               callback: Callable[[int, int], None] | None = None, *, image: np.ndarray | None = None,
               video: np.ndarray | None = None, extend: str | None = None, loop: bool = False,
               connect: tuple[np.ndarray, np.ndarray] | None = None, strength: float | None = None,
               negative_prompt: str | None = None, sampler: str | None = None) -> Iterator[np.ndarray]:
        """Every mode, as uint8 frame blocks (T_i, H, W, 3) in playing order. Long videos are
        sampled and handed out chunk by chunk (each chunk conditioned on the tail of the last),
        so memory does not grow with length.

        What comes out is always the whole video: for ``extend``, the given video plus the new
        frames; for ``connect=(A, B)``, A + transition + B. Input frames come back unchanged,
        except those the chunk at a seam was given (at most ``context_frames``), which fade
        into what that chunk decoded for them (``modes.fade``), so the seam shows no jump of
        the autoencoder's round-trip error. ``frames``: the output's length, except for
        ``connect``, where it is the transition's. Modes: text only; ``image``
        (image-to-video: the first frame is the image after the autoencoder round trip);
        ``video`` with ``extend="forward"|"backward"``, or with ``strength`` (an SDEdit edit:
        keep the video's layout, follow the new prompt); ``loop`` (alone or with ``image``);
        ``connect``. Inputs are resized by ``modes.cover_resize`` to ``size`` (default: the
        input video's size fitted to what the model makes, else the model's default).
        ``callback(done, total)`` counts sampling steps over all chunks. Wrong sizes, frame
        counts and mode combinations are ValueErrors that say what is allowed. ``negative_prompt``
        and ``sampler`` (``euler``, ``dpm++2m``) override the config's."""
        steps = self.cfg.steps if steps is None else steps
        check_request(prompt, seed, steps, guidance, frames, fps, size)
        modes = [n for n, on in (("image", image is not None), ("video", video is not None),
                                 ("connect", connect is not None)) if on]
        if len(modes) > 1:
            raise ValueError(f"give one of image, video, connect; got {' and '.join(modes)}")
        if connect is not None and (not isinstance(connect, (tuple, list)) or len(connect) != 2):
            raise ValueError("connect must be two videos (A, B)")
        if loop and (video is not None or connect is not None):
            raise ValueError("loop works with text or an image, not with a video or connect")
        if extend is not None and video is None:
            raise ValueError("extend needs a video to extend")
        if extend not in (None, "forward", "backward"):
            raise ValueError(f"extend must be 'forward' or 'backward'; got {extend!r}")
        if video is not None and (extend is None) == (strength is None):
            raise ValueError("with a video, give extend ('forward'/'backward') or strength (an edit), one of them")
        if strength is not None and not 0 < strength <= 1:
            raise ValueError(f"strength must be in (0, 1]; got {strength}")
        first = video if video is not None else connect[0] if connect is not None else None
        if size is None and first is not None:
            size = self.input_size(first.shape[2], first.shape[1])
        w, h = self.check_size(size or self.cfg.size)
        fit = lambda v: cover_resize(as_frames(v, "video"), w, h)  # noqa: E731
        chunk, overlap, step = self.cfg.frames, min(self.cfg.context_frames, self.cfg.frames - 1), self.frame_step
        if sampler is not None and sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
        run = _Runner(self, prompt, seed, (w, h), steps, guidance, callback,
                      dict(negative_prompt=negative_prompt, sampler=sampler))
        if strength is not None:  # edit: the whole (fitted) video in one call
            v = fit(video)
            n = 1 + step * ((len(v) - 1) // step)  # the longest valid frame count it holds
            if frames is not None and frames != n:
                raise ValueError(f"an edit keeps the video's length ({n} frames usable); got frames={frames}")
            run.total = steps
            return iter([run.chunk(n, x_start=v[:n], strength=strength)])
        if video is not None:
            v = fit(video)
            if len(v) < overlap:
                raise ValueError(f"the video has {len(v)} frames; extending needs at least {overlap}")
            n = frames if frames is not None else len(v) + chunk - overlap
            if n <= len(v):
                raise ValueError(f"frames={n} must exceed the video's {len(v)} frames (it counts the video too)")
            return run.extend(v, n - len(v), chunk, overlap, step, backward=extend == "backward")
        if connect is not None:
            a, b = fit(connect[0]), fit(connect[1])
            for name, clip in (("A", a), ("B", b)):
                if len(clip) < overlap:
                    raise ValueError(f"clip {name} has {len(clip)} frames; connect needs at least {overlap}")
            n = frames if frames is not None else chunk - 2 * overlap
            return run.connect(a, b, n, chunk, overlap, step)
        n = frames or self.cfg.frames
        self.check_frames(n)  # text and image modes: 1 + 4k frames, whatever the length
        img = None if image is None else cover_resize(as_frames(image, "image", still=True), w, h)
        if loop:
            if n < 2 * overlap - 1:
                raise ValueError(f"a loop needs at least {2 * overlap - 1} frames; got {n}")
            return run.loop(img, n, chunk, overlap, step)
        return run.forward(img, n, chunk, overlap, step)

    def context_guidance_for(self, guidance: float | None, with_input: bool) -> float | None:
        """The scale the chunks given an input video's frames get when a request asks for
        ``guidance`` (None: the config's) and has such an input (extend, connect); None when
        they get the request's guidance like every other chunk."""
        return self.cfg.context_guidance if guidance is None and with_input else None


class _Runner:
    """Runs the chunk plans of one request (modes.py makes them), one sampling call per
    chunk, and counts steps for the progress callback. Chunk i > 0 draws its own noise."""

    def __init__(self, pipe: Pipeline, prompt: str, seed: int, size: tuple[int, int], steps: int,
                 guidance: float | None, callback: Callable[[int, int], None] | None, sampling: dict[str, Any]):
        self.pipe, self.prompt, self.seed, self.size, self.sampling = pipe, prompt, seed, size, sampling
        self.steps, self.guidance, self.callback = steps, guidance, callback
        self.total = self.done = self.calls = 0
        self.overlap = min(pipe.cfg.context_frames, pipe.cfg.frames - 1)
        self.seam = np.zeros((0,), np.uint8)  # _roll: chunk 0's decoding of its given frames

    def chunk(self, frames: int, inputs: bool = False, **kw: Any) -> np.ndarray:
        """One sampling call; ``inputs``: its given frames include an input video's (not only
        an image or frames this request made), so ``context_guidance`` applies."""
        seed = self.seed if self.calls == 0 else self.seed * 1_000_003 + self.calls
        self.calls += 1

        def tick(i: int, n: int) -> None:
            if self.callback is not None:
                self.callback(self.done + i, self.total)

        out = self.pipe.sample_chunk(self.prompt, seed, self.size, frames, steps=self.steps,
                                     guidance=self._guidance(inputs), callback=tick, **kw, **self.sampling)
        self.done += self.steps
        return out

    def _guidance(self, inputs: bool) -> float | None:
        """The request's guidance, else the config's context guidance for a chunk given an
        input video's frames, else None (the config's guidance)."""
        g = self.pipe.context_guidance_for(self.guidance, inputs)
        return self.guidance if g is None else g

    def _count(self, *plans: list[Chunk]) -> None:
        self.total = sum(len(p) for p in plans) * self.steps

    def _roll(self, tail: np.ndarray | None, plan: list[Chunk], whole_first: bool,
              inputs: bool = False) -> Iterator[np.ndarray]:
        """Forward chunks after ``tail`` (an input video's frames if ``inputs``); yields the new
        frames (all of chunk 0 if ``whole_first``). Chunk 0's decoding of its given frames is
        left in ``self.seam`` for fading."""
        for i, c in enumerate(plan):
            out = self.chunk(c.frames, inputs and i == 0, start=None if c.given == 0 else tail[-c.given:])
            new = out[c.given : c.given + c.new]
            if i == 0:
                self.seam = out[: c.given]
            yield out[: c.given + c.new] if i == 0 and whole_first else new
            tail = new if tail is None else np.concatenate([tail, new])[-self.overlap:]

    def forward(self, image: np.ndarray | None, n: int, chunk: int, overlap: int, step: int) -> Iterator[np.ndarray]:
        """Text-to-video or image-to-video of ``n`` frames, in chunks past one chunk's length."""
        k = 0 if image is None else 1
        plan = plan_rollout(n - k, k, chunk, overlap, step)
        self._count(plan)
        return self._roll(image, plan, whole_first=True)

    def extend(self, v: np.ndarray, new: int, chunk: int, overlap: int, step: int, backward: bool) -> Iterator[np.ndarray]:
        """``v`` with ``new`` frames after (or before) it; v's frames given to the chunk at the seam fade."""
        plan = plan_rollout(new, len(v), chunk, overlap, step, backward)
        self._count(plan)
        q = plan[0].given

        def forward() -> Iterator[np.ndarray]:
            blocks = self._roll(v[-overlap:], plan, whole_first=False, inputs=True)
            first = next(blocks)  # chunk 0: its decoding of v's last q frames is the fade's target
            yield from fade_into(v, self.seam)
            yield first
            yield from blocks

        def backward_() -> Iterator[np.ndarray]:
            head, blocks, decoded = v[:overlap], [], v[:q]
            for i, c in enumerate(plan):
                out = self.chunk(c.frames, i == 0, end=head[: c.given])
                new = out[c.extra : c.extra + c.new]
                if i == 0:
                    decoded = out[c.extra + c.new :]
                blocks.insert(0, new)
                head = np.concatenate([new, head])[:overlap]
            yield from blocks
            yield from fade_from(decoded, v)

        return backward_() if backward else forward()

    def connect(self, a: np.ndarray, b: np.ndarray, n: int, chunk: int, overlap: int, step: int) -> Iterator[np.ndarray]:
        """A, a transition of ``n`` new frames, B; the given frames next to each seam fade."""
        pre, last, qb = plan_connect(n, len(a), len(b), chunk, overlap, step)
        self._count(pre, [last])
        return self._bridge(a[-overlap:], b[:overlap], pre, last, qb, ends=(a, b))

    def _bridge(self, tail: np.ndarray, head: np.ndarray, pre: list[Chunk], last: Chunk, qb: int,
                ends: tuple[np.ndarray, np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """The transition from ``tail`` into ``head``: forward chunks, then one that lands on
        ``head``. With ``ends=(A, B)`` it comes with A before and B after, faded at the seams;
        a side that sits on frames already in the output is joined to them by ``ramp``."""
        a = None if ends is None else ends[0]  # A waits until a chunk has decoded its given frames
        for block in self._roll(tail, pre, whole_first=False, inputs=ends is not None):
            if a is not None:
                yield from fade_into(a, self.seam)
                a = None
            tail = np.concatenate([tail, block])[-self.overlap:]
            yield block
        out = self.chunk(last.frames + qb, ends is not None, start=tail[-last.given:], end=head[:qb])
        zero = np.zeros(out.shape[1:], np.float32)
        start_fix = zero if a is not None else tail[-1].astype(np.float32) - out[last.given - 1]
        end_fix = zero if ends is not None else head[0].astype(np.float32) - out[last.frames]
        if a is not None:  # A fades into this chunk's decoding, which the transition continues
            yield from fade_into(a, out[: last.given])
        yield ramp(out[last.given : last.frames], start_fix, end_fix)
        if ends is not None:  # B fades from this chunk's decoding of its head
            yield from fade_from(out[last.frames :], ends[1])

    def loop(self, image: np.ndarray | None, n: int, chunk: int, overlap: int, step: int) -> Iterator[np.ndarray]:
        """A clip of about half the length, then the transition from its end back to its start."""
        x = loop_split(n, chunk - 2 * overlap, step)
        k = 0 if image is None else 1
        first = plan_rollout(x - k, k, chunk, overlap, step)
        pre, last, qb = plan_connect(n - x, x, x, chunk, overlap, step)
        self._count(first, pre, [last])

        def gen() -> Iterator[np.ndarray]:
            head: np.ndarray | None = None
            tail: np.ndarray | None = None
            for block in self._roll(image, first, whole_first=True):
                head = block[:overlap] if head is None else np.concatenate([head, block])[:overlap]
                tail = block[-overlap:] if tail is None else np.concatenate([tail, block])[-overlap:]
                yield block
            yield from self._bridge(tail, head, pre, last, qb)

        return gen()

