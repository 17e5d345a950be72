"""A run as one static page: configuration, data, training curves, evaluation figures and a gallery of samples.

The page is a folder (``index.html`` and the pictures and WAV files it shows, beside it) that opens from disk in
any browser with no network: the curves are inline SVG, the players plain HTML5 ``<audio>``, nothing is fetched
from anywhere. What a sample looks and sounds like comes from its domain (``Domain.gallery_item``), so the page
never asks which domain it is showing.

The folder is written whole into a private folder beside it and then moved into place, so a rewritten report
never mixes old and new files; an existing folder is replaced only when it is a report (it holds the marker
file ``.seqstudio-report``) or empty.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

from . import plotting
from .domain import Domain, GalleryItem
from .errors import ConfigError, RunDirError

log = logging.getLogger("seqstudio")
MARKER = ".seqstudio-report"
SKIP_SUFFIXES = (".png", ".wav", ".json", ".yaml", ".html")  # pictures, audio and records beside samples
# What ``generate`` writes beside the samples that is not a sample: the sheet of all of them (``Domain.write_sheet``,
# e.g. the strokes domain's ``sample-sheet.npz`` and ``.svg``), one per prefix ``generate`` uses.
SKIP_STEMS = ("sample-sheet", "primed-sheet", "interp-sheet")
MAX_ITEMS = 64  # per sample folder: a page with thousands of players helps nobody

STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:28em;font-size:.85em}
table{border-collapse:collapse}td,th{padding:.15em .8em;text-align:left;border-bottom:1px solid #eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:8px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px}
.item{border:1px solid #ddd;border-radius:6px;padding:8px}.item img{width:100%;height:auto}
.item audio{width:100%}.item h3{font-size:1em;margin:.2em 0 .4em}.note{color:#a33;font-size:.85em}
.muted{color:#777}
"""


@dataclasses.dataclass
class Group:
    """One folder of samples in the gallery."""

    title: str
    items: list[GalleryItem]


