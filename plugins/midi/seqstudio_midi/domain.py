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

    def sample_steps(self, sample: pretty_midi.PrettyMIDI) -> int:
        """Number of notes: a size that means the same for every codec."""
        return sum(len(inst.notes) for inst in sample.instruments)

    def metrics(self, sample: pretty_midi.PrettyMIDI) -> dict[str, float]:
        """Every metric of ``seqstudio_midi.metrics.METRICS`` (pitch, texture, rhythm, repetition)."""
        from .metrics import compute_all

        return compute_all(sample)


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
