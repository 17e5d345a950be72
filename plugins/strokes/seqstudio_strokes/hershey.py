"""Lines of text written in the single-stroke Hershey script fonts, made to look written rather than typeset.

Handwriting synthesis needs pen strokes paired with their text, and the real datasets (IAM-OnDB) must be
registered for and downloaded by hand. The Hershey fonts (the ``hershey-fonts`` package: ``cursive``,
``scriptc``, ``scripts``) are single-stroke script, so a line rendered from them is a pen trajectory with a known
transcription. Typeset text is too regular to learn a hand from, so each line gets its own slant, a drifting
baseline, per-letter scale and spacing jitter and point noise (``Style``), all drawn from one seeded generator:
the same seed gives the same files.

The text comes from the English prose of Python's own documentation (``pydoc_data.topics``, part of every Python
installation), cut into lines at word boundaries, or from the user's folder of ``.txt`` files (``--source``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable

import numpy as np

from seqstudio.errors import ConfigError, DataError
from seqstudio.recipe_sources import RecipeSource, split_quotas

from .ink import Ink

FONTS = ("cursive", "scriptc", "scripts")
SPLITS = {"train": 0.9, "valid": 0.05, "test": 0.05}
# The characters every script font has and that prose needs; a line with any other is left out.
ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:'!?-()\"")
CAP_HEIGHT = 21.0  # font units from cap line (-12) to base line (9)


@dataclass(frozen=True)
class Style:
    """How far a written line departs from the font, in font units or fractions (0 everywhere = typeset)."""

    slant: tuple[float, float] = (-0.05, 0.35)  # shear range per line (x moves right by slant * height)
    baseline_drift: float = 0.12  # amplitude of the baseline's slow wave, in cap heights
    tilt: float = 0.02  # std of the line's overall rise per unit of width
    letter_scale: float = 0.08  # std of each letter's log-scale
    letter_spacing: float = 0.10  # std of the extra advance after each letter, in its own widths
    word_spacing: float = 0.25  # std of the extra advance after a space, in a space's widths
    point_jitter: float = 0.25  # std of each point's noise, in font units

    @classmethod
    def from_options(cls, options: dict) -> "Style":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown hershey style option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(options)
        if "slant" in values:
            slant = values["slant"]
            values["slant"] = tuple(slant) if isinstance(slant, (list, tuple)) else (float(slant), float(slant))
            if len(values["slant"]) != 2:
                raise ConfigError("hershey style slant must be a number or a [low, high] range")
        for name, value in values.items():
            if name != "slant" and (not isinstance(value, (int, float)) or value < 0):
                raise ConfigError(f"hershey style {name} must be a number >= 0, got {value!r}")
        return cls(**values)


TYPESET = Style(slant=(0.0, 0.0), baseline_drift=0.0, tilt=0.0, letter_scale=0.0, letter_spacing=0.0,
                word_spacing=0.0, point_jitter=0.0)  # the font exactly as drawn


def load_font(name: str):
    from HersheyFonts import HersheyFonts

    if name not in FONTS:
        raise ConfigError(f"unknown Hershey script font {name!r}; choose from {', '.join(FONTS)}")
    font = HersheyFonts()
    font.load_default_font(name)
    return font


def write_line(text: str, font, rng: np.random.Generator, style: Style = Style()) -> Ink:
    """``text`` as pen strokes in ``font``, with ``style``'s variation drawn from ``rng``; labelled ``text``.

    Coordinates are font units, y down (cap line about -12, base line 9), as the other readers give them."""
    missing = sorted({c for c in text if c not in ALPHABET})
    if missing:
        raise DataError(f"cannot write {''.join(missing)!r}: the Hershey script alphabet has no such characters")
    glyphs = font.all_glyphs
    slant = rng.uniform(*style.slant) if style.slant[0] != style.slant[1] else style.slant[0]
    tilt = rng.normal(0.0, style.tilt)
    wave = rng.uniform(0.0, style.baseline_drift) * CAP_HEIGHT
    period = rng.uniform(150.0, 400.0)
    phase = rng.uniform(0.0, 2 * np.pi)
    strokes, x = [], 0.0
    for char in text:
        glyph = glyphs[char]
        if char == " ":
            x += glyph.char_width * max(0.3, 1.0 + rng.normal(0.0, style.word_spacing))
            continue
        scale = float(np.exp(rng.normal(0.0, style.letter_scale)))
        for stroke in glyph.strokes:
            points = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
            points[:, 0] = (points[:, 0] - glyph.left_offset) * scale + x
            points[:, 1] = (points[:, 1] - 9.0) * scale + 9.0  # scaled about the base line
            strokes.append(points)
        x += glyph.char_width * scale * max(0.5, 1.0 + rng.normal(0.0, style.letter_spacing))
    out = []
    for points in strokes:
        height = 9.0 - points[:, 1]  # above the base line
        bent = points.copy()
        bent[:, 0] += slant * height
        bent[:, 1] += wave * np.sin(2 * np.pi * points[:, 0] / period + phase) - tilt * points[:, 0]
        bent += rng.normal(0.0, style.point_jitter, size=bent.shape) if style.point_jitter else 0.0
        out.append(bent.astype(np.float32))
    if not out:
        raise DataError(f"cannot write {text!r}: it has no visible characters")
    return Ink(out, label=text)


# -- the text ------------------------------------------------------------------------------------------------------
def _sentences(text: str) -> Iterable[str]:
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        yield from (s.strip() for s in re.split(r"(?<=[.!?])\s+", flat))


def cut_lines(texts: Iterable[str], min_chars: int, max_chars: int) -> list[str]:
    """Prose cut into lines of ``min_chars``..``max_chars`` characters at word boundaries, in order, each line
    once; sentences that hold characters outside ``ALPHABET`` or look like code (``_``, ``=``) are left out."""
    seen, lines = set(), []
    for text in texts:
        for sentence in _sentences(text):
            words = sentence.split()
            if len(words) < 3 or any(c not in ALPHABET for c in sentence):
                continue
            line = ""
            for word in words:
                if len(word) > max_chars:
                    line = ""
                    continue
                if line and len(line) + 1 + len(word) > max_chars:
                    if len(line) >= min_chars and line not in seen:
                        seen.add(line)
                        lines.append(line)
                    line = word
                else:
                    line = f"{line} {word}" if line else word
            if len(line) >= min_chars and line not in seen:
                seen.add(line)
                lines.append(line)
    return lines


def python_docs_text() -> list[str]:
    """The English prose of Python's documentation topics (``pydoc_data``, installed with every Python)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # a Python built without its documentation data
        raise DataError("this Python has no pydoc_data.topics; give a folder of .txt files with --source") from None
    return [topics[name] for name in sorted(topics)]


