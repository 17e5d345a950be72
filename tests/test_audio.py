"""Audio, measured: `seqstudio render FILE.mid -o out.wav` and `generate --audio` through the real CLI, and the
WAV files read back and analysed (length, loudness, the pitch of every note by FFT), not judged by ear."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from click.testing import CliRunner

from conftest import invoke
from seqstudio import registry
from seqstudio.cli import main

pytest.importorskip("tinysoundfont", reason="the synthesizer is installed by `make install` (pip --no-deps)")
from seqstudio_midi import audio  # noqa: E402

SCALE = [60, 62, 64, 65, 67, 69, 71, 72]  # C major, C4..C5
NOTE = 0.5  # seconds per note at 120 bpm (quarter notes)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples in [-1, 1] and the sample rate."""
    with wave.open(str(path), "rb") as f:
        assert f.getsampwidth() == 2
        rate, channels = f.getframerate(), f.getnchannels()
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return pcm.reshape(-1, channels).mean(axis=1), rate


def write_midi(path: Path, notes, program: int = 0, drum: bool = False) -> Path:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=program, is_drum=drum)
    inst.notes = [pretty_midi.Note(velocity=90, pitch=p, start=s, end=s + d) for p, s, d in notes]
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def scale_notes():
    return [(p, i * NOTE, NOTE * 0.9) for i, p in enumerate(SCALE)]