def sample_files(folder: Path, domain: Domain) -> list[Path]:
    """The sample files of ``folder`` that ``domain`` reads (not the pictures, audio or records beside them)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.suffix.lower() in SKIP_SUFFIXES or p.stem in SKIP_STEMS:
            continue
        if p.is_symlink():  # never read through a link: it could show a file from outside the folder
            log.warning("report: skipped %s, a symbolic link (a report shows no linked files)", p)
            continue
        if p.is_file() and domain.accepts(p):
            files.append(p)
    return files


def gallery(domain: Domain, folders: list[tuple[str, Path]], stage: Path, progress: bool = True) -> list[Group]:
    """Gallery groups (the first ``MAX_ITEMS`` samples of each folder), their pictures and audio written into
    ``stage/g0``, ``stage/g1``..."""
    from tqdm.auto import tqdm

    found = [sample_files(folder, domain) for _, folder in folders]
    jobs = [(i, f) for i, files in enumerate(found) for f in files[:MAX_ITEMS]]
    groups = {i: Group(title + (f" (the first {MAX_ITEMS} of {len(found[i])})" if len(found[i]) > MAX_ITEMS
                                else ""), [])
              for i, (title, _) in enumerate(folders)}
    for i, path in tqdm(jobs, desc="report gallery", unit="sample", disable=not progress or not jobs,
                           dynamic_ncols=True, leave=False):
        assets = stage / f"g{i}"
        assets.mkdir(exist_ok=True)
        groups[i].items.append(domain.gallery_item(path, assets))
    return [g for g in groups.values() if g.items]


# -- the page's sections ----------------------------------------------------------------------------------------
def _rel(path: Path | None, stage: Path) -> str:
    return html.escape(Path(os.path.relpath(path, stage)).as_posix(), quote=True)


def _gallery_html(groups: list[Group], stage: Path) -> str:
    if not groups:
        return "<p class='muted'>No samples found.</p>"
    out = []
    for group in groups:
        out.append(f"<h3>{html.escape(group.title)}</h3><div class='gallery'>")
        for item in group.items:
            out.append(f"<div class='item'><h3>{html.escape(item.title)}</h3>")
            if item.image:
                out.append(f"<img src='{_rel(item.image, stage)}' alt='{html.escape(item.title, quote=True)}'>")
            if item.text is not None:
                out.append(f"<pre>{html.escape(item.text)}</pre>")
            if item.audio:
                out.append(f"<audio controls preload='auto' src='{_rel(item.audio, stage)}'></audio>")
            for note in item.notes:
                out.append(f"<p class='note'>{html.escape(note)}</p>")
            out.append("</div>")
        out.append("</div>")
    return "".join(out)


def duration_text(seconds: float) -> str:
    """Seconds as a person reads a duration: 7.4 s, 3 min 05 s, 1 h 02 min."""
    if not math.isfinite(seconds) or seconds < 0:
        return str(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _table(rows: list[tuple[str, object]]) -> str:
    cells = []
    for key, value in rows:
        if isinstance(value, float):
            text, cls = (f"{value:.4f}" if math.isfinite(value) else str(value)), " class='num'"
        else:
            text, cls = str(value), ""
        cells.append(f"<tr><th>{html.escape(key)}</th><td{cls}>{html.escape(text)}</td></tr>")
    return f"<table>{''.join(cells)}</table>"


def _curves_html(run_dir: Path) -> str:
    try:
        records = plotting.read_metrics(run_dir)
    except RunDirError as exc:
        return f"<p class='muted'>{html.escape(str(exc))}</p>"
    panels = plotting.curves(records)
    if not panels:
        return "<p class='muted'>No training records yet.</p>"
    valid = [r for r in records if r.get("split") == "valid"]
    train = [r for r in records if r.get("split") == "train"]
    stops = [r for r in records if r.get("split") == "stop"]
    rows = [("steps", max((r.get("step", 0) for r in train + valid), default=0))]
    if valid and "elapsed_s" in valid[-1]:
        rows.append(("training time (validation excluded)", duration_text(float(valid[-1]["elapsed_s"]))))
    if train and "tokens_per_s" in train[-1]:
        rows.append(("time steps per second (last train record)", int(train[-1]["tokens_per_s"])))
    if stops:
        rows.append(("stopped", f"{stops[-1].get('reason')} at step {stops[-1].get('step')}"))
    charts = "".join(plotting.svg_chart(name, series) for name, series in panels.items())
    return f"{_table(rows)}<div class='charts'>{charts}</div>"


def _evaluation_html(run_dir: Path) -> str:
    found = sorted(Path(run_dir).glob("evaluation-*.json"))
    if not found:
        return ("<p class='muted'>Not evaluated yet: <code>seqstudio evaluate RUN_DIR</code> stores its figures in "
                "the run directory.</p>")
    out = []
    for path in found:
        try:
            result = json.loads(_small_text(path))
        except (OSError, ValueError) as exc:  # ValueError: JSON and UTF-8 errors, too big
            out.append(f"<p class='note'>{html.escape(path.name)}: {html.escape(str(exc)[:300])}</p>")
            continue
        if not isinstance(result, dict):
            continue
        split = result.get("split", path.stem.removeprefix("evaluation-"))
        facts = [f"{result[k]} {k}" for k in ("files", "windows", "steps", "samples", "reference_windows")
                 if isinstance(result.get(k), int)]
        where = f"{result.get('checkpoint', 'best')} checkpoint, data {result.get('data', '?')}"
        out.append(f"<h3>{html.escape(str(split))} split</h3><p class='muted'>{html.escape(', '.join(facts))} "
                   f"({html.escape(where)})</p>")
        out.append(_table([(k, v) for k, v in result.items() if isinstance(v, float)]))
        metrics = result.get("sample_metrics")
        if isinstance(metrics, dict) and metrics:
            overlaps = {k: v.get("overlap") for k, v in metrics.items() if isinstance(v, dict)}
            out.append(plotting.svg_bars("overlap with held-out data (1 = same distribution)", overlaps))
        if isinstance(result.get("text"), dict):
            out.append(_text_html(result["text"]))
        if isinstance(result.get("judge"), dict):
            out.append(_judge_html(result["judge"]))
    return "".join(out)


def _number(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def _judge_html(verdict: dict) -> str:
    """The sample judge's verdict (``seqstudio.judge``): accuracy with its spread, the real-vs-real floor, the
    counts, and every feature's overlap beside the floor's and both sets' means."""
    if not verdict.get("available"):
        return f"<h4>Sample judge</h4><p class='muted'>{html.escape(str(verdict.get('reason', 'no judge')))}</p>"
    floor = verdict.get("floor") or {}
    rows = [("judge accuracy (balanced; 0.5 = indistinguishable from real)",
             f"{_number(verdict.get('accuracy'))} ± {_number(verdict.get('accuracy_spread'))}"),
            ("real vs real (the floor)",
             f"{_number(floor.get('accuracy'))} ± {_number(floor.get('accuracy_spread'))}"),
            ("excerpts", f"{verdict.get('generated_excerpts')} generated, {verdict.get('real_excerpts')} real "
                         f"({verdict.get('unit', 'samples')}); {verdict.get('per_side')} per side in "
                         f"{verdict.get('folds')} folds"),
            ("mean feature overlap (floor)", f"{_number(verdict.get('mean_overlap'))} "
                                             f"({_number(verdict.get('floor_mean_overlap'))})")]
    features = verdict.get("features") or {}
    first = [n for n in verdict.get("highlights", []) if n in features]
    order = first + sorted((n for n in features if n not in first),
                           key=lambda n: (features[n] or {}).get("overlap", 1.0) if isinstance(features[n], dict)
                           else 1.0)
    head = "<tr><th>feature</th><th>overlap</th><th>floor</th><th>generated mean</th><th>real mean</th></tr>"
    cells = []
    for name in order:
        row = features[name] if isinstance(features[name], dict) else {}
        cells.append(f"<tr><th>{html.escape(name)}</th>" + "".join(
            f"<td class='num'>{_number(row.get(k))}</td>"
            for k in ("overlap", "floor_overlap", "generated_mean", "reference_mean")) + "</tr>")
    return (f"<h4>Sample judge: can a classifier tell generated {html.escape(str(verdict.get('unit', 'samples')))} "
            f"from real ones?</h4>{_table(rows)}<table>{head}{''.join(cells)}</table>")


