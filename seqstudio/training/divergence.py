"""Divergence: noticing a NaN/inf loss or NaN weights without a host sync per step.

The loop already brings the summed batch statistics to the host at every log interval (``TrainLog``) and at
every validation; those sums are what is checked, so a NaN anywhere in the window is seen at the next record.
The first step of a run is checked on its own (one sync per run), so data or a model that is non-finite from the
start is refused at once. Before any checkpoint is written the weights themselves are checked (one sync per
checkpoint), so ``last.pt`` / ``best.pt`` never hold NaN weights: they keep the last finite ones.
"""

from __future__ import annotations

import math

import torch


def non_finite(stats: dict[str, float]) -> list[str]:
    """The names of the statistics (sums reduced to floats) that are NaN or infinite."""
    return sorted(k for k, v in stats.items() if not math.isfinite(float(v)))


def weights_finite(module: torch.nn.Module) -> bool:
    """Whether every parameter and floating buffer of ``module`` is finite (one host sync)."""
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    if not tensors:
        return True
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def data_finite(x: torch.Tensor) -> bool:
    return not x.is_floating_point() or bool(torch.isfinite(x).all())
