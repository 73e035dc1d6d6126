"""The condition-mask strategy: which latent frames of a training sample are
given clean, so that one checkpoint learns every mode (text-to-video, first
frame, first k, last k, first and last). Loss covers only the other frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ConditionConfig:
    t2v: float = 0.5  # no condition frame
    first: float = 0.2  # image-to-video
    first_k: float = 0.15  # extend forward (and each chunk of a long video)
    last_k: float = 0.1  # extend backward
    first_last: float = 0.05  # connect two clips / loops: a head and a tail of 1+ frames each
    noise_aug: float = 0.1  # condition frames get sigma ~ U(0, noise_aug): robust long rollouts
    image_prob: float = 0.1  # share of batches trained as images (the first latent frame alone)

    def kinds(self) -> tuple[list[str], np.ndarray]:
        names = ["t2v", "first", "first_k", "last_k", "first_last"]
        p = np.array([max(0.0, getattr(self, n)) for n in names], dtype=np.float64)
        if p.sum() <= 0:
            raise ValueError("condition rates must not all be zero")
        return names, p / p.sum()


def draw_condition_masks(rng: np.random.Generator, batch: int, frames: int, cfg: ConditionConfig) -> torch.Tensor:
    """(batch, frames) bool: True where a latent frame is a clean condition. At least one
    frame per sample stays to be generated. ``first_k``/``last_k`` give 1 .. frames-1 frames;
    ``first_last`` a head of 1 .. frames-2 frames and a tail that leaves a gap of 1+."""
    return torch.from_numpy(_mask_rows(rng, batch, frames, cfg))


def sample_condition_masks(rngs: Sequence[np.random.Generator], frames: int, cfg: ConditionConfig) -> torch.Tensor:
    """(len(rngs), frames): one row per sample, each drawn from that sample's own generator
    (the row ``draw_condition_masks(rng, 1, frames, cfg)`` gives), built as one array."""
    return torch.from_numpy(np.concatenate([_mask_rows(r, 1, frames, cfg) for r in rngs]))


def _mask_rows(rng: np.random.Generator, batch: int, frames: int, cfg: ConditionConfig) -> np.ndarray:
    names, p = cfg.kinds()
    mask = np.zeros((batch, frames), dtype=bool)
    if frames < 2:
        return mask  # an image has nothing to condition on
    for b in range(batch):
        kind = names[int(rng.choice(len(names), p=p))]
        k = int(rng.integers(1, frames))  # 1 .. frames-1 condition frames
        if kind == "first":
            mask[b, 0] = True
        elif kind == "first_k":
            mask[b, :k] = True
        elif kind == "last_k":
            mask[b, frames - k :] = True
        elif kind == "first_last" and frames >= 3:  # connect and loop give a clip's tail and another's head,
            head = int(rng.integers(1, frames - 1))  # often several latent frames each (modes.plan_connect)
            mask[b, :head] = True
            mask[b, frames - int(rng.integers(1, frames - head)) :] = True
    return mask
