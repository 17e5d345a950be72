"""Shared helpers of the stroke-file readers: the ``DataError`` net, byte reading, point validation, safe XML.

Every reader turns *any* problem with a file into a ``DataError`` whose message starts with the file's path
and says what is wrong; ``format_reader`` is the net under the checks each reader makes itself.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable
from xml.etree import ElementTree as ET
from xml.parsers import expat

import numpy as np

from seqstudio import safe_io
from seqstudio.errors import DataError

from ..ink import Ink

log = logging.getLogger("seqstudio")

MAX_FILE_BYTES = 64 << 20  # one SVG / IAM / InkML file
MAX_COORD = 1e8  # largest |x| or |y| of a point: far past any tablet or canvas, far below float32 overflow
MAX_POINTS = 200_000  # points in one drawing (an IAM-OnDB line has about 1,000-2,000)


def format_reader(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a reader so that whatever a parser raises on a bad file becomes a ``DataError`` naming the file.

    The readers raise precise ``DataError``s for the problems they check; this is the net under them for
    the ones they don't (a library's ``KeyError`` on a corrupt file, a ``MemoryError`` on a bogus size).
    """

    @functools.wraps(func)
    def wrapper(path, *args, **kwargs):
        try:
            return func(path, *args, **kwargs)
        except DataError:
            raise
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except Exception as exc:
            raise DataError(f"{path}: cannot read ({type(exc).__name__}: {short_reason(exc)})") from None

    return wrapper


def short_reason(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_bytes_limited(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (a FIFO, device or ``/proc`` file is refused)."""
    data = safe_io.read_bytes_limited(path, max_bytes, "pen-strokes file")
    if not data.strip():
        raise DataError(f"{path}: empty file")
    return data


def checked_points(path: Path, values: Any, where: str) -> np.ndarray:
    """Coordinates as a finite ``(N, 2)`` float32 array, or a ``DataError`` saying where they are broken."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: {where}: non-numeric coordinates ({short_reason(exc, 80)})") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise DataError(f"{path}: {where}: expected x, y pairs, got an array of shape {arr.shape}")
    reason = coordinate_problem(arr)
    if reason:
        raise DataError(f"{path}: {where}: {reason}")
    return arr.astype(np.float32)


def coordinate_problem(values: np.ndarray) -> str | None:
    """Why these coordinates (or stroke-3 offsets, whose running sums must pass too) cannot be a drawing, or
    ``None``. Checked on the float32 values a drawing is stored in: ``1e300`` is finite in float64 but ``inf``
    in float32, and ``3e38`` is finite in float32 but its differences are not."""
    with np.errstate(over="ignore", invalid="ignore"):
        stored = np.asarray(values).astype(np.float32)
    if not np.isfinite(stored).all():
        return "coordinates are not all finite numbers (in 32-bit floats)"
    if stored.size and float(np.abs(stored).max()) > MAX_COORD:
        return f"coordinates out of range (|value| up to {float(np.abs(stored).max()):.3g}; at most {MAX_COORD:g})"
    return None


def checked_size(path: Path, ink: Ink) -> Ink:
    if ink.num_points > MAX_POINTS:
        raise DataError(f"{path}: the drawing has {ink.num_points:,} points, more than the {MAX_POINTS:,} one "
                        f"drawing may have")
    return ink


def nonempty_ink(path: Path, ink: Ink) -> Ink:
    if ink.num_points == 0:
        raise DataError(f"{path}: the drawing has no points")
    return checked_size(path, ink)


def _forbid_entities(*_args: Any) -> None:
    raise DataError("entity declarations are not allowed")


def parse_xml(path: Path, data: bytes | None = None) -> ET.Element:
    """Parse an XML file, refusing entity declarations (billion-laughs/quadratic-blowup bombs).

    ElementTree never fetches external entities, and expat >= 2.4 limits amplification, but no stroke
    format needs ``<!ENTITY>`` at all, so a first expat pass rejects them outright whatever expat version is
    installed; it also yields the line/column of malformed XML for the message. ``<!ATTLIST>``
    declarations (KanjiVG's DOCTYPE) are harmless and allowed.
    """
    data = read_bytes_limited(path) if data is None else data
    guard = expat.ParserCreate()
    guard.EntityDeclHandler = _forbid_entities
    try:
        guard.Parse(data, True)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except expat.ExpatError as exc:
        raise DataError(f"{path}: not well-formed XML ({expat.ErrorString(exc.code)} at line {exc.lineno}, "
                        f"column {exc.offset + 1})") from None
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:  # unreachable after the guard, kept so no parser error can escape
        raise DataError(f"{path}: not well-formed XML ({exc})") from None


def local_tag(tag: Any) -> str:
    """Element name without its ``{namespace}``: formats are read the same with or without namespaces."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def xml_attribute(element: ET.Element, name: str) -> str | None:
    """Attribute by local name, namespaced or not."""
    if name in element.attrib:
        return element.attrib[name]
    for key, value in element.attrib.items():
        if local_tag(key) == name:
            return value
    return None
