"""Music metrics as plain functions of a ``pretty_midi.PrettyMIDI`` (after muspy and C-RNN-GAN).

They judge generators that have no likelihood: ``seqstudio evaluate --samples N`` computes every metric in
:data:`METRICS` on generated and held-out pieces and compares the two distributions.

Time is measured in *beats* (quarter notes) through the file's own tick grid (``pm.time_to_tick`` /
``pm.resolution``), so a metric does not change with tempo. Metrics that need a grid quantise onsets and
offsets to ``steps_per_quarter`` steps per quarter note; a bar is taken as 4 quarters. Drums are ignored.
On a piece without notes every metric is defined (0, or 1 for the empty-beat rate) except the groove
consistency, which needs two bars and is ``nan`` otherwise (the comparison drops ``nan`` values).

* ``tone_span`` (C-RNN-GAN) is the same quantity as ``pitch_range`` (muspy), so only ``pitch_range`` is in
  :data:`METRICS` (a metric counted twice would weigh twice in the mean overlap).
"""

from __future__ import annotations

import math

import numpy as np
import pretty_midi

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
QUARTERS_PER_BAR = 4


def _notes(pm: pretty_midi.PrettyMIDI) -> list[pretty_midi.Note]:
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def _beats(pm: pretty_midi.PrettyMIDI, seconds: float) -> float:
    return pm.time_to_tick(seconds) / pm.resolution


def _grid(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int) -> list[tuple[int, int, int]]:
    """``(pitch, start_step, end_step)`` per note; a note lasts at least one step."""
    out = []
    for n in _notes(pm):
        start = int(math.floor(_beats(pm, n.start) * steps_per_quarter + 0.5))
        end = max(int(math.floor(_beats(pm, n.end) * steps_per_quarter + 0.5)), start + 1)
        out.append((n.pitch, start, end))
    return out


# -- pitch ------------------------------------------------------------------------------------------------------------
def pitch_range(pm: pretty_midi.PrettyMIDI) -> float:
    """Highest minus lowest pitch, in semitones (0 without notes)."""
    pitches = [n.pitch for n in _notes(pm)]
    return float(max(pitches) - min(pitches)) if pitches else 0.0


def tone_span(pm: pretty_midi.PrettyMIDI) -> float:
    """C-RNN-GAN's tone span: half-tone steps between the lowest and the highest tone (= ``pitch_range``)."""
    return pitch_range(pm)


def n_pitches_used(pm: pretty_midi.PrettyMIDI) -> float:
    """Number of distinct pitches."""
    return float(len({n.pitch for n in _notes(pm)}))


def n_pitch_classes_used(pm: pretty_midi.PrettyMIDI) -> float:
    """Number of distinct pitch classes (0..12)."""
    return float(len({n.pitch % 12 for n in _notes(pm)}))


def pitch_class_entropy(pm: pretty_midi.PrettyMIDI) -> float:
    """Shannon entropy (bits) of the note-count histogram over the 12 pitch classes (0..log2 12)."""
    counts = np.bincount([n.pitch % 12 for n in _notes(pm)], minlength=12).astype(float)
    if counts.sum() == 0:
        return 0.0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def scale_consistency(pm: pretty_midi.PrettyMIDI) -> float:
    """Largest fraction of notes inside one major (equivalently natural minor) scale, over the 12 roots."""
    classes = [n.pitch % 12 for n in _notes(pm)]
    if not classes:
        return 0.0
    counts = np.bincount(classes, minlength=12)
    best = max(sum(counts[(root + d) % 12] for d in MAJOR_SCALE) for root in range(12))
    return float(best / len(classes))


# -- texture and rhythm -----------------------------------------------------------------------------------------------
def _active_counts(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int) -> np.ndarray:
    """Distinct sounding pitches per grid step, from step 0 to the last note's end."""
    grid = _grid(pm, steps_per_quarter)
    if not grid:
        return np.zeros(0, dtype=int)
    total = max(end for _, _, end in grid)
    roll = np.zeros((total, 128), dtype=bool)
    for pitch, start, end in grid:
        roll[start:end, pitch] = True
    return roll.sum(1)


def polyphony(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int = 4) -> float:
    """Mean number of pitches sounding at once, over the grid steps where at least one sounds (muspy)."""
    counts = _active_counts(pm, steps_per_quarter)
    sounding = counts[counts > 0]
    return float(sounding.mean()) if sounding.size else 0.0


