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


def estimate_key(pm: pretty_midi.PrettyMIDI) -> str | None:
    """music21's key analysis (``analyze('key')``) of the pitched notes; None for a piece without notes."""
    from music21 import note, stream

    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    if not notes:
        return None
    part = stream.Stream()
    for n in notes[:4000]:  # plenty for a pitch-class profile, bounded for huge pieces
        m = note.Note(n.pitch)
        m.quarterLength = max(round((n.end - n.start) * 2.0 * 4) / 4, 0.25)  # seconds at 120 bpm -> quarters
        part.insert(round(n.start * 2.0 * 4) / 4, m)
    try:
        k = part.analyze("key")
    except Exception:  # music21's analysis on degenerate input (one repeated note)
        return None
    return key_name(k.tonic.pitchClass, k.mode if k.mode in MODES else "major")


def attributes(pm: pretty_midi.PrettyMIDI) -> dict[str, str]:
    out: dict[str, str] = {}
    keys = sorted(pm.key_signature_changes, key=lambda k: k.time)
    if keys:
        number = int(keys[0].key_number)
        key = key_name(number % 12, "minor" if number >= 12 else "major")
        out["_key_source"] = "meta"
    else:
        key = estimate_key(pm)
        out["_key_source"] = "analysis"
    if key:
        out["key"], out["mode"] = key, key.split(":")[1]
    signatures = sorted(pm.time_signature_changes, key=lambda t: t.time)
    if signatures:
        out["meter"] = f"{signatures[0].numerator}/{signatures[0].denominator}"
    return out
