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
  asks for ``NoteScore.pretty_midi`` then;
* pretty_midi reads tempo events from the first track only, symusic from every track: a file with a tempo event
  in another track (a byte search for the meta event in the later track chunks, which may find a false one in
  other data and then merely costs speed) is read by pretty_midi, so both give the same source tempo
  (``provenance``); two tempo events at one tick with different tempos too (their order is the file's).

One difference is left, in the provenance only (never the notes): pretty_midi gives a note the program in force
at its note-off, symusic the one at its note-on, so a program change on a channel while a note sounds there can
move that note to another program, and in a file where that tips the balance, the dominant program
(``provenance._program``) differs between the readers.

The bounded read (``MAX_MIDI_BYTES``) and the note limit (``MAX_MIDI_NOTES``) apply as on the pretty_midi path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqstudio import safe_io, score_limits
from seqstudio.errors import DataError


def checked_pretty_midi(data: bytes, path: Path):
    """MIDI bytes as ``PrettyMIDI`` after ``score_limits.checked_mido`` bounded them (and rescaled the ticks of a
    long score past pretty_midi's 10^7-tick limit): the one pretty_midi read of both paths (``MidiDomain.read``
    and a ``NoteScore`` asked for its ``pretty_midi``)."""
    import pretty_midi

    return pretty_midi.PrettyMIDI(mido_object=score_limits.checked_mido(data, str(path)))


class NoteScore:
    """The notes of a MIDI file as the codecs need them: ``instruments`` is a list of ``(is_drum, start, end,
    pitch, velocity)`` with int64 tick arrays; ``resolution`` ticks per quarter note. ``pretty_midi`` builds
    the full ``PrettyMIDI`` from the same bytes when a codec needs it."""

    def __init__(self, data: bytes, path: Path, resolution: int, instruments: list, key_numbers=(), meters=(),
                 programs=(), tempos=()):
        self._data, self._path = data, path
        self.resolution, self.instruments = resolution, instruments
        # per instrument, its General MIDI program; the first track's tempo events (tick, microseconds per
        # quarter) in file order (``provenance``)
        self.programs = list(programs) or [0] * len(instruments)
        self.tempos = list(tempos)
        # meta events, first first, as pretty_midi numbers them (``attributes``): key_number 0-11 major tonic
        # pitch class, 12-23 minor; meters (numerator, denominator)
        self.key_numbers, self.meters = list(key_numbers), list(meters)
        self._pm = None

    @property
    def pretty_midi(self):
        if self._pm is None:
            self._pm = checked_pretty_midi(self._data, self._path)
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
    tempos = [(int(t.time), int(t.mspq)) for t in score.tempos]
    if tempos and (_tempo_outside_first_track(data) or _tempo_clash(tempos)):
        return None
    instruments, programs, total = [], [], 0
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
        programs.append(int(track.program))
    if total > score_limits.MAX_MIDI_NOTES:
        raise DataError(f"{path}: holds more than {score_limits.MAX_MIDI_NOTES:,} notes")
    if not any(not drum for drum, *_ in instruments):
        raise DataError(f"{path}: no pitched notes")
    keys = sorted(((int(k.time), i, (int(k.key) * 7 + (9 if int(k.tonality) else 0)) % 12 + 12 * bool(int(k.tonality)))
                   for i, k in enumerate(score.key_signatures)))
    meters = sorted((int(t.time), i, (int(t.numerator), int(t.denominator)))
                    for i, t in enumerate(score.time_signatures))
    return NoteScore(data, path, tpq, instruments, [k for *_, k in keys], [m for *_, m in meters], programs, tempos)


TEMPO_EVENT = b"\xff\x51\x03"  # meta event "set tempo", 3 bytes of microseconds per quarter


def _tempo_outside_first_track(data: bytes) -> bool:
    """Whether a track chunk after the first holds the bytes of a tempo event (or the chunks cannot be walked:
    then pretty_midi decides). A false find (the bytes inside other data) only sends the file to pretty_midi."""
    if data[:4] != b"MThd" or len(data) < 14:
        return True
    pos, track = 8 + int.from_bytes(data[4:8], "big"), 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "big")
        if data[pos : pos + 4] == b"MTrk":
            if track > 0 and data.find(TEMPO_EVENT, pos + 8, pos + 8 + size) >= 0:
                return True
            track += 1
        pos += 8 + size
    return False


def _tempo_clash(tempos: list[tuple[int, int]]) -> bool:
    """Two tempo events at one tick with different tempos (which one holds is the file's order)."""
    seen: dict[int, int] = {}
    for tick, mspq in tempos:
        if seen.setdefault(tick, mspq) != mspq:
            return True
    return False


def _same_pitch_overlap(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> bool:
    """Whether a note starts before the previous note of its pitch (in this track and channel) has ended."""
    order = np.lexsort((start, pitch))
    s, e, p = start[order], end[order], pitch[order]
    same = p[1:] == p[:-1]
    return bool((same & (s[1:] < e[:-1])).any())


def read_for_encoding(domain, path: Path):
    """What ``MidiDomain.read_for_encoding`` returns: a ``NoteScore`` for a MIDI file symusic reads as
    pretty_midi would, else ``domain.read(path)`` (a ``PrettyMIDI``; notation files always).

    No time limit of its own (the loader puts one around every file): symusic's parse is C++, which a limit
    cannot interrupt and the byte limit bounds, and the Python around it is linear in the notes, which
    ``MAX_MIDI_NOTES`` bounds; the pretty_midi path keeps its limit."""
    path = Path(path)
    if path.suffix.lower() not in (".mid", ".midi"):
        return domain.read(path)
    try:
        data = safe_io.read_bytes_limited(path, score_limits.MAX_MIDI_BYTES, "MIDI file")
    except DataError:
        raise
    except Exception:
        return domain.read(path)
    if not data:
        raise DataError(f"{path}: empty file")
    notes = read_notes(data, path)
    return notes if notes is not None else domain.read(path)
