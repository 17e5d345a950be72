"""MIDI output keeps what the input had where the codecs can carry it (issue 17, part 5): the source tempo and the
dominant instrument program, recorded per piece by both readers alike, written back on a round trip and on a
``--prime`` continuation; generated samples get the training pieces' median tempo and most common program;
``codec.tempo`` / ``codec.program`` set at training win; the decode-only options stay out of the cache key."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import pretty_midi
import pytest
from click.testing import CliRunner

from seqstudio import api, data, registry
from seqstudio.cli import main

from conftest import TINY


def _write_two_tracks(path: Path, tempo: float, programs=(40, 41), counts=(24, 8), drums: bool = True) -> None:
    """Two pitched tracks (``counts`` notes each, so ``programs[0]`` dominates when it has more) and a drum
    track, at ``tempo``; 24 beats long, so every codec cuts at least one default window."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    beat = 60.0 / tempo
    tracks = [pretty_midi.Instrument(program=p) for p in programs]
    for inst, n, low in zip(tracks, counts, (60, 43)):
        step = 24.0 / n
        inst.notes = [pretty_midi.Note(80, low + (i * 5) % 12, i * step * beat, (i * step + step * 0.9) * beat)
                      for i in range(n)]
    pm.instruments.extend(tracks)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True)
        kit.notes = [pretty_midi.Note(100, 36, i * beat, (i + 0.1) * beat) for i in range(24)]
        pm.instruments.append(kit)
    pm.write(str(path))