MAX_TEXT_BYTES = 64 << 20  # per .txt file of the user's


def folder_text(root: Path) -> list[str]:
    """The ``.txt`` files under the user's ``root`` (regular files only, read bounded, undecodable bytes
    replaced): only the lines cut from them matter, and those must be plain ASCII prose anyway."""
    from seqstudio.safe_io import read_bytes_limited, special_file_reason

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--source {root}: expected a folder of .txt files")
    files = sorted(p for p in root.rglob("*.txt") if not p.is_symlink() and special_file_reason(p) is None)
    if not files:
        raise DataError(f"--source {root}: no .txt files to take lines of text from")
    return [read_bytes_limited(p, MAX_TEXT_BYTES, "text file").decode("utf-8", errors="replace") for p in files]


def split_of(line: str) -> str:
    """A line's split, from a hash of its text: the same text is always in the same split, so a test line is
    never seen in training (not even written in another font)."""
    score = int.from_bytes(hashlib.sha256(line.encode()).digest()[:8], "big") / 2 ** 64
    return "train" if score < SPLITS["train"] else "valid" if score < SPLITS["train"] + SPLITS["valid"] else "test"


class HersheyTextSource(RecipeSource):
    """``hershey-text``: lines of prose written in the Hershey script fonts with a seeded, handwritten look."""

    needs_source = False
    writes_dataset = True

    def write(self, domain, dest: Path, source: Path | None, limit: int, progress: bool) -> int:
        from tqdm.auto import tqdm

        from .render import write_svg

        o = self.options
        fonts = o.get("fonts", list(FONTS))
        if isinstance(fonts, str):
            fonts = [fonts]
        loaded = {name: load_font(name) for name in fonts}
        min_chars, max_chars = int(o.get("min_chars", 12)), int(o.get("max_chars", 32))
        if not 1 <= min_chars <= max_chars:
            raise ConfigError(f"recipe {self.recipe.name!r}: need 1 <= min_chars <= max_chars")
        style = Style.from_options(o.get("style") or {})
        texts = folder_text(source) if source is not None else python_docs_text()
        lines = cut_lines(texts, min_chars, max_chars)
        count = int(o.get("lines", 0)) or len(lines)
        rng = np.random.default_rng(int(o.get("seed", 0)))
        order = rng.permutation(len(lines))[:count]
        candidates = [(split_of(lines[index]), lines[index]) for index in order]
        quota = split_quotas({s: sum(1 for split, _ in candidates if split == s) for s in SPLITS}, limit)
        per_split = {s: 0 for s in SPLITS}
        jobs = []
        for split, line in candidates:  # limit: files in all (data build --limit), shared by the splits
            if per_split[split] >= quota[split]:
                continue
            per_split[split] += 1
            jobs.append((split, line, fonts[len(jobs) % len(fonts)]))
        if not jobs:
            raise DataError("no lines of text to write (the text has no sentences of plain ASCII prose)")
        for split in SPLITS:
            (dest / split).mkdir(parents=True, exist_ok=True)
        for number, (split, line, font) in enumerate(tqdm(jobs, desc="writing lines", unit="line",
                                                          disable=not progress)):
            ink = write_line(line, loaded[font], np.random.default_rng([int(o.get("seed", 0)), number]), style)
            write_svg(ink, dest / split / f"{font}-{number:06d}.svg", stroke_width=1.5)
        return len(jobs)
