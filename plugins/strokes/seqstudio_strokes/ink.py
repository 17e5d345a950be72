"""``Ink``: the one in-memory form of a drawing, whatever file it came from.

Every reader returns it and every writer takes it, so formats convert into each other through one type and the
codec has one thing to encode. Coordinates are absolute, in the source's own units, with y pointing *down*
(SVG/screen convention); readers of y-up formats flip them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Ink:
    """A drawing: an ordered list of pen-down strokes, each an ``(N, 2)`` float array of absolute x, y."""

    strokes: list[np.ndarray] = field(default_factory=list)
    label: str = ""  # transcription (IAM-OnDB), character (KanjiVG), category (QuickDraw); "" when unknown

    def __post_init__(self):
        self.strokes = [np.asarray(s, dtype=np.float32).reshape(-1, 2) for s in self.strokes if len(s)]

    @property
    def num_points(self) -> int:
        return sum(len(s) for s in self.strokes)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(min_x, min_y, max_x, max_y)``; all zero for an empty drawing."""
        if not self.strokes:
            return 0.0, 0.0, 0.0, 0.0
        points = np.concatenate(self.strokes)
        (x0, y0), (x1, y1) = points.min(0), points.max(0)
        return float(x0), float(y0), float(x1), float(y1)


def to_stroke3(ink: Ink) -> np.ndarray:
    """sketch-rnn's stroke-3: ``(N, 3)`` rows ``(dx, dy, pen_lifted)``; the first row is relative to (0, 0).

    ``pen_lifted`` = 1 on the last point of each stroke: the pen leaves the paper after that point.
    """
    rows = []
    for stroke in ink.strokes:
        lifted = np.zeros((len(stroke), 1), dtype=np.float32)
        lifted[-1] = 1.0
        rows.append(np.concatenate([stroke, lifted], axis=1))
    if not rows:
        return np.zeros((0, 3), dtype=np.float32)
    absolute = np.concatenate(rows)
    out = absolute.copy()
    out[1:, :2] = absolute[1:, :2] - absolute[:-1, :2]
    return out


def from_stroke3(data: np.ndarray, label: str = "") -> Ink:
    """Inverse of ``to_stroke3``; a missing final pen lift is tolerated (the last stroke is closed)."""
    data = np.asarray(data, dtype=np.float32).reshape(-1, 3)
    points = np.cumsum(data[:, :2], axis=0)
    ends = np.flatnonzero(data[:, 2] > 0.5) + 1
    pieces = np.split(points, ends)
    return Ink([p for p in pieces if len(p)], label=label)
