"""The grid's one-voice-per-pitch pass (vectorised in ``grid``) against a note-by-note reference of its rule."""

from __future__ import annotations

import numpy as np
import pytest

from seqstudio_midi.grid import GridNote, NoteArrays, _one_voice_per_pitch_arrays


def one_voice_per_pitch_reference(notes: list[GridNote]) -> list[GridNote]:
    """The rule, note by note: a pitch sounds over the union of its notes, every onset starts a new note, and
    notes with the same onset become one (the longest end, the loudest velocity)."""
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


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("pitches", [1, 3, 40])
def test_vectorised_pass_equals_the_note_by_note_rule(seed, pitches):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    pitch = rng.integers(60, 60 + pitches, n)
    start = rng.integers(0, 40, n)  # dense: unisons, shared onsets and overlaps are common
    end = start + rng.integers(1, 12, n)
    velocity = rng.integers(1, 128, n)
    got = _one_voice_per_pitch_arrays(pitch, start, end, velocity)
    assert isinstance(got, NoteArrays) and all(column.dtype == np.int64 for column in got)
    expected = one_voice_per_pitch_reference([GridNote(*map(int, row)) for row in zip(pitch, start, end, velocity)])
    assert got.notes() == expected


def test_notes_without_overlaps_pass_unchanged_and_sorted():
    pitch, start = np.array([64, 60, 67, 60]), np.array([4, 0, 0, 2])
    end, velocity = start + 2, np.array([10, 20, 30, 40])
    got = _one_voice_per_pitch_arrays(pitch, start, end, velocity).notes()
    assert got == [GridNote(60, 0, 2, 20), GridNote(67, 0, 2, 30), GridNote(60, 2, 4, 40), GridNote(64, 4, 6, 10)]
