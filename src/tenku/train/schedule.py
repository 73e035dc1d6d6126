"""The learning-rate schedule every training script uses."""

from __future__ import annotations

import math
from typing import Protocol


class HasSchedule(Protocol):
    lr: float
    min_lr: float
    warmup: int
    steps: int


def lr_at(step: int, cfg: HasSchedule) -> float:
    """Linear warm-up over ``cfg.warmup`` steps, then cosine from ``cfg.lr`` to ``cfg.min_lr`` at ``cfg.steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * p))
