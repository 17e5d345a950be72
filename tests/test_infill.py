"""Harmonising a melody and filling bars (issue 29): ``generate --harmonize / --infill``, ``seqstudio.harmonize``,
``seqstudio.infill``, the voices codec and the coconet backend's infilling contract."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import pytest
import torch
from click.testing import CliRunner

import seqstudio
from seqstudio import registry
from seqstudio.backends.base import SamplingOptions
from seqstudio.cli import main
from seqstudio_midi.domain import MidiDomain
from seqstudio_midi.voices import VoiceCodec

from conftest import tiny_backend_args

INFILL_BACKENDS = [name for name in registry.names("backend") if registry.load_backend(name).can_infill]


def _tiny_voices_run(chorales: Path, run_dir: Path, backend: str) -> Path:
    result = CliRunner().invoke(main, ["train", str(chorales), "--run-dir", str(run_dir), "--codec", "voices",
                                       "--backend", backend, *tiny_backend_args(backend), "--max-steps", "4",
                                       "--batch-size", "8", "--set", "train.valid_every=2", "--set",
                                       "train.samples=0", "--seed", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="session")
def voices_run(chorales, tmp_path_factory) -> Path:
    return _tiny_voices_run(chorales, tmp_path_factory.mktemp("runs") / "coconet", "coconet")


def _notes(inst) -> list[tuple]:
    return [(n.pitch, n.start, n.end) for n in inst.notes]


def _melody(path: Path, notes) -> Path:
    """A one-line MIDI file of ``(pitch, start, end)`` notes in quarter notes at 120 bpm."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    line = pretty_midi.Instrument(program=0, name="melody")
    line.notes = [pretty_midi.Note(velocity=80, pitch=p, start=s / 2, end=e / 2) for p, s, e in notes]
    pm.instruments.append(line)
    pm.write(str(path))
    return path


# A hymn-like line with a repeated note (held vs struck again must survive) and a rest.
TUNE = [(67, 0, 1), (67, 1, 2), (69, 2, 3), (71, 3, 4), (72, 4, 6), (71, 6, 7), (69, 7, 8), (67, 9, 12)]


def test_the_voices_codec_round_trips_the_chorales_and_writes_four_named_voices(chorales):
    domain, codec = MidiDomain(), VoiceCodec()
    files = sorted(chorales.glob("*.mid"))
    assert len(files) == 8
    for path in files:
        sample = domain.read(path)
        x = codec.encode(sample)
        back = codec.decode_piece(x, domain.provenance(sample, path))
        assert [inst.name for inst in back.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
        assert torch.equal(codec.encode(back), x), path.name
        soprano = [inst for inst in sample.instruments if inst.name == "Soprano"][0]
        assert [n.pitch for n in back.instruments[0].notes] == [n.pitch for n in soprano.notes]


def test_the_voices_codec_ranks_pitches_when_the_parts_are_not_separate():
    codec = VoiceCodec()
    cadence = MidiDomain().example_samples()[1]  # one piano part: chords under a melody
    x = codec.encode(cadence)
    pitch = x[:, 0::2]
    sounding = pitch > 0
    # Voices are ordered top to bottom at every step, and a voice is silent only below the sounding ones.
    assert bool(((pitch[:, :-1] >= pitch[:, 1:]) | ~sounding[:, 1:]).all())
    assert bool((sounding[:, :-1] | ~sounding[:, 1:]).all())
    assert int(sounding[0].sum()) == 4  # melody + a three-note chord


def test_a_melody_goes_into_the_asked_voice(tmp_path):
    codec = VoiceCodec()
    sample = MidiDomain().read(_melody(tmp_path / "m.mid", [(48, 0, 2), (50, 2, 4)]))
    x = codec.encode_line(sample, "bass")
    assert x.shape == (16, 8)
    assert x[:, 6].tolist() == [48 - 36 + 1] * 8 + [50 - 36 + 1] * 8
    assert bool((x[:, :6] == 0).all())


def test_coconet_fills_only_the_masked_positions():
    cls = registry.load_backend("coconet")
    codec = VoiceCodec()
    torch.manual_seed(0)
    model = cls(codec.spec, cls.tiny_config()).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 24, codec.spec.storage_width)
    x[..., 0::2] = torch.randint(0, 50, (2, 24, 4)).float()
    x[..., 1::2] = torch.randint(0, 2, (2, 24, 4)).float()
    known = torch.rand(2, 24, 8, generator=g) < 0.5
    out = model.infill(x, known, SamplingOptions(), generator=g)
    columns = known  # two parts per voice, one storage column each: a part's mask is its column's
    assert torch.equal(out[columns], x[columns])
    assert not torch.equal(out[~columns], x[~columns])  # something was drawn
    assert torch.equal(model.infill(x, torch.ones_like(known), generator=g), x)  # nothing masked: the input
    nll = model.infill_nll(x, known, generator=g)
    assert nll.shape == (2,) and bool((nll > 0).all())


