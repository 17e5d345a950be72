"""The quantised note grid shared by both MIDI codecs.

Both codecs first reduce a ``PrettyMIDI`` (or the fast reader's ``NoteScore``) to the notes on a grid of
``steps_per_quarter`` steps per quarter note (:class:`NoteArrays`; :class:`GridNote` objects for decoding), and
build their output from them. Quantising by MIDI *ticks* (not seconds) makes
the grid follow the score, so tempo changes in a file do not smear notes across steps. Doing it in one place
guarantees that a piano roll and an event sequence of the same file describe the same notes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import pretty_midi

from seqstudio.domain import CodecConfig
from seqstudio.errors import ConfigError, DataError


DEFAULT_TEMPO = 120.0  # bpm of output with no tempo to keep (MIDI's default)
MAX_TEMPO = 1000.0  # bpm: beyond is no music, and a run directory from elsewhere can say anything


@dataclasses.dataclass
class GridConfig(CodecConfig):
    """Options common to every grid-based MIDI codec.

    ``pitch_low``/``pitch_high`` are inclusive MIDI pitches (default: the 88 piano keys); ``merge_tracks``
    False keeps only the first non-drum instrument that has notes. ``tempo`` (bpm) and ``program`` (General
    MIDI, 0-127) are used only when decoding, since the grid is in beats and holds one part: 0 and -1 (the
    defaults) mean "as the input" (``DecodingDefaults``: a known piece's own, a generated one the training
    pieces' median tempo and most common program); a value fixes every output's. ``transpose`` (training
    only): each window is shifted by a random number of semitones in ``[-transpose, transpose]`` that keeps
    every note inside the pitch range (0 = off).
    """

    steps_per_quarter: int = 4
    pitch_low: int = 21
    pitch_high: int = 108
    merge_tracks: bool = True
    tempo: float = 0.0
    program: int = -1
    transpose: int = 0

    def __post_init__(self) -> None:
        if self.steps_per_quarter < 1:
            raise ConfigError(f"steps_per_quarter must be >= 1, got {self.steps_per_quarter}")
        if not 0 <= self.pitch_low <= self.pitch_high <= 127:
            raise ConfigError(f"need 0 <= pitch_low <= pitch_high <= 127, got {self.pitch_low}..{self.pitch_high}")
        if not 0 <= self.tempo <= MAX_TEMPO:
            raise ConfigError(f"tempo must be a bpm in (0, {MAX_TEMPO:g}], or 0 for the input's, got {self.tempo}")
        if not -1 <= self.program <= 127:
            raise ConfigError(f"program must be a General MIDI program 0..127, or -1 for the input's, "
                              f"got {self.program}")
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


class NoteArrays(NamedTuple):
    """Grid notes as four int64 arrays of one length, sorted by (start, pitch): what the codecs encode from
    (a ``GridNote`` object per note cost a quarter of a file's quantising)."""

    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    velocity: np.ndarray

    def notes(self) -> list[GridNote]:
        return list(map(GridNote._make, zip(*(column.tolist() for column in self))))


def quantise(pm: pretty_midi.PrettyMIDI, config: GridConfig) -> list[GridNote]:
    """Pitched notes of ``pm`` inside the pitch range, on the grid, sorted by (start, pitch) (``quantise_arrays``
    as ``GridNote`` objects)."""
    return quantise_arrays(pm, config).notes()


def quantise_arrays(pm: pretty_midi.PrettyMIDI, config: GridConfig) -> NoteArrays:
    """Pitched notes of ``pm`` inside the pitch range, on the grid, sorted by (start, pitch).

    Drums are skipped (their pitch numbers name instruments, not notes). Raises ``DataError`` if no note is
    left, because an empty sequence is useless for training and the loader should skip the file.
    """
    from .fastread import NoteScore

    if isinstance(pm, NoteScore):
        if not config.merge_tracks:  # "the first instrument" is pretty_midi's order
            return quantise_arrays(pm.pretty_midi, config)
        return _quantise_ticks(pm, config)
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
                notes.append((note.pitch, start, end, note.velocity))
    if not notes:
        raise DataError(f"no notes in pitch range {config.pitch_low}..{config.pitch_high}")
    return _one_voice_per_pitch_arrays(*np.array(notes, dtype=np.int64).T)


def _quantise_ticks(score, config: GridConfig) -> NoteArrays:
    """``quantise_arrays`` for a ``fastread.NoteScore``: the same arithmetic on tick arrays (pretty_midi's
    ``time_to_tick(tick_to_time(t))`` is ``t``), so both readers give the same notes."""
    scale = config.steps_per_quarter / score.resolution
    columns = [[], [], [], []]
    for is_drum, start, end, pitch, velocity in score.instruments:
        if is_drum:
            continue
        keep = (pitch >= config.pitch_low) & (pitch <= config.pitch_high)
        s = np.floor(start[keep] * scale + 0.5).astype(np.int64)
        for column, values in zip(columns, (pitch[keep], s, np.maximum(np.floor(end[keep] * scale + 0.5)
                                                                           .astype(np.int64), s + 1),
                                            velocity[keep])):
            column.append(values)
    if not columns[0] or not sum(len(p) for p in columns[0]):
        raise DataError(f"no notes in pitch range {config.pitch_low}..{config.pitch_high}")
    if len(columns[0]) == 1:
        return _one_voice_per_pitch_arrays(*(column[0] for column in columns))
    return _one_voice_per_pitch_arrays(*(np.concatenate(column) for column in columns))


def _one_voice_per_pitch_arrays(pitch, start, end, velocity) -> NoteArrays:
    """Resolve same-pitch overlaps (unisons between merged tracks) the way a piano roll sees them, vectorised.

    A pitch sounds over the union of its notes, and every onset starts a new note: per pitch, every distinct
    onset starts a note (the loudest of the notes starting there) that lasts until the next onset of that pitch
    or until the notes sounding so far have all ended, whichever comes first. Both codecs can represent the
    result exactly, so round trips are lossless on it (``tests/test_midi_grid.py`` compares it with a note-by-note
    reference).
    """
    order = np.lexsort((start, pitch))
    p, s, e, v = pitch[order], start[order], end[order], velocity[order]
    new_pitch = p[1:] != p[:-1]
    first = np.flatnonzero(np.r_[True, new_pitch | (s[1:] != s[:-1])])  # one group per (pitch, onset)
    if len(first) == len(p):  # no two notes share a pitch and onset (the usual case)
        gp, gs, ge, gv = p, s, e, v
        pitch_starts = new_pitch
    else:
        gp, gs = p[first], s[first]
        ge, gv = np.maximum.reduceat(e, first), np.maximum.reduceat(v, first)
        pitch_starts = gp[1:] != gp[:-1]
    # The latest end so far within each pitch: a running maximum, kept apart per pitch by an offset.
    big = int(ge.max()) + 1
    rank = np.r_[0, np.cumsum(pitch_starts)]
    running = np.maximum.accumulate(ge + rank * big) - rank * big
    nxt = np.r_[gs[1:], np.iinfo(np.int64).max]
    nxt[np.flatnonzero(pitch_starts)] = np.iinfo(np.int64).max
    gend = np.minimum(nxt, running)
    out = np.lexsort((gp, gs))
    return NoteArrays(gp[out], gs[out], gend[out], gv[out])


def to_pretty_midi(notes: list[GridNote], config: GridConfig, tempo: float = DEFAULT_TEMPO,
                   program: int = 0) -> pretty_midi.PrettyMIDI:
    """Grid notes -> a one-part ``PrettyMIDI`` at ``tempo`` bpm, played by General MIDI ``program``."""
    seconds_per_step = 60.0 / (tempo * config.steps_per_quarter)
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    part = pretty_midi.Instrument(program=program, name=pretty_midi.program_to_instrument_name(program))
    part.notes = [
        pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start * seconds_per_step,
                         end=n.end * seconds_per_step)
        for n in sorted(notes, key=lambda n: (n.start, n.pitch))
    ]
    pm.instruments.append(part)
    return pm


class ArrayEncoding:
    """Mixed into the MIDI codecs: ``encode_array`` builds numpy, and their modules import torch only inside
    the methods that need it, so encoding workers never import torch (``seqstudio.encoding``)."""

    def encode_array(self, sample) -> np.ndarray:
        raise NotImplementedError

    def encode(self, sample):
        import torch

        return torch.from_numpy(self.encode_array(sample))


class Transposing:
    """Mixed into the MIDI codecs: ``codec.transpose`` shifts each training window by ``k`` semitones
    (``augment_with_change`` gives ``k``), so a key label can move with the notes (``MidiDomain.moved_attribute``)."""

    config: GridConfig

    def augment_with_change(self, x, generator):
        raise NotImplementedError

    def augment(self, x, generator):
        return self.augment_with_change(x, generator)[0]

    def augmentation_changes(self) -> tuple:
        return tuple(range(-self.config.transpose, self.config.transpose + 1)) if self.config.transpose > 0 else ()


class DecodingDefaults:
    """The tempo and instrument a grid codec writes (mixed into both MIDI codecs; ``provenance`` says what is
    recorded of a piece). In order: ``codec.tempo`` / ``codec.program`` when set (> 0 / >= 0); else, for a known
    piece (``decode_piece``: a round trip, a ``--prime`` file's continuation), its own ``_tempo`` /
    ``_program``; else what ``fit_decoding`` learned from the training pieces (``decode``: generated samples):
    the median tempo (the lower middle one of an even count, so a tempo some piece has) and the most common
    dominant program; else 120 bpm and piano (a run trained before tempos were recorded)."""

    decoding_fields = ("tempo", "program")
    config: GridConfig

    def _notes(self, x) -> list[GridNote]:
        raise NotImplementedError

    def decode(self, x) -> pretty_midi.PrettyMIDI:
        return to_pretty_midi(self._notes(x), self.config, *self.output_settings(None))

    def decode_piece(self, x, provenance: dict[str, str]) -> pretty_midi.PrettyMIDI:
        return to_pretty_midi(self._notes(x), self.config, *self.output_settings(provenance))

    def output_settings(self, provenance: dict | None) -> tuple[float, int]:
        """``(tempo, program)`` of a decoded piece with this provenance (None: a generated piece)."""
        learned = getattr(self, "_decoding", {}) or {}
        own = _parsed(provenance or {})
        tempo = self.config.tempo or own.get("tempo") or learned.get("tempo") or DEFAULT_TEMPO
        program = self.config.program if self.config.program >= 0 else own.get("program", learned.get("program", 0))
        return float(tempo), int(program)

    def fit_decoding(self, provenance: list[dict]) -> None:
        from collections import Counter

        memo: dict[tuple, dict] = {}  # pieces share a few tempos and programs: each pair is parsed once
        pieces = []
        for p in provenance:
            p = p or {}
            key = (p.get("_tempo"), p.get("_program"))
            try:
                parsed = memo.get(key)
                if parsed is None:
                    parsed = memo[key] = _parsed(p)
            except TypeError:  # not hashable: not a value of ours, parsed (and refused) alone
                parsed = _parsed(p)
            pieces.append(parsed)
        tempos = sorted(p["tempo"] for p in pieces if "tempo" in p)
        programs = Counter(p["program"] for p in pieces if "program" in p)
        self._decoding = {}
        if tempos:
            self._decoding["tempo"] = tempos[(len(tempos) - 1) // 2]  # statistics.median_low, without its import
        if programs:
            self._decoding["program"] = min(programs, key=lambda k: (-programs[k], k))

    def decoding_state(self) -> dict:
        return dict(getattr(self, "_decoding", {}) or {})

    def load_decoding_state(self, state: dict) -> None:
        """A state from a run directory, checked (``ConfigError`` for a tempo or program that is none)."""
        parsed = _parsed({f"_{k}": v for k, v in dict(state).items()})
        if len(parsed) != len(state):
            raise ConfigError(f"not a decoding state of a MIDI codec: {state!r}")
        self._decoding = parsed


def _parsed(provenance: dict) -> dict:
    """``{"tempo": float, "program": int}`` from provenance strings (``_tempo``, ``_program``); a value out of
    range or not a number is left out (the next default applies)."""
    out = {}
    try:
        tempo = float(provenance["_tempo"])
        if 0 < tempo <= MAX_TEMPO:
            out["tempo"] = tempo
    except (KeyError, TypeError, ValueError):
        pass
    try:
        program = int(provenance["_program"])
        if 0 <= program <= 127:
            out["program"] = program
    except (KeyError, TypeError, ValueError):
        pass
    return out
