"""What every training loop shares: the guard against non-finite updates, the exponential
moving average of the weights, and the run's log (log.jsonl, TensorBoard scalars)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch


class BadSteps:
    """Skip an update whose loss or gradient norm is not finite; ``limit`` of them in a row is a
    real fault (a diverged run), not a bad batch, and stops training."""

    def __init__(self, limit: int, skipped: int = 0) -> None:
        self.limit, self.skipped, self.in_row = limit, skipped, 0

    def ok(self, step: int, loss: float, gnorm: float, say: Any = print, hint: str = "lower lr and resume") -> bool:
        """True to apply the update; False (said through ``say``) to skip it; RuntimeError past the
        limit, with ``hint`` (what to do) in its message."""
        if math.isfinite(loss) and math.isfinite(gnorm):
            self.in_row = 0
            return True
        self.skipped += 1
        self.in_row += 1
        if say is not None:
            say(f"step {step}: non-finite loss {loss} or gradient norm {gnorm}: update skipped "
                f"({self.in_row} in a row, {self.skipped} in all)")
        if self.in_row >= self.limit:
            raise RuntimeError(f"{self.in_row} non-finite updates in a row at step {step}: {hint}")
        return False


class Ema:
    """An exponential moving average of parameters, fast early on (``min(decay, (1 + step) / (10 + step))``)."""

    def __init__(self, named: list[tuple[str, torch.Tensor]], decay: float, start: dict[str, torch.Tensor] | None = None) -> None:
        self.decay = decay
        self.params = [p for _, p in named]  # the parameters themselves: under FSDP a detached copy could outlive its storage
        self.state = start if start is not None else {n: p.detach().clone() for n, p in named}
        self.tensors = [self.state[n] for n, _ in named]

    @torch.no_grad()
    def update(self, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.tensors, self.params, 1 - d)  # one call, not one per tensor (GPU launches)


class RunLog:
    """``out/log.jsonl`` (one JSON line per logged step) and the same scalars as TensorBoard
    under ``out/tb`` if it is installed. Rank 0 only; elsewhere every call does nothing."""

    def __init__(self, out: Path, active: bool, resumed_step: int, tensorboard: bool = True) -> None:
        self.file, self.tb = None, None
        if not active:
            return
        trim_log(out / "log.jsonl", resumed_step)
        self.file = open(out / "log.jsonl", "a")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except ImportError:  # TensorBoard is optional: log.jsonl has the same scalars
                pass

    @property
    def active(self) -> bool:
        return self.file is not None

    def write(self, row: dict[str, Any], scalars: tuple[str, ...] = ()) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        for k in scalars:
            if self.tb is not None:
                self.tb.add_scalar(k, row[k], row["step"])

    def close(self) -> None:
        for f in (self.file, self.tb):
            if f is not None:
                f.close()


def trim_log(path: Path, step: int) -> None:
    """Drop log lines past the resumed step: they are about to be trained again."""
    if path.is_file():
        keep = [x for x in path.read_text().splitlines() if x.strip() and json.loads(x).get("step", 0) <= step]
        path.write_text("".join(x + "\n" for x in keep))
