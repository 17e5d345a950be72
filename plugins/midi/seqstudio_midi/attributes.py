"""What a piece of music says about itself, for conditional generation (``seqstudio.conditions``).

``key`` (tonic and mode, ``G:minor``), ``mode`` (``major`` / ``minor``) and ``meter`` (``3/4``). The key and the
time signature come from the file's first meta events when it has them (a score converted by music21 writes
both); a file without a key signature gets music21's key analysis (Krumhansl-Schmuckler on the notes' pitch
classes weighted by duration) instead, and ``_key_source`` says which (counted in the run's codec.json). A file
without a time signature has no ``meter`` (unknown). ``estimate_key`` is also the measure of whether a
conditional model listened (``seqstudio evaluate --samples``).
"""

from __future__ import annotations

import numpy as np
import pretty_midi

MODES = ("major", "minor")


def key_name(tonic_pc: int, mode: str) -> str:
    """``G:minor``: the tonic spelled as pretty_midi spells it (one spelling per pitch class), then the mode."""
    number = int(tonic_pc) % 12 + (12 if mode == "minor" else 0)
    tonic, _ = pretty_midi.key_number_to_key_name(number).split()
    return f"{tonic}:{mode}"


def transposed_key(key: str, semitones: int) -> str | None:
    """``key_name``'s ``G:minor`` moved by ``semitones`` (spelled as ``key_name`` spells it); None for a value
    that is not such a key."""
    tonic, _, mode = str(key).partition(":")
    if mode not in MODES:
        return None
    try:
        number = pretty_midi.key_name_to_key_number(f"{tonic} {mode}")
    except ValueError:
        return None
    return key_name(number % 12 + int(semitones), mode)


def _note_arrays(sample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pitch, start, duration)`` arrays of the pitched notes in quarter notes, sorted by (start, end, pitch),
    from a ``PrettyMIDI`` or the loader's ``fastread.NoteScore`` alike (ticks / resolution, so both readers give
    the same key). Vectorised for the NoteScore, whose notes are arrays already: this runs for every file the
    loader encodes."""
    if isinstance(sample, pretty_midi.PrettyMIDI):
        tick = sample.time_to_tick
        rows = [(tick(n.start), tick(n.end), n.pitch) for inst in sample.instruments if not inst.is_drum
                for n in inst.notes]
        start, end, pitch = (np.array(column, dtype=np.int64) for column in (list(zip(*rows)) or [(), (), ()]))
    else:
        parts = [(s, e, p) for drum, s, e, p, _ in sample.instruments if not drum]
        start, end, pitch = (np.concatenate([np.asarray(part[i], np.int64) for part in parts]) if parts
                             else np.zeros(0, np.int64) for i in range(3))
    order = np.lexsort((pitch, end, start))
    resolution = sample.resolution
    return pitch[order], start[order] / resolution, (end[order] - start[order]) / resolution


def notes_in_quarters(sample) -> list[tuple[int, float, float]]:
    """``_note_arrays`` as ``(pitch, start, duration)`` tuples."""
    pitch, start, duration = _note_arrays(sample)
    return [(int(p), float(s), float(d)) for p, s, d in zip(pitch, start, duration)]


# music21's default key analysis (``analyze('key')`` = ``analysis.discrete.AardenEssen``): its weights, and its
# rule (the Pearson correlation of the duration-weighted pitch-class histogram with each rotated profile; the best
# of 24 wins, ties to the higher tonic, then minor). Computed here with numpy: building a music21 stream of the
# notes cost 0.1 s for 400 notes (30x the piano-roll encoding), which every file without a key signature paid.
AARDEN_ESSEN = {
    "major": np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624,
                       8.15494, 0.232998, 4.95122]),
    "minor": np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621,
                       1.93186, 7.37619, 1.75623]),
}
MAX_ANALYSED_NOTES = 4000  # plenty for a pitch-class profile, bounded for huge pieces


# [mode][tonic, pc] = w[(pc - tonic) % 12] - mean(w), and its squared norms: built once, not per file
_CENTRED_PROFILES = {mode: np.stack([np.roll(w, tonic) for tonic in range(12)]) - w.mean()
                     for mode, w in AARDEN_ESSEN.items()}
_PROFILE_NORMS = {mode: (w ** 2).sum(1) for mode, w in _CENTRED_PROFILES.items()}


def key_of_histogram(histogram: np.ndarray) -> str | None:
    """The key music21's ``analyze('key')`` gives for a duration-weighted pitch-class ``histogram`` [12]."""
    if not histogram.any():
        return None
    d = histogram - histogram.mean()
    best = None
    for mode, w in _CENTRED_PROFILES.items():
        den = np.sqrt(_PROFILE_NORMS[mode] * (d ** 2).sum())
        r = np.where(den > 0, (w @ d) / np.where(den > 0, den, 1.0), 0.0)
        tonic = int(np.flatnonzero(r == r.max())[-1])  # ties go to the higher tonic, as music21's sort does
        candidate = (float(r[tonic]), tonic, mode == "minor")
        best = candidate if best is None or candidate > best else best
    return key_name(best[1], "minor" if best[2] else "major")


