"""The pen-strokes domain: handwriting and drawings from KanjiVG, IAM-OnDB, QuickDraw and InkML files.

Every reader returns an ``Ink`` (see ``ink.py``), so the codec and the writers see one sample type whatever
the source. Generated drawings are written as SVG (openable anywhere), with a PNG beside each and a sheet of
them all; ``.npz`` (sketch-rnn's stroke-3) is written when asked for by file name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from seqstudio.domain import Domain
from seqstudio.errors import DataError

from . import formats, render
from .codec import Stroke5Codec
from .ink import Ink

log = logging.getLogger("seqstudio")
_MANY = (".npz", ".ndjson")  # files holding many drawings
_SINGLE = {suffix: reader for suffix, reader in formats.READERS.items() if suffix not in _MANY}


class StrokesDomain(Domain):
    """Pen strokes; samples are ``Ink`` objects (absolute points per stroke, y down)."""

    name = "strokes"
    description = "pen strokes (KanjiVG/SVG, IAM-OnDB XML, QuickDraw npz/ndjson, InkML) as stroke-5 sequences"
    extensions = (".svg", ".inkml", ".xml", ".npz", ".ndjson")
    output_extension = ".svg"
    codecs = {"stroke5": Stroke5Codec}
    default_codec = "stroke5"
    can_render = True
    can_write_sheet = True
    # text (seqstudio.text_condition): a line's transcription is a sequence condition; generate --text writes
    # plotter SVGs (plotter.py)
    sequence_attributes = ("text",)
    can_write_text_lines = True
    attributes_version = 2  # 2: ``text`` (a transcription) beside ``label``

    def __init__(self):
        super().__init__()
        self._inputs: set[Path] = set()  # files this object read: its writers never replace one

    def _remember(self, path: Path) -> None:
        try:
            self._inputs.add(Path(path).resolve())
        except OSError:
            pass

    def _is_input(self, path: Path) -> bool:
        try:
            return Path(path).resolve() in self._inputs
        except OSError:
            return False

    sniffed_extensions = (".xml",)  # only .xml files are looked into; the other extensions decide alone

    def accepts(self, path: Path) -> bool:
        suffix = path.suffix.lower()
        if suffix == ".xml":  # MusicXML is .xml too: only IAM-OnDB stroke files are ours
            return formats.sniff_iam_xml(path)
        return suffix in self.extensions

    # -- reading ---------------------------------------------------------------------------------------------------
    def read(self, path: Path) -> Ink:
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in _MANY:
            raise DataError(f"{path}: holds many drawings; it is read as a collection (read_collection)")
        if suffix not in _SINGLE:
            raise DataError(f"{path}: not a pen-strokes file ({', '.join(self.extensions)})")
        self._remember(path)
        return _SINGLE[suffix](path)  # every reader refuses a drawing without points

    def is_collection(self, path: Path) -> bool:
        return Path(path).suffix.lower() in _MANY

    def read_collection(self, path: Path) -> dict[str, list[Ink]]:
        path = Path(path)
        self._remember(path)
        if path.suffix.lower() == ".npz":
            return formats.read_npz(path)  # sketch-rnn's own train/valid/test split is kept
        return {"": formats.read_ndjson(path)}  # the loader splits these by position

    # -- writing and drawing -----------------------------------------------------------------------------------------
    def write(self, sample: Ink, path: Path) -> None:
        path = Path(path)
        if self._is_input(path):
            raise DataError(f"{path}: refusing to write over a file that was read as input")
        suffix = path.suffix.lower()
        if suffix == ".npz":
            formats.write_npz([sample], path)
        elif suffix == ".png":
            render.render_png(sample, path)
        else:
            render.write_svg(sample, path)

    def render(self, sample: Ink, path: Path) -> None:
        render.render_png(sample, path)

    def write_sheet(self, samples: list[Ink], path: Path) -> list[Path]:
        """A grid of all samples as SVG and PNG, and all of them in one sketch-rnn ``.npz`` (stroke-3).

        A sheet never replaces a file this domain object read: ``seqstudio render q.npz -o q.png`` draws the
        sheet of ``q.npz`` as ``q.png`` and ``q.svg`` and leaves ``q.npz`` alone (with a warning), where it used to
        rewrite it with only the drawn samples."""
        written = []
        for suffix, write in ((".svg", render.write_svg_sheet), (".png", render.render_png),
                              (".npz", formats.write_npz)):
            target = Path(path).with_suffix(suffix)
            if self._is_input(target):
                log.warning("not writing %s: it is the file being drawn", target)
                continue
            write(samples, target)
            written.append(target)
        return written

    def example_samples(self) -> list[Ink]:
        """Four small drawings in KanjiVG-like units (y down): a square, a cross, a circle and the character
        三 (three strokes), for tests and docs."""
        t = np.linspace(0.0, 2 * np.pi, 25)
        circle = np.stack([50 + 30 * np.cos(t), 50 + 30 * np.sin(t)], axis=1)
        return [
            Ink([[[20, 20], [80, 20], [80, 80], [20, 80], [20, 20]]], label="square"),
            Ink([[[50, 10], [50, 50], [50, 90]], [[10, 50], [50, 50], [90, 50]]], label="cross"),
            Ink([circle], label="circle"),
            Ink([[[30, 25], [50, 24], [70, 25]], [[35, 50], [50, 49], [65, 50]],
                 [[15, 80], [35, 79], [55, 79], [85, 80]]], label="三"),
        ]

    # -- conditions ------------------------------------------------------------------------------------------------
    def attributes(self, sample: Ink, path: Path) -> dict[str, str]:
        """``label``: the drawing's class — a sketch-rnn ``.npz`` file's stem, a QuickDraw ``.ndjson`` word, a
        KanjiVG character. ``text``: a transcription (IAM-OnDB, InkML, a multi-character SVG title such as a
        Hershey line's), a sequence attribute (``seqstudio.text_condition``); a run conditioned on it drops a
        ``label`` that repeats it."""
        out = {}
        suffix = Path(path).suffix.lower()
        if suffix in (".npz", ".ndjson", ".svg") and sample.label:
            out["label"] = sample.label
        if sample.label and (suffix in (".xml", ".inkml") or (suffix == ".svg" and len(sample.label) > 1)):
            out["text"] = sample.label  # text: a transcription (an IAM / InkML / Hershey line), not a class
        return out

    def write_text_lines(self, samples, texts, out_dir, options):
        """``generate --text``: a plotter SVG (``options["height_mm"]`` tall) and a PNG per line, every line in
        ``lines.npz`` (stroke-3) and a sheet (``plotter.write_text_lines``)."""
        from . import plotter

        return plotter.write_text_lines(samples, texts, Path(out_dir),
                                        float(options.get("height_mm") or plotter.DEFAULT_HEIGHT_MM),
                                        render.render_png)

    def fit_style(self, sample: Ink, codec) -> Ink:
        """A line written on the studio's canvas (screen pixels, points as often as the pointer reported them)
        scaled so that the codec's own measure of it (the spread of its simplified pen offsets, ``fit``) is the
        run's: the model then sees steps of the size it was trained on. A few rounds, since simplification is in
        the run's units."""
        target = float(getattr(codec, "scale", 0.0) or 0.0)
        ink = sample
        for _ in range(12):  # simplification changes with the scale: usually settles in 3 to 6 rounds
            probe = type(codec)(codec.config)
            try:
                probe.fit([ink])
            except DataError:
                raise DataError("your line has too few pen points to prime the model: write a few letters") from None
            factor = target / probe.scale if target and probe.scale else 1.0
            if abs(factor - 1.0) < 0.01:
                break
            ink = Ink([s * factor for s in ink.strokes], label=ink.label)
        return ink

    def condition_judges(self, names, train):
        """``label`` by a small classifier trained on the real training drawings (``classifier.py``)."""
        if "label" not in names:
            return {}
        pairs = [(ink, labels["label"]) for ink, labels in train() if labels.get("label")]
        if len({label for _, label in pairs}) < 2:
            return {}
        from .classifier import DrawingClassifier

        return {"label": DrawingClassifier(pairs).predict}

    def text_recogniser(self, alphabet: str):
        """A CTC recogniser of online handwriting (``recogniser.py``) for judging text-conditioned runs."""
        from .recogniser import InkRecogniser

        return InkRecogniser(alphabet)

    def load_text_recogniser(self, folder: Path):
        from .recogniser import InkRecogniser

        return InkRecogniser.load(Path(folder))

    def content_figures(self, samples, asked, pool):
        """The DTW content score (``content.py``): the share of lines closer to typeset renderings of their own
        text than to those of other texts of the same length (chance 0.5)."""
        from . import hershey
        from .content import content_score

        fonts = [hershey.load_font(name) for name in hershey.FONTS]
        score = content_score(list(samples), list(asked), list(pool), fonts)
        return {"dtw_closer_to_own_text": score["closer_to_own_text"]}

    # -- reporting -----------------------------------------------------------------------------------------------------
    def sample_steps(self, sample: Ink) -> int:
        return sample.num_points

    judge_unit = "drawings"
    judge_highlights = ("strokes", "log_points", "turn_mean", "segment_cv", "aspect")

    def judge_features(self, excerpt: Ink) -> dict[str, float]:
        """Point and stroke counts, move lengths, turning angles, pen-up jumps, and the metrics (``judge.py``)."""
        from .judge import features

        return features(excerpt, self.metrics(excerpt))

    def judge_controls(self, excerpts: list, seed: int = 0) -> dict[str, list]:
        """Drawings with their moves shuffled, and random walks (``judge.py``)."""
        from .judge import controls

        return controls(excerpts, seed)

    def metrics(self, sample: Ink) -> dict[str, float]:
        """Shape statistics of a drawing, compared between generated and held-out drawings by
        ``seqstudio evaluate --samples``: all are scale-free, so source units do not matter."""
        if not sample.strokes:
            return {"strokes": 0.0, "points_per_stroke": 0.0, "aspect": 0.0, "ink_length": 0.0,
                    "straightness": 0.0}
        x0, y0, x1, y1 = sample.bounds()
        diagonal = max(float(np.hypot(x1 - x0, y1 - y0)), 1e-6)
        lengths, chords = [], []
        for stroke in sample.strokes:
            steps = np.diff(stroke, axis=0)
            lengths.append(float(np.hypot(steps[:, 0], steps[:, 1]).sum()) if len(stroke) > 1 else 0.0)
            chords.append(float(np.hypot(*(stroke[-1] - stroke[0]))))
        drawn = [(c, length) for c, length in zip(chords, lengths) if length > 0]
        return {
            "strokes": float(len(sample.strokes)),
            "points_per_stroke": sample.num_points / len(sample.strokes),
            "aspect": float(np.log((x1 - x0 + 1e-3) / (y1 - y0 + 1e-3))),
            "ink_length": sum(lengths) / diagonal,
            "straightness": float(np.mean([c / length for c, length in drawn])) if drawn else 0.0,
        }
