"""Does a written line say what it was asked to? A content score by dynamic time warping against renderings.

A handwriting model conditioned on text can produce beautiful strokes that spell nothing. Without a handwriting
recogniser, the check that needs no training is geometric: put the generated line and the Hershey rendering of
its asked text in the same frame (start at the origin, height 1), resample both by arc length, and compare the
DTW distance to its own text with the distance to renderings of *other* texts of the same length. A model that
ignores the text is closer to its own text about half the time; one that writes it, nearly always.
"""

from __future__ import annotations

import numpy as np

from .ink import Ink

POINTS = 160  # points per line after resampling: enough for ~30 letters, cheap for O(N^2) DTW


def normalised_path(ink: Ink, points: int = POINTS) -> np.ndarray:
    """The pen path (strokes joined in order) resampled to ``points`` points evenly spaced along its length,
    moved to start its bounding box at the origin and scaled to height 1 (aspect ratio kept)."""
    if not ink.strokes:
        return np.zeros((points, 2))
    path = np.concatenate(ink.strokes).astype(np.float64)
    x0, y0 = path.min(0)
    # height 1; a line with (almost) no height (a text of dashes and dots) is scaled by a twentieth of its width
    height = max(float(np.ptp(path[:, 1])), float(np.ptp(path[:, 0])) / 20, 1e-9)
    path = (path - (x0, y0)) / height
    steps = np.hypot(*np.diff(path, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] <= 0:
        return np.repeat(path[:1], points, axis=0)
    targets = np.linspace(0.0, along[-1], points)
    return np.stack([np.interp(targets, along, path[:, i]) for i in range(2)], axis=1)


def dtw(a: np.ndarray, b: np.ndarray) -> float:
    """Dynamic-time-warping distance between point sequences ``a`` [N, 2] and ``b`` [M, 2]: the least mean
    Euclidean distance over monotone alignments (normalised by N + M, so lines of any length compare)."""
    cost = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):  # row by row; within a row the left neighbour needs a running minimum
        diag_up = np.minimum(acc[i - 1, :-1], acc[i - 1, 1:]) + cost[i - 1]
        row = acc[i]
        for j in range(1, m + 1):
            row[j] = min(diag_up[j - 1], row[j - 1] + cost[i - 1, j - 1])
    return float(acc[n, m] / (n + m))


def reference_paths(text: str, fonts, points: int = POINTS) -> list[np.ndarray]:
    """The typeset rendering of ``text`` in each of ``fonts`` (loaded Hershey fonts), normalised."""
    from .hershey import TYPESET, write_line

    rng = np.random.default_rng(0)
    return [normalised_path(write_line(text, font, rng, TYPESET), points) for font in fonts]


def content_score(inks: list[Ink], asked: list[str], pool: list[str], fonts, others: int = 4,
                  seed: int = 0) -> dict[str, float]:
    """For each generated ``inks[i]`` asked to write ``asked[i]``: its DTW distance to the renderings of its own
    text (the nearest font) against that to ``others`` texts from ``pool`` of the same length (the nearest of
    each's fonts, averaged). Returns the share closer to its own text (chance 0.5) and the mean distances."""
    rng = np.random.default_rng(seed)
    by_length: dict[int, list[str]] = {}
    for text in pool:
        by_length.setdefault(len(text), []).append(text)
    wins, own_total, other_total, counted = 0.0, 0.0, 0.0, 0
    for ink, text in zip(inks, asked):
        same = [t for t in by_length.get(len(text), []) if t != text]
        if not same:  # fall back to the nearest lengths
            same = sorted((t for t in pool if t != text), key=lambda t: abs(len(t) - len(text)))[: others * 4]
        if not same:
            continue
        chosen = [same[i] for i in rng.choice(len(same), size=min(others, len(same)), replace=False)]
        path = normalised_path(ink)
        own = min(dtw(path, ref) for ref in reference_paths(text, fonts))
        other = [min(dtw(path, ref) for ref in reference_paths(t, fonts)) for t in chosen]
        wins += float(np.mean([own < d for d in other]))
        own_total += own
        other_total += float(np.mean(other))
        counted += 1
    if not counted:
        return {"closer_to_own_text": float("nan"), "lines": 0}
    return {"closer_to_own_text": wins / counted, "dtw_own": own_total / counted,
            "dtw_other": other_total / counted, "lines": counted}
