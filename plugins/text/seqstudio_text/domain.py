"""The text domain: UTF-8 text files (``.txt``) and ABC tunes (``.abc``) as character or BPE tokens.

ABC tunes are text here: a model learns their characters, and ``seqstudio convert tune.abc tune.mid`` (or this
domain's ``convert``) turns a tune into music. Reading is strict — a binary, non-UTF-8 or empty file is a
``DataError`` naming it, which the loader reports and skips. ``.abc`` files are cleaned folk-rnn style on
reading (``seqstudio_text.abc``). ``.abc`` is also a MIDI-domain extension: folders built by the
``essen-folk-abc`` recipe say ``domain: text`` in their ``seqstudio.yaml``; for other folders of ABC tunes pass
``--domain text``.
"""

from __future__ import annotations

from pathlib import Path

from seqstudio.atomic import atomic_write
from seqstudio.domain import Domain
from seqstudio.errors import DataError

from .abc import abc_to_midi, clean_abc
from .bpe import BPECodec
from .char import CharCodec
from .document import Document, read_text

MIDI_SUFFIXES = (".mid", ".midi")
CONVERT_TIMEOUT = 120.0  # seconds for one `seqstudio convert`: generous for long tunes, but never forever


class TextDomain(Domain):
    """Text; samples are :class:`~seqstudio_text.document.Document` strings (format ``text`` or ``abc``)."""

    name = "text"
    description = "UTF-8 text (.txt) and ABC folk tunes (.abc) as character or BPE tokens; ABC -> MIDI"
    extensions = (".txt", ".text", ".abc")
    output_extension = ".txt"
    codecs = {"char": CharCodec, "bpe": BPECodec}
    default_codec = "char"
    # A character LSTM: in 5 CPU minutes at the defaults it reached 1.08 nats per character on Essen ABC tunes
    # (test), the seq-VAE 1.55 (BENCHMARKS.md, "Defaults: what a first run reaches in 5 CPU minutes").
    default_backend = "rnn"
    can_render_audio = True  # ABC tunes only (``has_audio``), through their MIDI and the midi domain's synthesizer
    GALLERY_TEXT_CHARS = 4000  # the report shows at most this much of one text
    conditions_as_prime = True  # ABC headers state meter and key in-band: --condition becomes a prime

    def attributes(self, sample: Document, path: Path) -> dict[str, str]:
        """``meter`` and ``key`` of an ABC tune's header (``attributes.py``); plain text has none."""
        if getattr(sample, "format", "") != "abc":
            return {}
        from .attributes import attributes

        return attributes(sample)

    def condition_prime(self, values: dict[str, str]) -> Document:
        from .attributes import prime_text

        return Document(prime_text(values), "abc")

    def read(self, path: Path) -> Document:
        path = Path(path)
        text = read_text(path)
        if path.suffix.lower() == ".abc":
            tunes = clean_abc(text)
            if not tunes:
                raise DataError(f"{path}: no ABC tune in the file (a tune needs X: and K: lines)")
            return Document(tunes, "abc")
        return Document(text, "text")

    def write(self, sample: str, path: Path) -> None:
        Path(path).write_text(str(sample), encoding="utf-8", newline="\n")

    def example_samples(self) -> list[Document]:
        """Three short texts (lines, a paragraph break, non-ASCII letters) and one ABC tune, cleaned as ``read``
        cleans ``.abc`` files (no title), for tests and docs."""
        return [
            Document("The quick brown fox\njumps over the lazy dog.\n\nA second paragraph, with commas; and more.\n"),
            Document("Lines of text\nwith  double spaces\tand tabs\nend here.\n"),
            Document("Ünïcödé is text too: café, naïve, 音楽.\n"),
            Document("X:1\nM:4/4\nL:1/4\nK:C\nCDEF | GABc | cBAG | FEDC |]\n", "abc"),
        ]

    def output_extension_for(self, sample) -> str:
        """``.abc`` for ABC tunes (what a run trained on tunes generates), else ``.txt``."""
        return ".abc" if getattr(sample, "format", "") == "abc" else self.output_extension

    def has_audio(self, sample) -> bool:
        return getattr(sample, "format", "") == "abc"

    def render_audio(self, sample, path: Path, soundfont: Path | None = None) -> None:
        """An ABC tune as audio: converted to MIDI (as ``convert`` does) and played by the installed ``midi``
        domain's ``render_audio``, so this plugin carries no synthesizer of its own."""
        import io

        import pretty_midi

        from seqstudio import registry
        from seqstudio.errors import ConfigError, PluginError

        if not self.has_audio(sample):
            raise ConfigError("only ABC tunes have audio in the text domain")
        try:
            midi_domain = registry.load_domain("midi")()
        except (PluginError, KeyError) as exc:
            raise ConfigError(f"audio for ABC tunes needs the midi domain plugin (seqstudio-midi): {exc}") from None
        if not midi_domain.can_render_audio:
            raise ConfigError("the installed midi domain cannot render audio")
        midi = abc_to_midi(str(sample))
        midi_domain.render_audio(pretty_midi.PrettyMIDI(io.BytesIO(midi)), path, soundfont)

    def gallery_item(self, path: Path, assets: Path):
        """The text itself (its start, for long texts), with audio for an ABC tune."""
        item = super().gallery_item(path, assets)
        try:
            text = read_text(Path(path), latin1_fallback=True)
        except DataError as exc:
            item.notes.append(str(exc))
            return item
        cut = len(text) > self.GALLERY_TEXT_CHARS
        item.text = text[: self.GALLERY_TEXT_CHARS] + ("\n[...]" if cut else "")
        return item

    def sample_steps(self, sample: str) -> int:
        return len(sample)

    judge_unit = "samples (one codec window at most)"
    judge_highlights = ("log_chars", "word_length", "line_length", "punctuation", "repeated_lines")

    def judge_features(self, excerpt) -> dict[str, float]:
        """Character classes, word and line lengths, repetition (``judge.py``; no ABC parsing: too slow)."""
        from .judge import features

        return features(excerpt)

    def judge_controls(self, excerpts: list, seed: int = 0) -> dict[str, list]:
        """Characters shuffled, random characters (``judge.py``)."""
        from .judge import controls

        return controls(excerpts, seed)

    def metrics(self, sample: str) -> dict[str, float]:
        """Text statistics, plus ABC validity, note count and pitch range for tunes (``seqstudio_text.metrics``)."""
        from .metrics import compute_all

        return compute_all(str(sample), abc=getattr(sample, "format", "") == "abc")

    def convert(self, src: Path, dest: Path) -> None:
        """An ABC tune (an ``.abc`` file, or text holding one) to MIDI: ``dest`` ending in ``.mid``/``.midi``.

        The file's first tune is converted as written (no cleaning) through music21.
        """
        src, dest = Path(src), Path(dest)
        if dest.suffix.lower() not in MIDI_SUFFIXES:
            return super().convert(src, dest)
        try:
            midi = abc_to_midi(read_text(src, latin1_fallback=True), timeout=CONVERT_TIMEOUT)
        except DataError as exc:
            raise DataError(str(exc) if str(exc).startswith(str(src)) else f"{src}: {exc}") from None
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, lambda tmp: Path(tmp).write_bytes(midi))
