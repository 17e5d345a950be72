"""What stops training: the step, epoch and wall-time budgets, and early stopping on the validation score.

Every decision reads only the ``TrainState`` (and, for time, ``state.elapsed``, whose clock pauses during
validation and counts wall or CPU seconds as ``train.budget_clock`` says), so a resumed run stops exactly where an uninterrupted one would. Under DDP every process must stop
at the same step: steps and epochs agree by construction, and the processes' clocks and stop signals
(``signals.StopSignals``) are reconciled every ``sync_every`` steps (steps where the log reduces statistics
anyway, so no extra host sync per step).

Early stopping is decided from the counters too (``bad_validations >= patience``), not from a flag, so a resumed
early-stopped run stays stopped unless ``train.patience`` is raised (or set to 0) on resume.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from ..config import TrainConfig
from ..distributed import DistInfo
from .signals import StopSignals
from .state import TrainState

DEFAULT_EPOCHS = 20  # when no budget at all is given


class Budget:
    def __init__(self, config: TrainConfig, per_epoch: int, dist: DistInfo, device: torch.device,
                 sync_every: int, signals=None):
        self.config = config
        self.per_epoch = per_epoch
        self.dist = dist
        self.device = device
        self.sync_every = sync_every
        self.signals = signals  # a StopSignals (or None): its ``received`` signal number stops the run
        no_limit = not (config.max_steps or config.max_minutes)
        self.epochs = config.epochs or (DEFAULT_EPOCHS if no_limit else math.inf)
        # train.budget_clock: wall time, or this process's CPU time (equal work on a shared machine)
        self._now = time.process_time if config.budget_clock == "cpu" else time.perf_counter
        self._clock = self._now()

    @property
    def total_steps(self) -> int | None:
        """Steps the run will take when a step or epoch budget says (for the progress bar)."""
        if self.config.max_steps:
            return self.config.max_steps
        return int(math.ceil(self.epochs * self.per_epoch)) if math.isfinite(self.epochs) else None

    def stop_reason(self, s: TrainState) -> str:
        """Why no further step may be taken ("" = go on): a limit (``limit_reason``) or a signal's name."""
        limit = self.limit_reason(s)
        if limit:
            return limit
        over_time, signum = self._poll(s)
        if over_time:
            return "max_minutes"
        return StopSignals.name(signum) if signum else ""

    def limit_reason(self, s: TrainState) -> str:
        """The limit already reached by the counters alone (no clock tick, no collective): early stopping, then
        epochs before steps when two limits meet at one step, then time."""
        c = self.config
        if c.patience and s.bad_validations >= c.patience:
            return "early_stopping"
        if s.epoch + s.batch / self.per_epoch >= self.epochs:
            return "epochs"
        if c.max_steps and s.step >= c.max_steps:
            return "max_steps"
        if c.max_minutes and s.elapsed >= c.max_minutes * 60:
            return "max_minutes"
        return ""

    def _poll(self, s: TrainState) -> tuple[bool, int]:
        """(out of time, signal received), agreed by all processes: under DDP only at sync steps, where one
        small all-reduce takes the maximum of both over the job."""
        over = False
        if self.config.max_minutes:
            self.tick(s)
            over = s.elapsed >= self.config.max_minutes * 60
        signum = self.signals.received if self.signals is not None else 0
        if self.dist.world > 1:
            if s.step % self.sync_every:
                return False, 0
            flags = self.dist.all_reduce_max(torch.tensor([float(over), float(signum)], device=self.device))
            over_f, signum_f = flags.tolist()
            over, signum = over_f > 0, int(signum_f)
        return over, signum

    def tick(self, s: TrainState) -> None:
        """Move the time since the last tick into ``state.elapsed`` (which survives resumes)."""
        now = self._now()
        s.elapsed += now - self._clock
        self._clock = now

    @contextlib.contextmanager
    def paused(self, s: TrainState):
        """Time spent inside (validation, checkpoints) is not training time."""
        self.tick(s)
        yield
        self._clock = self._now()

    def record_validation(self, s: TrainState, score: float | None) -> bool:
        """Note a validation score (lower is better; None: no validation data); whether it is a new best.

        ``train.patience`` validations in a row without a new best stop the run (``early_stopping``).
        """
        if score is None:
            return True
        improved = score < s.best_score
        if improved:
            s.best_score, s.bad_validations = score, 0
        else:
            s.bad_validations += 1
        if self.config.patience and s.bad_validations >= self.config.patience and not s.stopped_because:
            s.stopped_because = "early_stopping"
        return improved
