"""Line simplification: Ramer-Douglas-Peucker on a stroke (``simplify``) or a whole drawing (``simplify_ink``)."""

from __future__ import annotations

import numpy as np

from ..ink import Ink


# Splits chosen at the farthest point (exact RDP) for this many rounds; after that, every segment still too far
# from its chord is cut in the middle of its index range. Real strokes finish in about log2(n) rounds, so they
# are simplified exactly as by textbook RDP; an adversarial stroke (a zigzag of growing amplitude, whose farthest
# point is always next to an end) would otherwise need n rounds over n points: quadratic, minutes for 80k points.
# Cutting in the middle keeps the guarantee (every point within epsilon of the result) and bounds the rounds
# by EXACT_ROUNDS + log2(n).
EXACT_ROUNDS = 64


def _segment_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise distance from ``points[i]`` to the *segment* ``a[i]``-``b[i]`` (not the infinite line: a stroke
    that doubles back past an end would otherwise be simplified away while lying far from the kept polyline)."""
    ab = b - a
    denom = np.einsum("ij,ij->i", ab, ab)
    t = np.einsum("ij,ij->i", points - a, ab) / np.where(denom > 0, denom, 1.0)
    t = np.clip(np.where(denom > 0, t, 0.0), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def simplify(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: the subset of ``points`` (first and last always kept, order preserved) such
    that every original point lies within ``epsilon`` of the simplified polyline.

    Works round by round on all open segments at once (one numpy pass per round, no Python loop over
    segments or recursion), with the number of rounds bounded (``EXACT_ROUNDS``): O(n log n) in the worst case.
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    points = np.asarray(points)
    n = len(points)
    if n <= 2:
        return points.copy()
    work = points.astype(np.float64)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    undecided = np.ones(n, dtype=bool)  # points whose segment may still be split
    undecided[[0, -1]] = False
    rounds = 0
    while True:
        candidates = np.flatnonzero(undecided)
        if candidates.size == 0:
            break
        kept = np.flatnonzero(keep)
        segment = np.searchsorted(kept, candidates) - 1  # the kept points on either side: kept[s], kept[s + 1]
        left, right = kept[segment], kept[segment + 1]
        distances = _segment_distances(work[candidates], work[left], work[right])
        group_starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
        group = np.repeat(np.arange(group_starts.size), np.diff(np.r_[group_starts, candidates.size]))
        farthest = np.maximum.reduceat(distances, group_starts)
        split = farthest > epsilon
        undecided[candidates[~split[group]]] = False  # whole segment within epsilon: its inner points go
        if rounds < EXACT_ROUNDS:
            # first position of each group's maximum, as np.argmax would pick within the segment
            at_max = np.flatnonzero(distances == farthest[group])
            groups_at_max, first = np.unique(group[at_max], return_index=True)
            chosen = candidates[at_max[first]][split[groups_at_max]]
        else:
            chosen = ((kept[:-1] + kept[1:]) // 2)[np.unique(segment[split[group]])]
        keep[chosen] = True
        undecided[chosen] = False
        rounds += 1
    return points[keep]


def simplify_ink(ink: Ink, epsilon: float) -> Ink:
    """``simplify`` applied to every stroke; the label is kept."""
    return Ink([simplify(stroke, epsilon) for stroke in ink.strokes], label=ink.label)
