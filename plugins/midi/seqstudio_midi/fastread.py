"""Fast MIDI reading for encoding: symusic (a C++ MIDI parser) instead of mido + pretty_midi.

pretty_midi parses MIDI through mido in pure Python and then builds a ``Note`` object per note; for encoding we
only need each instrument's note arrays in ticks (the grid is in ticks, ``grid.quantise``). symusic gives
exactly that, 10-100x faster. ``MidiDomain.read`` still returns ``PrettyMIDI`` (the plugin's API promises it;
writing, drawing and metrics use it); only the loader's ``read_for_encoding`` takes this path.

The encodings are identical to pretty_midi's (a test compares them), because a file takes this path only when
the two readers agree by construction:

* pretty_midi closes *every* open note of a pitch at its note-off, and drops a note whose note-off falls on its
  own onset tick; symusic pairs note-offs first-in first-out and keeps such notes. So a file with two
  overlapping notes of one pitch on one channel, or a zero-length note, is read by pretty_midi instead;
* files near the size limits (``score_limits``: at least half of ``MAX_QUARTERS`` long, or past half of
  pretty_midi's tick limit, which makes ``checked_mido`` rescale ticks), files symusic refuses, and SMPTE-timed
  files are read by pretty_midi, with its checks;
* ``merge_tracks: false`` keeps pretty_midi's first instrument, whose order symusic does not reproduce: the codec
  asks for ``NoteScore.pretty_midi`` then.

The bounded read (``MAX_MIDI_BYTES``), the time limit and the note limit (``MAX_MIDI_NOTES``) apply as on the
pretty_midi path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqstudio import safe_io, score_limits
from seqstudio.errors import DataError


class NoteScore:
    """The notes of a MIDI file as the codecs need them: ``instruments`` is a list of ``(is_drum, start, end,
    pitch, velocity)`` with int64 tick arrays; ``resolution`` ticks per quarter note. ``pretty_midi`` builds
    the full ``PrettyMIDI`` from the same bytes when a codec needs it."""

    def __init__(self, data: bytes, path: Path, resolution: int, instruments: list, key_numbers=(), meters=()):
        self._data, self._path = data, path
        self.resolution, self.instruments = resolution, instruments
        # meta events, first first, as pretty_midi numbers them (``attributes``): key_number 0-11 major tonic
        # pitch class, 12-23 minor; meters (numerator, denominator)
        self.key_numbers, self.meters = list(key_numbers), list(meters)
        self._pm = None

    @property
    def pretty_midi(self):
        if self._pm is None:
            from .domain import _pretty_midi

            self._pm = _pretty_midi(self._data, self._path)
        return self._pm


def read_notes(data: bytes, path: Path) -> NoteScore | None:
    """``NoteScore`` of MIDI ``data``, or None when pretty_midi must read it (see the module docstring).
    Raises ``DataError`` for too many notes, or no pitched notes."""
    import symusic

    try:
        score = symusic.Score.from_midi(data)
    except Exception:  # pretty_midi's path names the problem
        return None
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        return None
    end = int(score.end())
    if end >= score_limits.MIDI_MAX_TICK // 2 or end / tpq >= score_limits.MAX_QUARTERS / 2:
        return None
    instruments, total = [], 0
    for track in score.tracks:
        arrays = track.notes.numpy()
        start = arrays["time"].astype(np.int64)
        if not len(start):
            continue
        duration = arrays["duration"].astype(np.int64)
        pitch = arrays["pitch"].astype(np.int64)
        if (duration <= 0).any() or _same_pitch_overlap(start, start + duration, pitch):
            return None
        total += len(start)
        instruments.append((bool(track.is_drum), start, start + duration, pitch,
                            arrays["velocity"].astype(np.int64)))
    if total > score_limits.MAX_MIDI_NOTES:
        raise DataError(f"{path}: holds more than {score_limits.MAX_MIDI_NOTES:,} notes")
    if not any(not drum for drum, *_ in instruments):
        raise DataError(f"{path}: no pitched notes")
    keys = sorted(((int(k.time), i, (int(k.key) * 7 + (9 if int(k.tonality) else 0)) % 12 + 12 * bool(int(k.tonality)))
                   for i, k in enumerate(score.key_signatures)))
    meters = sorted((int(t.time), i, (int(t.numerator), int(t.denominator)))
                    for i, t in enumerate(score.time_signatures))
    return NoteScore(data, path, tpq, instruments, [k for *_, k in keys], [m for *_, m in meters])


def _same_pitch_overlap(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> bool:
    """Whether a note starts before the previous note of its pitch (in this track and channel) has ended."""
    order = np.lexsort((start, pitch))
    s, e, p = start[order], end[order], pitch[order]
    same = p[1:] == p[:-1]
    return bool((same & (s[1:] < e[:-1])).any())


def read_for_encoding(domain, path: Path):
    """What ``MidiDomain.read_for_encoding`` returns: a ``NoteScore`` for a MIDI file symusic reads as
    pretty_midi would, else ``domain.read(path)`` (a ``PrettyMIDI``; notation files always)."""
    path = Path(path)
    if path.suffix.lower() not in (".mid", ".midi"):
        return domain.read(path)
    try:
        if safe_io.check_regular_file(path).st_size == 0:
            raise DataError(f"{path}: empty file")
        data = safe_io.read_bytes_limited(path, score_limits.MAX_MIDI_BYTES, "MIDI file")
    except DataError:
        raise
    except Exception:
        return domain.read(path)
    with safe_io.time_limit(safe_io.read_timeout(120.0), str(path)):
        notes = read_notes(data, path)
    return notes if notes is not None else domain.read(path)
