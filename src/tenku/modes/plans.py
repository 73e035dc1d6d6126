"""The arithmetic of the generation modes: which frames of a chunk are given and how long
videos split into chunks. Pure functions; ``tenku.modes.runner`` runs a sampling call per
chunk of the plans made here.

The causal VAE fixes the geometry. A chunk of ``L = 1 + 4m`` frames has latent frames
0 (frame 0 alone) and i >= 1 (frames 4i-3 .. 4i). A latent frame can be a clean
condition only if all of its frames are known:

* given frames at the **start** of a chunk (``q`` of them: extend forward, image-to-video,
  the A side of connect): latent frames ``0 .. (q-1)//4`` are conditions, encoded from the
  first ``1 + 4 ((q-1)//4)`` given frames, which the causal encoder sees exactly as in
  training (a clip's first frame alone);
* given frames at the **end** of a chunk (``q``: extend backward, the B side of connect):
  the last ``q // 4`` latent frames are conditions, encoded from the last ``4 (q//4)`` given
  frames with their first frame repeated in front (the causal encoder needs a first frame;
  the repeat is dropped).

Given frames of a chunk that fall in a latent frame that is not a condition are generated
with the rest, so any number of new frames is possible. In the output the given frames of
the chunk next to the seam (at most ``context_frames``, about a second) ``fade`` from the
input into what the chunk decoded for them; every other input frame comes back unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """One sampling call: ``given`` known frames (before the new ones for forward, after them
    for backward) plus ``new`` frames to generate; ``given + new`` is a valid frame count."""

    given: int
    new: int
    extra: int = 0  # generated only to make a valid count, then dropped (after the new frames
    #                 going forward, before them going backward)

    @property
    def frames(self) -> int:
        return self.given + self.new + self.extra


def start_latents(given: int, time_down: int = 4) -> int:
    """Condition latent frames from ``given`` known frames at a chunk's start."""
    return 0 if given <= 0 else 1 + (given - 1) // time_down


def end_latents(given: int, time_down: int = 4) -> int:
    """Condition latent frames from ``given`` known frames at a chunk's end."""
    return given // time_down


def _pick_given(new: int, most: int, least: int, step: int) -> int:
    """The largest ``q`` in [least, most] with ``q + new`` = 1 mod ``step`` (a valid frame count)."""
    for q in range(most, least - 1, -1):
        if (q + new) % step == 1 % step:
            return q
    raise ValueError(f"no way to place {new} new frames after {least}..{most} given ones")


def plan_rollout(new: int, context: int, chunk: int, overlap: int, step: int = 4, backward: bool = False) -> list[Chunk]:
    """Chunks that generate ``new`` frames next to ``context`` known frames (0: text-to-video;
    the first chunk then has no given frames and ``min(new, chunk)`` must be 1 + step k).

    ``chunk``: most frames per sampling call (1 + step k); ``overlap``: most known frames a
    chunk is conditioned on. Forward: each chunk continues the tail of what exists.
    Backward: each chunk ends at the head of what exists (needs >= ``step`` known frames)."""
    if new < 1:
        raise ValueError(f"need at least 1 new frame; got {new}")
    if (chunk - 1) % step:
        raise ValueError(f"chunk of {chunk} frames is not 1 + {step}k")
    least = step if backward else 1
    plan: list[Chunk] = []
    have, left = context, new
    while left > 0:
        most = min(have, overlap)
        if most == 0:  # text-to-video: a whole first chunk
            n = min(left, chunk)
            if (n - 1) % step:
                raise ValueError(f"{n} frames is not 1 + {step}k")
            plan.append(Chunk(0, n))
        elif most < least:
            raise ValueError(f"need at least {least} known frames to condition on; have {most}")
        elif left + most > chunk:  # a full chunk (chunk = 1 + step k, so any split is valid)
            plan.append(Chunk(most, chunk - most))
        else:  # the last chunk: exactly what is left
            try:
                plan.append(Chunk(_pick_given(left, most, least, step), left))
            except ValueError:  # too few known frames to choose from: make a few frames more
                plan.append(Chunk(most, left, (1 - most - left) % step))
        have += plan[-1].new
        left -= plan[-1].new
    return plan


def plan_connect(new: int, a: int, b: int, chunk: int, overlap: int, step: int = 4) -> tuple[list[Chunk], Chunk, int]:
    """A transition of ``new`` frames from clip A (``a`` frames) to clip B (``b`` frames).

    Returns (forward chunks from A, the final chunk, B frames in it): when the gap is longer
    than one chunk, a forward rollout from A comes first, then one chunk that is given the
    tail of what exists (``Chunk.given`` frames), makes ``Chunk.new`` and ends on B's head."""
    qa_most, qb_most = min(a, overlap), min(b, overlap)
    if qa_most < 1 or qb_most < step:
        raise ValueError(f"connect needs at least 1 frame of A and {step} of B; got {a} and {b}")
    room = chunk - qa_most - qb_most  # new frames that fit in one chunk beside both sides
    if room < 1:
        raise ValueError(f"a {chunk}-frame chunk has no room between {qa_most} + {qb_most} given frames")
    last = min(new, room)
    pre = plan_rollout(new - last, a, chunk, overlap, step) if new > last else []
    pairs = [(qa + qb, qb, qa) for qa in range(1, qa_most + 1) for qb in range(step, qb_most + 1)
             if (qa + last + qb) % step == 1 % step]
    if not pairs:
        raise ValueError(f"cannot place a {new}-frame transition between clips of {a} and {b} frames")
    _, qb, qa = max(pairs)
    return pre, Chunk(qa, last), qb


def loop_split(frames: int, room: int, step: int = 4) -> int:
    """Frames of the clip a loop starts with (1 + step k, about half, and long enough that the
    transition back to its start fits in ``room`` new frames of one chunk when it can)."""
    return 1 + step * math.ceil(max((frames - 1) / 2, frames - 1 - room) / step)

