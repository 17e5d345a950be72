"""Training curves from a run's ``metrics.jsonl``: as inline SVG (no dependency; the report page) or as a PNG
(matplotlib, an optional dependency: ``seqstudio plot``).

The panels are found in the records, not listed per backend: every numeric field of the ``train`` and
``valid`` records becomes one panel with a train and a valid line, the usual ones first (loss, nll, kl, elbo,
lr). So a backend that reports other figures (a GAN's discriminator loss) gets its own curves unasked.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from .errors import ConfigError, RunDirError

NOT_CURVES = {"step", "epoch", "elapsed_s", "tokens_per_s", "eta_s"}  # counters and forecasts, not figures of the model
PREFERRED = ("loss", "nll", "kl", "elbo", "iwae", "lr", "accuracy")
COLOURS = {"train": "#1f77b4", "valid": "#d62728"}

Series = list[tuple[float, float]]


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl``; a torn last line (a run killed mid-write) is skipped."""
    from .runcheck import refuse_link

    path = Path(run_dir) / "metrics.jsonl"
    refuse_link(path)  # never read through a link (``plot``/``report`` would show another file's content)
    if path.is_file() and path.stat().st_size > (1 << 30):
        raise RunDirError(f"{path} is over 1 GB, more than a seqstudio run writes: not a run file")
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no metrics.jsonl (is it a run directory written by `seqstudio train`?)")
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def curves(records: list[dict]) -> dict[str, dict[str, Series]]:
    """``{panel: {split: [(step, value)]}}`` for every numeric field of the train/valid records."""
    panels: dict[str, dict[str, Series]] = {}
    for r in records:
        split, step = r.get("split"), r.get("step")
        if split not in ("train", "valid") or not isinstance(step, (int, float)):
            continue
        for key, value in r.items():
            if key in NOT_CURVES or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                panels.setdefault(key, {}).setdefault(split, []).append((float(step), float(value)))
    order = [k for k in PREFERRED if k in panels] + sorted(k for k in panels if k not in PREFERRED)
    return {k: panels[k] for k in order}


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi - lo < 1e-12:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def svg_chart(title: str, series: dict[str, Series], width: int = 360, height: int = 220) -> str:
    """One line chart as an ``<svg>`` element (axes, ticks, a legend), valid inline in HTML5."""
    left, right, top, bottom = 52, 10, 34, 34
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 1, x1 + 1
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - abs(y0) * 0.1 - 1e-3, y1 + abs(y1) * 0.1 + 1e-3
    pad = (y1 - y0) * 0.05  # lines never run along the frame
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="15" text-anchor="middle" font-size="13" '
           f'font-family="sans-serif">{html.escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in _ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
                   f'font-family="sans-serif">{_fmt(t)}</text>')
    for t in _ticks(x0, x1):
        x = sx(t)
        out.append(f'<text x="{x:.1f}" y="{top + ph + 14}" text-anchor="middle" font-size="10" '
                   f'font-family="sans-serif">{_fmt(t)}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle" font-size="10" '
               f'font-family="sans-serif">step</text>')
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS.get(name, "#2ca02c")
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
        if len(pts) == 1:
            x, y = pts[0]
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        else:
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        lx = left + pw - 60 * (len(series) - i)  # the legend in one row above the plot, right-aligned
        ly = top - 5
        out.append(f'<line x1="{lx}" x2="{lx + 14}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
                   f'stroke-width="2"/>')
        out.append(f'<text x="{lx + 18}" y="{ly}" font-size="10" font-family="sans-serif">'
                   f'{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_bars(title: str, values: dict[str, float], width: int = 480, lo: float = 0.0, hi: float = 1.0) -> str:
    """Horizontal bars, one per name (the per-metric overlaps of ``evaluate --samples``), on [lo, hi]."""
    values = {k: v for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    if not values:
        return ""
    row, label_w, top = 18, 170, 24
    height = top + row * len(values) + 20
    bar_w = width - label_w - 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="15" text-anchor="middle" font-size="13" '
           f'font-family="sans-serif">{html.escape(title)}</text>']
    for i, (name, v) in enumerate(values.items()):
        y = top + i * row
        w = max(0.0, min(1.0, (v - lo) / (hi - lo))) * bar_w
        out.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end" font-size="11" '
                   f'font-family="sans-serif">{html.escape(name)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" fill="#1f77b4"/>')
        out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="10" '
                   f'font-family="sans-serif">{v:.3f}</text>')
    out.append("</svg>")
    return "".join(out)


def write_curves(run_dir: Path, out: Path) -> Path:
    """All panels of the run's curves in one figure: ``.png`` (matplotlib) or ``.svg`` (no dependency)."""
    out = Path(out)
    panels = curves(read_metrics(run_dir))
    if not panels:
        raise RunDirError(f"{run_dir}/metrics.jsonl holds no train or valid records yet")
    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ConfigError(f"-o must name a .png or .svg file, got {out}")
    from .outputs import staged_output

    # Drawn into a private folder and renamed into place: never written through a link planted at ``out``, and
    # nothing half-written on a full disk (``seqstudio.outputs``).
    with staged_output(out.parent) as stage:
        _draw_curves(panels, stage / out.name)
    return out


def _draw_curves(panels: dict, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix == ".svg":
        charts = [svg_chart(name, series) for name, series in panels.items()]
        cols, w, h = 3, 360, 220
        rows = (len(charts) + cols - 1) // cols
        body = "".join(f'<g transform="translate({(i % cols) * w},{(i // cols) * h})">{c}</g>'
                       for i, c in enumerate(charts))
        out.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * w}" height="{rows * h}">{body}'
                       f'</svg>', encoding="utf-8")
        return
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("a .png plot needs matplotlib (pip install matplotlib, or install seqstudio[plot]); "
                          "-o curves.svg needs nothing") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (name, series) in zip(axes.flat, panels.items()):
        for split, pts in series.items():
            pts = sorted(pts)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=split, color=COLOURS.get(split),
                    marker="o" if len(pts) == 1 else None)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
