"""Event codec: Performance-RNN-style tokens (note-on, note-off, time-shift, velocity) on the step grid.

Unlike the piano roll this keeps dynamics and costs tokens only where something happens, so sparse music
gives short sequences. The vocabulary is laid out as consecutive blocks::

    [NOTE_ON x n | NOTE_OFF x n | TIME_SHIFT 1..max_shift | VELOCITY x velocity_bins]

so a transposition is just an offset inside the first two blocks.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
import pretty_midi

from seqstudio.domain import Codec
from seqstudio.errors import ConfigError
from seqstudio.spec import Categorical, FeatureSpec

from .grid import ArrayEncoding, DecodingDefaults, GridConfig, GridNote, Transposing, quantise_arrays

if TYPE_CHECKING:  # torch is imported inside the methods that need it (encoding workers never do)
    import torch

DEFAULT_VELOCITY = 80
"""Velocity of notes decoded before any VELOCITY token (a generated sequence may not start with one)."""


class EventCodec(ArrayEncoding, Transposing, DecodingDefaults, Codec):
    """One categorical token per step, stored as its index in a single float column."""

    name = "events"
    augmentation_fields = ("transpose",)

    @dataclasses.dataclass
    class Config(GridConfig):
        """Event options; ``window``/``hop`` count tokens, not grid steps.

        ``max_shift`` is the longest single TIME_SHIFT in steps (default one 4/4 bar at 4 steps per quarter);
        longer gaps use several shifts. ``velocity_bins`` at most 64 so every bin keeps a distinct velocity.
        """

        window: int = 128
        hop: int = 64
        velocity_bins: int = 8
        max_shift: int = 16

        def __post_init__(self) -> None:
            super().__post_init__()
            if not 1 <= self.velocity_bins <= 64:
                raise ConfigError(f"velocity_bins must be in 1..64, got {self.velocity_bins}")
            if self.max_shift < 1:
                raise ConfigError(f"max_shift must be >= 1, got {self.max_shift}")

    config: Config

    # -- vocabulary layout ------------------------------------------------------------------------------------
    @property
    def _off_base(self) -> int:
        return self.config.n_pitches

    @property
    def _shift_base(self) -> int:
        return 2 * self.config.n_pitches

    @property
    def _velocity_base(self) -> int:
        return self._shift_base + self.config.max_shift

    @property
    def vocab_size(self) -> int:
        return self._velocity_base + self.config.velocity_bins

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec([Categorical(self.vocab_size)])

    def token_names(self) -> list[str]:
        """Readable name of every token index, e.g. ``ON60``, ``OFF60``, ``SHIFT4``, ``VEL3``."""
        pitches = range(self.config.pitch_low, self.config.pitch_high + 1)
        return (
            [f"ON{p}" for p in pitches]
            + [f"OFF{p}" for p in pitches]
            + [f"SHIFT{s}" for s in range(1, self.config.max_shift + 1)]
            + [f"VEL{b}" for b in range(self.config.velocity_bins)]
        )

    def velocity_bin(self, velocity: int) -> int:
        """MIDI velocity 0..127 -> bin 0..velocity_bins-1 (equal-width bins)."""
        return min(velocity * self.config.velocity_bins // 128, self.config.velocity_bins - 1)

    def bin_velocity(self, velocity_bin: int) -> int:
        """Bin -> the MIDI velocity at its centre."""
        return max(1, int((velocity_bin + 0.5) * 128 / self.config.velocity_bins))

    # -- conversion -------------------------------------------------------------------------------------------
    def encode_array(self, sample: pretty_midi.PrettyMIDI) -> np.ndarray:
        """Per step: note-offs, then (velocity change +) note-ons, both by pitch, so the output is canonical."""
        low = self.config.pitch_low
        offs: dict[int, list[int]] = defaultdict(list)
        ons: dict[int, list[tuple[int, int]]] = defaultdict(list)  # step -> [(pitch, velocity)]
        for pitch, start, end, velocity in zip(*(column.tolist() for column in quantise_arrays(sample, self.config))):
            ons[start].append((pitch, velocity))
            offs[end].append(pitch)
        tokens: list[int] = []
        now, current_bin = 0, None
        for step in sorted(offs.keys() | ons.keys()):
            tokens.extend(self._shifts(step - now))
            now = step
            tokens.extend(self._off_base + pitch - low for pitch in sorted(offs[step]))
            for pitch, velocity in sorted(ons[step]):
                velocity_bin = self.velocity_bin(velocity)
                if velocity_bin != current_bin:
                    tokens.append(self._velocity_base + velocity_bin)
                    current_bin = velocity_bin
                tokens.append(pitch - low)
        return np.asarray(tokens, dtype=np.float32).reshape(-1, 1)

    def _shifts(self, gap: int) -> list[int]:
        """TIME_SHIFT tokens covering ``gap`` steps, longest first."""
        full, rest = divmod(gap, self.config.max_shift)
        tokens = [self._shift_base + self.config.max_shift - 1] * full
        return tokens + [self._shift_base + rest - 1] if rest else tokens

    def _notes(self, x: torch.Tensor) -> list[GridNote]:
        """Tokens -> notes (``decode`` writes them, ``DecodingDefaults``), accepting any sequence a model may
        produce.

        Out-of-vocabulary indices and note-offs of silent pitches are ignored, a note-on of a sounding pitch
        restarts it, notes left on are closed at the end, and zero-length notes last one step.
        """
        n, low = self.config.n_pitches, self.config.pitch_low
        sounding: dict[int, tuple[int, int]] = {}  # pitch -> (start step, velocity)
        notes: list[GridNote] = []
        now, velocity = 0, DEFAULT_VELOCITY

        def close(pitch: int) -> None:
            start, note_velocity = sounding.pop(pitch)
            notes.append(GridNote(pitch, start, max(now, start + 1), note_velocity))

        for token in x.detach().cpu().reshape(-1).float().round().long().tolist():
            if 0 <= token < n:
                pitch = token + low
                if pitch in sounding:
                    close(pitch)
                sounding[pitch] = (now, velocity)
            elif n <= token < self._shift_base:
                if token - n + low in sounding:
                    close(token - n + low)
            elif self._shift_base <= token < self._velocity_base:
                now += token - self._shift_base + 1
            elif self._velocity_base <= token < self.vocab_size:
                velocity = self.bin_velocity(token - self._velocity_base)
        for pitch in list(sounding):
            close(pitch)
        return notes

    def augment_with_change(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, int]:
        """Transpose by shifting note-on/off indices, by a random amount that keeps all pitches in range."""
        import torch

        limit, n = self.config.transpose, self.config.n_pitches
        tokens = x[:, 0].float().round().long()
        is_note = (tokens >= 0) & (tokens < 2 * n)
        if limit == 0 or not bool(is_note.any()):
            return x, (0 if limit else None)
        keys = tokens[is_note] % n
        low = max(-limit, -int(keys.min()))
        high = min(limit, n - 1 - int(keys.max()))
        k = int(torch.randint(low, high + 1, (1,), generator=generator))
        out = x.clone()
        out[is_note, 0] += k
        return out, k
