"""A small judge for "did the model do as asked": multinomial logistic regression on standardised feature
vectors, fitted on real training samples' labels (a drawing's class, a tune's metre) and checked on held-out
real ones, then applied to generated samples (``evaluate --samples``'s adherence figures). The sample judge
(``seqstudio.judge``) fits the same model to tell generated excerpts from real ones.

Domains supply the features and how the weights start; the fit is shared: standardisation, Adam with weight
decay (a few hundred real samples must not be memorised) and the prediction.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn


class FeatureClassifier:
    """``vectors`` ``[N, F]`` with one label each; ``predict_vector`` gives one of the training labels.
    ``init(net)`` may set the starting weights (default: PyTorch's, from the global generator)."""

    def __init__(self, vectors: np.ndarray, labels: list[str], steps: int = 500,
                 init: Callable[[nn.Linear], None] | None = None):
        self.labels = sorted(set(labels))
        index = {label: i for i, label in enumerate(self.labels)}
        x = torch.tensor(np.asarray(vectors, dtype=np.float32))
        self.mean, self.std = x.mean(0), x.std(0).clamp(min=1e-3)
        x = (x - self.mean) / self.std
        y = torch.tensor([index[label] for label in labels])
        self.net = nn.Linear(x.shape[1], len(self.labels))
        if init is not None:
            with torch.no_grad():
                init(self.net)
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-2, weight_decay=1e-2)
        for _ in range(steps):
            loss = nn.functional.cross_entropy(self.net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.net.eval()

    @torch.no_grad()
    def predict_vector(self, vector: np.ndarray) -> str:
        x = (torch.tensor(vector).reshape(1, -1) - self.mean) / self.std
        return self.labels[int(self.net(x).argmax())]

    @torch.no_grad()
    def predict(self, vectors: np.ndarray) -> list[str]:
        """One label per row of ``vectors`` ``[N, F]`` (one forward pass: the sample judge predicts whole folds)."""
        x = (torch.tensor(np.asarray(vectors, dtype=np.float32)).reshape(len(vectors), -1) - self.mean) / self.std
        return [self.labels[i] for i in self.net(x).argmax(1).tolist()]
