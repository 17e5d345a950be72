"""Pen-stroke file formats: readers for QuickDraw, IAM-OnDB, SVG/KanjiVG and InkML, the npz writer, and RDP.

Every reader returns ``Ink`` (absolute x, y; y down) and turns *any* problem with a file into a ``DataError``
whose message starts with the file's path and says what is wrong: the loader reads thousands of files and a
user must be able to find and fix (or delete) the bad one from one line. Parser exceptions never escape.

The drawing writers (SVG, SVG sheet, PNG) live in ``render.py``; this package only reads and stores data.
One module per job; everything public is re-exported here:

- ``common``: the ``DataError`` net (``format_reader``), byte reading, point validation, safe XML parsing.
- ``npz``: ``read_npz`` / ``write_npz`` (sketch-rnn / QuickDraw ``.npz``) and the restricted unpickler.
- ``quickdraw``: ``read_ndjson`` (QuickDraw ``.ndjson``).
- ``iam``: ``read_iam_xml``, ``sniff_iam_xml`` and the IAM-OnDB ascii transcription lookup.
- ``svg``: ``read_svg`` (KanjiVG and general SVG).
- ``inkml``: ``read_inkml`` (W3C InkML).
- ``rdp``: ``simplify`` and ``simplify_ink`` (Ramer-Douglas-Peucker).
- this file: ``READERS`` and ``read_inks``, dispatch by file suffix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from seqstudio.errors import DataError

from ..ink import Ink
from .iam import SNIFF_BYTES, read_iam_xml, sniff_iam_xml
from .inkml import read_inkml
from .npz import NPZ_SPLITS, read_npz, write_npz
from .quickdraw import read_ndjson
from .rdp import simplify, simplify_ink
from .svg import MAX_POINTS_PER_SEGMENT, read_svg

__all__ = ["MAX_POINTS_PER_SEGMENT", "NPZ_SPLITS", "READERS", "SNIFF_BYTES", "read_iam_xml", "read_inkml",
           "read_inks", "read_ndjson", "read_npz", "read_svg", "simplify", "simplify_ink", "sniff_iam_xml",
           "write_npz"]

READERS: dict[str, Callable[[Path], Any]] = {
    ".npz": read_npz,
    ".ndjson": read_ndjson,
    ".xml": read_iam_xml,  # only after sniff_iam_xml: .xml is also MusicXML and more
    ".svg": read_svg,
    ".inkml": read_inkml,
}


def read_inks(path: str | Path) -> list[Ink]:
    """Any supported file as a flat list of drawings (npz splits concatenated in train/valid/test order;
    use ``read_npz`` to keep them apart). An ``.xml`` that is not IAM-OnDB strokes is a ``DataError``."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: not a pen-strokes file (known: {', '.join(READERS)})")
    if reader is read_iam_xml and path.exists() and not sniff_iam_xml(path):
        raise DataError(f"{path}: not an IAM-OnDB strokes file (no <StrokeSet> in its first "
                        f"{SNIFF_BYTES // 1024} KB)")
    result = reader(path)
    if isinstance(result, dict):
        return [ink for split in NPZ_SPLITS for ink in result.get(split, [])]
    return list(result) if isinstance(result, list) else [result]
