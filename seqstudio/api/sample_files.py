"""Generated samples written as the run's domain's files (pictures, audio, a sheet, ``conditions.json``),
through ``outputs.staged_output``."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ConfigError, DataError
from ..rundir import Run
from . import text_lines

log = logging.getLogger("seqstudio")


def write_samples(run: Run, samples: list, out_dir: str | Path, prefix: str = "sample",
                  render: bool = True, audio: bool = False, soundfont: str | Path | None = None,
                  progress: bool = False, sample_set: bool = True, height_mm: float | None = None) -> list[Path]:
    """Write samples as files of the run's domain (plus a picture of each when the domain can draw, a WAV
    beside each when ``audio`` and the domain plays it, and an overview sheet of them all when the domain makes
    one); see ``seqstudio.outputs`` for how (never through a symbolic link, nothing left behind on a full disk).
    ``sample_set``: replace the set of samples written there before (``outputs.staged_output``). Lines of text
    (``Samples.texts``) are written as the domain's text-line files when it writes them (``height_mm``: each
    line's height on paper), else as ``line-NNN`` sample files."""
    from ..outputs import staged_output

    out_dir = Path(out_dir)
    texts = getattr(samples, "texts", None)
    if texts is not None:
        if run.domain.can_write_text_lines:
            return text_lines.write_lines(run, samples, texts, out_dir, height_mm)
        prefix = "line"
    if audio and not run.domain.can_render_audio:
        raise ConfigError(f"domain {run.domain.name!r} cannot render audio")
    with staged_output(out_dir, sample_set=sample_set) as stage:
        labels = write_sample_files(run, samples, stage, prefix, 0, render, audio, soundfont, progress)
        write_conditions(stage, labels)
    return [out_dir / name for name in sample_names(run, samples, prefix, 0)]


def sample_names(run: Run, samples: list, prefix: str, start: int) -> list[str]:
    return [f"{prefix}-{start + i:03d}{run.domain.output_extension_for(s)}" for i, s in enumerate(samples)]


def write_conditions(folder: Path, labels: dict) -> None:
    """``conditions.json``: each sample file's conditions (conditional runs only)."""
    if labels:
        import json

        (Path(folder) / "conditions.json").write_text(json.dumps(labels, indent=1))


def write_sample_files(run: Run, samples: list, stage: Path, prefix: str = "sample", start: int = 0,
                       render: bool = True, audio: bool = False, soundfont: str | Path | None = None,
                       progress: bool = False) -> dict:
    """Write ``samples`` (numbered from ``start``) into the private folder ``stage`` (``staged_output``'s);
    returns ``{file name: conditions}`` for a conditional run (else empty)."""
    from tqdm.auto import tqdm

    labels = getattr(samples, "conditions", None)  # conditions: each file's, in conditions.json
    names = sample_names(run, samples, prefix, start)
    bar = tqdm(samples, desc="writing samples", unit="file", disable=not progress or len(samples) < 2,
               dynamic_ncols=True, leave=False)
    for name, sample in zip(names, bar):
        run.domain.write(sample, stage / name)
        if render and run.domain.can_render:
            run.domain.render(sample, (stage / name).with_suffix(".png"))
        if audio and run.domain.has_audio(sample):
            _write_audio(run.domain, sample, (stage / name).with_suffix(".wav"), soundfont)
    if render and run.domain.can_write_sheet and len(samples) > 1 and start == 0:
        run.domain.write_sheet(samples, stage / f"{prefix}-sheet")
    return dict(zip(names, labels)) if labels else {}


def _write_audio(domain, sample, path: Path, soundfont) -> None:
    """One sample's audio; a generated sample that cannot be played (an ABC tune that does not parse) is a
    warning, not the end of ``generate``."""
    try:
        domain.render_audio(sample, path, soundfont)
    except DataError as exc:
        log.warning("no audio for %s: %s", path.with_suffix("").name, exc)
