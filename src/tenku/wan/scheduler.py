"""A Wan folder's ``scheduler/scheduler_config.json`` as tenku sampling settings: the sigma grid
diffusers' scheduler makes (``tenku.flow.schedule.scheduler_sigmas``, tested equal to it), the
shift, and the tenku sampler closest to the scheduler's solver. tenku's samplers integrate on
those sigmas: flow-match Euler is tenku's ``euler`` step for step; UniPC (a second-order
multistep predictor-corrector) becomes ``dpm++2m``, tenku's second-order multistep method on the
same sigmas (not UniPC's exact updates: its result differs from diffusers' by the solvers'
difference, not by the schedule)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SCHEDULERS = {"FlowMatchEulerDiscreteScheduler": ("flow-match-euler", "shift", "euler"),
              "UniPCMultistepScheduler": ("unipc", "flow_shift", "dpm++2m")}
# config switches that would make diffusers' sigmas differ from the plain shifted grid
UNSUPPORTED = ("use_dynamic_shifting", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
               "shift_terminal", "invert_sigmas", "stochastic_sampling")


@dataclass(frozen=True)
class WanSchedule:
    """What tenku samples with: ``grid`` (a ``tenku.flow.schedule.GRIDS`` name), ``shift``,
    ``train_timesteps`` and the ``sampler``."""

    grid: str
    shift: float
    train_timesteps: int
    sampler: str


def read_schedule(folder: str | Path) -> WanSchedule:
    """The schedule of a Wan folder's ``scheduler/``; a ValueError naming the file and the
    setting for a scheduler or a switch tenku does not reproduce."""
    path = Path(folder) / "scheduler" / "scheduler_config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable scheduler config ({e})") from None
    name = cfg.get("_class_name")
    if name not in SCHEDULERS:
        raise ValueError(f"{path}: scheduler {name!r} is not one tenku reproduces ({', '.join(SCHEDULERS)})")
    grid, shift_key, sampler = SCHEDULERS[name]
    if name == "UniPCMultistepScheduler" and (not cfg.get("use_flow_sigmas") or cfg.get("prediction_type") != "flow_prediction"):
        raise ValueError(f"{path}: a UniPC scheduler for Wan needs use_flow_sigmas and prediction_type flow_prediction")
    if cfg.get("final_sigmas_type", "zero") != "zero":
        raise ValueError(f"{path}: final_sigmas_type {cfg['final_sigmas_type']!r}; tenku samples down to sigma 0 ('zero')")
    on = [k for k in UNSUPPORTED if cfg.get(k)]
    if on:
        raise ValueError(f"{path}: {', '.join(on)} set; tenku reproduces the plain shifted sigma grid only")
    shift = float(cfg.get(shift_key, 1.0))
    if not shift > 0:
        raise ValueError(f"{path}: {shift_key} must be positive; got {shift}")
    return WanSchedule(grid, shift, int(cfg.get("num_train_timesteps", 1000)), sampler)
