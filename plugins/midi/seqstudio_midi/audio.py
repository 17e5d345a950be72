"""MIDI to audio: a sample-based General MIDI synthesizer, offline, from pip packages only.

Why this synthesizer: ``tinysoundfont`` (TinySoundFont, a single C file, in a manylinux wheel) plays SoundFont
(.sf2/.sf3) samples with their envelopes and loops and needs no system library; FluidSynth (midi2audio,
pretty_midi.fluidsynth) needs ``libfluidsynth`` and a soundfont found on disk, which is what users keep fighting.
The soundfont is the General MIDI ``TimGM6mb.sf2`` that pretty_midi's wheel already ships (6 MB), so nothing is
downloaded at run time; ``soundfont=`` overrides it. (symusic 0.6.0's synthesizer was tried too: its ``render``
fails to return its buffer to Python in the only wheel available here.)

The events are sequenced here, not by tinysoundfont's MIDI reader: the sample is a ``PrettyMIDI`` already, so
its notes, programs, drum flag, sustain pedal and pitch bends are sent to the synthesizer's channels in time
order and the audio between two events is generated in one call. Every melodic instrument gets its own channel
(channel 10, index 9, is the drum kit's) while there are free ones; beyond 15 instruments of distinct programs,
channels are shared by program.

Loudness: the mix is scaled to a target RMS (-20 dBFS) unless that would push a peak past -1 dBFS, in which
case the peak sets the gain: normalised, never clipped. WAV is written with the standard library (16-bit PCM).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np

from seqstudio.errors import ConfigError, DataError

SAMPLE_RATE = 44_100
RELEASE_SECONDS = 1.0  # audio kept after the last note ends, for its release tail
TARGET_RMS = 10 ** (-20 / 20)
PEAK_CEILING = 10 ** (-1 / 20)
# The whole piece is held in memory (float32 stereo: 21 MB a minute) because the gain is chosen from all of it;
# a file that claims to last longer (a generator's runaway note, a hostile file) is refused, not rendered.
MAX_SECONDS = 20 * 60
AUDIO_EXTENSIONS = (".wav",)
DRUM_CHANNEL = 9


class AudioUnavailable(ConfigError):
    """The synthesizer package is not installed."""


def default_soundfont() -> Path:
    """pretty_midi's bundled General MIDI soundfont."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def _synth_module():
    try:
        import tinysoundfont
    except ImportError:
        raise AudioUnavailable("audio rendering needs the tinysoundfont package: "
                               "pip install --no-deps 'tinysoundfont>=0.3.7' (its PyAudio dependency is only for "
                               "live playback, which seqstudio does not use)") from None
    return tinysoundfont


def as_pretty_midi(sample: Any):
    """A ``PrettyMIDI`` for ``sample``: itself, or one parsed from the MIDI bytes of any object that can write
    MIDI (``dumps_midi`` of a symusic Score, ``write`` to a file object), so the renderer does not depend on
    which MIDI library the domain reads with."""
    import pretty_midi

    if isinstance(sample, pretty_midi.PrettyMIDI):
        return sample
    if hasattr(sample, "dumps_midi"):
        return pretty_midi.PrettyMIDI(io.BytesIO(sample.dumps_midi()))
    raise DataError(f"cannot render a {type(sample).__name__} as audio")


