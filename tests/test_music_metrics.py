"""Music metrics on hand-built pieces with known answers, and the distribution overlap used by `evaluate`."""

from __future__ import annotations

import math

import numpy as np
import pretty_midi
import pytest

from seqstudio.domain import Domain
from seqstudio.metrics import compare, overlap
from seqstudio_midi import MidiDomain
from seqstudio_midi import metrics as mm

# (pitch, start beat, end beat): an arpeggio C4 E4 G4 C5, four silent beats, then a C major triad.
PIECE = [(60, 0, 1), (64, 1, 2), (67, 2, 3), (72, 3, 4), (60, 8, 9), (64, 8, 9), (67, 8, 9)]


def build(notes, tempo=120.0, drum_hit=False) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    beat = 60.0 / tempo
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(90, p, s * beat, e * beat) for p, s, e in notes]
    pm.instruments.append(inst)
    if drum_hit:  # drums must be ignored by every metric
        drums = pretty_midi.Instrument(program=0, is_drum=True)
        drums.notes = [pretty_midi.Note(100, 36, 0.0, 20 * beat)]
        pm.instruments.append(drums)
    return pm


EXPECTED = {
    "pitch_range": 12.0,
    "n_pitches_used": 4.0,
    "n_pitch_classes_used": 3.0,  # C, E, G
    "pitch_class_entropy": -(3 / 7 * math.log2(3 / 7) + 2 * (2 / 7) * math.log2(2 / 7)),  # C x3, E x2, G x2
    "scale_consistency": 1.0,  # all in C major
    "polyphony": (16 * 1 + 4 * 3) / 20,  # 16 steps of one pitch, 4 steps of three
    "polyphony_rate": 4 / 36,  # 36 steps up to the end, 4 with a chord
    "empty_beat_rate": 4 / 9,  # beats 4..7 of 9
    "groove_consistency": 1 - (4 / 16 + 1 / 16) / 2,  # onsets {0,4,8,12} | {} | {0} in three 16-step bars
    "repetitions_2": 2.0,  # pitches 60 64 67 72 60 64 67: (60,64) and (64,67) come back
    "repetitions_3": 1.0,  # (60,64,67) comes back
    "note_density": 7 / 9,  # 7 notes in 9 beats
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metric_on_hand_built_piece(name):
    assert mm.METRICS[name](build(PIECE)) == pytest.approx(EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metrics_ignore_tempo_and_drums(name):
    assert mm.METRICS[name](build(PIECE, tempo=72.0, drum_hit=True)) == pytest.approx(EXPECTED[name])


def test_tone_span_is_pitch_range():
    assert mm.tone_span(build(PIECE)) == 12.0


def test_chromatic_cluster():
    pm = build([(60 + k, k, k + 1) for k in range(12)])  # the 12 pitch classes once each, one after another
    assert mm.pitch_class_entropy(pm) == pytest.approx(math.log2(12))
    assert mm.scale_consistency(pm) == pytest.approx(7 / 12)
    assert mm.n_pitch_classes_used(pm) == 12
    assert mm.polyphony(pm) == 1.0 and mm.polyphony_rate(pm) == 0.0
    assert mm.empty_beat_rate(pm) == 0.0
    assert mm.repetitions_2(pm) == 0.0
    assert mm.groove_consistency(pm) == 1.0  # every beat starts a note, in all three bars


def test_grid_resolution_parameter():
    # Overlapping eighths a sixteenth apart: at 1 step per quarter both round onto step 0, at 2 they do not.
    pm = build([(60, 0, 0.5), (62, 0.25, 0.75)])
    assert mm.polyphony(pm, steps_per_quarter=2) == 1.0
    assert mm.polyphony(pm, steps_per_quarter=1) == 2.0


def test_empty_piece_is_defined():
    values = mm.compute_all(build([]))
    assert values["empty_beat_rate"] == 1.0 and math.isnan(values["groove_consistency"])
    assert all(values[k] == 0.0 for k in values if k not in ("empty_beat_rate", "groove_consistency"))


def test_domain_hook():
    assert Domain().metrics(object()) == {}
    values = MidiDomain().metrics(build(PIECE))
    assert set(values) == set(mm.METRICS)
    assert values["pitch_range"] == 12.0


# -- overlap --------------------------------------------------------------------------------------------------------
def test_overlap_identical_sets_is_one():
    values = np.random.default_rng(0).normal(size=200)
    assert overlap(values, values) == pytest.approx(1.0, abs=1e-9)
    assert overlap([3.0] * 10, [3.0] * 4) == 1.0


def test_overlap_drops_as_sets_move_apart():
    values = np.random.default_rng(0).normal(size=300)
    near, far = overlap(values, values + 0.5), overlap(values, values + 5.0)
    assert 0.6 < near < 0.95
    assert far < 0.05
    assert overlap(values + 0.5, values) == pytest.approx(near)  # symmetric
    assert math.isnan(overlap([], values))


def test_compare_reports_every_metric_and_the_mean():
    rng = np.random.default_rng(1)
    ref = [{"a": float(x), "b": float(y)} for x, y in rng.normal(size=(150, 2))]
    same = compare(ref, ref)
    assert same["mean_overlap"] == pytest.approx(1.0)
    shifted = compare([{"a": d["a"] + 3.0, "b": d["b"]} for d in ref], ref)
    assert shifted["metrics"]["b"]["overlap"] == pytest.approx(1.0)
    assert shifted["metrics"]["a"]["overlap"] < 0.2
    assert shifted["mean_overlap"] < 0.65
    assert shifted["metrics"]["a"]["generated_mean"] == pytest.approx(same["metrics"]["a"]["reference_mean"] + 3.0)


def test_compare_on_midi_sets():
    domain = MidiDomain()
    ref = [domain.metrics(build([(p + k, s, e) for p, s, e in PIECE])) for k in range(-3, 4)]
    octave_up = [domain.metrics(build([(p + 12 + k, s, e) for p, s, e in PIECE] + [(40, 0, 9)]))
                 for k in range(-3, 4)]
    assert compare(ref, ref)["mean_overlap"] == pytest.approx(1.0)
    assert compare(octave_up, ref)["mean_overlap"] < 0.9
