"""One device-agnostic training loop for every backend.

CPU or CUDA (bf16 autocast on CUDA), DDP when launched by ``torchrun`` (NCCL on GPUs, gloo on CPU), gradient
clipping, periodic validation with early stopping, atomic checkpoints and exact resume. The loop never asks
which backend it is driving: a backend with unusual updates (a GAN) overrides ``Backend.training_step``.

Exact resume: the data order of an epoch depends only on (seed, epoch), and the random state of every step is
re-seeded from (seed, step), so a run stopped and resumed follows the same path as one that never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch

from .backends.base import Backend, StepContext
from .config import TrainConfig
from .data import WindowSet, batch_indices, make_batch
from .distributed import add_stats, init_distributed, leave, reduce_stats
from .domain import Codec
from .errors import ConfigError, RunDirError
from .rundir import append_metrics, save_checkpoint

DEFAULT_EPOCHS = 20


@dataclasses.dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch index within the epoch
    best_score: float = math.inf
    bad_validations: int = 0
    elapsed: float = 0.0  # seconds of training so far, across resumes
    stopped_because: str = ""


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise ConfigError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device("cpu")


class Trainer:
    def __init__(self, backend: Backend, codec: Codec, train_set: WindowSet, valid_set: WindowSet,
                 config: TrainConfig, run_dir: Path, on_checkpoint=None, progress: bool = True):
        self.info = init_distributed()
        self.device = resolve_device(config.device, self.info.local_rank)
        self.backend = backend.to(self.device)
        self.codec = codec
        self.train_set = train_set
        self.valid_set = valid_set
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress and self.info.is_main
        self.on_checkpoint = on_checkpoint
        self.model = self.backend
        if self.info.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.backend, device_ids=ids,
                find_unused_parameters=backend.ddp_find_unused_parameters)
        self.optimizers = backend.configure_optimizers(config.lr, config.weight_decay)
        self.state = TrainState()
        precision = config.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"unknown precision {precision!r}; valid: auto, fp32, bf16")
        if config.lr_warmup_steps < 0:
            raise ConfigError(f"train.lr_warmup_steps must be >= 0, got {config.lr_warmup_steps}")
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None

    def _warm_up_lr(self, step: int) -> None:
        """Linear learning-rate warm-up, from the step count alone (so a resumed run continues it exactly)."""
        n = self.config.lr_warmup_steps
        if n <= 0 or step > n:
            return
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * min(1.0, (step + 1) / n)

    def close(self) -> None:
        """Leave the process group together: a rank that exits while others still talk to it aborts."""
        leave(self.info)

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        return {"model": self.backend.state_dict(),
                "optimizers": [opt.state_dict() for opt in self.optimizers],
                "state": dataclasses.asdict(self.state)}

    def resume(self) -> None:
        path = self.run_dir / "last.pt"
        if not path.exists():
            raise RunDirError(f"cannot resume: {path} does not exist")
        try:
            ckpt = torch.load(path, map_location=self.device, weights_only=True)
            self.backend.load_state_dict(ckpt["model"])
            for opt, state in zip(self.optimizers, ckpt["optimizers"]):
                opt.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise RunDirError(f"cannot resume from {path}: it does not match this configuration "
                              f"({str(exc).splitlines()[0][:200]}); change only budgets when resuming") from None
        self.state = TrainState(**ckpt["state"])
        self.state.stopped_because = ""

    def _save(self, improved: bool) -> None:
        if not self.info.is_main:
            return
        payload = self.checkpoint_payload()
        save_checkpoint(self.run_dir / "last.pt", payload)
        if improved:
            save_checkpoint(self.run_dir / "best.pt", payload)

    # -- pieces of the loop -----------------------------------------------------------------------------------------
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _forward(self, batch, **kwargs):
        with self._autocast():
            return self.model(batch, **kwargs)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if len(self.valid_set) == 0:
            return {}
        self.backend.eval()
        total: dict[str, torch.Tensor] = {}
        torch.manual_seed(self.config.seed + 12345)  # the same noise at every validation: comparable scores
        for index in batch_indices(len(self.valid_set), self.config.batch_size, 0, 0, shuffle=False,
                                   rank=self.info.rank, world=self.info.world):
            batch = make_batch(self.valid_set, index, self.device)
            with self._autocast():
                add_stats(total, self.backend.evaluate_batch(batch))
        self.backend.train()
        return self.backend.summarize(reduce_stats(total, self.info))

    def _tick(self) -> None:
        """Move the time since the last tick into ``state.elapsed`` (which survives resumes)."""
        now = time.perf_counter()
        self.state.elapsed += now - self._clock
        self._clock = now

    def _budget_left(self) -> str:
        c, s = self.config, self.state
        if c.max_steps and s.step >= c.max_steps:
            return "max_steps"
        if c.max_minutes:
            self._tick()
            over = s.elapsed >= c.max_minutes * 60
            if self.info.world > 1:
                # Clocks differ between processes; all must stop at the same step or DDP hangs. Agree every
                # `_log_every` steps only, so there is no per-step host sync.
                if s.step % self._log_every:
                    return ""
                flag = self.info.all_reduce_max(torch.tensor(float(over), device=self.device))
                over = bool(flag.item())
            if over:
                return "max_minutes"
        return ""

    def _epochs(self) -> float:
        c = self.config
        if c.epochs:
            return c.epochs
        return math.inf if (c.max_steps or c.max_minutes) else DEFAULT_EPOCHS

    # -- the loop ---------------------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        from tqdm.auto import tqdm

        c, s = self.config, self.state
        if len(self.train_set) == 0:
            raise ConfigError("no training windows: the pieces are shorter than codec.min_length")
        per_epoch = len(batch_indices(len(self.train_set), c.batch_size, 0, c.seed, rank=self.info.rank,
                                      world=self.info.world))
        epochs = self._epochs()
        total = c.max_steps or (int(math.ceil(epochs * per_epoch)) if math.isfinite(epochs) else None)
        bar = tqdm(total=total, initial=s.step, desc="training", unit="step", disable=not self.progress,
                   dynamic_ncols=True)
        log_every = self._log_every = max(1, min(50, c.valid_every))
        running: dict[str, torch.Tensor] = {}
        self._clock = time.perf_counter()
        window_started = time.perf_counter()
        aug = torch.Generator()
        self.backend.train()
        validated_at = -1
        while not s.stopped_because:
            if s.epoch >= epochs or (s.epoch + s.batch / per_epoch) >= epochs:
                s.stopped_because = "epochs"
                break
            batches = batch_indices(len(self.train_set), c.batch_size, s.epoch, c.seed, rank=self.info.rank,
                                    world=self.info.world)
            while s.batch < len(batches) and not s.stopped_because:
                if (reason := self._budget_left()):
                    s.stopped_because = reason
                    break
                if s.epoch + s.batch / per_epoch >= epochs:
                    s.stopped_because = "epochs"
                    break
                step_seed = c.seed * 1_000_003 + s.step * 7919 + self.info.rank
                torch.manual_seed(step_seed)
                aug.manual_seed(step_seed)
                batch = make_batch(self.train_set, batches[s.batch], self.device, self.codec, aug)
                self._warm_up_lr(s.step)
                ctx = StepContext(self._forward, c.clip_grad_norm, step=s.step, dist=self.info)
                add_stats(running, self.backend.training_step(batch, self.optimizers, ctx))
                s.step += 1
                s.batch += 1
                bar.update()
                if s.step % log_every == 0:
                    now = time.perf_counter()
                    summary = reduce_stats(running, self.info)
                    record = self.backend.summarize(summary)
                    rate = summary.get("steps", 0.0) / max(now - window_started, 1e-9)
                    record.update(step=s.step, epoch=round(s.epoch + s.batch / per_epoch, 3), split="train",
                                  tokens_per_s=round(rate, 1), lr=self.optimizers[0].param_groups[0]["lr"])
                    running, window_started = {}, now
                    if self.info.is_main:
                        append_metrics(self.run_dir, record)
                        bar.set_postfix(loss=f"{self._score(record):.3f}", tok_s=f"{rate:.0f}")
                if s.step % c.valid_every == 0:
                    self._validate_and_checkpoint()
                    validated_at = s.step
            else:
                s.epoch += 1
                s.batch = 0
        if validated_at != s.step:
            self._validate_and_checkpoint()
        else:
            self._save(improved=False)  # last.pt must record why training stopped
        bar.close()
        return s

    def _score(self, summary: dict[str, float]) -> float:
        return self.backend.validation_score(summary)

    def _validate_and_checkpoint(self) -> None:
        s, c = self.state, self.config
        self._tick()
        summary = self.validate()
        improved = True
        if summary:
            score = self._score(summary)
            improved = score < s.best_score
            if improved:
                s.best_score, s.bad_validations = score, 0
            else:
                s.bad_validations += 1
            if c.patience and s.bad_validations >= c.patience and not s.stopped_because:
                s.stopped_because = "early_stopping"
        if self.info.is_main:
            record = {**summary, "step": s.step, "split": "valid", "elapsed_s": round(s.elapsed, 2)}
            append_metrics(self.run_dir, record)
        self._save(improved)
        self._clock = time.perf_counter()  # validation time is not training time
