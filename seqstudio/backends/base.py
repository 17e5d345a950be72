"""The Backend interface every generator family implements.

The trainer only ever calls ``training_step`` (through ``configure_optimizers``), ``loss`` for validation and
``summarize`` for reporting, so a new family (e.g. a GAN with its own alternating updates) overrides
``training_step`` instead of teaching the trainer about itself.

Statistics convention: ``loss`` returns ``(scalar_to_minimise, stats)`` where ``stats`` holds *sums* over the
batch as detached tensors (no ``.item()``, so no host sync per step) and always a ``"steps"`` count. Sums are
added across batches (and processes) and divided once, by ``summarize``; a key ``foo_num`` pairs with
``foo_den`` into a ratio ``foo``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar

import torch
import torch.nn as nn

from ..spec import FeatureSpec


@dataclasses.dataclass
class StepContext:
    """What the trainer lends a backend for one optimisation step."""

    forward: Callable[..., Any]  # the (possibly DDP-wrapped) module's __call__: use it, not self.loss
    clip_grad_norm: float


class Backend(nn.Module):
    name: ClassVar[str] = "backend"
    description: ClassVar[str] = ""
    Config: ClassVar[type] = object
    # False for families with no likelihood to report (GANs): `evaluate` then judges them by samples only.
    has_likelihood: ClassVar[bool] = True

    def __init__(self, spec: FeatureSpec, config):
        super().__init__()
        self.spec = spec
        self.config = config
        self.global_step = 0  # set by the trainer before every step (annealing schedules read it)

    # -- training ----------------------------------------------------------------------------------------------
    def forward(self, batch: dict, **kwargs):
        return self.loss(batch, **kwargs)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def configure_optimizers(self, lr: float, weight_decay: float = 0.0) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)]

    def training_step(self, batch: dict, optimizers: list[torch.optim.Optimizer], ctx: StepContext):
        """One update. Returns the batch's stats (sums, detached)."""
        (optimizer,) = optimizers
        optimizer.zero_grad(set_to_none=True)
        loss, stats = ctx.forward(batch)
        loss.backward()
        if ctx.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters(), ctx.clip_grad_norm)
        optimizer.step()
        return stats

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        """Called once before training from scratch with (a sample of) the training windows: every output
        head starts at the data's marginal distribution (see ``OutputHead.init_bias_from_data``)."""
        from ..heads import OutputHead

        for module in self.modules():
            if isinstance(module, OutputHead):
                module.init_bias_from_data(x, mask)

    # -- evaluation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate_batch(self, batch: dict, **options) -> dict[str, torch.Tensor]:
        """Held-out statistics (sums) for one batch; defaults to the training loss's stats.

        ``options`` are backend-specific evaluation switches; a backend refuses the ones it does not know.
        """
        if options:
            from ..errors import ConfigError

            raise ConfigError(f"backend {self.name!r} does not support evaluation options: {', '.join(options)}")
        return self.loss(batch)[1]

    def summarize(self, stats: dict[str, float]) -> dict[str, float]:
        """Turn summed stats into per-step figures (nats per step) and ratios."""
        steps = max(float(stats.get("steps", 1.0)), 1.0)
        out = {}
        for key, value in stats.items():
            value = float(value)
            if key in ("steps", "sequences") or key.endswith("_den"):
                continue
            if key.endswith("_num"):
                den = float(stats.get(key[:-4] + "_den", 0.0))
                out[key[:-4]] = value / den if den else float("nan")
            else:
                out[key] = value / steps
        return out

    def validation_score(self, summary: dict[str, float]) -> float:
        """Lower is better; picks ``best.pt`` and drives early stopping (default: negative ELBO per step)."""
        return summary.get("nll", math.inf) + summary.get("kl", 0.0)

    # -- generation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, steps: int, temperature: float = 1.0, prime: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` sequences of ``steps`` steps in storage layout, shape ``[n, steps, spec.storage_width]``."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
