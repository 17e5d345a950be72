"""The quantised note grid shared by both MIDI codecs.

Both codecs first reduce a ``PrettyMIDI`` to a list of :class:`GridNote` on a grid of ``steps_per_quarter``
steps per quarter note, and build their output from that list. Quantising by MIDI *ticks* (not seconds) makes
the grid follow the score, so tempo changes in a file do not smear notes across steps. Doing it in one place
guarantees that a piano roll and an event sequence of the same file describe the same notes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import pretty_midi

from seqstudio.domain import CodecConfig
from seqstudio.errors import ConfigError, DataError


@dataclasses.dataclass
class GridConfig(CodecConfig):
    """Options common to every grid-based MIDI codec.

    ``pitch_low``/``pitch_high`` are inclusive MIDI pitches (default: the 88 piano keys); ``merge_tracks``
    False keeps only the first non-drum instrument that has notes; ``tempo`` (BPM) is used only when decoding,
    since the grid itself is in beats. ``transpose`` (training only): each window is shifted by a random number
    of semitones in ``[-transpose, transpose]`` that keeps every note inside the pitch range (0 = off).
    """

    steps_per_quarter: int = 4
    pitch_low: int = 21
    pitch_high: int = 108
    merge_tracks: bool = True
    tempo: float = 120.0
    transpose: int = 0

    def __post_init__(self) -> None:
        if self.steps_per_quarter < 1:
            raise ConfigError(f"steps_per_quarter must be >= 1, got {self.steps_per_quarter}")
        if not 0 <= self.pitch_low <= self.pitch_high <= 127:
            raise ConfigError(f"need 0 <= pitch_low <= pitch_high <= 127, got {self.pitch_low}..{self.pitch_high}")
        if self.tempo <= 0:
            raise ConfigError(f"tempo must be positive, got {self.tempo}")
        if self.transpose < 0:
            raise ConfigError(f"transpose must be >= 0, got {self.transpose}")

    @property
    def n_pitches(self) -> int:
        return self.pitch_high - self.pitch_low + 1


class GridNote(NamedTuple):
    """A note on the grid: ``end`` is exclusive, so the duration is ``end - start`` steps (always >= 1)."""

    pitch: int
    start: int
    end: int
    velocity: int


def quantise(pm: pretty_midi.PrettyMIDI, config: GridConfig) -> list[GridNote]:
    """Pitched notes of ``pm`` inside the pitch range, on the grid, sorted by (start, pitch).

    Drums are skipped (their pitch numbers name instruments, not notes). Raises ``DataError`` if no note is
    left, because an empty sequence is useless for training and the loader should skip the file.
    """
    instruments = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
    if not config.merge_tracks:
        instruments = instruments[:1]
    scale = config.steps_per_quarter / pm.resolution
    notes = []
    for inst in instruments:
        for note in inst.notes:
            if config.pitch_low <= note.pitch <= config.pitch_high:
                start = math.floor(pm.time_to_tick(note.start) * scale + 0.5)
                end = max(math.floor(pm.time_to_tick(note.end) * scale + 0.5), start + 1)
                notes.append(GridNote(note.pitch, start, end, note.velocity))
    if not notes:
        raise DataError(f"no notes in pitch range {config.pitch_low}..{config.pitch_high}")
    return _one_voice_per_pitch(notes)


def _one_voice_per_pitch(notes: list[GridNote]) -> list[GridNote]:
    """Resolve same-pitch overlaps (unisons between merged tracks) the way a piano roll sees them.

    A pitch sounds over the union of its notes, and every onset starts a new note; notes with the same
    onset become one (longest end, loudest velocity). Both codecs can represent the result exactly, so
    round trips are lossless on it.
    """
    result: list[GridNote] = []
    last: dict[int, int] = {}  # pitch -> index in result of its latest note
    for note in sorted(notes, key=lambda n: (n.start, n.pitch, -n.end)):
        i = last.get(note.pitch)
        if i is not None and note.start < result[i].end:
            prev = result[i]
            if note.start == prev.start:
                result[i] = prev._replace(end=max(prev.end, note.end), velocity=max(prev.velocity, note.velocity))
                continue
            result[i] = prev._replace(end=note.start)
            note = note._replace(end=max(note.end, prev.end))
        last[note.pitch] = len(result)
        result.append(note)
    return sorted(result, key=lambda n: (n.start, n.pitch))


def to_pretty_midi(notes: list[GridNote], config: GridConfig) -> pretty_midi.PrettyMIDI:
    """Grid notes -> a one-piano ``PrettyMIDI`` at ``config.tempo``."""
    seconds_per_step = 60.0 / (config.tempo * config.steps_per_quarter)
    pm = pretty_midi.PrettyMIDI(initial_tempo=config.tempo)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    piano.notes = [
        pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start * seconds_per_step,
                         end=n.end * seconds_per_step)
        for n in sorted(notes, key=lambda n: (n.start, n.pitch))
    ]
    pm.instruments.append(piano)
    return pm