def _text_html(text: dict) -> str:
    """``evaluate --samples`` on a text-conditioned run: character error rates read back by its recogniser."""
    def num(value):
        return float(value) if isinstance(value, (int, float)) else float("nan")

    if "skipped" in text:
        return f"<h4>Does it write what it is asked?</h4><p class='muted'>{html.escape(str(text['skipped']))}</p>"
    rows = [("real lines (ceiling)", num(text.get("real_cer")))]
    examples = []
    for key, row in text.items():
        if key.startswith("bias_") and isinstance(row, dict):
            rows.append((f"generated, bias {key[5:]}", num(row.get("cer"))))
            rows.append((f"generated, bias {key[5:]}, against another line's text (chance)",
                         num(row.get("cer_other_text"))))
            for example in row.get("examples", [])[:3] if isinstance(row.get("examples"), list) else []:
                if isinstance(example, dict):
                    examples.append((f"bias {key[5:]}: asked {example.get('asked', '')!s}",
                                     f"read {example.get('read', '')!s}"))
    if isinstance(text.get("style_primed"), dict):
        rows.append(("style-primed", num(text["style_primed"].get("cer"))))
    return (f"<h4>Does it write what it is asked? Character error rate of {html.escape(str(text.get('lines', '?')))}"
            f" lines read back by the run's recogniser (lower is better)</h4>{_table(rows)}"
            + (_table(examples) if examples else ""))


def _data_html(run_dir: Path, config: dict) -> str:
    rows: list[tuple[str, object]] = [("data folder", (config.get("data") or {}).get("path", "?")),
                                      ("domain", config.get("domain", "?")),
                                      ("codec", (config.get("codec") or {}).get("name", "?")),
                                      ("backend", (config.get("backend") or {}).get("name", "?"))]
    path = Path(run_dir) / "data.json"
    seen = "<p class='muted'>What training saw was not recorded (a run from before data.json).</p>"
    if path.is_file():
        try:
            summary = json.loads(_small_text(path))
            seen = ("<p>Training saw: " + html.escape(", ".join(f"{v} {k}" for k, v in summary.items()
                                                             if isinstance(v, (int, float, str)))) + "</p>")
        except (OSError, ValueError, AttributeError):  # damaged: the page says it was not recorded
            pass
    return _table(rows) + seen


def _small_text(path: Path, limit: int = 1 << 20) -> str:
    """A run's small record as text: ``ValueError`` when it is bigger than ``limit`` or not UTF-8."""
    if path.stat().st_size > limit:
        raise ValueError(f"more than {limit} bytes, not a record seqstudio writes")
    return path.read_text(encoding="utf-8")


