"""A small drawing classifier: the judge of whether a class-conditional model listened.

The "classification accuracy score" of generated drawings: a classifier trained on the real training drawings
labels each generated one, and the share labelled as asked is compared with the classifier's own accuracy on
held-out real drawings (the ceiling) and with samples the model drew without being told the class (chance).
Drawings are rasterised to a 28 x 28 picture (scaled to fit, aspect kept), pooled, joined with a few shape
statistics and classified by a logistic regression: small, fast and seeded, so the judge is the same for every
run on the same data.
"""

from __future__ import annotations

import numpy as np
import torch

from seqstudio.feature_classifier import FeatureClassifier

from .ink import Ink

SIZE = 28


def rasterise(ink: Ink, size: int = SIZE) -> np.ndarray:
    """``size`` x ``size`` float picture of the drawing's strokes (1 = ink), scaled into the box."""
    img = np.zeros((size, size), dtype=np.float32)
    if not ink.strokes:
        return img
    x0, y0, x1, y1 = ink.bounds()
    scale = (size - 3) / max(x1 - x0, y1 - y0, 1e-6)
    for stroke in ink.strokes:
        pts = (np.asarray(stroke, dtype=np.float64) - (x0, y0)) * scale + 1
        if len(pts) == 1:
            pts = np.repeat(pts, 2, axis=0)
        for a, b in zip(pts[:-1], pts[1:]):
            steps = int(np.ceil(np.abs(b - a).max() * 2)) + 1
            for t in np.linspace(0.0, 1.0, steps):
                px, py = a + t * (b - a)
                img[min(int(py), size - 1), min(int(px), size - 1)] = 1.0
    return img


def features(ink: Ink) -> np.ndarray:
    """What the classifier sees: the 28 x 28 picture pooled to 14 x 14 (coarse shape, robust to a shifted
    stroke), plus the stroke count, the number of points and the ink length over the drawing's diagonal."""
    img = rasterise(ink).reshape(SIZE // 2, 2, SIZE // 2, 2).mean((1, 3))
    x0, y0, x1, y1 = ink.bounds()
    diagonal = max(float(np.hypot(x1 - x0, y1 - y0)), 1e-6)
    length = sum(float(np.hypot(*np.diff(s, axis=0).T).sum()) for s in ink.strokes if len(s) > 1)
    summary = [len(ink.strokes), np.log1p(ink.num_points), length / diagonal]
    return np.concatenate([img.ravel(), np.asarray(summary, dtype=np.float32)]).astype(np.float32)


class DrawingClassifier:
    """Fit on ``(ink, label)`` pairs; ``predict`` gives a label (one of the training labels). A logistic
    regression on standardised ``features``, weight-decayed: few real drawings per class must not be memorised."""

    def __init__(self, pairs: list[tuple[Ink, str]], steps: int = 500, seed: int = 0):
        vectors = np.stack([features(ink) for ink, _ in pairs])
        torch.manual_seed(seed)
        self.model = FeatureClassifier(vectors, [label for _, label in pairs], steps)
        self.labels = self.model.labels

    def predict(self, ink: Ink) -> str:
        return self.model.predict_vector(features(ink))
