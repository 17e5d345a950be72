"""What a MIDI piece had that the grid does not hold, so decoding can give it back: its tempo and instrument.

The codecs' grid is in beats (``grid.quantise`` counts ticks), so an encoded piece has no tempo; both codecs
merge every non-drum track into one part, so it has no instrument either. ``provenance`` records, per piece:

* ``_tempo``: the tempo (bpm, 2 decimals) in force for the most beats of the piece, from its start to the end of
  its last pitched note (a piece with tempo changes is written back at this one tempo). A file without tempo
  events is 120 bpm (the MIDI default). As pretty_midi reads tempo: only the first track's tempo events count;
  ``fastread`` sends a file with tempo events in other tracks to pretty_midi;
* ``_program``: the General MIDI program that plays the most pitched notes (ties: the lowest number).

The loader stores both with the encoded piece (``Domain.provenance``); a codec writes them back
(``grid.DecodingDefaults``): a known piece at its own, a generated one at the training pieces' median tempo
and most common program, unless ``codec.tempo`` / ``codec.program`` fix them.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pretty_midi

DEFAULT_MSPQ = 500_000  # microseconds per quarter note: 120 bpm, MIDI's default


def tempo_bpm(mspq: int) -> float:
    """Microseconds per quarter -> bpm, rounded to 2 decimals (so both readers give one string)."""
    return round(60_000_000 / int(mspq), 2)


def tempo_map(changes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(tick, microseconds per quarter)`` events of the first track, in file order -> the tempo map as
    pretty_midi builds it: 120 bpm from tick 0 until an event says otherwise, the last event at tick 0 wins."""
    out = [(0, DEFAULT_MSPQ)]
    for tick, mspq in changes:
        if tick == 0:
            out = [(0, int(mspq))]
        elif int(mspq) != out[-1][1]:
            out.append((int(tick), int(mspq)))
    return out


def dominant_tempo(changes: list[tuple[int, int]], end: int) -> float:
    """The tempo (bpm) in force for the most ticks of ``[0, end)``; ties (and ``end`` 0): the earliest."""
    segments = tempo_map(changes)
    held: dict[int, int] = {}
    order: list[int] = []
    for i, (tick, mspq) in enumerate(segments):
        stop = segments[i + 1][0] if i + 1 < len(segments) else max(end, tick)
        length = max(0, min(stop, end) - min(tick, end))
        if mspq not in held:
            held[mspq] = 0
            order.append(mspq)
        held[mspq] += length
    best = max(order, key=lambda m: (held[m], -order.index(m)))
    return tempo_bpm(best)


def dominant_program(counts: Counter) -> int:
    """The program with the most notes (ties: the lowest program number); 0 (piano) when there are none."""
    if not counts:
        return 0
    return min(counts, key=lambda p: (-counts[p], p))


def _pretty_midi_provenance(pm: pretty_midi.PrettyMIDI) -> tuple[list[tuple[int, int]], int, Counter]:
    times, tempi = pm.get_tempo_changes()
    # pretty_midi keeps a tempo as seconds per tick; MIDI stores integer microseconds per quarter, recovered exactly
    changes = [(int(pm.time_to_tick(t)), int(round(60_000_000 / bpm))) for t, bpm in zip(times, tempi)]
    pitched = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
    end = max((pm.time_to_tick(n.end) for inst in pitched for n in inst.notes), default=0)
    counts = Counter()
    for inst in pitched:
        counts[int(inst.program)] += len(inst.notes)
    return changes, int(end), counts


def provenance(sample) -> dict[str, str]:
    """``{"_tempo": "90", "_program": "40"}`` of a ``PrettyMIDI`` or of the loader's ``fastread.NoteScore``
    (the same answer for the same file: a test compares them)."""
    if isinstance(sample, pretty_midi.PrettyMIDI):
        changes, end, counts = _pretty_midi_provenance(sample)
    else:
        changes = sample.tempos
        pitched = [(program, inst) for program, inst in zip(sample.programs, sample.instruments) if not inst[0]]
        end = max((int(np.max(inst[2])) for _, inst in pitched if len(inst[2])), default=0)
        counts = Counter()
        for program, inst in pitched:
            counts[int(program)] += len(inst[1])
    return {"_tempo": f"{dominant_tempo(changes, end):g}", "_program": str(dominant_program(counts))}
