"""stroke-5: drawings as sequences of pen offsets plus a pen state (sketch-rnn, Ha & Eck 2017).

Each step is one point: ``(dx, dy)`` from the previous point, and what the pen does *after* this point —
0 stays down (the stroke goes on), 1 lifts (the stroke ends; the next offset is a move), 2 ends the drawing.
In the storage layout that is ``[dx, dy, state]`` with FeatureSpec ``[Real(2), Categorical(3)]``; networks see
``[dx, dy, one-hot(3)]``, exactly sketch-rnn's stroke-5. Offsets are divided by one scale fitted on the training
data (their standard deviation), so the mixture head works on unit-sized numbers whatever the source units.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from seqstudio.domain import Codec, CodecConfig
from seqstudio.errors import ConfigError, DataError
from seqstudio.spec import Categorical, FeatureSpec, Real

from .formats import simplify_ink
from .ink import Ink, from_stroke3, to_stroke3

PEN_DOWN, PEN_UP, END = 0, 1, 2
OUTLIER_DRAWING = 100.0  # a drawing whose RMS offset is this many times the median drawing's is left out of the fit
OUTLIER_VALUE = 100.0  # so is an offset this many times the 90th percentile of all |offsets|


@dataclasses.dataclass
class Stroke5Config(CodecConfig):
    """``window``: the longest training sequence in points (longer drawings are cut at pen lifts), also the
    default generation length. ``simplify``: Ramer-Douglas-Peucker tolerance in the source's units (0 = keep
    every point). Augmentation (training only): offsets scaled by independent x / y factors in
    ``[1 - scale_jitter, 1 + scale_jitter]``, and each interior point of a stroke dropped with ``drop_points``."""

    window: int = 250
    simplify: float = 1.0
    scale_jitter: float = 0.15
    drop_points: float = 0.1

    def __post_init__(self):
        if self.simplify < 0:
            raise ConfigError(f"codec.simplify must be >= 0, got {self.simplify}")
        if not 0 <= self.scale_jitter < 1:
            raise ConfigError(f"codec.scale_jitter must be in [0, 1), got {self.scale_jitter}")
        if not 0 <= self.drop_points < 1:
            raise ConfigError(f"codec.drop_points must be in [0, 1), got {self.drop_points}")


class Stroke5Codec(Codec):
    name = "stroke5"
    Config = Stroke5Config
    needs_fit = True
    augmentation_fields = ("scale_jitter", "drop_points")

    def __init__(self, config: Stroke5Config | None = None):
        super().__init__(config)
        self.scale = 0.0  # fitted; 0 = not fitted yet

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec([Real(2), Categorical(3)])

    # -- learned state --------------------------------------------------------------------------------------------
    def fit(self, samples: list[Ink]) -> None:
        """The scale: the standard deviation of all offsets (dx and dy together), computed robustly.

        Computed in float64 (float32 offsets of 3e38 overflow), over finite drawings only, leaving out drawings
        whose RMS offset is ``OUTLIER_DRAWING`` times the median drawing's and single offsets ``OUTLIER_VALUE``
        times the 90th percentile of |offset|: one corrupt drawing (int16 extremes, 1e30 coordinates) no longer
        sets the scale for the whole run. Ordinary data has no such outliers, so its scale is the plain
        standard deviation, as before (KanjiVG: BENCHMARKS.md, "Reader fuzzing").
        """
        per = [to_stroke3(self._simplified(ink))[:, :2].astype(np.float64) for ink in samples if ink.num_points]
        per = [o for o in per if len(o) and np.isfinite(o).all()]
        if sum(len(o) for o in per) < 2:
            raise DataError("too few pen points in the training data to fit the stroke scale")
        rms = np.array([np.sqrt(np.mean(np.square(o))) for o in per])
        typical = float(np.median(rms))
        if typical > 0:
            per = [o for o, r in zip(per, rms) if r <= OUTLIER_DRAWING * typical]
        values = np.concatenate(per).ravel()
        fence = OUTLIER_VALUE * float(np.quantile(np.abs(values), 0.9))
        if fence > 0:
            values = values[np.abs(values) <= fence]
        scale = float(np.std(values)) if len(values) >= 2 else 0.0
        self.scale = scale if np.isfinite(scale) and scale > 0 else 1.0

    def state_dict(self) -> dict:
        return {"scale": self.scale} if self.scale else {}

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state.get("scale", 0.0))

    # -- conversion -------------------------------------------------------------------------------------------------
    def _simplified(self, ink: Ink) -> Ink:
        return simplify_ink(ink, self.config.simplify) if self.config.simplify > 0 else ink

    def encode(self, ink: Ink) -> torch.Tensor:
        if not self.scale:
            raise DataError("the stroke5 codec must be fitted on training data before encoding")
        data = to_stroke3(self._simplified(ink))
        if len(data) == 0:
            raise DataError("drawing has no points")
        x = torch.from_numpy(data.astype(np.float32))
        x[:, :2] /= self.scale
        if not torch.isfinite(x).all():
            raise DataError("drawing has offsets that are not finite numbers")
        x[-1, 2] = END
        return x

    def decode(self, x: torch.Tensor) -> Ink:
        x = x.detach().float().cpu()
        state = x[:, 2].round().clamp(PEN_DOWN, END)
        ends = torch.nonzero(state == END)
        if len(ends):
            x, state = x[: int(ends[0]) + 1], state[: int(ends[0]) + 1]
        data = np.concatenate([x[:, :2].numpy() * self.scale, (state >= PEN_UP).float().numpy()[:, None]], 1)
        return from_stroke3(data)

    def without_end(self, x: torch.Tensor) -> torch.Tensor:
        """The end-of-drawing state as a pen lift: a continuation starts a new stroke there."""
        y = x.clone()
        y[..., 2] = x[..., 2].clamp(max=PEN_UP)  # PEN_DOWN < PEN_UP < END
        return y

    def segment_ends(self, x: torch.Tensor) -> torch.Tensor:
        """A stroke ends where the pen lifts (or the drawing ends) after the point."""
        return x[..., 2] >= PEN_UP

    # -- training windows and augmentation ---------------------------------------------------------------------------
    @property
    def window_length(self) -> int:
        return self.config.window

    def windows(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The whole drawing when it fits; otherwise consecutive pieces of at most ``window`` points, cut after
        a pen lift where possible (a stroke longer than a window is cut inside), so no point is dropped."""
        window = self.config.window
        if window <= 0 or x.shape[0] <= window:
            return [x] if x.shape[0] >= self.config.min_length else []
        lifts = (torch.nonzero(x[:, 2] >= PEN_UP).flatten() + 1).tolist()
        pieces, start = [], 0
        while start < x.shape[0]:
            limit = start + window
            cuts = [c for c in lifts if start < c <= limit]
            stop = min(x.shape[0], cuts[-1] if cuts else limit)
            piece = x[start:stop]
            if piece.shape[0] >= self.config.min_length:
                pieces.append(piece)
            start = stop
        return pieces

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        c = self.config
        out = x.clone()
        if c.scale_jitter:
            factors = 1.0 + (torch.rand(2, generator=generator) * 2 - 1) * c.scale_jitter
            out[:, :2] *= factors
        if c.drop_points and out.shape[0] > 2:
            state = out[:, 2]
            interior = torch.zeros(out.shape[0], dtype=torch.bool)
            interior[1:-1] = (state[1:-1] == PEN_DOWN) & (state[:-2] == PEN_DOWN)
            drop = interior & (torch.rand(out.shape[0], generator=generator) < c.drop_points)
            if drop.any():
                # Drop in absolute positions and re-difference: the next kept point stays exactly where it was.
                positions = torch.cumsum(out[:, :2], dim=0)[~drop]
                kept = out[~drop].clone()
                kept[1:, :2] = positions[1:] - positions[:-1]
                kept[0, :2] = positions[0]
                out = kept
        return out
