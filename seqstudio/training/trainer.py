"""One device-agnostic training loop for every backend.

CPU or CUDA (bf16 autocast on CUDA), DDP when the caller has joined a process group (NCCL on GPUs, gloo on
CPU), gradient clipping, periodic validation with early stopping, atomic checkpoints and exact resume. The loop
never asks which backend it is driving: a backend with unusual updates (a GAN) overrides
``Backend.training_step``. What stops it, what it saves and what it logs are the small pieces beside it
(``budget``, ``checkpoints``, ``train_log``).

Abnormal ends (``signals``, ``divergence``): a signal saves ``last.pt`` and raises ``TrainingInterrupted``; a
NaN/inf loss raises ``TrainingDiverged`` and leaves the checkpoints at the last finite weights.

Exact resume: the data order of an epoch depends only on (seed, epoch), the random state of every step is
re-seeded from (seed, step), and the learning rate of every step is the schedule's (``schedule``: warm-up, then
constant, cosine or plateau) from the step and the saved counters, so a run stopped and resumed follows the same
path as one that never stopped.
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

import torch

from ..backends.base import Backend, StepContext
from ..config import TrainConfig
from ..data import WindowSet, batch_indices, make_batch
from ..distributed import DistInfo, add_stats, reduce_stats
from ..domain import Codec
from ..rundir import trim_metrics
from ..errors import ConfigError, DataError, TrainingDiverged, TrainingInterrupted
from .budget import Budget
from .checkpoints import Checkpoints
from .device import autocast, resolve_device
from .divergence import non_finite, weights_finite
from .schedule import after_validation, lr_factor, schedule_horizon, set_lr
from .signals import StopSignals
from .state import TrainState
from .train_log import TrainLog, log_every


class Trainer:
    """Trains ``backend`` on ``train_set``, validating on ``valid_set``, writing into ``run_dir``.

    ``dist`` says which process of a distributed job this is; the caller joins and leaves the process group.
    """

    def __init__(self, backend: Backend, codec: Codec, train_set: WindowSet, valid_set: WindowSet,
                 config: TrainConfig, run_dir: Path, dist: DistInfo = DistInfo(), progress: bool = True):
        self.dist = dist
        self.device = resolve_device(config.device, dist.local_rank)
        self.backend = backend.to(self.device)
        self.codec = codec
        self.train_set = train_set
        self.valid_set = valid_set
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.model = self.backend
        if dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.backend, device_ids=ids,
                find_unused_parameters=backend.ddp_find_unused_parameters)
        self.optimizers = backend.configure_optimizers(config.lr, config.weight_decay)
        self.checkpoints = Checkpoints(self.run_dir, dist)
        self.state = TrainState()
        self._resumed = False
        self._saved_step: int | None = None  # the step of the checkpoints on disk (None: none written yet)

    def resume(self) -> None:
        """Continue from ``last.pt``: weights, optimizer moments and counters.

        The learning rates are this run's configuration's, not the checkpoint's (a ``--lr`` given on resume takes
        effect; unchanged, they are the same values), and ``metrics.jsonl`` loses the records of steps after the
        checkpoint (a run killed between checkpoints would otherwise log those steps twice).
        """
        configured = [[group["lr"] for group in opt.param_groups] for opt in self.optimizers]
        self.state = self.checkpoints.resume(self.backend, self.optimizers, self.device)
        for optimizer, rates in zip(self.optimizers, configured):
            for group, lr in zip(optimizer.param_groups, rates):
                group["lr"] = lr
                if "initial_lr" in group:  # the warm-up's target (``warm_up_lr``)
                    group["initial_lr"] = lr
        if self.dist.is_main:
            trim_metrics(self.run_dir, self.state.step)
        self._resumed = True

    def _forward(self, batch, **kwargs):
        with autocast(self.config.precision, self.device):
            return self.model(batch, **kwargs)

    def validate(self) -> dict[str, float]:
        return self.backend.summarize(self._validation_sums()) if len(self.valid_set) else {}

    def _validation_sums(self) -> dict[str, float]:
        """The validation split's summed statistics over all processes (``{}`` without validation data)."""
        if len(self.valid_set) == 0:
            return {}
        self.backend.eval()
        total: dict[str, torch.Tensor] = {}
        torch.manual_seed(self.config.seed + 12345)  # the same noise at every validation: comparable scores
        with torch.no_grad():
            for index in batch_indices(len(self.valid_set), self.config.batch_size, 0, 0, shuffle=False,
                                       rank=self.dist.rank, world=self.dist.world):
                batch = make_batch(self.valid_set, index, self.device)
                with autocast(self.config.precision, self.device):
                    add_stats(total, self.backend.evaluate_batch(batch))
        self.backend.train()
        return reduce_stats(total, self.dist)

    def _budget(self, signals: StopSignals | None = None) -> Budget:
        return Budget(self.config, len(self._batches(0)), self.dist, self.device,
                      sync_every=log_every(self.config), signals=signals)

    def finished_because(self) -> str:
        """Why the (resumed) run has nothing left to do ("" = it has): a budget reached or early stopping."""
        return self._budget().limit_reason(self.state) if len(self.train_set) else ""

    # -- the loop ---------------------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train until a budget or early stopping stops the run; returns the final counters.

        Raises ``TrainingInterrupted`` after saving ``last.pt`` when a signal stopped it, and
        ``TrainingDiverged`` (checkpoints untouched since the last finite weights) when the loss turned NaN/inf.
        """
        if len(self.train_set) == 0:
            raise ConfigError("no training windows: the pieces are shorter than codec.min_length")
        if not self.train_set.all_finite():
            raise DataError("the training windows hold NaN or infinite values: the data (or the codec's scaling "
                            "of it) is not finite; nothing was trained")
        self._saved_step = self.state.step if self._resumed else None
        with StopSignals() as signals:
            budget = self._budget(signals)
            self._horizon = schedule_horizon(self.config, budget.total_steps)
            log = TrainLog(self.run_dir, self.dist, self.backend, budget.sync_every, budget.per_epoch,
                           self.progress, total=budget.total_steps, initial=self.state.step,
                           tensorboard=self.config.tensorboard,
                           max_seconds=self.config.max_minutes * 60 if self.config.max_minutes else None)
            try:
                self._loop(budget, log)
            finally:
                log.close()
        return self.state

    def _loop(self, budget: Budget, log: TrainLog) -> None:
        c, s = self.config, self.state
        per_epoch = budget.per_epoch
        aug = torch.Generator()
        self.backend.train()
        batches, batches_epoch = [], None
        validated_at = -1
        first_step = True
        while True:
            if s.batch >= per_epoch:  # the epoch is over (a checkpoint taken at its last step says so too)
                s.epoch, s.batch = s.epoch + 1, 0
            s.stopped_because = s.stopped_because or budget.stop_reason(s)
            if s.stopped_because:
                break
            if batches_epoch != s.epoch:
                batches, batches_epoch = self._batches(s.epoch), s.epoch
            stats = self._train_step(batches[s.batch], aug)
            s.step += 1
            s.batch += 1
            window = log.train_step(stats, s, lr=self.optimizers[0].param_groups[0]["lr"])
            if first_step:  # one host sync per run: data or a model that is NaN from the start is refused now
                first_step = False
                self._check(reduce_stats(stats, self.dist), "training loss", log, at_start=not self._resumed)
            if window is not None:
                self._check(window, "training loss", log)
            if s.step % c.valid_every == 0:
                self._validate_and_checkpoint(budget, log)
                validated_at = s.step
        if s.stopped_because.startswith("SIG"):
            self._interrupted(budget, log)
        if validated_at != s.step:
            self._validate_and_checkpoint(budget, log)
        else:
            self._save(log, improved=False)  # records why it stopped

    def _interrupted(self, budget: Budget, log: TrainLog) -> None:
        """Save ``last.pt`` as it is (no validation: the counters stay those of an uninterrupted run), then stop."""
        s = self.state
        with budget.paused(s):
            self._save(log, improved=False)
        log.stopped(s, s.stopped_because)
        signum = int(getattr(signal, s.stopped_because))
        raise TrainingInterrupted(
            f"stopped by {s.stopped_because} at step {s.step}; last.pt saved. Resume with: "
            f"seqstudio train --resume --run-dir {shlex.quote(str(self.run_dir))}", signum)

    def _check(self, sums: dict[str, float], what: str, log: TrainLog, at_start: bool = False) -> None:
        """Raise ``TrainingDiverged`` when any of ``sums`` is NaN/inf (every process sees the same reduced sums,
        so under DDP all raise at the same step)."""
        bad = non_finite(sums)
        if bad:
            self._diverged(f"{what} ({', '.join(bad[:4])})", log, at_start)

    def _diverged(self, what: str, log: TrainLog, at_start: bool = False) -> None:
        s = self.state
        log.stopped(s, "diverged")
        if at_start:
            raise TrainingDiverged(
                f"the {what} is NaN/inf from the first step: the data or the model's start is not finite "
                f"(check the data for NaN/inf values and the settings); nothing was saved")
        kept = (f"last.pt keeps step {self._saved_step}, the last finite weights (best.pt the best of them)"
                if self._saved_step is not None else "no checkpoint had been written yet, so none was kept")
        raise TrainingDiverged(
            f"training diverged: non-finite {what} by step {s.step} (lr {self.config.lr:g}); {kept}. Start a new "
            f"run with a lower --lr (or a smaller train.clip_grad_norm, or train.lr_warmup_steps)")

    def _save(self, log: TrainLog, improved: bool) -> None:
        """Write the checkpoints, never with NaN weights (checked on every process: DDP keeps them equal)."""
        if not weights_finite(self.backend):
            self._diverged("weights", log)
        self.checkpoints.save(self.backend, self.optimizers, self.state, improved)
        self._saved_step = self.state.step

    def _batches(self, epoch: int) -> list[torch.Tensor]:
        return batch_indices(len(self.train_set), self.config.batch_size, epoch, self.config.seed,
                             rank=self.dist.rank, world=self.dist.world)

    def _train_step(self, index: torch.Tensor, aug: torch.Generator) -> dict[str, torch.Tensor]:
        """One update, its randomness (dropout, noise, augmentation) seeded from (seed, step, rank) alone."""
        c, s = self.config, self.state
        step_seed = c.seed * 1_000_003 + s.step * 7919 + self.dist.rank
        torch.manual_seed(step_seed)
        aug.manual_seed(step_seed)
        batch = make_batch(self.train_set, index, self.device, self.codec, aug)
        set_lr(self.optimizers, lr_factor(c, s.step, self._horizon, s.lr_scale))  # the schedule (schedule.py)
        ctx = StepContext(self._forward, c.clip_grad_norm, step=s.step, dist=self.dist)
        return self.backend.training_step(batch, self.optimizers, ctx)

    def _validate_and_checkpoint(self, budget: Budget, log: TrainLog) -> None:
        s = self.state
        with budget.paused(s):
            sums = self._validation_sums()
            self._check(sums, "validation loss", log)
            summary = self.backend.summarize(sums) if sums else {}
            improved = budget.record_validation(s, self.backend.validation_score(summary) if summary else None)
            after_validation(self.config, s, improved)  # the plateau schedule's counters
            log.validation(summary, s)
            self._save(log, improved)