def _page(title: str, sections: list[tuple[str, str]]) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<h2>{html.escape(name)}</h2>{content}" for name, content in sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class='muted'>written by seqstudio on {stamp}</p>{body}</body></html>")


# -- writing ------------------------------------------------------------------------------------------------------
def _publish(stage: Path, out_dir: Path) -> None:
    """Move the finished ``stage`` folder to ``out_dir``, replacing an earlier report (or a link) there."""
    if out_dir.is_symlink():
        out_dir.unlink()  # the link is replaced; what it points to is left alone (the outputs policy)
    elif out_dir.exists():
        if not out_dir.is_dir():
            raise ConfigError(f"{out_dir} exists and is not a folder; choose another -o")
        if not (out_dir / MARKER).is_file() and any(out_dir.iterdir()):
            raise ConfigError(f"{out_dir} exists and is not a seqstudio report; choose another -o")
        shutil.rmtree(out_dir)
    os.replace(stage, out_dir)


def _write(out_dir: Path, title: str, build) -> Path:
    """Build the page in a private folder beside ``out_dir`` and move it into place; a read-only or full
    destination is one ``WriteError``/``DiskFullError`` line, with nothing left behind."""
    from .atomic import write_error

    out_dir = Path(out_dir)
    try:
        return _write_staged(out_dir, title, build)
    except Exception as exc:
        error = write_error(exc, out_dir.parent, "the report")
        if error is not None:
            raise error from None
        raise


def _write_staged(out_dir: Path, title: str, build) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        sections = build(stage)
        (stage / "index.html").write_text(_page(title, sections), encoding="utf-8")
        (stage / MARKER).write_text("written by seqstudio report\n", encoding="utf-8")
        os.chmod(stage, 0o755)  # mkdtemp's 0700 would hide the page from a web server or another user
        _publish(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out_dir / "index.html"


def write_run_report(run_dir: Path, out_dir: Path | None = None, sample_dirs: list[Path] = (),
                     progress: bool = True) -> Path:
    """The report page of ``run_dir`` (default folder: ``RUN_DIR/report``); returns its ``index.html``.

    The gallery shows ``RUN_DIR/samples`` (written at the end of training) and every folder of
    ``sample_dirs`` (e.g. the output of ``seqstudio generate``)."""
    from .rundir import load_spec
    from .runcheck import read_yaml_mapping

    from .runcheck import refuse_link

    run_dir = Path(run_dir)
    spec = load_spec(run_dir)  # refuses what is not a run directory, with the reason
    for name in ("samples", "metrics.jsonl", "data.json",
                 *(p.name for p in sorted(run_dir.glob("evaluation-*.json")))):
        refuse_link(run_dir / name)  # read below: never through a link
    config = read_yaml_mapping(run_dir / "config.yaml")
    domain = spec.make_domain()
    out_dir = Path(out_dir) if out_dir else run_dir / "report"
    folders = [(f"samples written at the end of training ({run_dir / 'samples'})", run_dir / "samples")]
    folders += [(f"samples in {d}", Path(d)) for d in sample_dirs]

    def build(stage: Path):
        groups = gallery(domain, folders, stage, progress)
        config_text = (run_dir / "config.yaml").read_text(encoding="utf-8", errors="replace")
        return [("Run", _data_html(run_dir, config)),
                ("Training", _curves_html(run_dir)),
                ("Evaluation", _evaluation_html(run_dir)),
                ("Samples", _gallery_html(groups, stage)),
                ("Configuration (config.yaml)", f"<pre>{html.escape(config_text)}</pre>")]

    return _write(out_dir, f"seqstudio run: {run_dir}", build)


def write_gallery(domain: Domain, sample_dir: Path, out_dir: Path | None = None, title: str | None = None,
                  progress: bool = True) -> Path:
    """The gallery of one folder of samples as a page (default folder: ``SAMPLE_DIR/report``)."""
    sample_dir = Path(sample_dir)
    out_dir = Path(out_dir) if out_dir else sample_dir / "report"

    def build(stage: Path):
        return [("Samples", _gallery_html(gallery(domain, [(str(sample_dir), sample_dir)], stage, progress),
                                          stage))]

    return _write(out_dir, title or f"seqstudio samples in {sample_dir}", build)
