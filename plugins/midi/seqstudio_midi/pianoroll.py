"""Piano-roll codec: one row of key bits per grid step, optionally with a second row of onset bits.

A plain piano roll cannot tell a held note from the same note struck again; the onset part fixes that, so a
repeated note survives encode -> decode. This is the representation of MusicVAE-style multi-bar models.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pretty_midi

from seqstudio.domain import Codec
from seqstudio.errors import ConfigError
from seqstudio.spec import Binary, FeatureSpec

from .grid import ArrayEncoding, DecodingDefaults, GridConfig, GridNote, Transposing, quantise_arrays

if TYPE_CHECKING:  # torch is imported inside the methods that need it (encoding workers never do)
    import torch

DECODE_VELOCITY = 80
"""A piano roll stores no dynamics, so decoded notes all get this (mezzo-forte) velocity."""


class PianoRollCodec(ArrayEncoding, Transposing, DecodingDefaults, Codec):
    """``[T, n]`` key bits, or ``[T, 2n]`` key bits then onset bits, with ``n = pitch_high - pitch_low + 1``."""

    name = "pianoroll"
    windowing_fields = Codec.windowing_fields + ("window_bars", "hop_bars")
    augmentation_fields = ("transpose",)

    @dataclasses.dataclass
    class Config(GridConfig):
        """Piano-roll options.

        ``window_bars``/``hop_bars`` (when > 0) set the training window and hop in bars and override
        ``window``/``hop``. A bar is taken to be 4 quarter notes (4/4): the grid does not track time
        signatures, so in other metres the windows are simply fixed-length excerpts, not aligned to bars.

        ``joint_onsets`` (with ``onsets``): the key and onset bits form one Binary part (keys, then onsets)
        instead of two. The stored tensor is the same; what changes is the head: a NADE head (``heads.binary=nade``)
        then draws a step's onsets given its keys, where with two parts it draws them independently (an onset
        on a silent key, or a held chord struck again at random); the factorized head is the same either way.
        """

        onsets: bool = True
        joint_onsets: bool = False
        window_bars: int = 4
        hop_bars: int = 1

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.window_bars < 0 or self.hop_bars < 0:
                raise ConfigError("window_bars and hop_bars must be >= 0")

    config: Config

    @property
    def spec(self) -> FeatureSpec:
        n = self.config.n_pitches
        if not self.config.onsets:
            return FeatureSpec([Binary(n)])
        return FeatureSpec([Binary(2 * n)] if self.config.joint_onsets else [Binary(n), Binary(n)])

    @property
    def steps_per_bar(self) -> int:
        """Grid steps in one 4/4 bar."""
        return 4 * self.config.steps_per_quarter

    @property
    def window_length(self) -> int:
        if self.config.window_bars > 0:
            return self.config.window_bars * self.steps_per_bar
        return self.config.window

    @property
    def hop_length(self) -> int:
        """Stride between training windows in steps (bar-derived when ``hop_bars`` > 0)."""
        if self.config.hop_bars > 0:
            return self.config.hop_bars * self.steps_per_bar
        return self.config.hop or self.window_length

    def encode_array(self, sample: pretty_midi.PrettyMIDI) -> np.ndarray:
        notes = quantise_arrays(sample, self.config)
        n = self.config.n_pitches
        pitch, start, end = notes.pitch - self.config.pitch_low, notes.start, notes.end
        # Key bits by a running count of note starts minus ends per key (vectorised: a file's notes at once).
        steps = int(end.max())
        change = np.zeros((steps + 1, n), dtype=np.int32)
        np.add.at(change, (start, pitch), 1)
        np.add.at(change, (end, pitch), -1)
        roll = np.zeros((steps, self.spec.storage_width), dtype=np.float32)
        roll[:, :n] = np.cumsum(change, axis=0)[:steps] > 0
        if self.config.onsets:
            roll[start, n + pitch] = 1.0
        return roll

    def _notes(self, x: torch.Tensor) -> list[GridNote]:
        """Bits -> notes (``decode`` writes them, ``DecodingDefaults``); robust to generated rolls (an onset bit
        alone still sounds for that step)."""
        n = self.config.n_pitches
        bits = x.detach().cpu().numpy() > 0.5
        onset = bits[:, n : 2 * n] if self.config.onsets else np.zeros_like(bits[:, :n])
        active = bits[:, :n] | onset
        was_active = np.vstack([np.zeros((1, n), dtype=bool), active[:-1]])
        starts = active & (onset | ~was_active)
        notes = []
        total = active.shape[0]
        for key in range(n):
            start_steps = np.flatnonzero(starts[:, key])
            silent_steps = np.flatnonzero(~active[:, key])
            for i, start in enumerate(start_steps):
                next_start = start_steps[i + 1] if i + 1 < len(start_steps) else total
                j = np.searchsorted(silent_steps, start)
                next_silence = silent_steps[j] if j < len(silent_steps) else total
                end = int(min(next_start, next_silence))
                notes.append(GridNote(key + self.config.pitch_low, int(start), end, DECODE_VELOCITY))
        return notes

    def augment_with_change(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, int]:
        """Transpose by a random number of semitones that keeps every note inside the pitch range."""
        import torch

        limit, n = self.config.transpose, self.config.n_pitches
        if limit == 0:
            return x, None
        parts = x.reshape(x.shape[0], -1, n)  # [T, key part (+ onset part), pitch]
        used = torch.nonzero(parts.amax(dim=(0, 1)) > 0.5).flatten()
        if used.numel() == 0:
            return x, 0
        low = max(-limit, -int(used.min()))
        high = min(limit, n - 1 - int(used.max()))
        k = int(torch.randint(low, high + 1, (1,), generator=generator))
        return torch.roll(parts, k, dims=-1).reshape(x.shape), k

    def windows(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Bar-aligned windows (from the start of the piece; lengths from ``window_length``/``hop_length``),
        without the all-silent ones, which teach a model nothing but silence."""
        return [piece for piece in super().windows(x) if bool((piece > 0.5).any())]
