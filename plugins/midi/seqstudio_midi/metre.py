"""A metre judge: which time signature a piece of music is in, from its notes alone.

A conditional model asked for ``meter=6/8`` writes notes, not a time signature (a generated MIDI file's time
signature is the codec's default, never the model's choice), so whether it listened has to be heard in the
rhythm: where the long notes and the onsets fall, and at which periods the rhythm repeats. ``MetreClassifier``
is fitted on the real training pieces with their known metre (the files' time-signature meta events) and
judges each generated piece; ``seqstudio evaluate --samples`` reports its agreement with the real held-out
pieces' metres beside it (the ceiling), as the strokes domain's drawing classifier does.

What it sees (``features``), on a sixteenth-note grid, all of it independent of where the window starts
(training windows and generated pieces start at any beat of a bar):

* the autocorrelation of the onset train and of the duration-weighted onset train at lags of 1..48 sixteenths
  (a 3/4 tune repeats every 12, a 4/4 tune every 16 and 8, a 6/8 tune every 6 and 12);
* for each candidate bar length (6, 8, 12, 16, 24, 32 sixteenths: 3/8, 2/4, 3/4 or 6/8, 4/4, 6/4 or 3/2,
  4/2), the duration-weighted onsets folded onto the bar's positions, rotated so that the strongest position
  comes first: the accent pattern within a bar (3/4 puts its weight on three quarter positions, 6/8 on two
  dotted quarters);
* the shares of note durations and inter-onset intervals of 1, 2, 3, 4, 6, 8, 12 and 16+ sixteenths (dotted
  values are the mark of a compound metre).

The classifier is a weight-decayed logistic regression on the standardised features (torch, seeded): small,
fast, and the same judge for every run on the same data. Metres that differ only in how bars are grouped
(2/4 and 4/4, 3/8 and 6/8) are often not told apart from notes, by this judge or by a listener: the held-out
accuracy says how far it gets.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from seqstudio.feature_classifier import FeatureClassifier

from .attributes import notes_in_quarters

GRID = 4  # grid steps per quarter note: sixteenths
MAX_LAG = 48
BAR_LENGTHS = (6, 8, 12, 16, 24, 32)
VALUE_BINS = (1, 2, 3, 4, 6, 8, 12, 16)
MAX_STEPS = 4096  # a long piece is judged on its first 256 quarter notes
N_FEATURES = 2 * MAX_LAG + sum(BAR_LENGTHS) + 2 * len(VALUE_BINS)


def _value_shares(values: np.ndarray) -> np.ndarray:
    """Shares of ``values`` (sixteenths) nearest to each of ``VALUE_BINS`` (16 and longer together)."""
    if values.size == 0:
        return np.zeros(len(VALUE_BINS))
    bins = np.asarray(VALUE_BINS)
    nearest = np.abs(np.minimum(values, 16)[:, None] - bins[None, :]).argmin(1)
    return np.bincount(nearest, minlength=len(bins)) / values.size


def _autocorrelation(train: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of a centred series at lags 1..MAX_LAG (0 where the series is too short)."""
    x = train - train.mean()
    energy = float((x * x).sum())
    out = np.zeros(MAX_LAG)
    if energy <= 0:
        return out
    for lag in range(1, min(MAX_LAG, len(x) - 1) + 1):
        out[lag - 1] = float((x[:-lag] * x[lag:]).sum()) / energy
    return out


def _folded(train: np.ndarray, length: int) -> np.ndarray:
    """``train`` summed onto the ``length`` positions of a bar, as shares, the strongest position first."""
    padded = np.zeros(-(-len(train) // length) * length)
    padded[: len(train)] = train
    profile = padded.reshape(-1, length).sum(0)
    total = profile.sum()
    if total <= 0:
        return np.zeros(length)
    return np.roll(profile / total, -int(profile.argmax()))


def features(sample) -> np.ndarray:
    """What the classifier sees of a ``PrettyMIDI`` or a ``fastread.NoteScore`` (see the module docstring):
    ``N_FEATURES`` numbers, all zero for a piece without notes."""
    notes = notes_in_quarters(sample)
    if not notes:
        return np.zeros(N_FEATURES, dtype=np.float32)
    starts = np.array([s for _, s, _ in notes])
    durations = np.maximum(np.round(np.array([d for _, _, d in notes]) * GRID), 1)
    steps = np.round((starts - starts.min()) * GRID).astype(int)
    keep = steps < MAX_STEPS
    steps, durations = steps[keep], durations[keep]
    length = int(steps.max()) + 1
    onsets = np.bincount(steps, minlength=length).astype(float)
    weighted = np.bincount(steps, weights=np.minimum(durations, 16), minlength=length)
    onset_steps = np.flatnonzero(onsets)
    intervals = np.diff(onset_steps).astype(float)
    parts = [_autocorrelation(np.minimum(onsets, 1)), _autocorrelation(weighted)]
    parts += [_folded(weighted, bar) for bar in BAR_LENGTHS]
    parts += [_value_shares(durations), _value_shares(intervals)]
    return np.concatenate(parts).astype(np.float32)


class MetreClassifier:
    """Fit on ``(sample, meter)`` pairs (``meter`` a string such as ``3/4``); ``predict`` gives one of the
    training metres. A logistic regression on standardised ``features``, weight-decayed so that a few hundred
    real pieces are not memorised."""

    def __init__(self, pairs: list[tuple[object, str]], steps: int = 500, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)

        def init(net: nn.Linear) -> None:  # small seeded weights: the same judge for the same training windows
            net.weight.normal_(0.0, 0.01, generator=gen)
            net.bias.zero_()

        self.model = FeatureClassifier(np.stack([features(sample) for sample, _ in pairs]),
                                       [label for _, label in pairs], steps, init)
        self.labels = self.model.labels

    @torch.no_grad()
    def predict(self, sample) -> str | None:
        """The metre of one piece; None for a piece without notes (nothing to judge)."""
        f = features(sample)
        if not f.any():
            return None
        return self.model.predict_vector(f)
