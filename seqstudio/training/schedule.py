"""Learning-rate schedules: the rate of every step as a pure function of the step and the saved counters.

``train.schedule`` (every schedule starts with the linear warm-up of ``train.lr_warmup_steps``):

- ``constant``: ``train.lr`` throughout (the default; what every earlier run used).
- ``cosine``: after the warm-up, half a cosine from ``train.lr`` down to ``train.lr_floor`` x ``train.lr``, reached at
  the horizon and kept after it (Loshchilov & Hutter 2017, without restarts; nanoGPT's schedule). The horizon is
  ``train.schedule_steps``, or when that is 0 the run's step budget (``--max-steps``, else the epochs' steps). A
  run with only a time budget (``--max-minutes``) has no step count to decay over, so it must give
  ``train.schedule_steps``: a schedule that followed the clock would differ between two runs of the same spec.
- ``plateau``: the rate is multiplied by ``train.plateau_factor`` whenever ``train.plateau_patience`` validations in
  a row have not improved the best validation score, and never goes below ``train.lr_floor`` x ``train.lr``
  (as PyTorch's ``ReduceLROnPlateau``, but kept in the ``TrainState``).

Exact across ``--resume``: the rate of step ``s`` depends only on the configuration, ``s`` and the ``TrainState``'s
``lr_scale`` (the plateau's multiplier, saved in every checkpoint), never on how many processes ran the steps. A
resume that changes the step budget while ``schedule_steps`` is 0 changes a cosine's horizon: the schedule follows
the budget the run is given; fix ``train.schedule_steps`` to keep it.
"""

from __future__ import annotations

import math

import torch

from ..config import TrainConfig
from ..errors import ConfigError
from .state import TrainState


def schedule_horizon(config: TrainConfig, total_steps: int | None) -> int:
    """The steps a cosine decays over: ``train.schedule_steps``, else the step budget (``total_steps``)."""
    if config.schedule_steps:
        return config.schedule_steps
    if config.schedule == "cosine" and not total_steps:
        raise ConfigError("train.schedule=cosine needs a number of steps to decay over: give --max-steps or "
                          "--epochs, or train.schedule_steps with a time budget (--max-minutes)")
    return int(total_steps or 0)


def lr_factor(config: TrainConfig, step: int, horizon: int, lr_scale: float = 1.0) -> float:
    """The multiple of ``train.lr`` for optimisation step ``step`` (0-based)."""
    warm = config.lr_warmup_steps
    factor = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
    if config.schedule == "cosine":
        progress = min(1.0, max(0, step - warm) / max(1, horizon - warm))
        factor *= config.lr_floor + (1.0 - config.lr_floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    elif config.schedule == "plateau":
        factor *= lr_scale
    return factor


def set_lr(optimizers: list[torch.optim.Optimizer], factor: float) -> None:
    """Every parameter group at ``factor`` times its configured rate (``initial_lr``, kept in the group)."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def after_validation(config: TrainConfig, state: TrainState, improved: bool) -> bool:
    """The plateau schedule's counters after a validation (``improved``: a new best); whether the rate dropped."""
    if config.schedule != "plateau":
        return False
    if improved:
        state.plateau_wait = 0
        return False
    state.plateau_wait += 1
    if state.plateau_wait < config.plateau_patience or state.lr_scale <= config.lr_floor:
        return False
    state.plateau_wait = 0
    state.lr_scale = max(state.lr_scale * config.plateau_factor, config.lr_floor)
    return True
