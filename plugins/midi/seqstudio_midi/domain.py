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

from seqstudio import safe_io, score_limits
from seqstudio.domain import Domain
from seqstudio.errors import DataError

from .events import EventCodec
from .fastread import checked_pretty_midi
from .notes import NoteCodec
from .pianoroll import PianoRollCodec
from .voices import VoiceCodec

MIDI_EXTENSIONS = (".mid", ".midi")
NOTATION_EXTENSIONS = (".mxl", ".musicxml", ".xml", ".abc", ".krn")
MUSICXML_ROOTS = ("score-partwise", "score-timewise", "opus")
RENDER_COLUMNS = 20_000  # most columns of a piano-roll picture: a long piece is drawn coarser, not bigger


class MidiDomain(Domain):
    """Symbolic music; samples are ``pretty_midi.PrettyMIDI`` objects."""

    name = "midi"
    description = "MIDI, MusicXML, ABC and Humdrum files as piano rolls or performance events"
    extensions = MIDI_EXTENSIONS + NOTATION_EXTENSIONS
    output_extension = ".mid"
    codecs = {"pianoroll": PianoRollCodec, "events": EventCodec, "notes": NoteCodec, "voices": VoiceCodec}
    # What `seqstudio train FOLDER` uses when nothing is named: the pair the sample judge ranked best on the Bach
    # chorales at equal CPU time (BENCHMARKS.md, "Issue 25: a representation that can hold a chorale"): note
    # tokens, where a piano roll's independent keys gave 16th-note blips and random chord thickness.
    default_codec = "notes"
    default_backend = "rnn"
    can_render = True
    can_render_audio = True  # seqstudio_midi.audio: General MIDI soundfont, sample-based, pip-only
    attributes_version = 2  # 2: pieces are cached with their provenance too (tempo, program: ``provenance``)
    provenance_words = {"_key_source": "pieces whose key is their key signature (meta) or estimated from the "
                                       "notes (analysis)",
                        "_tempo": "pieces by tempo (bpm; generated files get the most common)",
                        "_program": "pieces by instrument (General MIDI program; generated files get the most "
                                    "common)"}

    sniffed_extensions = (".xml",)  # only .xml files are looked into; the other extensions decide alone

    def accepts(self, path: Path) -> bool:
        """By extension; a plain ``.xml`` only when its root element is MusicXML's (IAM-OnDB pen strokes are
        ``.xml`` too, and must go to the strokes domain). The root is found by a streaming XML parser, so a long
        prolog and UTF-16 files are recognised. A FIFO or device is never opened: it is claimed by name, so that
        reading it reports why it cannot be read instead of "no domain reads it"."""
        suffix = (path if isinstance(path, Path) else Path(path)).suffix.lower()  # Path(a Path) parses it again
        if suffix != ".xml":
            return suffix in self.extensions
        if safe_io.special_file_reason(path) and Path(path).exists():
            return True
        return safe_io.xml_root(path) in MUSICXML_ROOTS

    def read(self, path: Path) -> pretty_midi.PrettyMIDI:
        """Load one file; any problem becomes a one-line ``DataError`` naming the file.

        Only regular files are read. Sizes are bounded before anything is expanded (``seqstudio.score_limits``:
        notes, measures, lengths, zip members) and parsing runs under a time limit proportional to the score's
        size, so one absurd file costs seconds, never the run. The libraries' own warnings and stderr chatter
        are silenced: the loader reads many files in worker processes, and only a file it has to skip deserves a
        message.
        """
        path = Path(path)
        try:
            if safe_io.check_regular_file(path).st_size == 0:
                raise DataError(f"{path}: empty file")
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                if path.suffix.lower() in MIDI_EXTENSIONS:
                    data = safe_io.read_bytes_limited(path, score_limits.MAX_MIDI_BYTES, "MIDI file")
                    with safe_io.time_limit(safe_io.read_timeout(120.0), str(path)):
                        pm = checked_pretty_midi(data, path)
                else:
                    score, notes = _checked_notation(path)
                    import music21.converter  # noqa: F401 - before the clock starts: an import cut short
                    import music21.midi.translate  # noqa: F401 - would leave music21 broken in this process
                    budget = (score_limits.abc_budget if isinstance(score, str) else score_limits.parse_budget)(notes)
                    with safe_io.time_limit(budget, str(path)):
                        pm = checked_pretty_midi(_notation_to_midi_bytes(score), path)
        except DataError:
            raise
        except Exception as exc:  # the parsers raise anything from EOFError to KeyError on bad input
            raise DataError(f"{path}: cannot read ({_short_reason(exc)})") from None
        if not any(inst.notes for inst in pm.instruments if not inst.is_drum):
            raise DataError(f"{path}: no pitched notes")
        return pm

    def read_for_encoding(self, path: Path):
        """What the data loader encodes: a MIDI file read by symusic (``fastread.NoteScore``, the same notes as
        ``read`` gives, 10x+ faster), or ``read(path)`` where the two readers could differ (``fastread``)."""
        from .fastread import read_for_encoding

        return read_for_encoding(self, path)

    def provenance(self, sample, path: Path) -> dict[str, str]:
        """``_tempo`` and ``_program`` (``provenance.py``): the tempo and instrument the codecs write a decoded
        piece back at, of a ``PrettyMIDI`` or of what ``read_for_encoding`` gave (the same answer)."""
        from .provenance import provenance

        return provenance(sample)

    def write(self, sample: pretty_midi.PrettyMIDI, path: Path) -> None:
        sample.write(str(path))

    def render(self, sample: pretty_midi.PrettyMIDI, path: Path) -> None:
        """Piano-roll picture: pitch upward (4 pixels a semitone, a grey line at every C), time to the right,
        loudness as darkness.

        Written as pixels straight to a PNG (``seqstudio.png``), without matplotlib: eight pictures cost
        ``generate`` 2.7 s through matplotlib, mostly its import; this way they cost milliseconds.
        """
        from seqstudio.png import write_png

        end = max(sample.get_end_time(), 1.0)
        fs = min(20.0, RENDER_COLUMNS / end)  # columns per second; bounded, so an hour-long note costs no more
        roll = np.zeros((128, int(np.ceil(end * fs)) + 1), dtype=np.float32)
        for inst in sample.instruments:
            if inst.is_drum:
                continue
            for note in inst.notes:
                start, stop = int(note.start * fs), max(int(note.end * fs), int(note.start * fs) + 1)
                cells = roll[note.pitch, start:stop]
                np.maximum(cells, note.velocity, out=cells)
        pitches = np.flatnonzero(roll.any(axis=1))
        low, high = (int(pitches.min()), int(pitches.max())) if pitches.size else (48, 72)
        low, high = max(0, low - 2), min(127, high + 2)  # a margin above and below the notes
        width = int(min(max(600.0, end * 40.0), 2400.0))  # pixels: about 40 a second, 600 to 2400
        columns = np.minimum((np.arange(width) * roll.shape[1] / width).astype(np.int64), roll.shape[1] - 1)
        cells = roll[low : high + 1][::-1][:, columns]  # highest pitch on top
        image = 255.0 - cells * (215.0 / 127.0)  # silence white, velocity 127 near black
        octave = np.array([(p % 12 == 0) for p in range(high, low - 1, -1)])
        image = np.where(octave[:, None] & (cells == 0), 225.0, image)  # a grey line at every C
        write_png(path, np.repeat(image, 4, axis=0))

    def render_audio(self, sample: pretty_midi.PrettyMIDI, path: Path, soundfont: Path | None = None) -> None:
        """The sample as a WAV file, played by a General MIDI soundfont (``seqstudio_midi.audio``)."""
        from .audio import render_audio

        render_audio(sample, path, soundfont)

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

    def attributes(self, sample, path: Path) -> dict[str, str]:
        """``key``, ``mode``, ``meter`` for conditional generation (``attributes.py``), of a ``PrettyMIDI`` or of
        what ``read_for_encoding`` gave (the same answer for the same file)."""
        from .attributes import attributes

        return attributes(sample)

    def attributes_changed_by(self, codec) -> tuple[str, ...]:
        """Random transposition (``codec.transpose``) moves the tonic: ``key`` no longer holds (``mode`` does)."""
        return ("key",) if getattr(codec.config, "transpose", 0) > 0 else ()

    def moved_attribute(self, name, value, change):
        """A ``key`` transposed with the notes by ``change`` semitones (``G:minor`` + 2 = ``A:minor``), so a
        transposed run keeps conditioning on the key; None for anything else."""
        from .attributes import transposed_key

        return transposed_key(value, change) if name == "key" and isinstance(change, int) else None

    def condition_judges(self, names, train):
        """``key`` and ``mode`` by music21's key analysis of the notes (a generated piece has no key signature);
        ``meter`` by a small classifier of the rhythm fitted on the real training pieces' known metres
        (``metre.py``; a generated piece's time signature is the codec's, not the model's)."""
        from .attributes import estimate_key

        def mode(sample):
            key = estimate_key(sample)
            return key.split(":")[1] if key else None

        judges = {name: judge for name, judge in (("key", estimate_key), ("mode", mode)) if name in names}
        if "meter" in names:
            pairs = [(sample, labels["meter"]) for sample, labels in train() if labels.get("meter")]
            if len({meter for _, meter in pairs}) >= 2:
                from .metre import MetreClassifier

                judges["meter"] = MetreClassifier(pairs).predict
        return judges

    judge_unit = "16-beat excerpts"
    # What tells a chorale from noise at a glance (issue 25's table): short notes, four voices, dissonance, density.
    judge_highlights = ("short_notes", "texture_4", "dissonance", "notes_per_beat")

    def judge_excerpts(self, samples: list) -> list:
        """16-beat excerpts in the score's beats, as note arrays (``judge.py``)."""
        from .judge import excerpts

        return excerpts(samples)

    def judge_features(self, excerpt) -> dict[str, float]:
        """Texture, note lengths, onsets in the beat, key-free pitch classes, voice motion, dissonance, range
        (``judge.py``)."""
        from .judge import features

        return features(excerpt)

    def judge_controls(self, excerpts: list, seed: int = 0) -> dict[str, list]:
        """Shuffled 16th steps, shuffled beats, random notes (``judge.py``)."""
        from .judge import controls

        return controls(excerpts, seed)

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


