"""SVG drawings (KanjiVG and general): ``read_svg``, with path sampling and ``transform`` handling."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterator
from xml.etree import ElementTree as ET

import numpy as np

from seqstudio.errors import DataError

from ..ink import Ink
from .common import MAX_POINTS, checked_size, local_tag, parse_xml, checked_points, format_reader, short_reason

_KANJIVG_NAME = re.compile(r"^(?P<code>[0-9a-fA-F]{5})(?:-[A-Za-z0-9]+)?$")
_SVG_SKIP = {"defs", "clipPath", "mask", "symbol", "marker", "pattern", "metadata", "title", "desc", "text",
             "style", "script", "foreignObject"}
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TRANSFORM = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")
MAX_POINTS_PER_SEGMENT = 1000  # bounds the work a hostile or absurdly scaled path can cause


def _numbers(text: str) -> list[float]:
    """All numbers in an SVG attribute, which may separate them by spaces, commas or just a sign."""
    residue = _NUMBER.sub(" ", text).replace(",", " ").strip()
    if residue:
        raise ValueError(f"unexpected {residue.split()[0]!r}")
    return [float(v) for v in _NUMBER.findall(text)]


def _transform(text: str | None) -> np.ndarray:
    """An SVG ``transform`` attribute as a 3x3 matrix (functions compose left to right)."""
    matrix = np.eye(3)
    if not text:
        return matrix
    if _TRANSFORM.sub("", text).replace(",", " ").strip():
        raise ValueError(f"unsupported transform {text!r}")
    for name, args in _TRANSFORM.findall(text):
        v = _numbers(args)
        if name == "matrix" and len(v) == 6:
            m = [[v[0], v[2], v[4]], [v[1], v[3], v[5]], [0, 0, 1]]
        elif name == "translate" and len(v) in (1, 2):
            m = [[1, 0, v[0]], [0, 1, v[1] if len(v) == 2 else 0], [0, 0, 1]]
        elif name == "scale" and len(v) in (1, 2):
            m = [[v[0], 0, 0], [0, v[-1], 0], [0, 0, 1]]
        elif name == "rotate" and len(v) in (1, 3):
            c, s = math.cos(math.radians(v[0])), math.sin(math.radians(v[0]))
            cx, cy = (v[1], v[2]) if len(v) == 3 else (0.0, 0.0)
            m = [[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy], [0, 0, 1]]
        elif name in ("skewX", "skewY") and len(v) == 1:
            t = math.tan(math.radians(v[0]))
            m = [[1, t, 0], [0, 1, 0], [0, 0, 1]] if name == "skewX" else [[1, 0, 0], [t, 1, 0], [0, 0, 1]]
        else:
            raise ValueError(f"bad arguments in {name}({args.strip()})")
        matrix = matrix @ np.asarray(m, dtype=np.float64)
    return matrix


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def _sample_segment(segment: Any, step: float) -> np.ndarray:
    """Points along one curved path segment, excluding its start: about one per ``step`` units of length.

    Straight segments contribute only their end point (extra points on a line carry no shape). Curves are
    sampled at evenly spaced parameter values. The count comes from a length estimate: for Beziers the
    mean of chord and control-polygon lengths (bounds of the true length, cheap: no evaluation), for arcs a
    16-piece polyline.
    """
    from svg.path import Close, CubicBezier, Line, QuadraticBezier

    if isinstance(segment, (Line, Close)):
        return np.array([[segment.end.real, segment.end.imag]])
    if isinstance(segment, (CubicBezier, QuadraticBezier)):  # Bernstein form, evaluated with numpy
        controls = [segment.start, segment.control, segment.end] if isinstance(segment, QuadraticBezier) \
            else [segment.start, segment.control1, segment.control2, segment.end]
        polygon = sum(abs(b - a) for a, b in zip(controls, controls[1:]))
        length = (polygon + abs(segment.end - segment.start)) / 2
        weights = (1, 2, 1) if len(controls) == 3 else (1, 3, 3, 1)

        def at(ts: np.ndarray) -> np.ndarray:
            degree = len(controls) - 1
            return sum(w * (1 - ts) ** (degree - i) * ts ** i * c for i, (w, c) in enumerate(zip(weights, controls)))
    else:
        def at(ts: np.ndarray) -> np.ndarray:
            return np.array([segment.point(float(t)) for t in ts])

        length = float(np.abs(np.diff(at(np.linspace(0.0, 1.0, 17)))).sum())
    count = int(min(max(math.ceil(length / step), 1), MAX_POINTS_PER_SEGMENT))
    z = at(np.linspace(0.0, 1.0, count + 1)[1:])
    return np.stack([z.real, z.imag], axis=1)


def _path_strokes(d: str, step: float) -> list[np.ndarray]:
    """One stroke per subpath of a ``d`` attribute; a subpath that only moves draws nothing and is dropped.

    A subpath whose points all coincide (``M x,y L x,y``: a dot) becomes a single point, so ``write_svg``
    can store one-point strokes and read them back as one point.
    """
    from svg.path import Move, parse_path

    subpaths: list[list[np.ndarray]] = []
    current: list[np.ndarray] | None = None
    total = 0
    for segment in parse_path(d):
        if isinstance(segment, Move) or current is None:
            current = [np.array([[segment.start.real, segment.start.imag]])]
            subpaths.append(current)
        if not isinstance(segment, Move):
            current.append(_sample_segment(segment, step))
            total += len(current[-1])
            if total > MAX_POINTS:  # checked while sampling: 50k curves of 1,000 points each would be 50M
                raise _TooManyPoints(f"more than {MAX_POINTS:,} points, the most one drawing may have")
    strokes = []
    for pieces in subpaths:
        if len(pieces) < 2:
            continue
        points = np.concatenate(pieces)
        strokes.append(points[:1] if (points == points[0]).all() else points)
    return strokes


class _TooManyPoints(ValueError):
    pass


def _element_strokes(element: ET.Element, name: str, step: float) -> list[np.ndarray]:
    if name == "path":
        return _path_strokes(element.get("d") or "", step)
    if name in ("polyline", "polygon"):
        values = _numbers(element.get("points") or "")
        if len(values) % 2:
            raise ValueError("odd number of coordinates in points")
        if len(values) // 2 > MAX_POINTS:
            raise _TooManyPoints(f"{len(values) // 2:,} points, more than the {MAX_POINTS:,} one drawing may have")
        points = np.asarray(values, dtype=np.float64).reshape(-1, 2)
        if name == "polygon" and len(points):
            points = np.concatenate([points, points[:1]])
        return [points] if len(points) else []
    # line
    coords = [float(_numbers(element.get(k) or "0")[0]) for k in ("x1", "y1", "x2", "y2")]
    return [np.asarray(coords, dtype=np.float64).reshape(2, 2)]


def _svg_elements(root: ET.Element) -> Iterator[tuple[ET.Element, str, np.ndarray]]:
    """Drawable elements in document order with their accumulated transforms (an explicit stack, so deeply
    nested groups cannot hit the recursion limit)."""
    stack = [(root, np.eye(3))]
    while stack:
        element, parent = stack.pop()
        name = local_tag(element.tag)
        if name in _SVG_SKIP:
            continue
        matrix = parent @ _transform(element.get("transform"))
        if name in ("path", "polyline", "polygon", "line"):
            yield element, name, matrix
        stack.extend((child, matrix) for child in reversed(element))


def _svg_label(path: Path, root: ET.Element) -> str:
    """KanjiVG's character from the file name, else the SVG's own top-level ``<title>``, else ``""``.

    The name alone is not trusted (``00001.svg`` from a numbered export would become U+0001): the file must
    also carry KanjiVG's ``kvg:`` ids.
    """
    match = _KANJIVG_NAME.match(path.stem)
    if match and any((e.get("id") or "").startswith("kvg:") for e in root.iter()):
        code = int(match["code"], 16)
        if not 0xD800 <= code <= 0xDFFF:
            return chr(code)
    for child in root:
        if local_tag(child.tag) == "title":
            return (child.text or "").strip()
    return ""


def read_svg(path: str | Path, step: float = 1.0) -> Ink:
    """Read an SVG drawing: each ``<path>`` subpath, ``<polyline>``, ``<polygon>`` and ``<line>`` is a stroke,
    in document order (KanjiVG orders its paths by stroke number, inside nested ``<g>``).

    Curves (cubic, quadratic, arcs) are sampled at about one point per ``step`` user units (default 1.0: on
    KanjiVG's 109-unit canvas a long stroke gets ~100 points, fine enough that ``simplify`` with a small
    epsilon, not the reader, decides the final resolution); straight segments keep only their end points.
    ``transform`` attributes are applied; the root ``viewBox`` is not (coordinates stay in user units).
    Text (KanjiVG's stroke numbers), ``<defs>`` and other non-rendered containers are skipped.
    """
    if not step > 0:  # a caller's mistake, not the file's: checked outside format_reader so it stays a ValueError
        raise ValueError(f"step must be positive, got {step}")
    return _read_svg(Path(path), step)


@format_reader
def _read_svg(path: Path, step: float) -> Ink:
    root = parse_xml(path)
    if local_tag(root.tag) != "svg":
        raise DataError(f"{path}: root element is <{local_tag(root.tag)}>, expected <svg>")
    strokes = []
    total = 0
    for index, (element, name, matrix) in enumerate(_svg_elements(root), start=1):
        what = f"<{name}> #{index}" + (f" (id {element.get('id')})" if element.get("id") else "")
        try:
            pieces = _element_strokes(element, name, step)
        except _TooManyPoints as exc:
            raise DataError(f"{path}: {what}: {exc}") from None
        except Exception as exc:  # svg.path raises its own InvalidPathError, and IndexError on some input
            raise DataError(f"{path}: {what}: cannot parse ({short_reason(exc, 120)})") from None
        strokes.extend(checked_points(path, _apply(matrix, p), what) for p in pieces)
        total += sum(len(p) for p in pieces)
        if total > MAX_POINTS:
            raise DataError(f"{path}: more than {MAX_POINTS:,} points, the most one drawing may have")
    if not strokes:
        raise DataError(f"{path}: no strokes (no <path>, <polyline>, <polygon> or <line> with points)")
    return checked_size(path, Ink(strokes, label=_svg_label(path, root)))
