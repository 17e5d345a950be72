"""Held-out likelihood figures of a run (the backends that have one): ``evaluate_likelihood``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from .. import data
from ..backends.base import Backend
from ..distributed import add_stats
from ..rundir import Run
from .held_out import held_out_windows

log = logging.getLogger("seqstudio")


@torch.no_grad()
def evaluate_likelihood(run: Run, data_dir: str | Path | None = None, split: str = "test", batch_size: int = 64,
             progress: bool = True, seed: int = 0, **options) -> dict[str, Any]:
    """Held-out figures of the run's backend on ``split`` of ``data_dir`` (default: the training folder).

    ``options`` go to ``Backend.evaluate_batch`` (e.g. ``iw_samples`` for an importance-weighted bound).
    """
    backend: Backend = run.backend
    backend.check_evaluate_options(options)
    spec, files, windows = held_out_windows(run, data_dir, split, progress)
    torch.manual_seed(seed)
    backend.eval()
    total: dict[str, torch.Tensor] = {}
    from tqdm.auto import tqdm

    batches = data.batch_indices(len(windows), batch_size, 0, 0, shuffle=False)
    for index in tqdm(batches, desc="evaluating", unit="batch", disable=not progress or len(batches) < 2,
                      dynamic_ncols=True, leave=False):
        add_stats(total, backend.evaluate_batch(data.make_batch(windows, index, backend.device), **options))
    stats = {k: float(v) for k, v in total.items()}
    result = backend.summarize(stats)
    result.update(split=split, files=len(files[split]), windows=len(windows), steps=int(stats.get("steps", 0)),
                  backend=spec.backend_name, run_dir=str(run.path), data=spec.data["path"])
    cs = run.fitted.conditions  # conditions: the likelihood is conditioned as in training
    result["conditioned_on"] = cs.names if cs is not None and cs.conditions_backend else []
    ts = run.fitted.text  # text: the likelihood is of each line given its text
    result["text_conditioned"] = ts.attribute if ts is not None else None
    return result
