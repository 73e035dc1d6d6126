"""Generation: prompt -> text states -> flow sampling of latents with the DiT ->
the causal VAE decodes -> frames. Every mode (the modes issue) is built on the
one sampler here, through per-frame sigma: condition frames are clean latents.

A pipeline folder holds ``vae/`` and ``transformer/`` (model folders), optionally ``guide/``
(a weaker transformer for autoguidance), and ``pipeline.yaml`` (text encoder, defaults).
"""

from __future__ import annotations

import math
from pathlib import Path
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np
import torch

from tenku import SEED_MAX
from tenku.config import load_config
from tenku.dit.model import DiT, load_dit
from tenku.flow import GuidedModel, resolution_shift, sample, sampling_sigmas
from tenku.flow.schedule import GRIDS, scheduler_sigmas
from tenku.memory import cast_matrices, check_offload, on_device, place, weights_dtype
from tenku.io import from_uint8, to_uint8
from tenku.modes import Runner, end_latents, latent_of_frames, start_latents
from tenku.request import PYTHON_NAMES, Geometry, Input, Limits, Request, RequestError, Resolved, resolve
from tenku.text import TextEncoder, load_text_encoder
from tenku.vae.model import VAE
from tenku.sketch import sketch_steps
from tenku.pipeline_config import PipelineConfig, pick_device, save_pipeline  # noqa: F401 - re-exported


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
        if cfg.vae_device not in ("cpu", "auto", "cuda"):
            raise ValueError(f"vae_device must be cpu, auto or cuda; got {cfg.vae_device!r}")
        if cfg.schedule not in GRIDS:
            raise ValueError(f"schedule must be one of {', '.join(GRIDS)}; got {cfg.schedule!r}")
        dtype = weights_dtype(cfg.compute, cfg.weights_dtype)
        dit, guide = (None if m is None else cast_matrices(m.eval(), dtype) for m in (dit, guide))
        if cfg.compile:
            for blk in dit.blocks:
                blk.compile()
        self.dit, self.text, self.cfg, self.device = place(dit, device, check_offload(cfg.offload)), text, cfg, device
        self.vae = vae.eval().to(self.vae_device)
        self.guide = None if guide is None else place(guide, device, cfg.offload)

    @classmethod
    def load(cls, folder: str | Path, device: str = "auto", offload: str | None = None) -> "Pipeline":
        """Load a pipeline folder: vae/, transformer/ (``dit/`` in folders from before 0.1),
        pipeline.yaml (text encoder, sampler and defaults), model_index.json; or a diffusers
        Wan folder (``tenku.wan.load_wan``). ``offload`` (none, model, block: ``tenku.memory``)
        overrides the folder's setting; None keeps it."""
        from tenku.wan.folder import is_wan_folder, load_wan

        folder = Path(folder)
        over = {} if offload is None else {"offload": check_offload(offload)}
        if is_wan_folder(folder):
            return load_wan(folder, device, **over)
        if not (folder / "pipeline.yaml").exists():
            raise ValueError(f"{folder}: not a tenku pipeline folder (expected pipeline.yaml, vae/, transformer/)")
        cfg = load_config(PipelineConfig, folder / "pipeline.yaml")
        cfg.offload = over.get("offload", cfg.offload)
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
                 latents: torch.Tensor | None = None, **mode: Any) -> np.ndarray:
        """``generate`` with diffusers' argument names; ``generator`` (if no ``seed``) draws the seed;
        ``latents``: the starting noise (1, C, T', H', W'), as diffusers' pipelines take it (a video
        of one chunk: text-to-video, image-to-video, an edit)."""
        if seed is None:
            seed = 0 if generator is None else int(torch.randint(SEED_MAX + 1, (1,), generator=generator))
        size = (self.cfg.size[0] if width is None else width, self.cfg.size[1] if height is None else height)
        return self.generate(prompt, seed, size, num_frames, fps, num_inference_steps,
                             guidance_scale, callback, negative_prompt=negative_prompt, latents=latents, **mode)

    @property
    def geometry(self) -> Geometry:
        """What sizes and lengths this model makes, and its request defaults (tenku.request)."""
        c = self.cfg
        return Geometry(self.vae.cfg.space_down * max(self.dit.cfg.patch[1], self.dit.cfg.patch[2]),
                        self.vae.cfg.time_down * self.dit.cfg.patch[0], tuple(c.size), c.frames, c.fps, c.context_frames,
                        c.steps, c.strength, bool(self.dit.cfg.grounding), clean_frames_refused=c.clean_frames_refused,
                        sketch=c.sketch)

    # ---- sampling ------------------------------------------------------------------------

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        states, mask = self.text.encode(prompts)
        return states.to(self.device), mask.to(self.device)

    def _velocity(self, x: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.dit(x, sigma, ctx, mask).float()  # under sample_latents' bf16 autocast

    def _grounded(self, layout: Any) -> Callable[..., torch.Tensor]:
        """The velocity of the transformer given ``layout`` (an ``ObjectLayout``) on both branches
        of guidance, as it was trained; the guide (no grounding) sees none. A model without
        grounding is refused here, the one place that says so."""
        if not self.dit.cfg.grounding:
            raise RequestError("this model has no grounding; a layout needs a transformer trained to follow one "
                               "(DiTConfig.grounding, docs/layout.md)", "layout", "unsupported_request")
        def velocity(x: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.dit(x, sigma, ctx, mask, layout=[layout] * x.shape[0]).float()

        return velocity

    def _guide_velocity(self, x: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.guide(x, sigma, ctx, mask).float()  # type: ignore[misc]

    @torch.no_grad()
    def sample_latents(self, prompt: str, seed: int, shape: tuple[int, int, int, int], steps: int | None = None,
                       guidance: float | None = None, cond: torch.Tensor | None = None,
                       cond_mask: torch.Tensor | None = None, x_start: torch.Tensor | None = None,
                       start_sigma: float = 1.0, callback: Callable[[int, int], None] | None = None,
                       negative_prompt: str | None = None, sampler: str | None = None,
                       conditioning: dict[str, Any] | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Sample a normalised latent (1, C, T', H', W') for ``prompt``; ``cond``/``cond_mask``
        fix clean frames, ``x_start``/``start_sigma`` start from a noised latent (SDEdit);
        guidance pushes away from ``negative_prompt`` (default: the config's, normally empty).
        ``conditioning``: a request's extra conditioning inputs by name: ``layout`` (the chunk's
        ``tenku.dit.grounding.ObjectLayout``, ``tenku.layout.to_model``) for a transformer with
        grounding. ``noise``: the starting noise (1, C, T', H', W') instead of the seed's
        (diffusers' ``latents=``)."""
        velocity = self._velocity
        extra = {k: v for k, v in (conditioning or {}).items() if k != "layout"}
        if extra:
            raise RequestError(f"this model takes no extra conditioning; got {', '.join(sorted(extra))}", "conditioning")
        if conditioning and conditioning.get("layout") is not None:
            velocity = self._grounded(conditioning["layout"])
        steps = steps or self.cfg.steps
        guidance = self.cfg.guidance if guidance is None else guidance
        if noise is None:  # on the CPU, as diffusers' randn_tensor draws it: a seed is a generator seed there too
            noise = torch.randn((1, *shape), generator=torch.Generator().manual_seed(int(seed)))
        elif tuple(noise.shape) != (1, *shape):
            raise RequestError(f"latents must be (1, {', '.join(map(str, shape))}) for this size and length; "
                               f"got {tuple(noise.shape)}", "latents")
        noise = noise.float().to(self.device)
        sigmas = self.sigmas(steps, math.prod(shape[1:]) // math.prod(self.dit.cfg.patch), start_sigma)
        negative = self.cfg.negative_prompt if negative_prompt is None else negative_prompt
        model = GuidedModel(velocity, self.encode_text([prompt]), self.encode_text([negative]), guidance,
                            self._guide_velocity if self.guide is not None else None, self.cfg.autoguidance)
        dev = lambda t: None if t is None else t.to(self.device)  # noqa: E731
        # one autocast context for all steps: the bf16 copies of the weights are made once, not per step
        with self.autocast(self.device), on_device(self.dit, self.device, self.cfg.offload):
            return sample(model, noise, sigmas, dev(cond), dev(cond_mask), self.cfg.cond_sigma, dev(x_start), callback,
                          sampler or self.cfg.sampler)

    def sigmas(self, steps: int, tokens: int, start: float = 1.0) -> torch.Tensor:
        """The ``steps + 1`` sampling sigmas for a latent of ``tokens`` tokens: tenku's grid shifted
        by resolution, or the folder's scheduler's grid (``PipelineConfig.schedule``)."""
        c = self.cfg
        if c.schedule != "resolution":
            return scheduler_sigmas(c.schedule, steps, c.shift, c.train_timesteps, start)
        shift = resolution_shift(tokens, c.base_tokens, 1.0, 16 * c.base_tokens, c.max_shift)
        return sampling_sigmas(steps, shift, start)

    def autocast(self, device: torch.device) -> Any:
        """bf16 autocast on ``device`` (``PipelineConfig.compute``: fp32 switches it off)."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.compute == "bf16")

    # Where the VAE runs is a stated policy, PipelineConfig.vae_device: "cpu" (the default) keeps
    # the autoencoder on the CPU under bf16 autocast, where on the bundled VAE the decoded frames
    # differ from fp32 by at most 1/255 (60 dB apart) and decoding a 4-second clip is 4.5x faster
    # than fp32; the DiT dominates sampling time, and the CPU's memory holds long videos. "auto"
    # puts it beside the DiT (a GPU user's choice when the GPU has room).

    @property
    def vae_device(self) -> torch.device:
        """The device the VAE encodes and decodes on (``PipelineConfig.vae_device``)."""
        return self.device if self.cfg.vae_device == "auto" else torch.device(self.cfg.vae_device)

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """Normalised latent (1, C, T', H', W') -> uint8 frames (T, H, W, 3)."""
        dev = self.vae_device
        with self.autocast(dev):
            return to_uint8(self.vae.decode(latent.float().to(dev)).float().clamp(-1, 1)[0].cpu())

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (1 + time_down k, H, W, 3) -> normalised latent (1, C, 1 + k, H', W')."""
        dev = self.vae_device
        with self.autocast(dev):
            return self.vae.encode(from_uint8(frames)[None].to(dev)).float().cpu()

    def sample_chunk(self, prompt: str, seed: int, size: tuple[int, int], frames: int, start: np.ndarray | None = None,
                     end: np.ndarray | None = None, steps: int | None = None, guidance: float | None = None,
                     callback: Callable[[int, int], None] | None = None, x_start: np.ndarray | None = None,
                     strength: float = 1.0, **sampling: Any) -> np.ndarray:
        """One sampling call: ``frames`` uint8 frames whose first ``len(start)`` and last
        ``len(end)`` frames are given (the latent frames they fill completely are clean
        conditions; see tenku.modes.plans), or that start from ``x_start`` noised to ``strength``
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

    # ---- modes (the table in DESIGN.md; the chunk arithmetic is in tenku.modes) -------------

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
               negative_prompt: str | None = None, sampler: str | None = None,
               conditioning: dict[str, Any] | None = None, latents: torch.Tensor | None = None) -> Iterator[np.ndarray]:
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
        counts and mode combinations are ValueErrors (``tenku.request.RequestError``) that say
        what is allowed. ``negative_prompt`` and ``sampler`` (``euler``, ``dpm++2m``) override
        the config's. The arguments become a ``tenku.request.Request``; ``run`` makes it."""
        if connect is not None and (not isinstance(connect, (tuple, list)) or len(connect) != 2):
            raise RequestError("connect must be two videos (A, B)", "connect")
        of = Input.of_array
        req = Request(prompt, None if image is None else of(image, "image", still=True),
                      None if video is None else of(video, "video"),
                      None if connect is None else (of(connect[0], "video"), of(connect[1], "video")), extend, loop,
                      strength, None if size is None else tuple(size) if isinstance(size, (tuple, list)) else size,
                      frames=frames, fps=fps, seed=seed, steps=steps, guidance=guidance, negative_prompt=negative_prompt,
                      sampler=sampler, expand=False, conditioning=dict(conditioning or {}))
        if isinstance(frames, int) and video is not None:  # here ``frames`` counts the whole output
            have = len(req.video.array)  # type: ignore[union-attr, arg-type]
            if strength is not None and frames != self.geometry.usable_frames(have):
                raise RequestError(f"an edit keeps the video's length ({self.geometry.usable_frames(have)} frames "
                                   f"usable); got frames={frames}", "frames")
            if strength is None and frames <= have:
                raise RequestError(f"frames={frames} must exceed the video's {have} frames (it counts the video too)",
                                   "frames")
            req.frames = None if strength is not None else frames - have
        return self.run(resolve(req, self.geometry, Limits(max_pixels=0), PYTHON_NAMES), callback, latents)

    def run(self, req: Resolved, callback: Callable[[int, int], None] | None = None,
            latents: torch.Tensor | None = None) -> Iterator[np.ndarray]:
        """Make a resolved request (``tenku.request.resolve``), as ``stream`` describes: the
        inputs read and fitted, then the mode's chunk plans through ``modes.Runner``. ``latents``:
        the starting noise of a one-chunk video (see ``__call__``)."""
        w, h = req.size
        geo, fps = self.geometry, req.fps
        chunk, overlap, step = geo.frames, geo.overlap, geo.frame_step
        fit = lambda i, count=None: i.frames(fps, (w, h), count)  # noqa: E731 - resampled, fitted (decoded lazily)
        sampling: dict[str, Any] = dict(negative_prompt=req.negative_prompt, sampler=req.sampler)
        if latents is not None:
            if req.mode not in ("text-to-video", "image-to-video", "edit") or req.frames > chunk:
                raise RequestError(f"latents= gives the noise of one chunk: text-to-video, image-to-video or an edit "
                                   f"of at most {chunk} frames; got {req.mode} of {req.frames}", "latents")
            sampling["noise"] = latents
        if req.conditioning:
            sampling["conditioning"] = req.conditioning
        layout = req.conditioning.get("layout")
        if layout is not None:  # a request resolved elsewhere (a stored job): refused before any sampling
            self._grounded(layout)
        sketch = self.sketch_of(req)
        steps = req.steps if sketch is None else sketch_steps(req.steps, req.sketch)

        def sample(seed: int, frames: int, guidance: float | None, tick: Callable[[int, int], None], at: int = 0,
                   **kw: Any) -> np.ndarray:
            if layout is not None:  # this chunk's slice of the one layout of the whole video
                sampling["conditioning"] = {**req.conditioning, "layout": self.chunk_layout(layout, at, frames, req.mode)}
            if sketch is not None:  # this chunk's frames of the sketch, noised to the strength
                kw.update(x_start=sketch.frames(at, frames, wrap=req.mode == "loop"), strength=req.sketch)
            return self.sample_chunk(req.prompt, seed, (w, h), frames, steps=steps, guidance=guidance, callback=tick,
                                     **kw, **sampling)

        run = Runner(sample, req.seed, steps, req.guidance, self.cfg.context_guidance, overlap, callback)
        return run.make(req, fit, chunk, overlap, step)

    def frame_latents(self, req: Resolved) -> np.ndarray:
        """Which latent frame made each output frame of ``req`` (``modes.latent_of_frames``; -1: an
        input's frame), from the plans ``run`` follows; no sampling. The eval's temporal
        smoothness compares the changes across latent frames and chunks with those inside."""
        w, h = req.size
        geo = self.geometry
        return latent_of_frames(req, lambda i, count=None: i.frames(req.fps, (w, h), count), geo.frames, geo.overlap,
                                geo.frame_step, self.vae.cfg.time_down)

    def sketch_of(self, req: Resolved) -> Any:
        """The sketch (``tenku.sketch.Sketch``) a request with a layout and a sketch strength
        below 1 starts sampling from, over the expanded scene's background (``req.scene``; a
        request made without expansion reads its prompt's); None otherwise."""
        layout = req.conditioning.get("layout")
        if layout is None or req.sketch is None or req.sketch >= 1 or req.mode == "edit":
            return None
        from tenku.sketch import Sketch

        scene = req.scene
        if scene is None:
            from tenku.prompts.expand import expand_prompt

            scene = expand_prompt(req.prompt, req.seed, no_expand=True, aspect=req.size[0] / req.size[1]).spec
        return Sketch(layout, scene, *req.size)

    def chunk_layout(self, layout: Any, at: int, frames: int, mode: str) -> Any:
        """The transformer's input (``ObjectLayout``) for the chunk of output frames ``at`` ..
        ``at + frames - 1`` of ``layout`` (a ``tenku.layout.Layout`` of the whole output; a loop's
        last chunk wraps onto its start). Phrase states are kept by phrase for the next chunk."""
        from tenku.layout import latent_frames, pool_phrases, to_model, window

        td = self.vae.cfg.time_down
        part = window(layout, at, frames, wrap=mode == "loop")
        cache = self.__dict__.setdefault("_phrase_states", {})
        states = pool_phrases(self.text, [o.phrase for o in part.objects], cache)
        return to_model(part, states.to(self.device), td, latent_frames(frames, td))

    def context_guidance_for(self, guidance: float | None, with_input: bool) -> float | None:
        """The scale the chunks given an input video's frames get when a request asks for
        ``guidance`` (None: the config's) and has such an input (extend, connect); None when
        they get the request's guidance like every other chunk."""
        return self.cfg.context_guidance if guidance is None and with_input else None
