"""QuickDraw ``.ndjson`` (raw or simplified): ``read_ndjson``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from seqstudio.errors import DataError

from ..ink import Ink
from .common import MAX_POINTS, read_bytes_limited, format_reader, short_reason, coordinate_problem, log

MAX_NDJSON_BYTES = 1 << 30  # one .ndjson file (QuickDraw's simplified category files are up to ~400 MB)


def _quickdraw_ink(record: Any) -> Ink:
    """One ndjson record -> Ink; raises ``ValueError`` with a short reason when it isn't a drawing."""
    if not isinstance(record, dict) or "drawing" not in record:
        raise ValueError("no 'drawing' field")
    drawing = record["drawing"]
    if not isinstance(drawing, list):
        raise ValueError("'drawing' is not a list of strokes")
    strokes, points_so_far = [], 0
    for i, stroke in enumerate(drawing):
        if not isinstance(stroke, list) or len(stroke) < 2:
            raise ValueError(f"stroke {i} is not [xs, ys] or [xs, ys, ts]")
        xs, ys = stroke[0], stroke[1]
        if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
            raise ValueError(f"stroke {i}: xs and ys are not lists of equal length")
        try:
            points = np.asarray([xs, ys], dtype=np.float64).T
        except (TypeError, ValueError):
            raise ValueError(f"stroke {i}: non-numeric coordinates") from None
        problem = coordinate_problem(points)  # checked as float32, the type a drawing is stored in
        if problem:
            raise ValueError(f"stroke {i}: {problem}")
        strokes.append(points)
        points_so_far += len(points)
        if points_so_far > MAX_POINTS:
            raise ValueError(f"more than {MAX_POINTS:,} points")
    word = record.get("word", "")
    ink = Ink(strokes, label=word if isinstance(word, str) else str(word))
    if ink.num_points == 0:
        raise ValueError("empty drawing")
    return ink


@format_reader
def read_ndjson(path: str | Path) -> list[Ink]:
    """Read QuickDraw raw or simplified ``.ndjson``: one JSON object per line with a ``drawing`` field.

    Each stroke is ``[xs, ys]`` (simplified) or ``[xs, ys, ts]`` (raw; timestamps are dropped); ``word`` is
    the label. Drawings with ``recognized: false`` are kept: the game's classifier failing to recognise a
    doodle says little about whether a human would, and filtering is the data recipe's business.

    Bad-line policy: blank lines are skipped silently; a line that is not JSON or not a drawing is skipped
    and counted, with one warning per file naming the first such line. A few broken lines in a million-line
    download should not cost the whole file; a file with *no* readable drawing raises ``DataError``.
    """
    path = Path(path)
    data = read_bytes_limited(path, MAX_NDJSON_BYTES)
    inks: list[Ink] = []
    bad = 0
    first_bad = ""
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            inks.append(_quickdraw_ink(json.loads(raw)))
        except (ValueError, RecursionError) as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            bad += 1
            if not first_bad:
                first_bad = f"line {number}: {short_reason(exc, 100)}"
    if not inks:
        detail = f" ({bad} bad line(s); first: {first_bad})" if bad else ""
        raise DataError(f"{path}: no QuickDraw drawings{detail}")
    if bad:
        log.warning("%s: skipped %d line(s) that are not QuickDraw drawings (first: %s)", path, bad, first_bad)
    return inks
