"""Base classes for domain plugins: a Domain reads and writes files, a Codec turns samples into tensors.

Plugins subclass these and register the Domain class under the ``seqstudio.domains`` entry-point group. The
core only ever talks to these interfaces, so a third-party domain plugs in exactly like the built-in ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from .codec import Codec, CodecConfig
from .errors import SeqStudioError

__all__ = ["Domain", "Codec", "CodecConfig", "GalleryItem", "ConversionUnsupported"]  # plugins take Codec from here


class ConversionUnsupported(SeqStudioError):
    """A domain cannot convert between these two file types (``Domain.convert``)."""


@dataclasses.dataclass
class GalleryItem:
    """One sample as a report shows it: its file, and a picture, audio and text where the domain gives them."""

    title: str
    source: Path
    image: Path | None = None
    audio: Path | None = None
    text: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. why a generated tune has no audio


class Domain:
    """One kind of file: how to read, write and draw it, and which codecs turn it into tensors.

    Must implement ``read``, ``write`` and ``example_samples``. ``read`` must raise
    ``seqstudio.errors.DataError`` (naming the file) for a broken file, so the data loader can skip it with a
    warning while the other files are used.

    The optional abilities are declared, never probed: a domain that implements ``render`` sets
    ``can_render = True``, one that implements ``write_sheet`` sets ``can_write_sheet = True``; ``generate`` and
    ``seqstudio render`` look at the flags only. A domain that implements ``render_audio`` sets
    ``can_render_audio = True`` (``generate --audio``, ``seqstudio render FILE -o out.wav``, the report's players).

    ``gallery_item`` is what ``seqstudio report`` shows of one sample file; the default builds it from the
    declared abilities (picture, audio), so the report never asks which domain it is showing.
    """

    name: ClassVar[str] = "domain"
    description: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()
    output_extension: ClassVar[str] = ""
    codecs: ClassVar[dict[str, type[Codec]]] = {}
    default_codec: ClassVar[str] = ""
    # The backend ``train`` uses when none is named: the one that learns this domain fastest at the defaults
    # (BENCHMARKS.md, "Defaults: what a first run reaches in 5 CPU minutes"). Any backend still trains on any domain.
    default_backend: ClassVar[str] = "seqvae"
    can_render: ClassVar[bool] = False  # implements ``render`` (a picture of one sample)
    can_write_sheet: ClassVar[bool] = False  # implements ``write_sheet`` (an overview of many samples)
    can_render_audio: ClassVar[bool] = False  # implements ``render_audio`` (a sample as a .wav file)
    # Conditions (``seqstudio.conditions``): True when the samples state their attributes in-band (ABC headers),
    # so ``generate --condition`` becomes a prime (``condition_prime``) instead of a backend input.
    conditions_as_prime: ClassVar[bool] = False
    # Text (``seqstudio.text_condition``): attributes that are symbol sequences (a transcription), not classes.
    sequence_attributes: ClassVar[tuple[str, ...]] = ()
    # True when ``write_text_lines`` is implemented (``generate --text``: plotter SVG, PNG, npz and a sheet).
    can_write_text_lines: ClassVar[bool] = False
    # Provenance notes (attribute keys starting with ``_``, counted beside the conditions) said in words for the train
    # log: key -> what the counts are of. Notes a domain does not describe here are not printed at all.
    provenance_words: ClassVar[dict[str, str]] = {}
    # Bump when ``attributes`` or ``provenance`` changes what it returns: encoded pieces are cached with them.
    attributes_version: ClassVar[int] = 1

    def read(self, path: Path) -> Any:
        raise NotImplementedError

    # -- files holding many samples (QuickDraw .npz / .ndjson) ---------------------------------------------------
    def is_collection(self, path: Path) -> bool:
        """Whether ``path`` holds many samples; such files are read with ``read_collection``."""
        return False

    def read_for_encoding(self, path: Path) -> Any:
        """What the data loader encodes: ``read(path)`` by default. A domain may return a lighter sample its
        codecs also accept, read faster (the MIDI domain's symusic notes); it must encode exactly as ``read``'s."""
        return self.read(path)

    def read_collection(self, path: Path) -> dict[str, list[Any]]:
        """``{split: [samples]}`` for a many-sample file. Keys ``train``/``valid``/``test`` keep the file's own
        split; key ``""`` holds samples the loader assigns to splits itself (stable per position in the file)."""
        raise NotImplementedError(f"domain {self.name!r} has no many-sample files")

    def write(self, sample: Any, path: Path) -> None:
        raise NotImplementedError

    def example_samples(self) -> list[Any]:
        """A few small but real samples of this domain, built in code (no files, no downloads): for tests and docs.

        Part of the contract, not optional: the test matrix fits every codec on them (a vocabulary, a scale),
        trains every backend on their windows, and writes and reads back what it generates, so each must encode
        to at least one window of every codec's default configuration. Keep them small (seconds of music, a few
        strokes, a few lines): they are read in every test run.
        """
        raise NotImplementedError(f"domain {self.name!r} gives no example samples; Domain.example_samples is "
                                  f"part of the domain contract")

    def output_extension_for(self, sample: Any) -> str:
        """The extension ``generate`` gives this sample's file (default: ``output_extension``; the text domain
        writes ABC tunes as ``.abc`` and other text as ``.txt``)."""
        return self.output_extension

    def render(self, sample: Any, path: Path) -> None:
        """Draw a sample as a picture (PNG). Optional."""
        raise NotImplementedError(f"domain {self.name!r} cannot draw samples")

    def write_sheet(self, samples: list[Any], path: Path) -> list[Path]:
        """Write many samples as one overview (e.g. a grid of drawings); returns the files written. Optional:
        ``generate`` calls it after writing the samples one by one."""
        raise NotImplementedError(f"domain {self.name!r} has no sample sheet")

    def render_audio(self, sample: Any, path: Path, soundfont: Path | None = None) -> None:
        """Write a sample as audio (``path`` ends in ``.wav``); ``soundfont`` overrides the domain's own
        instruments where it has any. Optional: set ``can_render_audio``."""
        raise NotImplementedError(f"domain {self.name!r} cannot render audio")

    def has_audio(self, sample: Any) -> bool:
        """Whether ``render_audio`` applies to this sample (default: ``can_render_audio``; the text domain
        plays ABC tunes only)."""
        return self.can_render_audio

    def gallery_item(self, path: Path, assets: Path) -> "GalleryItem":
        """What a report shows of the sample file ``path``: its picture and audio, written into ``assets``
        (a picture or WAV already beside the file is copied instead of drawn again). Domains that show more
        (the text itself) override this and call it. A sample that cannot be read, drawn or played gets a note
        (``GalleryItem.notes``) instead of the picture or audio."""
        import shutil

        path, assets = Path(path), Path(assets)
        item = GalleryItem(title=path.name, source=path)
        sample = None
        wants = [(".png", self.can_render, self.render), (".wav", self.can_render_audio, self.render_audio)]
        for suffix, able, draw in wants:
            if not able:
                continue
            dest = assets / (path.stem + suffix)
            beside = path.with_suffix(suffix)
            if beside.is_file() and not beside.is_symlink() and beside != path:  # never copy a link's target
                shutil.copyfile(beside, dest)
            else:
                try:
                    sample = self.read(path) if sample is None else sample
                    if suffix == ".wav" and not self.has_audio(sample):
                        continue
                    draw(sample, dest)
                except SeqStudioError as exc:  # a generated file that cannot be read or played: said, not fatal
                    item.notes.append(str(exc))
                    continue
            setattr(item, "image" if suffix == ".png" else "audio", dest)
        return item

    def attributes(self, sample: Any, path: Path) -> dict[str, str]:
        """Named categorical attributes of one sample read from ``path`` (a key, a metre, a class), as strings;
        one it cannot tell is left out. Keys starting with ``_`` are provenance, never conditioned on. A
        conditional run fits a vocabulary of them on the training data (``seqstudio.conditions``). Default: none.
        Called in the loader's workers, right after ``read``; keep it cheap."""
        return {}

    def provenance(self, sample: Any, path: Path) -> dict[str, str]:
        """What a codec's ``decode_piece`` needs to give back what the tensor does not hold (a MIDI file's tempo
        and instrument), as strings under keys starting with ``_``. The loader stores it with the encoded piece,
        beside ``attributes`` (so conditions count it as provenance, never condition on it); ``fit_decoding`` sees
        the training pieces'. Called in the loader's workers on what ``read_for_encoding`` gave; keep it cheap,
        and give the same answer for what ``read`` gives. Default: none."""
        return {}

    def attributes_changed_by(self, codec: "Codec") -> tuple[str, ...]:
        """Attributes that ``codec``'s training augmentation does not preserve (transposition changes a key's
        tonic): a run conditions on one only when ``moved_attribute`` can move each of its values along with
        every change the codec reports (``Codec.augmentation_changes``), else leaves it out. Default: none."""
        return ()

    def moved_attribute(self, name: str, value: str, change: Any) -> str | None:
        """The value of attribute ``name`` after the codec's augmentation made ``change`` to a piece whose
        value was ``value`` (``G:minor`` transposed up 2 semitones is ``A:minor``); None: it cannot be told,
        and the attribute is left out of a run that augments. Default: None."""
        return None

    def condition_prime(self, values: dict[str, str]) -> Any:
        """A sample that states ``values`` in-band, used as the prime of ``generate --condition`` when
        ``conditions_as_prime`` is declared."""
        raise NotImplementedError(f"domain {self.name!r} has no condition primes")

    def write_text_lines(self, samples: list[Any], texts: list[str], out_dir: Path, options: dict) -> list[Path]:
        """Write text-conditioned samples (``generate --text``), one per line of text, plus a sheet of them all;
        only for domains that declare ``can_write_text_lines`` (others get ``write_samples``' files)."""
        raise NotImplementedError(f"domain {self.name!r} cannot write text lines")

    def fit_style(self, sample: Any, codec: "Codec") -> Any:
        """A user's own sample (a line written on the studio's canvas, in screen pixels) brought to the units
        ``codec`` was fitted in, so that it can prime the run. Default: unchanged."""
        return sample

    def condition_judges(self, names: list[str], train) -> dict[str, Any]:
        """For ``evaluate --samples`` on a conditional run: ``{name: judge}`` for the attributes this domain can
        tell from a sample's content, each ``judge(sample) -> value or None`` (a key analysis, a classifier fitted
        on ``train()``: a call that reads the real training samples with their values, ``[(sample, {name:
        value})]``; call it only when needed). Default: none."""
        return {}

    def text_recogniser(self, alphabet: str) -> Any | None:
        """For judging text-conditioned runs by reading their samples back (``seqstudio train-recogniser``, the
        character error rate of ``evaluate --samples``): a new, untrained recogniser of ``alphabet`` with
        ``fit(train, valid, max_steps=, max_minutes=, seed=, progress=) -> figures`` (``train``/``valid``:
        ``[(sample, text)]``), ``read(samples) -> [text]``, ``cer(pairs) -> float`` and ``save(folder)``.
        Default: None (this domain cannot read text from its samples)."""
        return None

    def load_text_recogniser(self, folder: Path) -> Any:
        """The recogniser a ``text_recogniser(...).save(folder)`` stored. It must load tensors and JSON only,
        never code (a run directory may come from elsewhere)."""
        raise NotImplementedError(f"domain {self.name!r} has no text recogniser")

    def content_figures(self, samples: list[Any], asked: list[str], pool: list[str]) -> dict[str, float]:
        """Figures of whether text-conditioned ``samples`` say their ``asked`` texts that need no recogniser
        (strokes: DTW to typeset renderings), ``pool``: texts to draw wrong answers from. Default: none."""
        return {}

    def sample_steps(self, sample: Any) -> int:
        """A rough size, used only for reporting."""
        return 0

    def metrics(self, sample: Any) -> dict[str, float]:
        """Domain metrics of one sample (name -> value), compared by ``seqstudio evaluate --samples``.

        They judge generators without a likelihood: the distribution of each metric over generated samples is
        compared with its distribution over held-out data. Default: none.
        """
        return {}

    # -- the sample judge (``seqstudio.judge``: can a classifier tell generated excerpts from real ones?) --------
    judge_unit: ClassVar[str] = "samples"  # what one excerpt is, as a report says it ("16-beat excerpts")
    judge_highlights: ClassVar[tuple[str, ...]] = ()  # the features a reader should see first (reports, bench)

    def judge_excerpts(self, samples: list) -> list:
        """Cut samples (generated or real) into the excerpts the judge compares, all of one size in the domain's
        own units (music: 16 beats of the score, whatever the grid), so that no feature tells the sets apart by
        length alone. Default: the samples as they are."""
        return list(samples)

    def judge_features(self, excerpt: Any) -> dict[str, float]:
        """Numbers that describe one excerpt for the sample judge (name -> value; ``nan`` where undefined). The
        core standardises them, so their scales do not matter. Default: the domain's ``metrics``, so a domain
        with metrics has a judge; an empty dict means "no judge" (reported as such, never an error)."""
        return self.metrics(excerpt)

    def judge_controls(self, excerpts: list, seed: int = 0) -> dict[str, list]:
        """Negative controls for calibrating the judge (``seqstudio.judge.calibrate``): ``{name: excerpts}``
        made from real ``excerpts`` that a good judge must tell from real ones (shuffled in time, random).
        Default: none."""
        return {}

    def convert(self, src: Path, dest: Path) -> None:
        """Convert file ``src`` (one this domain reads) into ``dest``, whose type its extension gives
        (``seqstudio convert SRC DEST``; e.g. the text domain turns an ABC tune into MIDI). Optional: the default
        raises ``ConversionUnsupported``; a domain that can convert some pairs calls it for the others."""
        raise ConversionUnsupported(f"domain {self.name!r} cannot convert {Path(src).suffix or Path(src).name} "
                                    f"files to {Path(dest).suffix or 'extension-less'} files")

    sniffed_extensions: tuple[str, ...] | None = None
    """For a domain whose ``accepts`` is its own: the extensions for which it looks into the file (MusicXML and
    IAM-OnDB strokes are both ``.xml``); for every other extension it must answer by the extension alone, so that
    guessing the domain of a folder of 50,000 files need not ask about each. ``None``: ask about every file."""

    def accepts(self, path: Path) -> bool:
        """Whether this domain reads ``path``; by default, by its extension (``extensions``)."""
        return path.suffix.lower() in self.extensions