def _write_with_mido(path: Path, track0: list, track1: list, tpb: int = 480) -> None:
    """A type-1 file from (absolute tick, mido message) lists: meta events in track 0 or, against the
    standard, in the note track (pretty_midi then ignores them)."""
    mid = mido.MidiFile(ticks_per_beat=tpb)
    for events in (track0, track1):
        track, now = mido.MidiTrack(), 0
        for tick, message in sorted(events, key=lambda e: e[0]):
            track.append(message.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(str(path))


def _notes(tpb: int, beats: int, program: int = 0) -> list:
    events = [(0, mido.Message("program_change", program=program, channel=0))]
    for b in range(beats):
        events += [(b * tpb, mido.Message("note_on", note=60 + b % 7, velocity=80, channel=0)),
                   (b * tpb + tpb // 2, mido.Message("note_off", note=60 + b % 7, velocity=0, channel=0))]
    return events


def _tempo(bpm: float, tick: int = 0):
    return tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


def _tempo_of(path: Path) -> float:
    times, tempi = pretty_midi.PrettyMIDI(str(path)).get_tempo_changes()
    assert len(tempi) == 1
    return float(tempi[0])


def _programs_of(path: Path) -> list[int]:
    return [inst.program for inst in pretty_midi.PrettyMIDI(str(path)).instruments]


@pytest.fixture(scope="module")
def tempo_files(tmp_path_factory) -> Path:
    """Files whose tempo and program the two readers must agree on, named by what they should record."""
    d = tmp_path_factory.mktemp("provenance")
    _write_two_tracks(d / "t90-p40.mid", 90)
    _write_two_tracks(d / "t132-p41.mid", 132, counts=(6, 30))
    _write_two_tracks(d / "t93.75-p33.mid", 93.75, programs=(33, 33), counts=(10, 10), drums=False)
    tpb = 480
    # 90 bpm for 10 beats, then 140 for the last 2: the piece is written back at 90
    _write_with_mido(d / "t90-p0-change.mid", [_tempo(90), _tempo(140, 10 * tpb)], _notes(tpb, 12))
    # no tempo event: MIDI's 120
    _write_with_mido(d / "t120-p5-none.mid", [], _notes(tpb, 12, program=5))
    # two tempo events at tick 0: the last one holds (pretty_midi's rule; symusic's order of events at one tick
    # is not the file's, so the fast path leaves the file to pretty_midi)
    _write_with_mido(d / "t100-p0-twice-slow.mid", [_tempo(70), _tempo(100)], _notes(tpb, 12))
    # a tempo event in the note track: pretty_midi (the slow path) ignores it, so the fast path must not take it
    _write_with_mido(d / "t120-p0-badtrack-slow.mid", [], [_tempo(60)] + _notes(tpb, 12))
    return d


def test_both_readers_record_the_same_tempo_and_program(tempo_files, chorales):
    """What the loader stores with each piece (``Domain.provenance``) is the same whichever reader took the
    file, and is what the file says: the tempo held longest, the program of the most notes."""
    from seqstudio_midi.fastread import NoteScore

    domain = registry.load_domain("midi")()
    paths = sorted(tempo_files.glob("*.mid"))
    for f in paths:
        tempo, program = f.stem.split("-")[:2]
        fast, slow = domain.read_for_encoding(f), domain.read(f)
        assert isinstance(fast, NoteScore) == ("slow" not in f.name), f.name
        expected = {"_tempo": tempo[1:], "_program": program[1:]}
        assert domain.provenance(fast, f) == domain.provenance(slow, f) == expected, f.name
    for f in sorted(chorales.glob("*.mid")):  # music21's conductor track: 120 bpm unless marked, choir = piano
        fast = domain.read_for_encoding(f)
        assert isinstance(fast, NoteScore)
        assert domain.provenance(fast, f) == domain.provenance(domain.read(f), f)


@pytest.mark.parametrize("codec_name", ["pianoroll", "events"])
def test_a_round_trip_keeps_tempo_and_dominant_program(codec_name, tempo_files, tmp_path):
    """file -> tensor -> file (``decode_tensor`` with the source) writes the source's tempo and its dominant
    program; drums stay dropped, the two pitched tracks are one part."""
    domain = registry.load_domain("midi")()
    codec = data.make_codec(domain, codec_name, {})
    for name, tempo, program in [("t90-p40.mid", 90, 40), ("t132-p41.mid", 132, 41), ("t93.75-p33.mid", 93.75, 33)]:
        src = tempo_files / name
        sample = domain.read(src)
        out = codec.decode_piece(codec.encode(sample), domain.provenance(sample, src))
        domain.write(out, tmp_path / name)
        assert _tempo_of(tmp_path / name) == pytest.approx(tempo, abs=0.01)
        assert _programs_of(tmp_path / name) == [program]
        # the notes land where they were, in seconds (within a grid step), because the tempo is the source's
        ends = max(n.end for i in sample.instruments if not i.is_drum for n in i.notes)
        step = 60.0 / tempo / codec.config.steps_per_quarter
        assert pretty_midi.PrettyMIDI(str(tmp_path / name)).get_end_time() == pytest.approx(ends, abs=step)
    # a fixed codec.tempo / codec.program still wins over the piece's own
    fixed = data.make_codec(domain, codec_name, {"tempo": 96.0, "program": 0})
    sample = domain.read(tempo_files / "t90-p40.mid")
    fixed_out = fixed.decode_piece(fixed.encode(sample), domain.provenance(sample, tempo_files / "t90-p40.mid"))
    assert fixed_out.get_tempo_changes()[1].tolist() == [96.0] and fixed_out.instruments[0].program == 0


def test_decode_only_options_are_not_in_the_cache_key():
    """codec.tempo and codec.program change only decoding: the same encodings serve any value of them."""
    domain = registry.load_domain("midi")()
    for codec_name in ("pianoroll", "events"):
        keys = {data.codec_key("midi", data.make_codec(domain, codec_name, options), (0.1, 0.1))
                for options in ({}, {"tempo": 96.0}, {"program": 12, "tempo": 60.0})}
        assert len(keys) == 1
    other = data.codec_key("midi", data.make_codec(domain, "pianoroll", {"steps_per_quarter": 2}), (0.1, 0.1))
    assert other not in keys


@pytest.mark.parametrize("options", ["--set codec.program=128", "--set codec.tempo=-5", "--set codec.tempo=5000"])
def test_bad_tempo_or_program_is_one_line(options, tmp_path):
    _write_two_tracks(tmp_path / "a.mid", 90)
    result = CliRunner().invoke(main, ["train", str(tmp_path), "--run-dir", str(tmp_path / "run"),
                                       *options.split(), "--max-steps", "1", "--quiet"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output and ("tempo" in result.output or "program" in result.output)


@pytest.fixture(scope="module")
def multitrack(tmp_path_factory) -> Path:
    """Training pieces at 80, 90, 90, 100 and 150 bpm (median 90), program 40 dominant in four of five."""
    root = tmp_path_factory.mktemp("multitrack") / "data"
    for split, tempi in (("train", (80, 90, 90, 100, 150)), ("valid", (90,)), ("test", (90,))):
        (root / split).mkdir(parents=True)
        for i, tempo in enumerate(tempi):
            counts = (8, 24) if (split, i) == ("train", 4) else (24, 8)
            _write_two_tracks(root / split / f"{split}{i}.mid", tempo, counts=counts)
    return root


def _train(data_dir: Path, run_dir: Path, *extra: str) -> None:
    result = CliRunner().invoke(main, ["train", str(data_dir), "--run-dir", str(run_dir), "--max-steps", "2",
                                       "--seed", "1", *TINY, *extra])
    assert result.exit_code == 0, result.output


def test_generated_samples_get_the_training_tempo_and_program(multitrack, tempo_files, tmp_path):
    """A run trained on multitrack pieces writes its samples at the training pieces' median tempo with their
    most common program (said by ``info``); a ``--prime`` continuation at the prime's own tempo and program;
    the run's own round trip keeps a piece's tempo."""
    run_dir = tmp_path / "run"
    _train(multitrack, run_dir)
    state = json.loads((run_dir / "codec.json").read_text())["_decoding"]
    assert state == {"tempo": 90.0, "program": 40}
    written_at_training = sorted((run_dir / "samples").glob("*.mid"))  # written at the end of training
    assert len(written_at_training) == 2  # train.samples=2 (TINY)
    for f in written_at_training:
        assert _tempo_of(f) == pytest.approx(90, abs=0.01) and _programs_of(f) in ([40], [])
    runner = CliRunner()
    result = runner.invoke(main, ["generate", str(run_dir), "-n", "3", "-o", str(tmp_path / "out"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    written = sorted((tmp_path / "out").glob("*.mid"))
    assert len(written) == 3
    for f in written:
        assert _tempo_of(f) == pytest.approx(90, abs=0.01) and _programs_of(f) in ([40], [])
    result = runner.invoke(main, ["generate", str(run_dir), "-n", "2", "-o", str(tmp_path / "primed"),
                                  "--prime", str(tempo_files / "t132-p41.mid"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    primed = sorted((tmp_path / "primed").glob("*.mid"))
    assert len(primed) == 2
    for f in primed:
        assert _tempo_of(f) == pytest.approx(132, abs=0.01) and _programs_of(f) == [41]
    result = runner.invoke(main, ["generate", str(run_dir), "--interpolate", str(tempo_files / "t132-p41.mid"),
                                  str(tempo_files / "t90-p40.mid"), "--steps", "2", "-o", str(tmp_path / "interp")])
    assert result.exit_code == 0, result.output
    interpolated = sorted((tmp_path / "interp").glob("*.mid"))
    assert len(interpolated) == 2
    for f in interpolated:  # the path starts at the first file: its tempo and program
        assert _tempo_of(f) == pytest.approx(132, abs=0.01) and _programs_of(f) in ([41], [])
    info = runner.invoke(main, ["info", str(run_dir)])
    assert info.exit_code == 0 and "tempo 90" in info.output and "program 40" in info.output, info.output
    run = api.load(run_dir)
    src = multitrack / "train" / "train4.mid"  # 150 bpm, program 41 dominant
    back = api.decode_tensor(run, api.encode_file(run, src), source=src)
    assert back.get_tempo_changes()[1].tolist() == [150.0] and back.instruments[0].program == 41


def test_a_tempo_set_for_the_run_wins(multitrack, tmp_path):
    """``--set codec.tempo=96 --set codec.program=0`` at training: every sample is written at 96 bpm on a piano,
    whatever the training pieces had; the encodings come from the cache the default run filled (decode-only
    options are not in its key)."""
    _train(multitrack, tmp_path / "default", "--set", "train.samples=0")
    run_dir = tmp_path / "run"
    _train(multitrack, run_dir, "--set", "codec.tempo=96", "--set", "codec.program=0")
    result = CliRunner().invoke(main, ["generate", str(run_dir), "-n", "2", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    generated = sorted((tmp_path / "out").glob("*.mid")) + sorted((run_dir / "samples").glob("*.mid"))
    assert len(generated) == 2 + 2  # -n 2, and train.samples=2 (TINY)
    for f in generated:
        assert _tempo_of(f) == pytest.approx(96, abs=0.01) and _programs_of(f) in ([0], [])
    report = json.loads(CliRunner().invoke(main, ["cache", "info", "--json"]).output)
    mine = [d for d in report["datasets"] if any(str(multitrack.resolve()) in src for src in d["sources"])]
    assert len(mine) == 1, mine  # one set of encodings for both runs


def test_a_damaged_decoding_state_is_one_line(multitrack, tmp_path):
    """codec.json's ``_decoding`` from elsewhere (a tempo that is no number) is refused at load, naming the file."""
    import shutil

    run_dir = tmp_path / "run"
    _train(multitrack, run_dir, "--set", "train.samples=0")
    for bad in ({"tempo": "fast"}, {"tempo": -3}, {"program": 300}, {"tempo": 90, "what": 1}):
        broken = tmp_path / f"broken-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(run_dir, broken)
        state = json.loads((broken / "codec.json").read_text())
        (broken / "codec.json").write_text(json.dumps({**state, "_decoding": bad}))
        result = CliRunner().invoke(main, ["generate", str(broken), "-n", "1", "-o", str(tmp_path / "x")])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "codec.json" in result.output and "decoding state" in result.output, result.output
