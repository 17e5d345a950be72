"""Writing files so that readers never see them half-written, a full disk is named as such, and a planted
symbolic link is never written through.

* ``atomic_write`` writes a fresh temporary file beside the destination (created exclusively, so a link planted
  at a predictable temporary name is never followed), then renames it over the destination. ``os.replace``
  replaces a symbolic link at the destination *itself*: the link's target is never opened.
* Any failure removes the temporary file; the previous version of the destination stays intact.
* A full disk becomes ``DiskFullError("no space left on DIR ...")``. Python reports it as ``OSError(ENOSPC)``,
  but ``torch.save`` to a path reports it as ``RuntimeError("[enforce fail at inline_container.cc:...]
  unexpected pos ...")`` or ``"basic_ios::clear: iostream error"``, naming no cause, so for other errors the
  file system's free space is asked (``os.statvfs``) before the temporary file is removed.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import DiskFullError, WriteError

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Below this many free bytes a failed write is taken to be a full disk (a real full disk shows ~0).
FULL_DISK_BYTES = 1 << 20


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged writer can still use on ``folder``'s file system (None when unknown)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def is_disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc``, raised while writing into ``folder``, means that the file system is full."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
        return True
    if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
        return True
    if isinstance(exc, (OSError, RuntimeError)):  # torch's stream writer names no cause: ask the file system
        free = free_bytes(folder)
        return free is not None and free < FULL_DISK_BYTES
    return False


def disk_full_error(folder: Path, what: str) -> DiskFullError:
    return DiskFullError(f"no space left on {folder} (writing {what}); free some space and run the command again")


def cannot_write(folder: Path, exc: OSError, what: str = "") -> WriteError:
    """One line for a destination that refuses writes (read-only, no permission): names the folder, not the
    temporary file that failed."""
    reason = exc.strerror or str(exc)
    return WriteError(f"cannot write {what + ' ' if what else ''}into {folder}: {reason}; nothing was written "
                      f"(choose a writable destination)")


def write_error(exc: BaseException, folder: Path, what: str) -> BaseException | None:
    """The seqstudio error that ``exc``, raised while writing ``what`` into ``folder``, stands for (None when
    it is not about the destination)."""
    if isinstance(exc, Exception) and is_disk_full(exc, folder):
        return disk_full_error(folder, what)
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR):
        return cannot_write(folder, exc, what)
    return None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename ``tmp`` over ``path``; on any failure remove ``tmp`` and keep ``path``."""
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        error = write_error(exc, folder, path.name)
        if error is not None:
            raise error from None
        raise
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual permissions
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        full = isinstance(exc, Exception) and is_disk_full(exc, folder)
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        if full:
            raise disk_full_error(folder, path.name) from None
        raise
