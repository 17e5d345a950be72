"""What training reports: a ``train`` record in ``metrics.jsonl`` every few steps and a ``valid`` record at every
validation, and the progress bar.

Batch statistics are summed on the device and reduced over processes only when a record is due, so there is no
host sync per step; the reduction is collective (every process calls ``train_step``), the writing is the main
process's alone.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..backends.base import Backend
from ..config import TrainConfig
from ..distributed import DistInfo, add_stats, reduce_stats
from ..rundir import append_metrics
from .state import TrainState


def log_every(config: TrainConfig) -> int:
    """Steps between train records: at most 50, and at least one record per validation interval."""
    return max(1, min(50, config.valid_every))


class TrainLog:
    def __init__(self, run_dir: Path, dist: DistInfo, backend: Backend, every: int, per_epoch: int,
                 progress: bool, total: int | None, initial: int, tensorboard: bool = False,
                 max_seconds: float | None = None):
        from tqdm.auto import tqdm

        from .tensorboard import open_writer

        self.run_dir = Path(run_dir)
        self.dist = dist
        self.backend = backend
        self.every = every
        self.per_epoch = per_epoch
        self.bar = tqdm(total=total, initial=initial, desc="training", unit="step",
                        disable=not (progress and dist.is_main), dynamic_ncols=True)
        self._running: dict = {}
        self._window_started = time.perf_counter()
        self.tensorboard = open_writer(run_dir, tensorboard) if dist.is_main else None
        self.total, self.max_seconds, self._eta_said = total, max_seconds, False

    def train_step(self, stats: dict, s: TrainState, lr: float) -> dict[str, float] | None:
        """Count one step's statistics; write a record when ``every`` steps have passed and return the window's
        summed statistics (the trainer checks them for NaN), else None."""
        add_stats(self._running, stats)
        self.bar.update()
        if s.step % self.every:
            return None
        now = time.perf_counter()
        summary = reduce_stats(self._running, self.dist)
        record = self.backend.summarize(summary)
        rate = summary.get("steps", 0.0) / max(now - self._window_started, 1e-9)
        record.update(step=s.step, epoch=round(s.epoch + s.batch / self.per_epoch, 3), split="train",
                      tokens_per_s=round(rate, 1), lr=lr)
        steps_per_s = self.every / max(now - self._window_started, 1e-9)
        eta = self._eta(s, steps_per_s)
        if eta is not None:
            record["eta_s"] = round(eta)
        self._running, self._window_started = {}, now
        if self.dist.is_main:
            append_metrics(self.run_dir, record)
            if self.tensorboard:
                self.tensorboard.add(record)
            self.bar.set_postfix(loss=f"{self.backend.validation_score(record):.3f}", tok_s=f"{rate:.0f}",
                                 refresh=False)  # shown at the bar's next refresh (mininterval), not at once
            if eta is not None and not self._eta_said:  # once, as an info line beside the bar's own ETA
                self._eta_said = True
                logging.getLogger("seqstudio").info("%.2f steps/s: the training budget ends in about %s",
                                                    steps_per_s, _duration(eta))
        return summary

    def _eta(self, s: TrainState, steps_per_s: float) -> float | None:
        """Seconds until the step/epoch budget (at the last window's speed) or the time budget ends, whichever
        is first; None without a budget."""
        left = [(self.total - s.step) / max(steps_per_s, 1e-9)] if self.total else []
        if self.max_seconds:
            left.append(max(0.0, self.max_seconds - s.elapsed))
        return max(0.0, min(left)) if left else None

    def validation(self, summary: dict[str, float], s: TrainState) -> None:
        if self.dist.is_main:
            record = {**summary, "step": s.step, "split": "valid", "elapsed_s": round(s.elapsed, 2)}
            append_metrics(self.run_dir, record)
            if self.tensorboard:
                self.tensorboard.add(record)

    def stopped(self, s: TrainState, reason: str) -> None:
        """A ``stop`` record for a run that ends abnormally (a signal, divergence), where ``last.pt`` may not
        say why (a diverged run's ``last.pt`` is the last finite one, saved earlier)."""
        if self.dist.is_main:
            append_metrics(self.run_dir, {"step": s.step, "split": "stop", "reason": reason})

    def close(self) -> None:
        self.bar.close()
        if self.tensorboard:
            self.tensorboard.close()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