def fundamental(segment: np.ndarray, rate: int) -> float:
    """The fundamental frequency by harmonic product spectrum (a piano's 2nd harmonic can be its loudest
    partial, so the plain FFT peak may name the octave above)."""
    n = 1 << 16  # zero-padded: 0.67 Hz bins
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    band = (freqs >= 50) & (freqs <= 2000)
    hps = spectrum.copy()
    for k in (2, 3):
        hps[: len(spectrum) // k] *= spectrum[::k][: len(spectrum) // k]
    return float(freqs[band][np.argmax(hps[band])])


def test_c_major_scale_wav_has_the_right_length_loudness_and_pitches(tmp_path):
    mid = write_midi(tmp_path / "scale.mid", scale_notes())
    result = invoke("render", mid, "-o", tmp_path / "scale.wav")
    assert result.exit_code == 0, result.output
    x, rate = read_wav(tmp_path / "scale.wav")
    end = pretty_midi.PrettyMIDI(str(mid)).get_end_time()
    assert rate == audio.SAMPLE_RATE
    assert abs(len(x) / rate - (end + audio.RELEASE_SECONDS)) < 0.01  # the MIDI's end + the release tail
    assert np.abs(x).max() <= audio.PEAK_CEILING + 1e-3  # normalised below full scale: never clipped
    assert np.abs(x).max() > 0.1  # and not left quiet
    for i, pitch in enumerate(SCALE):
        segment = x[int((i * NOTE + 0.05) * rate): int((i * NOTE + 0.40) * rate)]
        rms = float(np.sqrt(np.mean(segment ** 2)))
        assert rms > 0.01, f"note {i} ({pitch}) is silent: rms {rms}"
        f0, expected = fundamental(segment, rate), pretty_midi.note_number_to_hz(pitch)
        cents = 1200 * np.log2(f0 / expected)
        assert abs(cents) < 50, f"note {pitch}: heard {f0:.1f} Hz, expected {expected:.1f} Hz ({cents:+.0f} cents)"
    tail = x[int((end + 0.8) * rate):]
    assert np.sqrt(np.mean(tail ** 2)) < 0.01  # the release has died away by the end of the file


def _with_drums(drum: bool) -> pretty_midi.PrettyMIDI:
    """A bass note, then kick / snare hits from 1 s on, on channel 10 when ``drum``."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    bass = pretty_midi.Instrument(program=32)
    bass.notes = [pretty_midi.Note(velocity=60, pitch=40, start=0.0, end=0.3)]
    kit = pretty_midi.Instrument(program=0, is_drum=drum)
    kit.notes = [pretty_midi.Note(velocity=110, pitch=36 if i % 2 == 0 else 38, start=1.0 + 0.25 * i,
                                  end=1.1 + 0.25 * i) for i in range(8)]
    pm.instruments += [bass, kit]
    return pm


def test_a_drum_track_on_channel_10_renders_non_silent_and_unlike_a_piano(tmp_path):
    for drum in (True, False):
        _with_drums(drum).write(str(tmp_path / f"{drum}.mid"))
        result = invoke("render", tmp_path / f"{drum}.mid", "-o", tmp_path / f"{drum}.wav")
        assert result.exit_code == 0, result.output
    xd, rate = read_wav(tmp_path / "True.wav")
    xp, _ = read_wav(tmp_path / "False.wav")
    hits = slice(rate, 3 * rate)
    assert np.sqrt(np.mean(xd[hits] ** 2)) > 0.01
    assert abs(np.corrcoef(xd[hits], xp[hits])[0, 1]) < 0.5  # the kit, not pitches 36/38 on a piano
    only_drums = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    only_drums.instruments.append(_with_drums(True).instruments[1])
    assert np.sqrt(np.mean(audio.synthesize(only_drums) ** 2)) > 0.01  # a drum-only file too (library call)


def test_program_numbers_choose_the_instrument(tmp_path):
    notes = [(60, 0.0, 1.0)]
    spectra = []
    for program in (0, 40, 73):  # piano, violin, flute
        f = write_midi(tmp_path / f"p{program}.mid", notes, program=program)
        assert invoke("render", f, "-o", f.with_suffix(".wav")).exit_code == 0
        x, rate = read_wav(f.with_suffix(".wav"))
        s = np.abs(np.fft.rfft(x[int(0.1 * rate): int(0.9 * rate)]))
        spectra.append(s / np.linalg.norm(s))
    for a in range(3):
        for b in range(a + 1, 3):
            assert float(spectra[a] @ spectra[b]) < 0.95  # different timbres


def test_soundfont_option_overrides_and_a_bad_one_is_one_clear_line(tmp_path):
    mid = write_midi(tmp_path / "a.mid", [(60, 0.0, 0.5)])
    ok = invoke("render", mid, "-o", tmp_path / "a.wav", "--soundfont", audio.default_soundfont())
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "not-a-soundfont.sf2"
    bad.write_bytes(b"RIFF0000junk")
    result = CliRunner().invoke(main, ["render", str(mid), "-o", str(tmp_path / "b.wav"), "--soundfont", str(bad)])
    assert result.exit_code == 1
    assert "soundfont" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["render", str(mid), "-o", str(tmp_path / "b.flac")])
    assert result.exit_code == 1 and ".wav" in result.output


def test_missing_synthesizer_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)  # import fails
    mid = write_midi(tmp_path / "a.mid", [(60, 0.0, 0.5)])
    result = CliRunner().invoke(main, ["render", str(mid), "-o", str(tmp_path / "a.wav")])
    assert result.exit_code == 1
    assert "tinysoundfont" in result.output and "Traceback" not in result.output


def test_loudness_is_normalised_whatever_the_velocity(tmp_path):
    levels = []
    for velocity in (20, 120):
        pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        inst = pretty_midi.Instrument(program=0)
        inst.notes = [pretty_midi.Note(velocity=velocity, pitch=p, start=0.0, end=1.0) for p in (48, 60, 64, 67)]
        pm.instruments.append(inst)
        x = audio.synthesize(pm)
        levels.append(float(np.sqrt(np.mean(x ** 2))))
        assert np.abs(x).max() <= audio.PEAK_CEILING + 1e-6
    assert abs(20 * np.log10(levels[0] / levels[1])) < 3  # within 3 dB of each other


def test_generate_audio_writes_a_wav_beside_each_midi(trained_run, tmp_path):
    out = tmp_path / "out"
    result = invoke("generate", trained_run, "-n", 3, "-o", out, "--seed", 0, "--audio", "--quiet")
    assert result.exit_code == 0, result.output
    mids = sorted(out.glob("*.mid"))
    assert len(mids) == 3
    for mid in mids:
        x, rate = read_wav(mid.with_suffix(".wav"))
        end = pretty_midi.PrettyMIDI(str(mid)).get_end_time()
        assert abs(len(x) / rate - (end + audio.RELEASE_SECONDS)) < 0.01


def test_an_abc_tune_renders_through_its_midi_with_the_midi_plugins_synthesizer(tmp_path):
    text = registry.load_domain("text")()
    tune = next(s for s in text.example_samples() if s.format == "abc")  # 16 quarter notes C D E F G A B c ...
    text.render_audio(tune, tmp_path / "tune.wav")
    x, rate = read_wav(tmp_path / "tune.wav")
    assert np.sqrt(np.mean(x ** 2)) > 0.01
    first = x[int(0.05 * rate): int(0.4 * rate)]  # the tune's first note, C4 (music21: 120 bpm by default)
    assert abs(1200 * np.log2(fundamental(first, rate) / pretty_midi.note_number_to_hz(60))) < 50
    assert not text.has_audio(text.example_samples()[0])  # plain text has no audio


def test_a_piece_longer_than_the_limit_is_refused_in_one_line(tmp_path):
    mid = write_midi(tmp_path / "long.mid", [(60, 0.0, audio.MAX_SECONDS + 5.0)])
    result = CliRunner().invoke(main, ["render", str(mid), "-o", str(tmp_path / "long.wav")])
    assert result.exit_code == 1 and "minutes" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "long.wav").exists()


def test_generate_audio_and_report_for_a_text_run_trained_on_abc_tunes(tmp_path):
    """Generated ABC tunes get their WAV through the midi plugin; one that does not parse gets a warning, and
    `generate` still succeeds. The page shows each tune's text."""
    from conftest import tiny_backend_args

    data = tmp_path / "tunes"
    data.mkdir()
    bodies = ["CDEF | GABc | cBAG | FEDC |]", "GABc | dcBA | G2 E2 | C4 |]", "cdec | BAGF | E2 D2 | C4 |]",
              "EFGA | B2 c2 | BAGF | E4 |]"] * 3
    for i, body in enumerate(bodies):
        (data / f"t{i:02d}.abc").write_text(f"X:{i + 1}\nM:4/4\nL:1/4\nK:C\n{body}\n")
    run = tmp_path / "run"
    result = invoke("train", data, "--domain", "text", "--backend", "rnn", "--run-dir", run, "--max-steps", 3,
                    "--seed", 0, *tiny_backend_args("rnn"), "--set", "train.workers=1", "--set",
                    "train.samples=0", "--batch-size", 4, "--quiet")
    assert result.exit_code == 0, result.output
    prime = tmp_path / "prime.abc"
    prime.write_text("X:1\nM:4/4\nL:1/4\nK:C\nCDEF | GABc | cBAG | FEDC |\n")
    out = tmp_path / "out"
    result = invoke("generate", run, "-n", 3, "--prime", prime, "--length", 2, "-o", out, "--seed", 0, "--audio",
                    "--report", "--quiet")
    assert result.exit_code == 0, result.output
    tunes = sorted(out.glob("*.abc"))
    assert len(tunes) == 3
    played = [t for t in tunes if t.with_suffix(".wav").exists()]
    for tune in set(tunes) - set(played):
        assert f"no audio for {tune.stem}" in result.output
    assert played, "no generated tune was played (each is the valid prime and 2 more characters)"
    for tune in played:
        x, rate = read_wav(tune.with_suffix(".wav"))
        assert np.sqrt(np.mean(x ** 2)) > 0.01
    page = (out / "report" / "index.html").read_text()
    assert page.count("<pre>") == 3 and page.count("<audio") == len(played)