def estimate_key(sample) -> str | None:
    """music21's key analysis (``analyze('key')``, see ``AARDEN_ESSEN``) of the pitched notes (a ``PrettyMIDI``
    or a ``NoteScore``), durations in quarter notes rounded to sixteenths as a score would hold them; None for a
    piece without notes."""
    pitch, _, duration = (a[:MAX_ANALYSED_NOTES] for a in _note_arrays(sample))
    if not len(pitch):
        return None
    pitches = pitch % 12
    durations = np.maximum(np.round(duration * 4) / 4, 0.25)
    return key_of_histogram(np.bincount(pitches, weights=durations, minlength=12))


def estimate_key_music21(sample) -> str | None:
    """The same analysis by music21 itself (slow): what ``estimate_key`` is checked against in the tests."""
    from music21 import note, stream

    notes = notes_in_quarters(sample)[:MAX_ANALYSED_NOTES]
    if not notes:
        return None
    part = stream.Stream()
    for pitch, start, duration in notes:
        m = note.Note(pitch)
        m.quarterLength = max(round(duration * 4) / 4, 0.25)
        part.insert(round(start * 4) / 4, m)
    try:
        k = part.analyze("key")
    except Exception:  # music21's analysis on degenerate input (one repeated note)
        return None
    return key_name(k.tonic.pitchClass, k.mode if k.mode in MODES else "major")


def _meta(sample) -> tuple[int | None, tuple[int, int] | None]:
    """The first key signature (pretty_midi's key number) and time signature of the file, or None."""
    if isinstance(sample, pretty_midi.PrettyMIDI):
        keys = sorted(sample.key_signature_changes, key=lambda k: k.time)
        meters = sorted(sample.time_signature_changes, key=lambda t: t.time)
        return (int(keys[0].key_number) if keys else None,
                (meters[0].numerator, meters[0].denominator) if meters else None)
    return (sample.key_numbers[0] if sample.key_numbers else None, sample.meters[0] if sample.meters else None)


def attributes(sample) -> dict[str, str]:
    """Of a ``PrettyMIDI`` or the loader's ``fastread.NoteScore`` (the same answer for the same file)."""
    out: dict[str, str] = {}
    number, meter = _meta(sample)
    if number is not None:
        key = key_name(number % 12, "minor" if number >= 12 else "major")
        out["_key_source"] = "meta"
    else:
        key = estimate_key(sample)
        out["_key_source"] = "analysis"
    if key:
        out["key"], out["mode"] = key, key.split(":")[1]
    if meter:
        out["meter"] = f"{meter[0]}/{meter[1]}"
    return out
