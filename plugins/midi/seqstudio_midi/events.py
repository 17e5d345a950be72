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

from .grid import ArrayEncoding, DecodingDefaults, GridConfig, GridNote, Transposing, quantise_arrays
from .tokens import Block, TokenBlocks

if TYPE_CHECKING:  # torch is imported inside the methods that need it (encoding workers never do)
    import torch

DEFAULT_VELOCITY = 80
"""Velocity of notes decoded before any VELOCITY token (a generated sequence may not start with one)."""


class EventCodec(TokenBlocks, ArrayEncoding, Transposing, DecodingDefaults, Codec):
    """Note-on, note-off, time-shift and velocity tokens (``TokenBlocks``: the layout and the transposition)."""

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
    def blocks(self) -> tuple[Block, ...]:
        return (self.pitch_block("ON"), self.pitch_block("OFF"),
                Block("SHIFT", tuple(range(1, self.config.max_shift + 1))),
                Block("VEL", tuple(range(self.config.velocity_bins))))

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
        off_base, velocity_base = self.base("OFF"), self.base("VEL")
        tokens: list[int] = []
        now, current_bin = 0, None
        for step in sorted(offs.keys() | ons.keys()):
            tokens.extend(self.shifts(step - now))
            now = step
            tokens.extend(off_base + pitch - low for pitch in sorted(offs[step]))
            for pitch, velocity in sorted(ons[step]):
                velocity_bin = self.velocity_bin(velocity)
                if velocity_bin != current_bin:
                    tokens.append(velocity_base + velocity_bin)
                    current_bin = velocity_bin
                tokens.append(pitch - low)
        return np.asarray(tokens, dtype=np.float32).reshape(-1, 1)

    def _notes(self, x: torch.Tensor) -> list[GridNote]:
        """Tokens -> notes (``decode`` writes them, ``DecodingDefaults``), accepting any sequence a model may
        produce.

        Out-of-vocabulary indices and note-offs of silent pitches are ignored, a note-on of a sounding pitch
        restarts it, notes left on are closed at the end, and zero-length notes last one step.
        """
        n, low = self.config.n_pitches, self.config.pitch_low
        shift_base, velocity_base, size = self.base("SHIFT"), self.base("VEL"), self.vocab_size
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
            elif n <= token < shift_base:
                if token - n + low in sounding:
                    close(token - n + low)
            elif shift_base <= token < velocity_base:
                now += token - shift_base + 1
            elif velocity_base <= token < size:
                velocity = self.bin_velocity(token - velocity_base)
        for pitch in list(sounding):
            close(pitch)
        return notes