def _checked_notation(path: Path):
    """``(source, notes)``: what music21 is to parse (the path, or for ABC the text of the file's first tune)
    after ``score_limits`` found its size within bounds, and its note count (for the time budget)."""
    suffix = path.suffix.lower()
    if suffix in (".xml", ".musicxml", ".mxl"):
        return path, score_limits.check_musicxml(path)
    data = safe_io.read_bytes_limited(path, score_limits.MAX_TEXT_BYTES, "score")
    text = _decode(data)
    if suffix == ".abc":
        tune = score_limits.first_abc_tune(text)
        return tune, score_limits.check_abc(tune, str(path))
    return path, score_limits.check_kern(text, str(path))


def _decode(data: bytes) -> str:
    """ABC / Humdrum text: UTF-16 with a byte-order mark, else UTF-8, else Latin-1 (old collections)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _notation_to_midi_bytes(source) -> bytes:
    """Parse a score with music21 and render it to MIDI bytes in memory (first score of a multi-score file).

    ``source`` is a path, or the text of one ABC tune."""
    from music21 import converter, repeat, stream
    from music21.midi import translate

    # forceSource/storePickle: always parse the file itself and never write cache pickles next to the user's
    # music21 scratch dir from many workers at once; parsing a chorale this way is as fast as the cache.
    if isinstance(source, str):
        score = converter.parseData(source, format="abc")
    else:
        score = converter.parse(source, forceSource=True, storePickle=False)
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
