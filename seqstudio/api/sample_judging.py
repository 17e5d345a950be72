"""Judging a generator by its samples: domain metrics and the sample judge against held-out windows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..rundir import Run
from .generation import generate
from .held_out import judge_reference, reference_samples

log = logging.getLogger("seqstudio")


def compare_samples(domain, samples: list, reference: list) -> dict[str, Any]:
    """The domain's metrics on both sets and their per-metric overlap (``seqstudio.metrics.compare``)."""
    from ..metrics import compare

    generated = [domain.metrics(s) for s in samples]
    if not generated or not generated[0]:
        raise ConfigError(f"domain {domain.name!r} defines no metrics to compare samples with")
    return compare(generated, [domain.metrics(s) for s in reference])


def judge_samples(domain, samples: list, reference: list, seed: int = 0,
                  reference_pieces: list | None = None) -> dict[str, Any]:
    """The sample judge (``seqstudio.judge``): can a classifier tell ``samples`` from the held-out ``reference``
    (the domain's excerpts and features), with the real-vs-real floor (its halves split by
    ``reference_pieces``, one per reference sample, where given) and per-feature overlaps."""
    from .. import judge

    return judge.judge(domain, samples, reference, seed=seed, real_groups=reference_pieces)


def evaluate_samples(run: Run, data_dir: str | Path | None = None, split: str = "test", n: int = 100,
                     seed: int = 0, temperature: float = 1.0, length: int | None = None,
                     max_reference: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Judge a generator by its samples: ``n`` samples vs ``split``'s held-out windows, metric by metric, and by
    the sample judge.

    For every domain metric, the overlapping area of the two distributions (MGEval); ``mean_overlap`` (in
    [0, 1], higher is better) averages them. ``judge``: a classifier two-sample test on the domain's excerpt
    features (``seqstudio.judge``; 0.5 = indistinguishable from real), against the windows of ``split`` that
    do not overlap each other, with the real-vs-real floor; ``{"available": false, "reason": ...}`` for a domain
    without features. Works for every backend, likelihood or not.
    """
    samples = generate(run, n=n, length=length, temperature=temperature, seed=seed, progress=progress)
    reference = reference_samples(run, data_dir, split, limit=max_reference, seed=seed, progress=progress)
    real, pieces = judge_reference(run, data_dir, split, limit=max_reference, seed=seed, progress=False)
    verdict = judge_samples(run.domain, samples, real, seed=seed, reference_pieces=pieces)
    has_metrics = bool(samples) and bool(run.domain.metrics(samples[0]))
    # A domain without metrics still gets its judge's figures, or the judge's "no judge" and why: never an error
    # that would also throw away the likelihood figures evaluated before.
    result = (compare_samples(run.domain, samples, reference) if has_metrics
              else {"metrics": {}, "mean_overlap": float("nan")})
    return {"mean_overlap": result["mean_overlap"], "sample_metrics": result["metrics"], "judge": verdict,
            "samples": n, "reference_windows": len(reference), "temperature": temperature, "split": split,
            "backend": run.spec.backend_name, "run_dir": str(run.path),
            "data": str(Path(data_dir).resolve()) if data_dir is not None else run.spec.data["path"]}
