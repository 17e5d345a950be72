"""Drawing writers: one drawing as SVG, a grid of drawings as an SVG sheet or a PNG.

``write_svg`` is a data format (``formats.read_svg`` reads it back to within 0.01 units); the sheet and the
PNG are pictures for people looking at samples. All writers accept what a model may produce - empty
drawings and stray non-finite points - and draw what they can instead of failing after a long training run.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from seqstudio.atomic import atomic_write

from .ink import Ink

SVG_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
STYLE = "fill:none;stroke:#000000;stroke-linecap:round;stroke-linejoin:round"


def drawable_strokes(ink: Ink) -> list[np.ndarray]:
    """The strokes with non-finite points removed (a diverged model can emit NaN)."""
    strokes = [s[np.isfinite(s).all(axis=1)] for s in ink.strokes]
    return [s for s in strokes if len(s)]


def drawing_bounds(strokes: list[np.ndarray]) -> tuple[float, float, float, float]:
    if not strokes:
        return 0.0, 0.0, 1.0, 1.0
    points = np.concatenate(strokes)
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return float(x0), float(y0), float(x1), float(y1)


def svg_path_data(stroke: np.ndarray) -> str:
    """``M x,y L x,y ...`` with two decimals; a one-point stroke is written ``M p L p`` (a round-capped dot,
    which ``read_svg`` reads back as one point)."""
    coords = [f"{x:.2f},{y:.2f}" for x, y in stroke]
    if len(coords) == 1:
        coords.append(coords[0])
    return "M " + coords[0] + " L " + " ".join(coords[1:])


def write_text_file(path: str | Path, text: str) -> None:
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_svg(ink: Ink, path: str | Path, stroke_width: float | None = None, margin: float = 0.05,
              size: float = 256.0) -> None:
    """One drawing as an SVG file: one ``<path>`` per stroke, in order, in the drawing's own coordinates.

    Coordinates are not moved or scaled (the ``viewBox`` frames them), so the file round-trips through
    ``read_svg``. ``stroke_width`` is in drawing units (default 2% of the drawing's larger side, so IAM's
    thousands-of-units lines and KanjiVG's 109-unit characters both look like pen strokes); ``margin`` is a
    fraction of the larger side; ``size`` is the displayed pixel size of the larger side. A non-empty label
    is stored as the SVG ``<title>``, which ``read_svg`` uses as the label.
    """
    strokes = drawable_strokes(ink)
    x0, y0, x1, y1 = drawing_bounds(strokes)
    extent = max(x1 - x0, y1 - y0) or 1.0
    width = extent * 0.02 if stroke_width is None else float(stroke_width)
    pad = extent * margin + width / 2
    vx, vy, vw, vh = x0 - pad, y0 - pad, (x1 - x0) + 2 * pad, (y1 - y0) + 2 * pad
    scale = size / max(vw, vh)
    lines = [SVG_HEADER,
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{vw * scale:.0f}" height="{vh * scale:.0f}" '
             f'viewBox="{vx:.2f} {vy:.2f} {vw:.2f} {vh:.2f}">\n']
    if ink.label:
        lines.append(f"<title>{escape(ink.label)}</title>\n")
    lines.append(f'<g style="{STYLE};stroke-width:{width:.3g}">\n')
    lines.extend(f'<path d="{svg_path_data(stroke)}"/>\n' for stroke in strokes)
    lines.append("</g>\n</svg>\n")
    write_text_file(path, "".join(lines))


def _grid(count: int, columns: int) -> tuple[int, int]:
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    columns = max(1, min(columns, count))
    return columns, max(1, math.ceil(count / columns))


def _fit(strokes: list[np.ndarray], box: float, pad: float) -> list[np.ndarray]:
    """Scale and centre strokes uniformly into a ``box`` x ``box`` square with ``pad`` on every side."""
    x0, y0, x1, y1 = drawing_bounds(strokes)
    extent = max(x1 - x0, y1 - y0)
    scale = (box - 2 * pad) / extent if extent > 0 else 1.0
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return [(s - centre) * scale + box / 2 for s in strokes]


def write_svg_sheet(inks: list[Ink], path: str | Path, columns: int = 4, labels: bool = True,
                    cell: float = 128.0) -> None:
    """A grid of drawings in one SVG, each scaled to fit its ``cell`` (pixels), optional label under each.

    For looking at samples side by side: unlike ``write_svg`` the coordinates are rescaled, so this is not
    a data format (``read_svg`` would return all strokes of all cells as one drawing).
    """
    columns, rows = _grid(len(inks), columns)
    band = 18.0 if labels else 0.0
    lines = [SVG_HEADER,
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{columns * cell:.0f}" '
             f'height="{rows * (cell + band):.0f}" viewBox="0 0 {columns * cell:.2f} {rows * (cell + band):.2f}">\n',
             f'<rect width="100%" height="100%" fill="#ffffff"/>\n<g style="{STYLE};stroke-width:1.5">\n']
    texts = []
    for index, ink in enumerate(inks):
        left, top = (index % columns) * cell, (index // columns) * (cell + band)
        for stroke in _fit(drawable_strokes(ink), cell, pad=cell * 0.08):
            lines.append(f'<path d="{svg_path_data(stroke + (left, top))}"/>\n')
        if labels and ink.label:
            texts.append(f'<text x="{left + cell / 2:.2f}" y="{top + cell + band * 0.7:.2f}">'
                         f"{escape(ink.label)}</text>\n")
    lines.append("</g>\n")
    if texts:
        lines.append('<g style="font-family:sans-serif;font-size:12px;text-anchor:middle;fill:#000000">\n')
        lines.extend(texts)
        lines.append("</g>\n")
    lines.append("</svg>\n")
    write_text_file(path, "".join(lines))


def _draw(ax, ink: Ink, labels: bool) -> None:
    """One drawing on one matplotlib axes: a LineCollection for strokes, dots for one-point strokes."""
    from matplotlib.collections import LineCollection

    strokes = drawable_strokes(ink)
    ax.set_axis_off()
    if labels and ink.label:
        ax.set_title(ink.label, fontsize=9)
    if not strokes:
        return
    lines = [s for s in strokes if len(s) > 1]
    dots = [s for s in strokes if len(s) == 1]
    if lines:
        ax.add_collection(LineCollection(lines, colors="black", linewidths=1.5, capstyle="round",
                                         joinstyle="round"))
    if dots:
        d = np.concatenate(dots)
        ax.plot(d[:, 0], d[:, 1], "o", color="black", markersize=2)
    x0, y0, x1, y1 = drawing_bounds(strokes)
    pad = max(x1 - x0, y1 - y0, 1e-6) * 0.05
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y1 + pad, y0 - pad)  # y points down, as in every Ink
    ax.set_aspect("equal", adjustable="box")


def render_png(inks: Ink | list[Ink], path: str | Path, columns: int = 4, labels: bool = True,
               cell_inches: float = 2.0, dpi: int = 100) -> None:
    """Draw one drawing, or a grid of them, as a PNG with matplotlib (no axes, equal aspect, y down).

    Uses a bare ``Figure`` with the Agg canvas rather than pyplot, so rendering from worker threads or a
    library call neither opens windows nor touches pyplot's global figure list.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    items = [inks] if isinstance(inks, Ink) else list(inks)
    columns, rows = _grid(len(items), columns)
    band = 0.25 if labels and any(ink.label for ink in items) else 0.0
    fig = Figure(figsize=(columns * cell_inches, rows * (cell_inches + band)), dpi=dpi)
    FigureCanvasAgg(fig)
    for index, ink in enumerate(items):
        _draw(fig.add_subplot(rows, columns, index + 1), ink, labels)
    if not items:
        fig.add_subplot(1, 1, 1).set_axis_off()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Glyph missing from font" for labels like 字 in the default font
        atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, facecolor="white"))
