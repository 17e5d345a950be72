"""One device-agnostic training loop for every backend.

CPU or CUDA (bf16 autocast on CUDA), DDP when the caller has joined a process group (NCCL on GPUs, gloo on
CPU), gradient clipping, periodic validation with early stopping, atomic checkpoints and exact resume. The loop
never asks which backend it is driving: a backend with unusual updates (a GAN) overrides
``Backend.training_step``. What stops it, what it saves and what it logs are the small pieces beside it
(``budget``, ``checkpoints``, ``train_log``).

Exact resume: the data order of an epoch depends only on (seed, epoch), and the random state of every step is
re-seeded from (seed, step), so a run stopped and resumed follows the same path as one that never stopped.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..backends.base import Backend, StepContext
from ..config import TrainConfig
from ..data import WindowSet, batch_indices, make_batch
from ..distributed import DistInfo, add_stats, reduce_stats
from ..domain import Codec
from ..errors import ConfigError
from .budget import Budget
from .checkpoints import Checkpoints
from .device import autocast, resolve_device
from .state import TrainState
from .train_log import TrainLog, log_every


def warm_up_lr(optimizers: list[torch.optim.Optimizer], step: int, warmup_steps: int) -> None:
    """Linear learning-rate warm-up, from the step count alone (so a resumed run continues it exactly)."""
    if warmup_steps <= 0 or step > warmup_steps:
        return
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * min(1.0, (step + 1) / warmup_steps)


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

    def resume(self) -> None:
        """Continue from ``last.pt``: weights, optimizer moments and counters."""
        self.state = self.checkpoints.resume(self.backend, self.optimizers, self.device)

    def _forward(self, batch, **kwargs):
        with autocast(self.config.precision, self.device):
            return self.model(batch, **kwargs)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if len(self.valid_set) == 0:
            return {}
        self.backend.eval()
        total: dict[str, torch.Tensor] = {}
        torch.manual_seed(self.config.seed + 12345)  # the same noise at every validation: comparable scores
        for index in batch_indices(len(self.valid_set), self.config.batch_size, 0, 0, shuffle=False,
                                   rank=self.dist.rank, world=self.dist.world):
            batch = make_batch(self.valid_set, index, self.device)
            with autocast(self.config.precision, self.device):
                add_stats(total, self.backend.evaluate_batch(batch))
        self.backend.train()
        return self.backend.summarize(reduce_stats(total, self.dist))

    # -- the loop ---------------------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        c, s = self.config, self.state
        if len(self.train_set) == 0:
            raise ConfigError("no training windows: the pieces are shorter than codec.min_length")
        per_epoch = len(self._batches(0))
        every = log_every(c)
        budget = Budget(c, per_epoch, self.dist, self.device, sync_every=every)
        log = TrainLog(self.run_dir, self.dist, self.backend, every, per_epoch, self.progress,
                       total=budget.total_steps, initial=s.step)
        aug = torch.Generator()
        self.backend.train()
        batches, batches_epoch = [], None
        validated_at = -1
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
            log.train_step(stats, s, lr=self.optimizers[0].param_groups[0]["lr"])
            if s.step % c.valid_every == 0:
                self._validate_and_checkpoint(budget, log)
                validated_at = s.step
        if validated_at != s.step:
            self._validate_and_checkpoint(budget, log)
        else:
            self.checkpoints.save(self.backend, self.optimizers, s, improved=False)  # records why it stopped
        log.close()
        return s

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
        warm_up_lr(self.optimizers, s.step, c.lr_warmup_steps)
        ctx = StepContext(self._forward, c.clip_grad_norm, step=s.step, dist=self.dist)
        return self.backend.training_step(batch, self.optimizers, ctx)

    def _validate_and_checkpoint(self, budget: Budget, log: TrainLog) -> None:
        s = self.state
        with budget.paused(s):
            summary = self.validate()
            improved = budget.record_validation(s, self.backend.validation_score(summary) if summary else None)
            log.validation(summary, s)
            self.checkpoints.save(self.backend, self.optimizers, s, improved)
