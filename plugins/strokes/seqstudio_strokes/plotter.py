"""Written lines for people and pen plotters: ``generate --text`` output.

A pen plotter (AxiDraw, iDraw; Inkscape's plot extensions, vpype) draws every ``<path>`` of an SVG as one pen
movement and fills nothing; a file it can use is stroke-only (``fill="none"`` on every path), one path per pen
stroke in writing order, and sized in physical units. So each line is written with its height in millimetres
(``height_mm``, the width following the line's aspect), a ``viewBox`` in the drawing's own units, and no
fill, text, or embedded style sheet. A PNG of each line and a sheet of all lines (one line per row, as on a
page) are for looking at; the stroke-3 ``.npz`` holds every line for further processing.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from seqstudio.atomic import atomic_write

from . import formats
from .ink import Ink
from .render import SVG_HEADER, drawing_bounds, drawable_strokes, svg_path_data, write_text_file

DEFAULT_HEIGHT_MM = 10.0


def write_plotter_svg(ink: Ink, path: str | Path, height_mm: float = DEFAULT_HEIGHT_MM,
                      stroke_mm: float = 0.4) -> None:
    """One line as a plotter SVG: ``height_mm`` tall, one stroke-only ``<path>`` per pen stroke."""
    strokes = drawable_strokes(ink)
    x0, y0, x1, y1 = drawing_bounds(strokes)
    h = max(y1 - y0, 1e-6)
    units_per_mm = h / float(height_mm)
    pad = 1.0 * units_per_mm  # 1 mm margin
    vx, vy, vw, vh = x0 - pad, y0 - pad, (x1 - x0) + 2 * pad, h + 2 * pad
    width = stroke_mm * units_per_mm
    lines = [SVG_HEADER,
             f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{vw / units_per_mm:.2f}mm" '
             f'height="{vh / units_per_mm:.2f}mm" viewBox="{vx:.3f} {vy:.3f} {vw:.3f} {vh:.3f}">\n']
    if ink.label:
        lines.append(f"<title>{escape(ink.label)}</title>\n")
    lines.extend(f'<path fill="none" stroke="black" stroke-width="{width:.4g}" stroke-linecap="round" '
                 f'stroke-linejoin="round" d="{svg_path_data(s)}"/>\n' for s in strokes)
    lines.append("</svg>\n")
    write_text_file(path, "".join(lines))


def _normalised(ink: Ink) -> list[np.ndarray]:
    """Strokes moved to start at x = 0 and scaled to height 1 (for a sheet of lines)."""
    strokes = drawable_strokes(ink)
    if not strokes:
        return []
    x0, y0, x1, y1 = drawing_bounds(strokes)
    h = max(y1 - y0, 1e-9)
    return [(s - (x0, y0)) / h for s in strokes]


def write_lines_sheet(inks: list[Ink], path: str | Path, titles: list[str] | None = None,
                      height_mm: float = DEFAULT_HEIGHT_MM) -> list[Path]:
    """All lines one under the other, as a PNG (matplotlib) and a plotter SVG; returns the files."""
    path = Path(path)
    rows = [_normalised(ink) for ink in inks]
    titles = titles or [ink.label for ink in inks]
    widest = max([max((float(s[:, 0].max()) for s in r), default=1.0) for r in rows] + [1.0])
    gap = 0.6
    # SVG: row i's top at i * (1 + gap) units (1 unit = height_mm)
    pieces = [SVG_HEADER]
    total_h = len(rows) * (1 + gap)
    pieces.append(f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{widest * height_mm:.2f}mm" '
                  f'height="{total_h * height_mm:.2f}mm" viewBox="-0.1 -0.3 {widest + 0.2:.3f} {total_h:.3f}">\n')
    for i, r in enumerate(rows):
        off = np.array([0.0, i * (1 + gap)])
        pieces.extend(f'<path fill="none" stroke="black" stroke-width="0.04" stroke-linecap="round" '
                      f'stroke-linejoin="round" d="{svg_path_data(s + off)}"/>\n' for s in r)
    pieces.append("</svg>\n")
    write_text_file(path.with_suffix(".svg"), "".join(pieces))

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(2 + widest * 0.9, 30), 0.2 + 1.2 * len(rows)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.01, 0.01, 0.98, 0.98])
    for i, r in enumerate(rows):
        y = i * (1 + gap) + 0.3
        for s in r:
            ax.plot(s[:, 0], s[:, 1] + y, color="black", linewidth=1.2, solid_capstyle="round")
        if i < len(titles) and titles[i]:
            ax.text(0.0, y - 0.08, titles[i], fontsize=8, color="#777777", va="bottom")
    ax.set_xlim(-0.1, widest + 0.1)
    ax.set_ylim(len(rows) * (1 + gap) + 0.1, -0.1)
    ax.set_aspect("equal")
    ax.set_axis_off()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atomic_write(path.with_suffix(".png"), lambda tmp: fig.savefig(tmp, format="png", dpi=100, facecolor="white"))
    return [path.with_suffix(".svg"), path.with_suffix(".png")]


def safe_name(text: str, limit: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit] or "line"


def write_text_lines(inks: list[Ink], texts: list[str], out_dir: Path, height_mm: float = DEFAULT_HEIGHT_MM,
                     render_png=None) -> list[Path]:
    """``line-000_TEXT.svg`` (plotter), ``.png`` per line, ``lines.npz`` (stroke-3, every line) and
    ``lines-sheet.svg/png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (ink, text) in enumerate(zip(inks, texts)):
        ink = Ink(ink.strokes, label=text)
        stem = out_dir / f"line-{i:03d}_{safe_name(text)}"
        write_plotter_svg(ink, stem.with_suffix(".svg"), height_mm)
        paths.append(stem.with_suffix(".svg"))
        if render_png is not None:
            render_png(ink, stem.with_suffix(".png"))
            paths.append(stem.with_suffix(".png"))
    labelled = [Ink(ink.strokes, label=t) for ink, t in zip(inks, texts)]
    formats.write_npz(labelled, out_dir / "lines.npz")
    paths.append(out_dir / "lines.npz")
    paths += write_lines_sheet(labelled, out_dir / "lines-sheet", texts, height_mm)
    return paths


__all__ = ["write_plotter_svg", "write_lines_sheet", "write_text_lines", "quoteattr"]
