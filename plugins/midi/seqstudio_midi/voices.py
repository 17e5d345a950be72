"""Voice codec: a fixed number of monophonic voices per grid step, each a pitch (or a rest) and an onset bit.

Coconet (Huang et al. 2017) and DeepBach (Hadjeres et al. 2017) harmonise chorales in this representation: a
chorale *is* four lines, so a step holds exactly one value per voice. That makes "keep the melody as the top
voice" exact (the soprano is voice 0's positions, nothing else), makes note accuracy per voice well defined, and
always gives ``voices`` lines, where a piano roll's independent keys thicken and thin at random.

Per voice the spec has two parts: ``Categorical(n_pitches + 1)`` (class 0 = rest, class ``k`` = pitch
``pitch_low + k - 1``) and ``Binary(1)``, set on the step a note starts, so a repeated note survives a round trip
(a held note and the same note struck again differ only there). Storage: two columns per voice, top voice first.

Which notes are which voice, in order:
1. a file with exactly ``voices`` pitched instruments: one voice each, ordered by mean pitch, highest first;
2. else, instruments named after the voices (``voice_names``; the Bach chorales' Soprano/Alto/Tenor/Bass among
   horns and strings doubling them): those;
3. else, by pitch rank at each step (the highest note sounding is voice 0, ...; notes past the ``voices``-th are
   left out, missing voices rest).
Within one voice a later note that overlaps an earlier one cuts it short (one voice sounds one note).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
import pretty_midi

from seqstudio.domain import Codec
from seqstudio.errors import ConfigError, DataError
from seqstudio.spec import Binary, Categorical, FeatureSpec

from .grid import DEFAULT_TEMPO, ArrayEncoding, DecodingDefaults, GridConfig, GridNote, Transposing

if TYPE_CHECKING:  # torch is imported inside the methods that need it (encoding workers never do)
    import torch

DECODE_VELOCITY = 80
FOUR_PART_NAMES = ("soprano", "alto", "tenor", "bass")


class VoiceCodec(ArrayEncoding, Transposing, DecodingDefaults, Codec):
    """``[T, 2 * voices]``: per voice its pitch class index (0 = rest) then its onset bit."""

    name = "voices"
    windowing_fields = Codec.windowing_fields + ("window_bars", "hop_bars")
    augmentation_fields = ("transpose",)

    @dataclasses.dataclass
    class Config(GridConfig):
        """Voice options. ``voices``: how many lines; ``voice_names``: their names, top first, comma-separated
        (what ``--voice`` accepts and what instruments are matched by; default SATB for four voices, else
        ``voice1,...``). The pitch range defaults to the chorales' (C2..C6). Windows are in 4/4 bars as the piano
        roll's (``window_bars`` / ``hop_bars``; 0 = use ``window`` / ``hop`` in steps)."""

        voices: int = 4
        voice_names: str = ""
        pitch_low: int = 36
        pitch_high: int = 84
        window_bars: int = 4
        hop_bars: int = 1

        def __post_init__(self) -> None:
            super().__post_init__()
            if not 1 <= self.voices <= 16:
                raise ConfigError(f"codec.voices must be 1..16, got {self.voices}")
            if self.window_bars < 0 or self.hop_bars < 0:
                raise ConfigError("window_bars and hop_bars must be >= 0")
            names = self.names
            if len(names) != self.voices or len(set(names)) != len(names) or not all(names):
                raise ConfigError(f"codec.voice_names must name {self.voices} different voices, got "
                                  f"{self.voice_names!r}")

        @property
        def names(self) -> tuple[str, ...]:
            if self.voice_names:
                return tuple(n.strip().lower() for n in self.voice_names.split(","))
            return FOUR_PART_NAMES if self.voices == 4 else tuple(f"voice{i + 1}" for i in range(self.voices))

    config: Config

    # -- what the tensors hold --------------------------------------------------------------------------------
    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec([Categorical(self.config.n_pitches + 1), Binary(1)] * self.config.voices)

    @property
    def voices(self) -> tuple[str, ...]:
        return self.config.names

    def voice_parts(self, voice: str) -> list[int]:
        names = self.config.names
        if voice.lower() not in names:
            raise ConfigError(f"no voice {voice!r} in this run's codec (voices: {', '.join(names)})")
        i = names.index(voice.lower())
        return [2 * i, 2 * i + 1]

    @property
    def steps_per_bar(self) -> int:
        return 4 * self.config.steps_per_quarter

    @property
    def window_length(self) -> int:
        return self.config.window_bars * self.steps_per_bar if self.config.window_bars > 0 else self.config.window

    @property
    def hop_length(self) -> int:
        if self.config.hop_bars > 0:
            return self.config.hop_bars * self.steps_per_bar
        return self.config.hop or self.window_length

    # -- encoding ---------------------------------------------------------------------------------------------
    def encode_array(self, sample) -> np.ndarray:
        lines = self._lines(sample)
        steps = max((end for line in lines for _, _, end in line), default=0)
        if steps == 0:
            raise DataError(f"no notes in pitch range {self.config.pitch_low}..{self.config.pitch_high}")
        out = np.zeros((steps, 2 * self.config.voices), dtype=np.float32)
        if len(lines) == self.config.voices:
            for v, line in enumerate(lines):
                self._write_line(out, v, line)
        else:
            self._write_by_rank(out, [note for line in lines for note in line])
        return out

    def encode_line(self, sample, voice: str):
        """A melody (one line: never two notes at once) in ``voice``'s columns; the other voices rest."""
        import torch

        v = self.voice_parts(voice)[0] // 2
        notes = sorted((note for line in self._lines(sample, strict=True) for note in line), key=lambda n: (n[1], n[0]))
        if not notes:
            raise DataError(f"the melody has no notes in pitch range {self.config.pitch_low}..{self.config.pitch_high}")
        for (_, s0, e0), (_, s1, _) in zip(notes, notes[1:]):
            if s1 < e0:
                beat = s1 / self.config.steps_per_quarter + 1
                raise DataError(f"the melody has notes sounding together (at beat {beat:g}); give one line, "
                                f"a note at a time")
        out = np.zeros((max(e for _, _, e in notes), 2 * self.config.voices), dtype=np.float32)
        self._write_line(out, v, notes)
        return torch.from_numpy(out)

    def _lines(self, sample, strict: bool = False) -> list[list[tuple[int, int, int]]]:
        """The sample's notes as ``(pitch, start, end)`` grid steps, one list per voice-to-be (see the module
        docstring); ``strict``: a note outside the pitch range is an error, not left out."""
        from .fastread import NoteScore

        pm = sample.pretty_midi if isinstance(sample, NoteScore) else sample
        instruments = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
        scale = self.config.steps_per_quarter / pm.resolution
        lines = []
        for inst in instruments:
            line = []
            for note in inst.notes:
                if not self.config.pitch_low <= note.pitch <= self.config.pitch_high:
                    if strict:
                        raise DataError(f"note {note.pitch} is outside the run's pitch range "
                                        f"{self.config.pitch_low}..{self.config.pitch_high}")
                    continue
                start = math.floor(pm.time_to_tick(note.start) * scale + 0.5)
                end = max(math.floor(pm.time_to_tick(note.end) * scale + 0.5), start + 1)
                line.append((note.pitch, start, end))
            lines.append((inst, line))
        names = self.config.names
        if len(lines) == self.config.voices:
            chosen = [line for _, line in lines]
            chosen.sort(key=lambda line: -np.mean([p for p, _, _ in line]) if line else math.inf)
            return chosen
        named = {}
        for inst, line in lines:
            label = (inst.name or "").strip().lower()
            if label in names and label not in named:
                named[label] = line
        if len(named) == len(names):
            return [named[n] for n in names]
        return [line for _, line in lines]

    def _write_line(self, out: np.ndarray, v: int, notes) -> None:
        """One voice's notes into its two columns (a later overlapping note cuts the earlier one short)."""
        for pitch, start, end in sorted(notes, key=lambda n: n[1]):
            out[start:end, 2 * v] = pitch - self.config.pitch_low + 1
            out[start:end, 2 * v + 1] = 0.0
            out[start, 2 * v + 1] = 1.0

    def _write_by_rank(self, out: np.ndarray, notes) -> None:
        """Voices by pitch rank per step: the highest sounding note is voice 0, and so on."""
        steps = out.shape[0]
        sounding = [[] for _ in range(steps)]
        for pitch, start, end in notes:
            for t in range(start, end):
                sounding[t].append((pitch, t == start))
        for t, here in enumerate(sounding):
            for v, (pitch, onset) in enumerate(sorted(set(here), reverse=True)[: self.config.voices]):
                out[t, 2 * v] = pitch - self.config.pitch_low + 1
                previous = out[t - 1, 2 * v] if t else 0
                out[t, 2 * v + 1] = 1.0 if onset or previous != out[t, 2 * v] else 0.0

    # -- decoding ---------------------------------------------------------------------------------------------
    def voice_notes(self, x) -> list[list[GridNote]]:
        """Each voice's notes: a note starts where the pitch changes or the onset bit is set."""
        values = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        lines = []
        for v in range(self.config.voices):
            pitch = np.rint(values[:, 2 * v]).astype(np.int64)
            onset = values[:, 2 * v + 1] > 0.5
            notes, start = [], None
            for t in range(len(pitch) + 1):
                p = pitch[t] if t < len(pitch) else 0
                new = t == len(pitch) or p != (pitch[t - 1] if t else 0) or (p > 0 and onset[t])
                if new and start is not None:
                    notes.append(GridNote(int(pitch[start]) + self.config.pitch_low - 1, start, t, DECODE_VELOCITY))
                    start = None
                if new and p > 0:
                    start = t
            lines.append(notes)
        return lines

    def _notes(self, x) -> list[GridNote]:
        return [note for line in self.voice_notes(x) for note in line]

    def decode(self, x) -> pretty_midi.PrettyMIDI:
        return self._voices_midi(x, *self.output_settings(None))

    def decode_piece(self, x, provenance: dict[str, str]) -> pretty_midi.PrettyMIDI:
        return self._voices_midi(x, *self.output_settings(provenance))

    def _voices_midi(self, x, tempo: float = DEFAULT_TEMPO, program: int = 0) -> pretty_midi.PrettyMIDI:
        """One instrument per voice, named after it, top voice first."""
        seconds = 60.0 / (tempo * self.config.steps_per_quarter)
        pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
        for name, notes in zip(self.config.names, self.voice_notes(x)):
            part = pretty_midi.Instrument(program=program, name=name.capitalize())
            part.notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start * seconds,
                                           end=n.end * seconds) for n in notes]
            pm.instruments.append(part)
        return pm

    # -- training ---------------------------------------------------------------------------------------------
    def augment_with_change(self, x: torch.Tensor, generator: torch.Generator):
        """Transpose every voice by one random number of semitones that keeps every note inside the range."""
        import torch

        limit = self.config.transpose
        if limit == 0:
            return x, None
        pitch = x[:, 0::2]
        sounding = pitch[pitch > 0]
        if sounding.numel() == 0:
            return x, 0
        low = max(-limit, 1 - int(sounding.min()))
        high = min(limit, self.config.n_pitches - int(sounding.max()))
        k = int(torch.randint(low, high + 1, (1,), generator=generator))
        out = x.clone()
        out[:, 0::2] = torch.where(pitch > 0, pitch + k, pitch)
        return out, k

    def windows(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Bar-aligned windows, without the all-silent ones."""
        return [piece for piece in super().windows(x) if bool((piece[:, 0::2] > 0).any())]
