"""W3C InkML: ``read_inkml``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator
from xml.etree import ElementTree as ET

import numpy as np

from seqstudio.errors import DataError

from ..ink import Ink
from .common import xml_attribute, local_tag, nonempty_ink, parse_xml, checked_points, format_reader

_LABEL_ANNOTATIONS = ("truth", "label", "transcription", "text")
_INKML_TOKEN = re.compile(r"!?\s*(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[TF?*])")


def _inkml_xy_columns(root: ET.Element) -> tuple[int, int]:
    """Which channels hold X and Y: from the first ``<traceFormat>`` naming both, else the first two."""
    for trace_format in (e for e in root.iter() if local_tag(e.tag) == "traceFormat"):
        names = [xml_attribute(c, "name") for c in trace_format.iter() if local_tag(c.tag) == "channel"]
        if "X" in names and "Y" in names:
            return names.index("X"), names.index("Y")
    return 0, 1


def _inkml_traces(root: ET.Element) -> Iterator[tuple[int, ET.Element]]:
    """``<trace>`` elements in document order (inside ``<traceGroup>``s too), not those in ``<definitions>``."""
    stack = [root]
    count = 0
    while stack:
        element = stack.pop()
        name = local_tag(element.tag)
        if name == "definitions":
            continue
        if name == "trace":
            count += 1
            yield count, element
        stack.extend(reversed(element))


def _inkml_trace(path: Path, number: int, text: str, xy: tuple[int, int]) -> np.ndarray:
    """Parse ``"x y [more], x y [more], ..."`` where X and Y are explicit (absolute) numbers.

    The InkML grammar also allows difference encoding (``'`` and ``"`` prefixes), unknown/boolean values
    (``?``, ``*``, ``T``, ``F``) and hex numbers. Real datasets (CROHME, IAMonDo) write plain numbers, so
    those are rejected by name rather than guessed at; ``T``/``F``/``?``/``*`` are fine in channels other
    than X and Y, which are dropped anyway.
    """
    where = f"trace {number}"
    if "'" in text or '"' in text:
        raise DataError(f"{path}: {where}: difference-encoded values (' or \" prefixes) are not supported")
    need = max(xy) + 1
    rows = []
    for p, point in enumerate((piece for piece in text.split(",") if piece.strip()), start=1):
        residue = _INKML_TOKEN.sub(" ", point).strip()
        if residue:
            raise DataError(f"{path}: {where}: point {p}: unsupported value {residue.split()[0]!r} "
                            "(only plain numbers are supported)")
        tokens = [t.lstrip("!").strip() for t in _INKML_TOKEN.findall(point)]
        if len(tokens) < need:
            raise DataError(f"{path}: {where}: point {p} has {len(tokens)} value(s), X and Y need {need}")
        try:
            rows.append((float(tokens[xy[0]]), float(tokens[xy[1]])))
        except ValueError:
            raise DataError(f"{path}: {where}: point {p}: X/Y values {tokens[xy[0]]!r} {tokens[xy[1]]!r} "
                            "are not numbers") from None
    return checked_points(path, rows, where) if rows else np.zeros((0, 2), np.float32)


def _inkml_label(root: ET.Element) -> str:
    """The whole drawing's transcription: a top-level ``<annotation type="truth">`` (CROHME) or similar."""
    for child in root:
        if local_tag(child.tag) == "annotation" and (child.get("type") or "").lower() in _LABEL_ANNOTATIONS:
            return (child.text or "").strip()
    return ""


@format_reader
def read_inkml(path: str | Path) -> Ink:
    """Read W3C InkML: each ``<trace>`` is a stroke, points comma-separated, channels space-separated.

    X and Y come from the channels a ``<traceFormat>`` names ``X`` and ``Y`` (default: the first two);
    other channels (T, F, ...) are dropped. Coordinates are kept as they are (InkML's y points down, like
    the pen tablets it comes from). Works with or without the ``http://www.w3.org/2003/InkML`` namespace.
    """
    path = Path(path)
    root = parse_xml(path)
    if local_tag(root.tag) != "ink":
        raise DataError(f"{path}: root element is <{local_tag(root.tag)}>, expected InkML <ink>")
    xy = _inkml_xy_columns(root)
    strokes = [_inkml_trace(path, n, trace.text or "", xy) for n, trace in _inkml_traces(root)]
    return nonempty_ink(path, Ink(strokes, label=_inkml_label(root)))
