"""Comparing the metric distributions of two sets of samples (domain-agnostic).

Following MGEval (Yang & Lerch 2018, "On the evaluation of generative models in music"), each metric's values
over a set are smoothed into a density with a Gaussian kernel, and two sets are compared by the *overlapping
area* of their densities, ``OA = integral of min(p, q)``: 1 for identical distributions, 0 for disjoint ones.
(MGEval applies the same measure to pairwise-distance distributions; we apply it to the metric values
themselves, which reads more directly: "the generated pitch ranges overlap the real ones by 0.8".)

Both densities of a metric share one bandwidth (Scott's rule on the average within-set spread), so the
measure is symmetric, and both are normalised on the same grid, so identical sets give exactly 1.0.
"""

from __future__ import annotations

import math

import numpy as np

GRID_POINTS = 1024


def _clean(values) -> np.ndarray:
    a = np.asarray([float(v) for v in values], dtype=float)
    return a[np.isfinite(a)]


def _bandwidth(a: np.ndarray, b: np.ndarray) -> float:
    """Scott's rule on the *within-set* spread (the pooled spread would include the very difference measured)."""
    within = math.sqrt((a.var() + b.var()) / 2)
    n = (a.size + b.size) / 2
    span = max(a.max(), b.max()) - min(a.min(), b.min())
    return max(1.06 * within * n ** (-1 / 5), 1e-3 * span)


def _density(values: np.ndarray, grid: np.ndarray, bw: float) -> np.ndarray:
    z = (grid[:, None] - values[None, :]) / bw
    d = np.exp(-0.5 * z * z).sum(1)
    return d / d.sum()


def overlap(a, b) -> float:
    """Overlapping area of the kernel densities of two lists of numbers (``nan`` values dropped).

    1.0 for identical sets (and for two sets of one and the same constant), towards 0 as they move apart;
    ``nan`` when either set has no finite value.
    """
    a, b = _clean(a), _clean(b)
    if a.size == 0 or b.size == 0:
        return float("nan")
    pooled = np.concatenate([a, b])
    lo, hi = float(pooled.min()), float(pooled.max())
    if hi - lo < 1e-12:
        return 1.0
    bw = _bandwidth(a, b)
    grid = np.linspace(lo - 4 * bw, hi + 4 * bw, GRID_POINTS)
    return float(np.minimum(_density(a, grid, bw), _density(b, grid, bw)).sum())


def compare(generated: list[dict[str, float]], reference: list[dict[str, float]]) -> dict:
    """Per-metric overlap (and means, standard deviations) of two sets of metric dicts, plus the mean overlap.

    Returns ``{"metrics": {name: {"overlap", "generated_mean", "generated_std", "reference_mean",
    "reference_std"}}, "mean_overlap": float}``; metrics missing from either side are skipped.
    """
    names = [k for k in (reference[0] if reference else {}) if generated and all(k in g for g in generated)]
    table = {}
    for name in names:
        g = _clean(d.get(name, math.nan) for d in generated)
        r = _clean(d.get(name, math.nan) for d in reference)
        table[name] = {"overlap": overlap(g, r),
                       "generated_mean": float(g.mean()) if g.size else math.nan,
                       "generated_std": float(g.std()) if g.size else math.nan,
                       "reference_mean": float(r.mean()) if r.size else math.nan,
                       "reference_std": float(r.std()) if r.size else math.nan}
    values = [row["overlap"] for row in table.values() if math.isfinite(row["overlap"])]
    return {"metrics": table, "mean_overlap": float(np.mean(values)) if values else math.nan}
