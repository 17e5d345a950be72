"""Line simplification: Ramer-Douglas-Peucker on a stroke (``simplify``) or a whole drawing (``simplify_ink``)."""

from __future__ import annotations

import numpy as np

from ..ink import Ink


def _segment_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each point to the *segment* a-b (not the infinite line: a stroke that doubles back
    past an end would otherwise be simplified away while lying far from the kept polyline)."""
    ab = b - a
    denom = float(ab @ ab)
    if denom == 0.0:
        return np.linalg.norm(points - a, axis=1)
    t = np.clip((points - a) @ ab / denom, 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def simplify(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: the subset of ``points`` (first and last always kept, order preserved) such
    that every original point lies within ``epsilon`` of the simplified polyline.

    Iterative with an explicit stack, so a 100k-point stroke cannot hit the recursion limit; each split's
    distances are one numpy expression.
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    points = np.asarray(points)
    if len(points) <= 2:
        return points.copy()
    work = points.astype(np.float64)
    keep = np.zeros(len(points), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        distances = _segment_distances(work[first + 1:last], work[first], work[last])
        farthest = int(np.argmax(distances))
        if distances[farthest] > epsilon:
            split = first + 1 + farthest
            keep[split] = True
            stack.append((first, split))
            stack.append((split, last))
    return points[keep]


def simplify_ink(ink: Ink, epsilon: float) -> Ink:
    """``simplify`` applied to every stroke; the label is kept."""
    return Ink([simplify(stroke, epsilon) for stroke in ink.strokes], label=ink.label)
