"""IAM-OnDB lineStrokes XML: ``read_iam_xml``, ``sniff_iam_xml`` and the ascii transcription lookup."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator
from xml.etree import ElementTree as ET

import numpy as np

from seqstudio import safe_io
from seqstudio.errors import DataError

from ..ink import Ink
from .common import xml_attribute, local_tag, nonempty_ink, parse_xml, checked_points, format_reader, log

SNIFF_BYTES = 1 << 20  # how far into a file the sniffer looks for <StrokeSet> (past any prolog)

_IAM_LINE = re.compile(r"^(?P<form>.+)-(?P<line>\d+)$")


def sniff_iam_xml(path: str | Path) -> bool:
    """True when ``path`` looks like IAM-OnDB strokes XML: a ``<WhiteboardCaptureSession>`` or ``<StrokeSet>``
    element starts within its first ``SNIFF_BYTES``.

    ``.xml`` is shared with MusicXML and anything else, so the domain asks before claiming a file. A streaming
    XML parser looks, so UTF-16 files and long prologs are recognised. An unreadable or special file (a FIFO is
    never opened) answers False (it is not recognisably ours); reading it would give the real error.
    """
    return safe_io.xml_has_element(path, {"WhiteboardCaptureSession", "StrokeSet"}, SNIFF_BYTES)


def _iam_ascii_candidates(path: Path, form: str) -> Iterator[Path]:
    """Where the transcription of ``path`` may be: beside it, or in a sibling ``ascii`` tree.

    The IAM-OnDB layout is ``lineStrokes/a01/a01-000/a01-000u-01.xml`` with the text in
    ``ascii/a01/a01-000/a01-000u.txt``; walking up at most four folders finds ``ascii`` beside
    ``lineStrokes`` without wandering far up the file system.
    """
    yield path.parent / f"{form}.txt"
    for depth, ancestor in enumerate(path.parents):
        if depth >= 4:
            break
        ascii_root = ancestor / "ascii"
        if ascii_root.is_dir():
            inner = path.parent.relative_to(ancestor).parts[1:]  # drop "lineStrokes"
            yield ascii_root.joinpath(*inner, f"{form}.txt")
            yield ascii_root / f"{form}.txt"


def _csr_lines(text: str) -> list[str] | None:
    """The lines of an IAM ascii file's ``CSR:`` section (the corrected transcription), or None."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "CSR:":
            return [rest.strip() for rest in lines[i + 1:] if rest.strip()]
    return None


def _iam_ascii_label(path: Path) -> str:
    match = _IAM_LINE.match(path.stem)
    if not match:
        return ""
    index = int(match["line"])
    for candidate in _iam_ascii_candidates(path, match["form"]):
        if candidate.is_file():
            try:
                raw = safe_io.read_bytes_limited(candidate, 16 << 20, "transcription file")
            except DataError:  # a FIFO, /proc file or huge file is no transcription
                return ""
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            lines = _csr_lines(text)
            if lines is None or not 1 <= index <= len(lines):
                log.debug("%s: no CSR line %d in %s", path, index, candidate)
                return ""
            return lines[index - 1]
    return ""


def _iam_xml_label(path: Path, root: ET.Element) -> str | None:
    """The transcription stored in the XML itself (``<Transcription><TextLine text=...>``), if any.

    Form-level files hold several lines: the ``-NN`` suffix picks one when the name has it, else they are
    joined with newlines.
    """
    texts = [xml_attribute(e, "text") for e in root.iter() if local_tag(e.tag) == "TextLine"]
    texts = [t for t in texts if t is not None]
    if not texts:
        return None
    match = _IAM_LINE.match(path.stem)
    if len(texts) > 1 and match and 1 <= int(match["line"]) <= len(texts):
        return texts[int(match["line"]) - 1]
    return "\n".join(texts)


@format_reader
def read_iam_xml(path: str | Path) -> Ink:
    """Read an IAM-OnDB strokes file: ``<StrokeSet><Stroke><Point x= y= time=/>...``.

    Coordinates are whiteboard units with y already pointing down, kept as they are. The label is the
    XML's own ``<TextLine text=...>`` when present, else the matching line of the ``CSR:`` section of the
    form's ascii file (``a01-000u-01.xml`` -> line 1 of ``a01-000u.txt``, beside the XML or in a sibling
    ``ascii`` tree), else ``""``.
    """
    path = Path(path)
    root = parse_xml(path)
    stroke_sets = [e for e in root.iter() if local_tag(e.tag) == "StrokeSet"]
    if not stroke_sets:
        raise DataError(f"{path}: not an IAM-OnDB strokes file (root <{local_tag(root.tag)}> has no <StrokeSet>)")
    strokes = []
    for stroke_set in stroke_sets:
        for stroke in (e for e in stroke_set if local_tag(e.tag) == "Stroke"):
            n = len(strokes) + 1
            pairs = [(xml_attribute(p, "x"), xml_attribute(p, "y")) for p in stroke if local_tag(p.tag) == "Point"]
            if any(x is None or y is None for x, y in pairs):
                raise DataError(f"{path}: stroke {n}: a <Point> lacks its x or y attribute")
            strokes.append(checked_points(path, pairs, f"stroke {n}") if pairs else np.zeros((0, 2), np.float32))
    label = _iam_xml_label(path, root)
    ink = Ink(strokes, label=_iam_ascii_label(path) if label is None else label)
    return nonempty_ink(path, ink)
