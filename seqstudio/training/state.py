"""The counters that make a resumed run continue exactly where it stopped (saved in every checkpoint)."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch index within the epoch (== batches per epoch when the epoch just ended)
    best_score: float = math.inf
    bad_validations: int = 0
    elapsed: float = 0.0  # seconds of training so far, across resumes
    stopped_because: str = ""
    lr_scale: float = 1.0  # the plateau schedule's multiplier of train.lr (schedule.py)
    plateau_wait: int = 0  # validations without a new best since the plateau schedule's last drop
