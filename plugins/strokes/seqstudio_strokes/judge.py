"""What the sample judge (``seqstudio.judge``) sees of a drawing: one excerpt per drawing (a kanji, a sketch, a
handwritten line is a whole), and shape features that do not depend on the source's units.

| feature | meaning |
|---|---|
| ``log_points``, ``strokes``, ``pen_lifts`` | log point count, stroke count, share of points after which the pen lifts |
| ``segment_mean``, ``segment_cv`` | mean pen-down move over the bounding-box diagonal, and its coefficient of variation |
| ``turn_mean``, ``turn_sharp``, ``turn_straight`` | mean absolute turning angle (radians) between successive moves of a stroke; share over 90 degrees; share under 15 degrees |
| ``jump_mean`` | mean pen-up jump (last point of a stroke to the first of the next) over the diagonal |
| ``aspect``, ``ink_length``, ``straightness``, ``points_per_stroke`` | the domain's metrics (``StrokesDomain.metrics``) |

The negative controls (``controls``) are each drawing with its pen-down moves shuffled across the drawing (each
stroke keeps its number of points), and a random walk with the drawing's stroke and point counts and its mean
move length.
"""

from __future__ import annotations

import numpy as np

from .ink import Ink


def _moves(ink: Ink) -> list[np.ndarray]:
    return [np.diff(s, axis=0) for s in ink.strokes]


def features(ink: Ink, metrics: dict[str, float]) -> dict[str, float]:
    """The judge's features of one drawing (``metrics``: the domain's own, merged in)."""
    out = {"log_points": float(np.log1p(ink.num_points)), "strokes": float(len(ink.strokes)),
           "pen_lifts": len(ink.strokes) / ink.num_points if ink.num_points else 0.0}
    x0, y0, x1, y1 = ink.bounds()
    diagonal = max(float(np.hypot(x1 - x0, y1 - y0)), 1e-6)
    moves = [m for m in _moves(ink) if len(m)]
    lengths = np.concatenate([np.hypot(m[:, 0], m[:, 1]) for m in moves]) if moves else np.zeros(0)
    out["segment_mean"] = float(lengths.mean() / diagonal) if lengths.size else 0.0
    out["segment_cv"] = float(lengths.std() / lengths.mean()) if lengths.size and lengths.mean() > 0 else 0.0
    turns = []
    for m in moves:
        m = m[np.hypot(m[:, 0], m[:, 1]) > 1e-9]
        if len(m) >= 2:
            angle = np.arctan2(m[:, 1], m[:, 0])
            turns.append(np.abs((np.diff(angle) + np.pi) % (2 * np.pi) - np.pi))
    turns = np.concatenate(turns) if turns else np.zeros(0)
    out["turn_mean"] = float(turns.mean()) if turns.size else 0.0
    out["turn_sharp"] = float((turns > np.pi / 2).mean()) if turns.size else 0.0
    out["turn_straight"] = float((turns < np.pi / 12).mean()) if turns.size else 0.0
    jumps = [float(np.hypot(*(b[0] - a[-1]))) for a, b in zip(ink.strokes, ink.strokes[1:])]
    out["jump_mean"] = float(np.mean(jumps) / diagonal) if jumps else 0.0
    out.update({k: float(v) for k, v in metrics.items() if k != "strokes"})
    return out


def shuffled_moves(ink: Ink, rng: np.random.Generator) -> Ink:
    """The drawing's pen-down moves in random order across the drawing; strokes keep their point counts and
    start points."""
    moves = _moves(ink)
    pool = np.concatenate([m for m in moves if len(m)]) if any(len(m) for m in moves) else np.zeros((0, 2))
    pool = pool[rng.permutation(len(pool))]
    strokes, used = [], 0
    for stroke, m in zip(ink.strokes, moves):
        steps = pool[used: used + len(m)]
        used += len(m)
        strokes.append(np.concatenate([stroke[:1], stroke[:1] + np.cumsum(steps, axis=0)]))
    return Ink(strokes, label=ink.label)


def random_walk(ink: Ink, rng: np.random.Generator) -> Ink:
    """A random walk with the drawing's strokes, points per stroke and mean move length, starting where each of
    its strokes starts."""
    moves = [m for m in _moves(ink) if len(m)]
    scale = float(np.mean(np.concatenate([np.hypot(m[:, 0], m[:, 1]) for m in moves]))) if moves else 1.0
    strokes = []
    for stroke in ink.strokes:
        steps = rng.normal(0.0, scale / np.sqrt(2), size=(len(stroke) - 1, 2))
        strokes.append(np.concatenate([stroke[:1], stroke[:1] + np.cumsum(steps, axis=0)]))
    return Ink(strokes, label=ink.label)


def controls(items: list[Ink], seed: int = 0) -> dict[str, list[Ink]]:
    rng = np.random.default_rng(seed)
    return {"shuffled moves": [shuffled_moves(i, rng) for i in items],
            "random walk": [random_walk(i, rng) for i in items]}
