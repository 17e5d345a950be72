"""Pitch frames -> MIDI: the representation of the JSB Chorales benchmark files (a list of sounding MIDI
pitches per grid step), written as MIDI so the piano-roll codec reads the frames back exactly."""

from __future__ import annotations

import pretty_midi

from seqstudio.errors import DataError


def frames_to_midi(frames: list[list[int]], steps_per_quarter: int = 1, tempo: float = 120.0,
                   velocity: int = 80) -> pretty_midi.PrettyMIDI:
    """Frames of sounding MIDI pitches -> a one-piano ``PrettyMIDI``; a pitch in consecutive frames is held."""
    seconds = 60.0 / (tempo * steps_per_quarter)
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    sounding: dict[int, int] = {}  # pitch -> step where its current note started
    for step, frame in enumerate(list(frames) + [[]]):  # the empty frame at the end closes every note
        pitches = {int(p) for p in frame}
        for pitch in sorted(set(sounding) - pitches):
            piano.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=sounding.pop(pitch) * seconds,
                                                end=step * seconds))
        for pitch in sorted(pitches - set(sounding)):
            if not 0 <= pitch <= 127:
                raise DataError(f"pitch {pitch} at step {step} is not a MIDI pitch")
            sounding[pitch] = step
    piano.notes.sort(key=lambda n: (n.start, n.pitch))
    pm.instruments.append(piano)
    return pm
