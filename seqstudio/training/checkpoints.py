"""Checkpoints: ``last.pt`` at every validation and at the end, ``best.pt`` when validation improved, and the
exact resume from ``last.pt`` (model, optimizers and the ``TrainState`` counters).

Only the main process writes, atomically, so a crash mid-write never leaves a truncated file; files are read
with ``weights_only=True``, so a checkpoint from elsewhere never executes code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..backends.base import Backend
from ..distributed import DistInfo
from ..errors import RunDirError
from .state import TrainState


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


class Checkpoints:
    def __init__(self, run_dir: Path, dist: DistInfo):
        self.run_dir = Path(run_dir)
        self.dist = dist

    def save(self, backend: Backend, optimizers: list[torch.optim.Optimizer], state: TrainState,
             improved: bool) -> None:
        if not self.dist.is_main:
            return
        payload = {"model": backend.state_dict(),
                   "optimizers": [opt.state_dict() for opt in optimizers],
                   "state": dataclasses.asdict(state)}
        save_checkpoint(self.run_dir / "last.pt", payload)
        if improved:
            save_checkpoint(self.run_dir / "best.pt", payload)

    def resume(self, backend: Backend, optimizers: list[torch.optim.Optimizer],
               device: torch.device) -> TrainState:
        """Load ``last.pt`` into ``backend`` and ``optimizers``; the counters to continue from."""
        path = self.run_dir / "last.pt"
        if not path.exists():
            raise RunDirError(f"cannot resume: {path} does not exist")
        try:
            ckpt = torch.load(path, map_location=device, weights_only=True)
            backend.load_state_dict(ckpt["model"])
            for opt, state in zip(optimizers, ckpt["optimizers"]):
                opt.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            what = ("its weights have other names or shapes than this model's" if isinstance(exc, RuntimeError)
                    else f"{type(exc).__name__} {str(exc).splitlines()[0][:80] if str(exc) else ''}".strip())
            raise RunDirError(f"cannot resume from {path}: it does not match this configuration ({what}); "
                              f"change only budgets when resuming") from None
        return dataclasses.replace(TrainState(**ckpt["state"]), stopped_because="")
