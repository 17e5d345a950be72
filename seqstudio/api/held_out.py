"""Held-out data as a run sees it: a split of its folder (or another) encoded into windows by the run's
``Fitted`` value, and those windows decoded back into samples (the judges' real side)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .. import data
from ..errors import ConfigError, DataError
from ..export import exported_from
from ..rundir import Run
from .runs import run_threads

log = logging.getLogger("seqstudio")


def held_out_windows(run: Run, data_dir, split: str, progress: bool):
    """``split`` of ``data_dir`` (default: the run's training folder) encoded into windows by the run's codec."""
    if split not in data.SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(data.SPLITS)}")
    run_threads(run)
    if data_dir is None:
        check_training_folder(run)
    spec = run.spec.with_data_path(data_dir) if data_dir is not None else run.spec
    prepared = data.prepare(spec, fitted=run.fitted, splits=(split,), progress=progress, domain=run.domain)
    files, windows = prepared.files, prepared.windows[split]
    if len(windows) == 0:
        raise DataError(f"the {split} split of {spec.data['path']} holds no usable {run.domain.name} files "
                        f"({len(files[split])} files)")
    return spec, files, windows


def check_training_folder(run: Run) -> None:
    """A run judged on its own training folder needs that folder here: an installed model's was on the machine
    that trained it, so say how to build the same data (its recipe) and pass it."""
    where = Path(run.spec.data.get("path", ""))
    if where.is_dir():
        return
    recipe = exported_from(run.path).get("recipe")
    build = (f"`seqstudio data build {recipe} DIR`, then give DIR after the run" if recipe
             else "give a folder of held-out files after the run")
    raise DataError(f"the run's training data folder {where} is not on this machine: {build}")


def distinct_windows(windows) -> list[int]:
    """Indices of the windows of a WindowSet that overlap no other kept one (the first of each run of overlapping
    windows of a piece, in order): a window cut every bar overlaps its neighbours by three bars, and the sample
    judge must not see near-copies on both sides of a fold."""
    import numpy as np

    keep, last_src, last_end = [], None, -1
    for i in np.lexsort((windows.row, windows.src)):
        src, row = int(windows.src[i]), int(windows.row[i])
        if src != last_src:
            last_src, last_end = src, -1
        if row >= last_end:
            keep.append(int(i))
            last_end = row + int(windows.length[i])
    return sorted(keep)


def window_pieces(windows, index: list[int]) -> list[tuple[int, int]]:
    """The piece each of the windows ``index`` was cut from, as ``(source, piece)``; a window the codec built
    rather than sliced (kept apart from its piece's rows) counts as a piece of its own."""
    import numpy as np

    out = []
    for i in index:
        src = int(windows.src[i])
        rows = getattr(windows.sources[src], "piece_row", None)
        piece = int(np.searchsorted(rows, windows.row[i], side="right")) - 1 if rows is not None else -1 - i
        out.append((src, piece))
    return out


def judge_reference(run: Run, data_dir: str | Path | None = None, split: str = "test", limit: int = 1000,
                    seed: int = 0, progress: bool = True) -> tuple[list, list[tuple[int, int]]]:
    """The sample judge's real side: ``split``'s windows that overlap no other (``distinct_windows``; at most
    ``limit``, a seeded subset), decoded like generated samples, and the piece each came from (the judge's
    real-vs-real floor splits by piece)."""
    _, _, windows = held_out_windows(run, data_dir, split, progress)
    index = distinct_windows(windows)
    if limit and len(index) > limit:
        order = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))
        index = sorted(index[i] for i in order[:limit].tolist())
    return [run.codec.decode(windows.window(i)) for i in index], window_pieces(windows, index)


def reference_samples(run: Run, data_dir: str | Path | None = None, split: str = "test", limit: int = 1000,
                      seed: int = 0, progress: bool = True) -> list:
    """Held-out pieces as a generator of this run would produce them: ``split``'s windows, decoded by the codec.

    Generated samples are windows of the codec's length on the codec's grid, and metrics such as the pitch
    range or the number of pitches used grow with length; comparing 4-bar samples with whole pieces would mark
    every model down for length alone. So the reference is the split's training-style windows (at most
    ``limit``, a seeded random subset), decoded back into domain samples. Encoding quantises a note onto the grid
    once and decoding is exact on that grid, so the reference is quantised once, exactly like the samples.
    """
    _, _, windows = held_out_windows(run, data_dir, split, progress)
    index = list(range(len(windows)))
    if limit and len(windows) > limit:
        order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))
        index = sorted(order[:limit].tolist())
    return [run.codec.decode(windows.window(i)) for i in index]


def labelled_windows(run: Run, data_dir, split: str, limit: int, seed: int, progress: bool):
    """``split``'s windows decoded, each with its condition values (at most ``limit``, a seeded subset)."""
    _, _, windows = held_out_windows(run, data_dir, split, progress)
    cs = run.fitted.conditions
    index = list(range(len(windows)))
    if limit and len(windows) > limit:
        index = sorted(torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))[:limit].tolist())
    return [(run.codec.decode(windows.window(i)),  # one window read (``windows.x`` would gather them all)
             cs.labels(windows.conditions[i].tolist()) if windows.conditions is not None else {}) for i in index]