def _events(pm) -> tuple[list[tuple], dict[int, tuple[int, bool]]]:
    """Time-ordered ``(time, order, channel, kind, a, b)`` events and ``{channel: (program, is_drum)}``.

    ``order`` puts note-offs before note-ons at the same instant (a repeated note is struck again, not cut),
    and controls before notes."""
    channels: dict[int, tuple[int, bool]] = {}
    by_program: dict[int, int] = {}
    melodic = [c for c in range(16) if c != DRUM_CHANNEL]
    events = []
    count = 0
    for inst in pm.instruments:
        if inst.is_drum:
            channel = DRUM_CHANNEL
        elif count < len(melodic):
            channel, count = melodic[count], count + 1
        else:  # more than 15 melodic instruments: share a channel with the same program, else take turns
            channel, count = by_program.get(int(inst.program), melodic[count % len(melodic)]), count + 1
        channels.setdefault(channel, (int(inst.program), bool(inst.is_drum)))
        by_program.setdefault(int(inst.program), channel)
        for cc in inst.control_changes:
            events.append((cc.time, 1, channel, "cc", int(cc.number), int(cc.value)))
        for bend in inst.pitch_bends:
            events.append((bend.time, 1, channel, "bend", int(bend.pitch) + 8192, 0))
        for note in inst.notes:
            events.append((note.end, 0, channel, "off", int(note.pitch), 0))
            events.append((note.start, 2, channel, "on", int(note.pitch), int(note.velocity)))
    events.sort(key=lambda e: (e[0], e[1]))
    return events, channels


def synthesize(sample: Any, soundfont: str | Path | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``[samples, 2]`` float32 stereo audio of a MIDI sample, normalised (see the module docstring)."""
    pm = as_pretty_midi(sample)
    end = float(pm.get_end_time())
    if end > MAX_SECONDS:
        raise DataError(f"the piece lasts {end / 60:.0f} minutes; audio is rendered for at most "
                        f"{MAX_SECONDS // 60} minutes")
    soundfont = Path(soundfont) if soundfont else default_soundfont()
    if not soundfont.is_file():
        raise ConfigError(f"soundfont {soundfont} is not a file")
    tsf = _synth_module()
    synth = tsf.Synth(samplerate=sample_rate)
    try:
        sfid = synth.sfload(str(soundfont))
    except Exception as exc:  # SoundFontException, or anything the C loader says about a broken file
        raise ConfigError(f"cannot load soundfont {soundfont}: {exc}") from None
    events, channels = _events(pm)
    for channel, (program, is_drum) in channels.items():
        try:
            synth.program_select(channel, sfid, 0, program, is_drums=is_drum)
        except Exception:  # a soundfont without this preset: fall back to its first (piano) rather than silence
            synth.program_select(channel, sfid, 0, 0, is_drums=is_drum)
    total = int(np.ceil((end + RELEASE_SECONDS) * sample_rate))
    out = np.zeros((total, 2), dtype=np.float32)
    pos = 0
    for time, _, channel, kind, a, b in events:
        at = min(max(int(round(time * sample_rate)), 0), total)
        if at > pos:
            out[pos:at] = np.frombuffer(synth.generate(at - pos), dtype=np.float32).reshape(-1, 2)
            pos = at
        if kind == "on" and b > 0:
            synth.noteon(channel, a, b)
        elif kind in ("on", "off"):
            synth.noteoff(channel, a)
        elif kind == "cc":
            synth.control_change(channel, a, b)
        else:
            synth.pitchbend(channel, min(max(a, 0), 16383))
    if total > pos:
        out[pos:] = np.frombuffer(synth.generate(total - pos), dtype=np.float32).reshape(-1, 2)
    return normalise(out)


def normalise(audio: np.ndarray) -> np.ndarray:
    """Scale to ``TARGET_RMS`` unless a peak would pass ``PEAK_CEILING``; silence stays silence."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak < 1e-9:
        return audio
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    gain = min(TARGET_RMS / max(rms, 1e-12), PEAK_CEILING / peak)
    return (audio * gain).astype(np.float32)


def write_wav(audio: np.ndarray, path: Path, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM WAV (stereo when ``audio`` has two columns)."""
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()  # built in memory, then written at once: a failed write leaves no Wave_write to close
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    Path(path).write_bytes(buffer.getvalue())


def render_audio(sample: Any, path: Path, soundfont: str | Path | None = None) -> None:
    """Write ``sample`` as audio to ``path`` (``.wav``)."""
    path = Path(path)
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise ConfigError(f"audio is written as {', '.join(AUDIO_EXTENSIONS)}, not {path.suffix or 'no extension'}")
    write_wav(synthesize(sample, soundfont), path)
