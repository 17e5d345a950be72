"""The MIDI domain: reads MIDI and notation files into ``pretty_midi.PrettyMIDI``, writes and draws them.

Notation formats (MusicXML, ABC, Humdrum) go through music21 and are converted to MIDI in memory, so every
codec sees one sample type whatever the source format.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pretty_midi

from seqstudio.domain import Domain
from seqstudio.errors import DataError

from .events import EventCodec
from .pianoroll import PianoRollCodec

MIDI_EXTENSIONS = (".mid", ".midi")
NOTATION_EXTENSIONS = (".mxl", ".musicxml", ".xml", ".abc", ".krn")


class MidiDomain(Domain):
    """Symbolic music; samples are ``pretty_midi.PrettyMIDI`` objects."""

    name = "midi"
    description = "MIDI, MusicXML, ABC and Humdrum files as piano rolls or performance events"
    extensions = MIDI_EXTENSIONS + NOTATION_EXTENSIONS
    output_extension = ".mid"
    codecs = {"pianoroll": PianoRollCodec, "events": EventCodec}
    default_codec = "pianoroll"
    can_render = True

    def accepts(self, path: Path) -> bool:
        """By extension; a plain ``.xml`` only when it looks like MusicXML (IAM-OnDB pen strokes are ``.xml``
        too, and must go to the strokes domain)."""
        suffix = path.suffix.lower()
        if suffix != ".xml":
            return suffix in self.extensions
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError:
            return False
        return any(tag in head for tag in (b"<score-partwise", b"<score-timewise", b"<opus"))

    def read(self, path: Path) -> pretty_midi.PrettyMIDI:
        """Load one file; any problem becomes a one-line ``DataError`` naming the file.

        The libraries' own warnings and stderr chatter are silenced: the loader reads many files in worker
        processes, and only a file it has to skip deserves a message.
        """
        path = Path(path)
        try:
            if path.stat().st_size == 0:
                raise DataError(f"{path}: empty file")
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                if path.suffix.lower() in MIDI_EXTENSIONS:
                    pm = pretty_midi.PrettyMIDI(str(path))
                else:
                    pm = pretty_midi.PrettyMIDI(io.BytesIO(_notation_to_midi_bytes(path)))
        except DataError:
            raise
        except Exception as exc:  # the parsers raise anything from EOFError to KeyError on bad input
            raise DataError(f"{path}: cannot read ({_short_reason(exc)})") from None
        if not any(inst.notes for inst in pm.instruments if not inst.is_drum):
            raise DataError(f"{path}: no pitched notes")
        return pm

    def write(self, sample: pretty_midi.PrettyMIDI, path: Path) -> None:
        sample.write(str(path))

    def render(self, sample: pretty_midi.PrettyMIDI, path: Path) -> None:
        """Piano-roll picture: pitch on y, seconds on x, loudness as darkness.

        Drawn as one image (not a patch per note), so even a dense, untrained model's output renders fast.
        """
        import matplotlib

        matplotlib.use("Agg")  # headless: workers and CI have no display
        import matplotlib.pyplot as plt

        path = Path(path)
        fs = 20  # columns per second
        end = max(sample.get_end_time(), 1.0)
        roll = np.zeros((128, int(np.ceil(end * fs)) + 1))
        for inst in sample.instruments:
            if inst.is_drum or not inst.notes:
                continue
            part = inst.get_piano_roll(fs=fs)[:, : roll.shape[1]]
            roll[:, : part.shape[1]] = np.maximum(roll[:, : part.shape[1]], part)
        pitches = np.flatnonzero(roll.any(axis=1))
        low, high = (int(pitches.min()), int(pitches.max())) if pitches.size else (48, 72)
        fig, ax = plt.subplots(figsize=(min(max(6.0, end / 2), 24.0), 5.0))
        ax.imshow(roll[low : high + 1], origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                  extent=(0, roll.shape[1] / fs, low - 0.5, high + 0.5), vmin=0, vmax=127)
        octaves = [p for p in range(low - low % 12, high + 1, 12) if p >= low]
        ax.set_yticks(octaves, [pretty_midi.note_number_to_name(p) for p in octaves])
        ax.set_xlabel("time (s)")
        ax.set_ylabel("pitch")
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(path.stem)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    def example_samples(self) -> list[pretty_midi.PrettyMIDI]:
        """Three short piano pieces at 120 bpm: a scale with a repeated note, a I-IV-V-I cadence under a melody,
        and broken chords with a held bass (for tests and docs)."""
        scale = [(60 + step, 0.5 * i, 0.5) for i, step in enumerate([0, 2, 4, 5, 7, 7, 9, 11, 12])]
        cadence = [(p, 2.0 * bar, 2.0) for bar, chord in enumerate([(48, 52, 55), (53, 57, 60), (55, 59, 62),
                                                                    (48, 52, 55)]) for p in chord]
        cadence += [(p, 0.5 * i, 0.5) for i, p in enumerate([72, 71, 72, 74, 72, 69, 67, 65, 67, 71, 74, 72,
                                                            72, 71, 72, 72])]
        arpeggio = [(36, 0.0, 4.0), (43, 4.0, 4.0)]
        arpeggio += [(p, 0.25 * i, 0.25) for i, p in enumerate([60, 64, 67, 72] * 4 + [62, 65, 69, 74] * 4)]
        return [_piano(notes) for notes in (scale, cadence, arpeggio)]

    def sample_steps(self, sample: pretty_midi.PrettyMIDI) -> int:
        """Number of notes: a size that means the same for every codec."""
        return sum(len(inst.notes) for inst in sample.instruments)

    def metrics(self, sample: pretty_midi.PrettyMIDI) -> dict[str, float]:
        """Every metric of ``seqstudio_midi.metrics.METRICS`` (pitch, texture, rhythm, repetition)."""
        from .metrics import compute_all

        return compute_all(sample)


def _piano(notes: list[tuple[int, float, float]]) -> pretty_midi.PrettyMIDI:
    """A one-piano PrettyMIDI from ``(pitch, start, duration)`` triples (seconds)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0, name="piano")
    piano.notes = [pretty_midi.Note(velocity=80, pitch=p, start=s, end=s + d) for p, s, d in notes]
    pm.instruments.append(piano)
    return pm


def _notation_to_midi_bytes(path: Path) -> bytes:
    """Parse a score with music21 and render it to MIDI bytes in memory (first score of a multi-score file)."""
    from music21 import converter, repeat, stream
    from music21.midi import translate

    # forceSource/storePickle: always parse the file itself and never write cache pickles next to the user's
    # music21 scratch dir from many workers at once; parsing a chorale this way is as fast as the cache.
    score = converter.parse(path, forceSource=True, storePickle=False)
    if isinstance(score, stream.Opus):
        scores = list(score.scores)
        if not scores:
            raise ValueError("no score in file")
        score = scores[0]
    try:
        return translate.streamToMidiFile(score).writestr()
    except repeat.ExpanderException:
        # Inconsistent repeat marks are common in Humdrum files; the notes are still worth having once.
        _drop_repeats(score)
        return translate.streamToMidiFile(score).writestr()


def _drop_repeats(score) -> None:
    """Remove repeat barlines and repeat expressions (D.C., segno, ...) so the score plays straight through."""
    from music21 import bar, repeat, stream

    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = None
    for expression in list(score.recurse().getElementsByClass(repeat.RepeatExpression)):
        expression.activeSite.remove(expression)


def _short_reason(exc: Exception) -> str:
    """First line of an exception message, capped, so the loader's warning stays one line."""
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return reason if len(reason) <= 120 else reason[:117] + "..."