def polyphony_rate(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int = 4) -> float:
    """Fraction of grid steps where two or more pitches sound together (C-RNN-GAN's polyphony)."""
    counts = _active_counts(pm, steps_per_quarter)
    return float((counts >= 2).mean()) if counts.size else 0.0


def empty_beat_rate(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int = 4) -> float:
    """Fraction of beats (quarter notes, up to the last note's end) in which no note sounds; 1 without notes."""
    counts = _active_counts(pm, steps_per_quarter)
    if not counts.size:
        return 1.0
    n_beats = -(-counts.size // steps_per_quarter)
    padded = np.zeros(n_beats * steps_per_quarter, dtype=int)
    padded[: counts.size] = counts
    return float((padded.reshape(n_beats, steps_per_quarter).sum(1) == 0).mean())


def groove_consistency(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int = 4) -> float:
    """1 - mean Hamming distance (as a fraction of the bar) between the onset patterns of neighbouring bars.

    muspy's definition with a 4/4 bar; ``nan`` when the piece spans fewer than two bars.
    """
    grid = _grid(pm, steps_per_quarter)
    bar = QUARTERS_PER_BAR * steps_per_quarter
    if not grid:
        return float("nan")
    n_bars = -(-max(end for _, _, end in grid) // bar)
    if n_bars < 2:
        return float("nan")
    onsets = np.zeros(n_bars * bar, dtype=bool)
    for _, start, _ in grid:
        onsets[start] = True
    patterns = onsets.reshape(n_bars, bar)
    distances = (patterns[1:] != patterns[:-1]).sum(1) / bar
    return float(1.0 - distances.mean())


def note_density(pm: pretty_midi.PrettyMIDI) -> float:
    """Notes per beat, over the span from 0 to the last note's end (0 without notes)."""
    notes = _notes(pm)
    if not notes:
        return 0.0
    beats = _beats(pm, max(n.end for n in notes))
    return float(len(notes) / beats) if beats > 0 else 0.0


# -- repetition -------------------------------------------------------------------------------------------------------
def repetitions(pm: pretty_midi.PrettyMIDI, n: int = 2) -> float:
    """C-RNN-GAN's repetitions: how many n-note pitch subsequences repeat one seen earlier in the piece.

    Only the tones and their order count, not their timing: notes are ordered by (onset, pitch), and each
    position whose n consecutive pitches already occurred at an earlier position adds one.
    """
    pitches = [note.pitch for note in _notes(pm)]
    seen: set[tuple[int, ...]] = set()
    count = 0
    for i in range(len(pitches) - n + 1):
        gram = tuple(pitches[i : i + n])
        if gram in seen:
            count += 1
        seen.add(gram)
    return float(count)


def repetitions_2(pm: pretty_midi.PrettyMIDI) -> float:
    """Repeated 2-note subsequences (see :func:`repetitions`)."""
    return repetitions(pm, 2)


def repetitions_3(pm: pretty_midi.PrettyMIDI) -> float:
    """Repeated 3-note subsequences (see :func:`repetitions`)."""
    return repetitions(pm, 3)


METRICS = {
    "pitch_range": pitch_range,
    "n_pitches_used": n_pitches_used,
    "n_pitch_classes_used": n_pitch_classes_used,
    "pitch_class_entropy": pitch_class_entropy,
    "scale_consistency": scale_consistency,
    "polyphony": polyphony,
    "polyphony_rate": polyphony_rate,
    "empty_beat_rate": empty_beat_rate,
    "groove_consistency": groove_consistency,
    "repetitions_2": repetitions_2,
    "repetitions_3": repetitions_3,
    "note_density": note_density,
}
"""Name -> function of every metric ``seqstudio evaluate`` compares (grid metrics at 4 steps per quarter)."""

_GRID_METRICS = {"polyphony", "polyphony_rate", "empty_beat_rate", "groove_consistency"}


def compute_all(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int = 4) -> dict[str, float]:
    """Every metric of :data:`METRICS` on one piece."""
    return {name: (f(pm, steps_per_quarter) if name in _GRID_METRICS else f(pm)) for name, f in METRICS.items()}


__all__ = [*METRICS, "tone_span", "repetitions", "METRICS", "compute_all"]
