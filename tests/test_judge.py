"""The sample judge (``seqstudio.judge``, issue 25): calibrated on real chorales (real vs real is not separated,
random notes are), excerpts of equal length in beats whatever the tempo, its figures in `evaluate --samples
--json` and on the report, and "no judge" for a domain without features."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pretty_midi
import pytest
from click.testing import CliRunner

from conftest import invoke
from seqstudio import judge
from seqstudio.cli import main
from seqstudio.domain import Domain
from seqstudio_midi.domain import MidiDomain
from seqstudio_midi.judge import EXCERPT_BEATS, controls

CHORALES = 24


@pytest.fixture(scope="module")
def real_chorales(tmp_path_factory) -> list:
    """24 Bach chorales read through the real recipe and domain (about 90 excerpts of 16 beats)."""
    dest = tmp_path_factory.mktemp("judge") / "bach"
    result = CliRunner().invoke(main, ["data", "build", "bach-chorales", str(dest), "--limit", str(CHORALES),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    files = sorted(dest.glob("*.mid"))
    assert len(files) == CHORALES
    domain = MidiDomain()
    return [domain.read(f) for f in files]


def test_the_judge_does_not_separate_two_halves_of_real_chorales(real_chorales):
    verdict = judge.calibrate(MidiDomain(), real_chorales, seed=0)["real vs real"]
    assert verdict["available"] and verdict["per_side"] >= 30
    assert 0.3 <= verdict["accuracy"] <= 0.65, verdict["accuracy"]
    assert verdict["mean_overlap"] > 0.8


def test_the_judge_separates_random_notes_and_shuffled_steps_from_real_chorales(real_chorales):
    rows = judge.calibrate(MidiDomain(), real_chorales, seed=0)
    assert rows["real vs random notes"]["accuracy"] >= 0.95, rows["real vs random notes"]
    assert rows["real vs shuffled 16th steps"]["accuracy"] >= 0.9, rows["real vs shuffled 16th steps"]
    # The features that tell random notes apart are the ones a listener hears: dissonance and texture.
    features = rows["real vs random notes"]["features"]
    assert features["dissonance"]["generated_mean"] > features["dissonance"]["reference_mean"] + 0.1
    assert features["texture_4"]["generated_mean"] < features["texture_4"]["reference_mean"] - 0.3


def test_the_verdict_repeats_exactly_with_a_seed(real_chorales):
    domain = MidiDomain()
    random_side = controls(domain.judge_excerpts(real_chorales[:8]), seed=3)["random notes"]
    a = judge.judge_features(domain, [domain.judge_features(e) for e in random_side],
                             [domain.judge_features(e) for e in domain.judge_excerpts(real_chorales[8:])], seed=5)
    b = judge.judge_features(domain, [domain.judge_features(e) for e in random_side],
                             [domain.judge_features(e) for e in domain.judge_excerpts(real_chorales[8:])], seed=5)
    assert a["fold_accuracies"] == b["fold_accuracies"] and a["floor"] == b["floor"]


def _piece(notes: int, tempi: list[tuple[int, float]], tmp_path) -> pretty_midi.PrettyMIDI:
    """``notes`` one-beat C-major chords (three voices) in a MIDI file whose tempo map is ``(beat, bpm)`` changes,
    so the chords' times in seconds are uneven when the tempo changes; read back by pretty_midi."""
    import mido

    resolution = 480
    events = [(beat * resolution, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for beat, bpm in tempi]
    for i in range(notes):
        for p in (60, 64, 67):
            events.append((i * resolution, mido.Message("note_on", note=p, velocity=80)))
            events.append(((i + 1) * resolution - 1, mido.Message("note_off", note=p)))
    track, now = mido.MidiTrack(), 0
    for tick, message in sorted(events, key=lambda e: (e[0], e[1].type != "set_tempo", e[1].type == "note_on")):
        track.append(message.copy(time=tick - now))
        now = tick
    path = tmp_path / f"piece-{notes}-{len(tempi)}.mid"
    mido.MidiFile(ticks_per_beat=resolution, tracks=[track]).save(path)
    return pretty_midi.PrettyMIDI(str(path))


def test_excerpts_are_equal_in_beats_whatever_the_tempo(tmp_path):
    domain = MidiDomain()
    steady = _piece(40, [(0, 120.0)], tmp_path)  # 40 beats at 120 bpm: 20 s
    changing = _piece(40, [(0, 60.0), (10, 240.0)], tmp_path)  # the same beats, slow then fast: 17.5 s
    assert steady.get_end_time() != pytest.approx(changing.get_end_time(), abs=1.0)
    a, b = domain.judge_excerpts([steady]), domain.judge_excerpts([changing])
    assert len(a) == len(b) == 40 // EXCERPT_BEATS  # the 8 beats left over make no excerpt
    for x, y in zip(a, b):
        assert x.beats == y.beats == EXCERPT_BEATS
        assert np.allclose(x.start, y.start, atol=1e-3) and np.allclose(x.end, y.end, atol=1e-3)
        assert len(x.pitch) == 3 * EXCERPT_BEATS
        fx, fy = domain.judge_features(x), domain.judge_features(y)
        assert fx == pytest.approx(fy, abs=1e-6)
        assert fx["notes_per_beat"] == 3.0 and fx["texture_3"] == 1.0 and fx["onset_beat"] == 1.0
    # A sample shorter than an excerpt (its last beats silent) is one excerpt padded with silence, not dropped.
    short = domain.judge_excerpts([_piece(12, [(0, 120.0)], tmp_path)])
    assert len(short) == 1 and domain.judge_features(short[0])["texture_0"] == pytest.approx(4 / 16)


class _Featureless(Domain):
    name = "featureless"


def test_a_domain_without_features_gets_no_judge_not_an_error():
    verdict = judge.judge(_Featureless(), ["a", "b"], ["c", "d"])
    assert verdict["available"] is False and "no judge features" in verdict["reason"]
    assert "no judge features" in judge.calibrate(_Featureless(), ["a", "b"])["real vs real"]["reason"]


@pytest.fixture(scope="module")
def judged_run(trained_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("judged") / "run"
    shutil.copytree(trained_run, run)
    result = invoke("evaluate", run, "--split", "train", "--samples", 12, "--json")
    assert result.exit_code == 0, result.output
    return run, json.loads(result.output)


def test_evaluate_samples_json_holds_the_judge_figures(judged_run):
    _, result = judged_run
    verdict = result["judge"]
    assert verdict["available"] and verdict["unit"] == "16-beat excerpts"
    assert verdict["generated_excerpts"] == 12 and verdict["real_excerpts"] >= 12
    assert 0.0 <= verdict["accuracy"] <= 1.0 and math.isfinite(verdict["accuracy_spread"])
    assert verdict["folds"] == 5 and verdict["per_side"] == 12
    assert 0.0 <= verdict["floor"]["accuracy"] <= 1.0
    assert verdict["highlights"] == ["short_notes", "texture_4", "dissonance", "notes_per_beat"]
    for row in verdict["features"].values():
        assert {"overlap", "floor_overlap", "generated_mean", "reference_mean"} <= set(row)


def test_evaluate_prints_the_verdict_and_the_report_shows_it(judged_run, tmp_path):
    run, _ = judged_run
    text = invoke("evaluate", run, "--split", "train", "--samples", 6, "--quiet").output
    assert "judge (16-beat excerpts, 6 generated vs 6 real, 5 folds)" in text and "real vs real" in text
    assert "texture_4" in text
    page = invoke("report", run, "-o", tmp_path / "page", "--quiet")
    assert page.exit_code == 0, page.output
    html = (tmp_path / "page" / "index.html").read_text(encoding="utf-8")
    assert "Sample judge" in html and "real vs real (the floor)" in html and "dissonance" in html


def test_evaluate_on_a_domain_without_features_says_no_judge(judged_run, monkeypatch):
    monkeypatch.setattr(MidiDomain, "judge_features", lambda self, excerpt: {})
    result = invoke("evaluate", judged_run[0], "--split", "train", "--samples", 3, "--json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)["judge"]
    assert verdict == {"available": False, "reason": verdict["reason"]} and "no judge" in verdict["reason"]
    text = invoke("evaluate", judged_run[0], "--split", "train", "--samples", 3, "--quiet").output
    assert "judge: domain 'midi' gives no judge features" in text


def test_every_installed_domain_has_a_judge_with_controls():
    from seqstudio import registry

    names = registry.names("domain")
    assert {"midi", "strokes", "text"} <= set(names)
    for name in names:
        domain = registry.load_domain(name)()
        excerpts = domain.judge_excerpts(domain.example_samples())
        assert excerpts, name
        rows = [domain.judge_features(e) for e in excerpts]
        assert rows[0] and all(set(r) == set(rows[0]) for r in rows), name
        assert all(math.isfinite(v) for r in rows for v in r.values()), name
        assert set(domain.judge_highlights) <= set(rows[0]), name
        made = domain.judge_controls(excerpts, seed=0)
        assert len(made) >= 2 and all(len(v) == len(excerpts) for v in made.values()), name
        for control in made.values():
            assert all(set(domain.judge_features(e)) == set(rows[0]) for e in control), name
