"""Writing a set of output files (generated samples, their pictures, a sheet) into a folder safely.

Domains write files with their own libraries (mido, matplotlib, ...), which open whatever path they are given,
following a symbolic link planted there and writing into its target. So every file is first written into a
fresh private folder inside the destination (created exclusively by ``mkdtemp``), then renamed into place:
``os.replace`` replaces a link at the destination itself and never opens its target. The policy, documented
in the README: a link that stands where seqstudio writes a file is *replaced* by the new file; the file it
pointed to is left untouched.

If anything fails (a full disk most of all), the private folder is removed: no half-written sample is left, and
a full disk is one ``DiskFullError`` naming the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .atomic import write_error
from .errors import WriteError


@contextlib.contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """Yield a private folder to write into; on success its files are renamed into ``out_dir``."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".seqstudio-"))
    except OSError as exc:
        if out_dir.exists() and not out_dir.is_dir():
            raise WriteError(f"{out_dir} exists and is not a folder; choose another output folder") from None
        error = write_error(exc, out_dir if out_dir.is_dir() else out_dir.parent, "the output folder")
        if error is not None:
            raise error from None
        raise
    try:
        yield stage
        for item in sorted(stage.iterdir()):
            os.replace(item, out_dir / item.name)
    except Exception as exc:
        error = write_error(exc, out_dir, "generated files")
        if error is not None:
            raise error from None
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