@pytest.mark.parametrize("backend", INFILL_BACKENDS)
def test_every_capable_backend_harmonises_through_the_cli(backend, chorales, tmp_path):
    assert len(INFILL_BACKENDS) >= 1
    run = _tiny_voices_run(chorales, tmp_path / "run", backend)
    melody = _melody(tmp_path / "tune.mid", TUNE)
    result = CliRunner().invoke(main, ["generate", str(run), "--harmonize", str(melody), "-n", "2", "-o",
                                       str(tmp_path / "out"), "--seed", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "out").glob("harmonized-*.mid"))
    assert len(files) == 2
    given = _notes(pretty_midi.PrettyMIDI(str(melody)).instruments[0])
    for path in files:
        written = pretty_midi.PrettyMIDI(str(path))
        assert [inst.name for inst in written.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
        assert _notes(written.instruments[0]) == given  # the melody, note for note (the repeated G included)
        assert all(inst.notes for inst in written.instruments[1:])  # the model wrote the other voices


def test_harmonize_as_the_bass_keeps_the_line_there(voices_run, tmp_path):
    run = seqstudio.load(voices_run)
    line = [(p - 19, s, e) for p, s, e in TUNE]
    out = seqstudio.harmonize(run, _melody(tmp_path / "bass.mid", line), voice="bass", n=1, seed=0)
    assert [inst.name for inst in out[0].instruments][-1] == "Bass"
    assert [n.pitch for n in out[0].instruments[-1].notes] == [p for p, _, _ in line]


def test_infill_changes_only_the_asked_bars(voices_run, chorales, tmp_path):
    run = seqstudio.load(voices_run)
    path = sorted(chorales.glob("*.mid"))[0]
    x = run.codec.encode(run.domain.read(path))
    per_bar = run.codec.steps_per_bar
    outs = seqstudio.infill(run, path, "2-3", n=2, seed=0)
    for i, sample in enumerate(outs):
        run.domain.write(sample, tmp_path / f"f{i}.mid")
        y = run.codec.encode(run.domain.read(tmp_path / f"f{i}.mid"))  # what the written file holds
        assert y.shape == x.shape
        assert torch.equal(y[:per_bar, 0::2], x[:per_bar, 0::2])  # pitches before the bars: as given
        assert torch.equal(y[3 * per_bar :], x[3 * per_bar :])  # after them: pitches and onsets as given
    assert any(not torch.equal(run.codec.encode(s)[per_bar : 3 * per_bar], x[per_bar : 3 * per_bar])
               for s in outs)


def test_an_empty_mask_returns_the_input(voices_run, chorales):
    run = seqstudio.load(voices_run)
    path = sorted(chorales.glob("*.mid"))[1]
    x = run.codec.encode(run.domain.read(path))
    (out,) = seqstudio.infill(run, path, torch.zeros(x.shape[0], len(run.codec.spec.parts), dtype=torch.bool))
    assert torch.equal(run.codec.encode(out), x)


def _one_error_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_a_run_trained_without_the_objective_refuses_in_one_line(trained_run, tmp_path):
    melody = _melody(tmp_path / "tune.mid", TUNE)
    result = CliRunner().invoke(main, ["generate", str(trained_run), "--harmonize", str(melody), "-o",
                                       str(tmp_path / "out")])
    line = _one_error_line(result)
    assert "cannot fill in" in line and "--backend coconet" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["bars out of range", "chords in the melody", "empty file", "bad bars"])
def test_bad_input_gives_one_line(case, voices_run, chorales, tmp_path):
    piece = sorted(chorales.glob("*.mid"))[0]
    args = {"bars out of range": ["--infill", piece, "--bars", "40-60"],
            "bad bars": ["--infill", piece, "--bars", "five"],
            "chords in the melody": ["--harmonize", piece],
            "empty file": ["--harmonize", tmp_path / "empty.mid"]}[case]
    (tmp_path / "empty.mid").write_bytes(b"")
    result = CliRunner().invoke(main, ["generate", str(voices_run), *map(str, args), "-o", str(tmp_path / "out")])
    line = _one_error_line(result)
    assert {"bars out of range": "outside the piece", "bad bars": "FIRST-LAST",
            "chords in the melody": "sounding together", "empty file": "empty file"}[case] in line
    assert not (tmp_path / "out").exists()


def test_the_fill_options_are_checked_before_anything_runs(voices_run, tmp_path):
    result = CliRunner().invoke(main, ["generate", str(voices_run), "--bars", "1-2"])
    assert result.exit_code == 2 and "--bars is for --infill" in result.output
    melody = _melody(tmp_path / "tune.mid", TUNE)
    result = CliRunner().invoke(main, ["generate", str(voices_run), "--harmonize", str(melody), "--voice", "oboe",
                                       "-o", str(tmp_path / "out")])
    assert "no voice 'oboe'" in _one_error_line(result)


def test_ancestral_sampling_draws_each_hidden_position_once():
    cls = registry.load_backend("coconet")
    codec = VoiceCodec()
    torch.manual_seed(0)
    config = cls.tiny_config()
    config.sampler = "ancestral"
    model = cls(codec.spec, config).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 12, codec.spec.storage_width)
    x[..., 0::2] = torch.randint(1, 50, (2, 12, 4)).float()
    known = torch.rand(2, 12, 8, generator=g) < 0.5
    passes = []
    original = model.params
    model.params = lambda *args, **kwargs: passes.append(1) or original(*args, **kwargs)
    out = model.infill(x, known, SamplingOptions(), generator=g)
    assert len(passes) == int((~known).reshape(2, -1).sum(1).max())  # one pass per hidden position
    assert torch.equal(out[known], x[known])
    with pytest.raises(seqstudio.ConfigError, match="backend.sampler"):
        cls.Config(sampler="beam")
