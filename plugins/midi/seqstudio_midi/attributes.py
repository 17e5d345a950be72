"""What a piece of music says about itself, for conditional generation (``seqstudio.conditions``).

``key`` (tonic and mode, ``G:minor``), ``mode`` (``major`` / ``minor``) and ``meter`` (``3/4``). The key and the
time signature come from the file's first meta events when it has them (a score converted by music21 writes
both); a file without a key signature gets music21's key analysis (Krumhansl-Schmuckler on the notes' pitch
classes weighted by duration) instead, and ``_key_source`` says which (counted in the run's codec.json). A file
without a time signature has no ``meter`` (unknown). ``estimate_key`` is also the measure of whether a
conditional model listened (``seqstudio evaluate --samples``).
"""

from __future__ import annotations

import pretty_midi

MODES = ("major", "minor")


def key_name(tonic_pc: int, mode: str) -> str:
    """``G:minor``: the tonic spelled as pretty_midi spells it (one spelling per pitch class), then the mode."""
    number = int(tonic_pc) % 12 + (12 if mode == "minor" else 0)
    tonic, _ = pretty_midi.key_number_to_key_name(number).split()
    return f"{tonic}:{mode}"


def _notes_in_quarters(sample) -> list[tuple[int, float, float]]:
    """``(pitch, start, duration)`` of the pitched notes in quarter notes, from a ``PrettyMIDI`` or the loader's
    ``fastread.NoteScore`` alike (ticks / resolution, so both readers give the same key)."""
    if isinstance(sample, pretty_midi.PrettyMIDI):
        tick = sample.time_to_tick
        notes = sorted((tick(n.start), tick(n.end), n.pitch) for inst in sample.instruments if not inst.is_drum
                       for n in inst.notes)
        resolution = sample.resolution
    else:
        notes = sorted((int(s), int(e), int(p)) for drum, start, end, pitch, _ in sample.instruments if not drum
                       for s, e, p in zip(start, end, pitch))
        resolution = sample.resolution
    return [(p, s / resolution, (e - s) / resolution) for s, e, p in notes]


def estimate_key(sample) -> str | None:
    """music21's key analysis (``analyze('key')``) of the pitched notes (a ``PrettyMIDI`` or a ``NoteScore``);
    None for a piece without notes."""
    from music21 import note, stream

    notes = _notes_in_quarters(sample)
    if not notes:
        return None
    part = stream.Stream()
    for pitch, start, duration in notes[:4000]:  # plenty for a pitch-class profile, bounded for huge pieces
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
