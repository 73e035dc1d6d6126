"""The runner of every mode: a request's chunk plans (``tenku.modes.plans``) become sampling
calls, one per chunk, each conditioned on the tail (or head) of what exists, and the given
frames at each seam fade into their decoding (``tenku.modes.frames``). It knows nothing of
models: it calls the ``sample_chunk`` it is given."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from tenku.modes.frames import fade_from, fade_into, ramp
from tenku.modes.plans import Chunk, loop_split, plan_connect, plan_rollout

if TYPE_CHECKING:  # tenku.request imports tenku.modes.plans
    from tenku.request import Resolved


class Runner:
    """Runs the chunk plans of one request (``plans`` makes them), one ``sample_chunk`` call
    per chunk, and counts steps for the progress callback. Chunk i > 0 draws its own noise.

    ``sample_chunk(seed, frames, guidance, callback, at=, start=, end=, x_start=, strength=)`` is
    one sampling call that returns the whole decoded chunk (``Pipeline.sample_chunk`` with the
    request's prompt, size and sampler bound); ``at`` is the output frame the chunk's first
    frame is (negative for frames made only to be dropped, past the end where a loop's last
    chunk lands on its start), so that a layout of the whole video can be sliced per chunk.
    ``context_guidance``: the scale of chunks given an input video's frames when the request
    sets no ``guidance`` (None: ``guidance``).
    ``overlap``: most given frames a chunk is conditioned on."""

    def __init__(self, sample_chunk: Callable[..., np.ndarray], seed: int, steps: int, guidance: float | None,
                 context_guidance: float | None, overlap: int, callback: Callable[[int, int], None] | None = None):
        self.sample_chunk, self.seed, self.steps, self.callback = sample_chunk, seed, steps, callback
        self.guidance, self.context_guidance, self.overlap = guidance, context_guidance, overlap
        self.total = self.done = self.calls = 0
        self.seam = np.zeros((0,), np.uint8)  # _roll: chunk 0's decoding of its given frames
        self.pos = 0  # _roll, _bridge: the output frame of the next new frame

    def chunk(self, frames: int, inputs: bool = False, at: int = 0, **kw: Any) -> np.ndarray:
        """One sampling call of the output's frames ``at`` .. ``at + frames - 1``; ``inputs``: its
        given frames include an input video's (not only an image or frames this request made),
        so ``context_guidance`` applies."""
        seed = self.seed if self.calls == 0 else self.seed * 1_000_003 + self.calls
        self.calls += 1

        def tick(i: int, n: int) -> None:
            if self.callback is not None:
                self.callback(self.done + i, self.total)

        out = self.sample_chunk(seed, frames, self._guidance(inputs), tick, at=at, **kw)
        self.done += self.steps
        return out

    def make(self, req: Resolved, fit: Callable[..., np.ndarray], chunk: int, overlap: int,
             step: int) -> Iterator[np.ndarray]:
        """The frame blocks of a resolved request, by its mode. ``fit(input, count=None)``: an
        input's frames as the output wants them (``tenku.request.Input.frames``); ``chunk``,
        ``overlap``, ``step``: the model's geometry (``tenku.request.Geometry``)."""
        if req.mode == "edit":  # the whole (fitted) video in one call
            self.total = self.steps
            return iter([self.chunk(req.frames, x_start=fit(req.video, req.frames), strength=req.strength)])
        if req.video is not None:
            return self.extend(fit(req.video), req.frames, chunk, overlap, step, backward=req.mode == "extend-backward")
        if req.connect is not None:
            return self.connect(fit(req.connect[0]), fit(req.connect[1]), req.frames, chunk, overlap, step)
        img = None if req.image is None else fit(req.image)
        if req.mode == "loop":
            return self.loop(img, req.frames, chunk, overlap, step)
        return self.forward(img, req.frames, chunk, overlap, step)

    def _guidance(self, inputs: bool) -> float | None:
        """The request's guidance, else the config's context guidance for a chunk given an
        input video's frames, else None (the config's guidance)."""
        return self.context_guidance if self.guidance is None and inputs and self.context_guidance is not None \
            else self.guidance

    def _count(self, *plans: list[Chunk]) -> None:
        self.total = sum(len(p) for p in plans) * self.steps

    def _roll(self, tail: np.ndarray | None, plan: list[Chunk], whole_first: bool,
              inputs: bool = False, pos: int = 0) -> Iterator[np.ndarray]:
        """Forward chunks after ``tail`` (an input video's frames if ``inputs``), whose end is
        output frame ``pos``; yields the new frames (all of chunk 0 if ``whole_first``). Chunk 0's
        decoding of its given frames is left in ``self.seam`` for fading; ``self.pos`` follows
        the output frame the next new frame is."""
        self.pos = pos
        for i, c in enumerate(plan):
            out = self.chunk(c.frames, inputs and i == 0, at=self.pos - c.given,
                             start=None if c.given == 0 else tail[-c.given:])
            self.pos += c.new
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
        return self._roll(image, plan, whole_first=True, pos=k)

    def extend(self, v: np.ndarray, new: int, chunk: int, overlap: int, step: int, backward: bool) -> Iterator[np.ndarray]:
        """``v`` with ``new`` frames after (or before) it; v's frames given to the chunk at the seam fade."""
        plan = plan_rollout(new, len(v), chunk, overlap, step, backward)
        self._count(plan)
        q, count = plan[0].given, new

        def forward() -> Iterator[np.ndarray]:
            blocks = self._roll(v[-overlap:], plan, whole_first=False, inputs=True, pos=len(v))
            first = next(blocks)  # chunk 0: its decoding of v's last q frames is the fade's target
            yield from fade_into(v, self.seam)
            yield first
            yield from blocks

        def backward_() -> Iterator[np.ndarray]:
            head, blocks, decoded, pos = v[:overlap], [], v[:q], count  # pos: the output frame head starts at
            for i, c in enumerate(plan):
                out = self.chunk(c.frames, i == 0, at=pos - c.new - c.extra, end=head[: c.given])
                pos -= c.new
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
        return self._bridge(a[-overlap:], b[:overlap], pre, last, qb, ends=(a, b), pos=len(a))

    def _bridge(self, tail: np.ndarray, head: np.ndarray, pre: list[Chunk], last: Chunk, qb: int,
                ends: tuple[np.ndarray, np.ndarray] | None = None, pos: int = 0) -> Iterator[np.ndarray]:
        """The transition from ``tail`` into ``head``: forward chunks, then one that lands on
        ``head``. With ``ends=(A, B)`` it comes with A before and B after, faded at the seams;
        a side that sits on frames already in the output is joined to them by ``ramp``. ``pos``:
        the output frame after ``tail``."""
        a = None if ends is None else ends[0]  # A waits until a chunk has decoded its given frames
        for block in self._roll(tail, pre, whole_first=False, inputs=ends is not None, pos=pos):
            if a is not None:
                yield from fade_into(a, self.seam)
                a = None
            tail = np.concatenate([tail, block])[-self.overlap:]
            yield block
        out = self.chunk(last.frames + qb, ends is not None, at=self.pos - last.given, start=tail[-last.given:],
                         end=head[:qb])
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
            for block in self._roll(image, first, whole_first=True, pos=k):
                head = block[:overlap] if head is None else np.concatenate([head, block])[:overlap]
                tail = block[-overlap:] if tail is None else np.concatenate([tail, block])[-overlap:]
                yield block
            yield from self._bridge(tail, head, pre, last, qb, pos=x)

        return gen()



def latent_of_frames(req: Resolved, fit: Callable[..., np.ndarray], chunk: int, overlap: int, step: int,
                     time_down: int) -> np.ndarray:
    """Which latent frame decoded each output frame of ``req``: ``(T,)`` int, one id per latent
    frame of every sampling call (chunk after chunk), -1 for a frame no call generated (an
    input's frame, kept or faded into its decoding at a seam). The plans are the ones ``make``
    runs (it is run here with a sampler that only records its calls), so two frames with one
    id are two frames of one latent; any other neighbours cross a latent-frame boundary or a
    chunk seam (``tenku.eval.checks.boundary_ratio``). A chunk's latent frame 0 decodes its
    frame 0 alone, latent frame i >= 1 its frames ``time_down (i - 1) + 1 .. time_down i``
    (the causal autoencoder, ``tenku.vae``)."""
    calls: list[tuple[int, int, int, int]] = []

    def record(seed: int, frames: int, guidance: float | None, tick: Callable[[int, int], None], at: int = 0,
               start: np.ndarray | None = None, end: np.ndarray | None = None, **kw: Any) -> np.ndarray:
        calls.append((at, frames, 0 if start is None else len(start), 0 if end is None else len(end)))
        return np.zeros((frames, 1, 1, 3), np.uint8)

    def tiny(i: Any, count: int | None = None) -> np.ndarray:  # the input's length is all the plans need
        return np.zeros((len(fit(i, count)), 1, 1, 3), np.uint8)

    total = sum(len(b) for b in Runner(record, 0, 1, None, None, overlap).make(req, tiny, chunk, overlap, step))
    out, base = np.full(total, -1, dtype=np.int64), 0
    for at, frames, given_start, given_end in calls:
        local = np.arange(frames)
        ids = base + np.where(local == 0, 0, (local - 1) // time_down + 1)
        new = local[given_start : frames - given_end]  # what it makes (frames made only to be dropped fall outside)
        t = at + new
        keep = (t >= 0) & (t < total)
        out[t[keep]] = ids[new[keep]]
        base = int(ids[-1]) + 1
    return out
