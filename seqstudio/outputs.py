"""Writing a set of output files (generated samples, their pictures, a sheet) into a folder safely.

Domains write files with their own libraries (mido, matplotlib, ...), which open whatever path they are given,
following a symbolic link planted there and writing into its target. So every file is first written into a
fresh private folder inside the destination (created exclusively by ``mkdtemp``), then renamed into place:
``os.replace`` replaces a link at the destination itself and never opens its target. The policy, documented
in the README: a link that stands where seqstudio writes a file is *replaced* by the new file; the file it
pointed to is left untouched.

If anything fails (a full disk most of all), the private folder is removed: no half-written sample is left, and
a full disk is one ``DiskFullError`` naming the folder. A private folder left by a killed command is removed by
the next one that writes there (``seqstudio.staging``).

A set of samples (``generate -o``) also takes the folder's lock (one writer) and replaces the previous set whole
(``staged_output(..., sample_set=True)``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

from . import runlock, staging
from .atomic import write_error
from .errors import WriteError

log = logging.getLogger("seqstudio")


MANIFEST = ".seqstudio-samples"  # the files of the last set of samples written into a folder, one per line
STAGE_PREFIX = ".seqstudio-"


def _previous_set(out_dir: Path) -> list[str]:
    """The names of the sample set seqstudio last wrote into ``out_dir``; ``WriteError`` when the folder holds
    other files, which a new set must neither overwrite nor be mixed with."""
    manifest = out_dir / MANIFEST
    listed = []
    if manifest.is_file() and not manifest.is_symlink():
        listed = [line for line in manifest.read_text(encoding="utf-8", errors="replace").splitlines()
                  if line and "/" not in line and not line.startswith(".")]
    foreign = sorted(p.name for p in out_dir.iterdir()  # a planted link is replaced, never followed
                     if not p.name.startswith(".") and p.name not in listed and not p.is_dir()
                     and not p.is_symlink())
    if foreign:
        raise WriteError(f"{out_dir} holds files seqstudio did not write there ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}); choose an empty or new folder for -o")
    return listed


@contextlib.contextmanager
def staged_output(out_dir: Path, sample_set: bool = False) -> Iterator[Path]:
    """Yield a private folder to write into; on success its files are renamed into ``out_dir``.

    ``sample_set``: the files are one set of samples (``generate``). The folder is locked while it is written
    (one writer, ``seqstudio.runlock``); a folder holding files seqstudio did not write is refused, and the
    previous set (listed in ``.seqstudio-samples``) is replaced whole, so ``-n 2`` after ``-n 4`` leaves two."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise WriteError(f"{out_dir} exists and is not a folder; choose a folder for the output")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        error = write_error(exc, out_dir.parent if out_dir.parent.is_dir() else out_dir, "the output folder")
        if error is not None:
            raise error from None
        raise
    with contextlib.ExitStack() as stack:
        if sample_set:
            stack.enter_context(runlock.hold(out_dir, "generate -o"))
            previous = _previous_set(out_dir)
        stage = stack.enter_context(staging.folder(out_dir, STAGE_PREFIX, "the output folder"))
        try:
            yield stage
            names = sorted(p.name for p in stage.iterdir() if p.name != runlock.LOCK_NAME)
            if sample_set:
                (stage / MANIFEST).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
                stale = [n for n in previous if n not in names]
                if previous:
                    log.info("replacing the previous set of %d files in %s", len(previous), out_dir)
                for name in stale:
                    with contextlib.suppress(FileNotFoundError):
                        (out_dir / name).unlink()
                names.append(MANIFEST)
            for name in names:
                os.replace(stage / name, out_dir / name)
        except Exception as exc:
            error = write_error(exc, out_dir, "generated files")
            if error is not None:
                raise error from None
            raise
