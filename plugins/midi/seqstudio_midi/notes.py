"""Note codec: one token per note's pitch, one for its length, and time shifts between onsets (TSD-style).

A chord is its notes in a row with no shift between them, low to high; a note's length is a token of its own, so
a held note costs nothing per step (a piano roll pays a step of 88 keys for it) and a model says how long a note
lasts when it starts it, as a singer does. The vocabulary is laid out as consecutive blocks::

    [PITCH x n | DURATION 1..max_duration | SHIFT 1..max_shift]

so a transposition is an offset inside the first block. Per onset time the tokens are: the shifts from the last
onset, then ``PITCH, DURATION`` for each note starting there, by pitch.

This is MidiTok's TSD ("time shift duration", Fradet et al. 2021) on seqstudio's own grid (``grid.py``): the same
quantised notes as the piano roll and the event codec, so every MIDI codec describes a file alike and decodes with
the same tempo and instrument defaults. (MidiTok itself installs here and reads with symusic, but it re-quantises
on its own ``beat_res`` grid, tokenises each track apart unless asked not to, keeps a string vocabulary whose
saved parameters would have to be checked before a run directory from elsewhere may load them, and would add
``miditok`` and ``huggingface-hub`` to the plugin's dependencies for what is ~150 lines here.)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pretty_midi

from seqstudio.domain import Codec
from seqstudio.errors import ConfigError

from .grid import ArrayEncoding, DecodingDefaults, GridConfig, GridNote, Transposing, quantise_arrays
from .tokens import Block, TokenBlocks

if TYPE_CHECKING:  # torch is imported inside the methods that need it (encoding workers never do)
    import torch

DECODE_VELOCITY = 80
"""The codec keeps no dynamics (chorales and folk tunes have none to keep), so decoded notes get this velocity."""


class NoteCodec(TokenBlocks, ArrayEncoding, Transposing, DecodingDefaults, Codec):
    """Pitch, duration and time-shift tokens (``TokenBlocks``: the layout and the transposition)."""

    name = "notes"
    augmentation_fields = ("transpose",)

    @dataclasses.dataclass
    class Config(GridConfig):
        """Note-token options; ``window``/``hop`` count tokens, not grid steps.

        ``max_duration``: the longest note length in steps (default four 4/4 bars at 4 steps per quarter); a
        longer note is stored at that length. ``max_shift``: the longest single TIME_SHIFT in steps (default one
        bar); longer gaps use several shifts.
        """

        window: int = 256
        hop: int = 128
        max_duration: int = 64
        max_shift: int = 16

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.max_duration < 1:
                raise ConfigError(f"max_duration must be >= 1, got {self.max_duration}")
            if self.max_shift < 1:
                raise ConfigError(f"max_shift must be >= 1, got {self.max_shift}")

    config: Config

    # -- vocabulary layout ------------------------------------------------------------------------------------
    def blocks(self) -> tuple[Block, ...]:
        return (self.pitch_block("P"), Block("D", tuple(range(1, self.config.max_duration + 1))),
                Block("SHIFT", tuple(range(1, self.config.max_shift + 1))))

    # -- conversion -------------------------------------------------------------------------------------------
    def encode_array(self, sample: pretty_midi.PrettyMIDI) -> np.ndarray:
        """Per onset: the shifts since the last one, then ``PITCH, DURATION`` per note by pitch (canonical)."""
        notes = quantise_arrays(sample, self.config)  # sorted by (start, pitch)
        low, longest, duration_base = self.config.pitch_low, self.config.max_duration, self.base("D")
        tokens: list[int] = []
        now = 0
        for pitch, start, end in zip(notes.pitch.tolist(), notes.start.tolist(), notes.end.tolist()):
            if start > now:
                tokens.extend(self.shifts(start - now))
                now = start
            tokens.append(pitch - low)
            tokens.append(duration_base + min(end - start, longest) - 1)
        return np.asarray(tokens, dtype=np.float32).reshape(-1, 1)

    def _notes(self, x: torch.Tensor) -> list[GridNote]:
        """Tokens -> notes (``decode`` writes them, ``DecodingDefaults``), accepting any sequence a model may
        produce.

        A pitch takes the length of the DURATION token right after it; a pitch with none after it (the end, or
        another pitch or a shift next) lasts one step; a DURATION not after a pitch and out-of-vocabulary indices
        are ignored. A pitch struck again while it sounds ends the earlier note there (one voice per pitch, as
        the grid has it).
        """
        n, low = self.config.n_pitches, self.config.pitch_low
        duration_base, shift_base, size = self.base("D"), self.base("SHIFT"), self.vocab_size
        tokens = x.detach().cpu().reshape(-1).float().round().long().tolist()
        raw: list[tuple[int, int, int]] = []  # (pitch, start, end)
        now = 0
        for i, token in enumerate(tokens):
            if 0 <= token < n:
                following = tokens[i + 1] if i + 1 < len(tokens) else -1
                is_duration = duration_base <= following < shift_base
                length = following - duration_base + 1 if is_duration else 1
                raw.append((token + low, now, now + length))
            elif shift_base <= token < size:
                now += token - shift_base + 1
        raw.sort(key=lambda note: (note[0], note[1]))
        notes = []
        for k, (pitch, start, end) in enumerate(raw):
            if k + 1 < len(raw) and raw[k + 1][0] == pitch:
                if raw[k + 1][1] == start:
                    continue  # the same pitch struck twice at once: the later token's note stands
                end = min(end, raw[k + 1][1])
            notes.append(GridNote(pitch, start, end, DECODE_VELOCITY))
        return notes
