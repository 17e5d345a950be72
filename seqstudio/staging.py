"""Private staging folders: a result is written whole into a hidden folder beside (or inside) its destination
and only then moved into place, so nothing half-written is ever visible at the destination.

Each staging folder holds its writer's lock (``seqstudio.runlock``) while it is in use. A folder left behind by a
writer that was killed (``kill -9``: no ``finally`` runs) has a lock nobody holds, and the next writer that
stages beside it removes it (``clean_stale``), so ``.seqstudio-*`` and ``.NAME-*`` folders do not pile up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .atomic import write_error
from .errors import DataError, InUseError, UnsafePathError, WriteError
from .runlock import LOCK_NAME, Lock


def clean_stale(parent: Path, prefix: str) -> int:
    """Remove the staging folders ``parent/PREFIX*`` whose writer is gone (their lock is free); how many."""
    removed = 0
    try:
        candidates = [p for p in Path(parent).iterdir() if p.name.startswith(prefix)]
    except OSError:
        return 0
    for path in candidates:
        if path.is_symlink() or not path.is_dir() or not (path / LOCK_NAME).is_file():
            continue  # not one of ours (every staging folder holds its lock file from its first moment)
        try:
            lock = Lock(path, "")
        except (InUseError, UnsafePathError, WriteError, OSError):
            continue  # still in use, or not ours to judge
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        finally:
            lock.release()
    return removed


@contextlib.contextmanager
def folder(parent: Path, prefix: str, what: str) -> Iterator[Path]:
    """A fresh locked folder ``parent/PREFIX<random>`` (stale ones cleaned first), removed when the block ends
    unless it was moved away; a full or read-only ``parent`` is one seqstudio error."""
    parent = Path(parent)
    clean_stale(parent, prefix)
    try:
        stage = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
        lock = Lock(stage, what)
    except OSError as exc:
        error = write_error(exc, parent, what)
        if error is not None:
            raise error from None
        raise
    try:
        yield stage
    finally:
        lock.release()
        shutil.rmtree(stage, ignore_errors=True)


def folder_beside(dest: Path) -> contextlib.AbstractContextManager[Path]:
    """A staging folder beside ``dest`` (same file system, so ``publish`` is a rename)."""
    dest = Path(dest)
    return folder(dest.parent, f".seqstudio-build-{dest.name}-", dest.name)


def publish(stage: Path, dest: Path) -> None:
    """Move the finished ``stage`` to ``dest``, an empty folder (perhaps holding only its lock file) or none."""
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp's 0700 would hide the result from other users
    with contextlib.suppress(FileNotFoundError):
        os.unlink(stage / LOCK_NAME)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(dest / LOCK_NAME)  # the lock stays held on its open descriptor until released
    try:
        os.rename(stage, dest)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise DataError(f"{dest} was filled by something else meanwhile; nothing was moved there") from None
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
