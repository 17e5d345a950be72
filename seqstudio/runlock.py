"""One writer per folder: an advisory lock on a run directory, a ``data build`` destination or a ``generate``
output folder, held while seqstudio writes there.

Two ``train --run-dir SAME`` started together (or ``--resume`` while the first still runs) used to interleave
``metrics.jsonl`` and overwrite each other's checkpoints. Now the first writer holds ``FOLDER/.seqstudio-lock``
(``fcntl.flock``, exclusive, non-blocking; the file holds the holder's pid) and a second one stops at once with
one line naming that pid. The kernel drops the lock when its holder exits in any way (``kill -9`` included), so a
stale lock never blocks a later run. The holder removes the file when it is done (a file left by a killed holder
is ignored wherever a folder's emptiness is judged: ``is_empty``); a writer that locked a file which was removed
meanwhile notices (the path no longer names its file) and locks the new one.

``acquire`` registers the lock with the innermost function decorated ``@releases_locks``, which releases it when
that function returns or raises: a library caller training twice in one process gets the folder back.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import functools
import os
from pathlib import Path
from typing import Iterator

from .errors import InUseError, UnsafePathError, WriteError

LOCK_NAME = ".seqstudio-lock"
_held: contextvars.ContextVar[list | None] = contextvars.ContextVar("seqstudio_locks", default=None)


class Lock:
    """An exclusive ``flock`` on ``folder/.seqstudio-lock``; ``release`` (or process exit) gives it up."""

    def __init__(self, folder: Path, what: str):
        self.folder = Path(folder)
        for _ in range(20):
            self._take(what)
            if self._still_linked():
                break
            os.close(self.fd)  # released and removed by its holder meanwhile: lock the new file instead
        else:
            raise InUseError(f"{self.folder} is in use: its lock keeps changing hands; try again ({what})")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def _still_linked(self) -> bool:
        try:
            st = os.stat(self.folder / LOCK_NAME, follow_symlinks=False)
        except FileNotFoundError:
            return False
        own = os.fstat(self.fd)
        return (st.st_ino, st.st_dev) == (own.st_ino, own.st_dev)

    def _take(self, what: str) -> None:
        path = self.folder / LOCK_NAME
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(f"{path} is a symbolic link; seqstudio never writes through a link: "
                                      f"remove it and run the command again") from None
            raise WriteError(f"cannot write into {self.folder}: {exc.strerror}; nothing was written") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(self.fd, 32, 0).decode("ascii", "replace").strip()
            os.close(self.fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InUseError(f"{self.folder} is in use: another seqstudio process (pid "
                                 f"{holder if holder.isdigit() else '?'}) is writing there; wait for it to end "
                                 f"or stop it, or choose another folder ({what})") from None
            raise

    remove_if_unused = False  # set by ``acquire`` for a folder it created

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        if self._still_linked():  # removed while still held: a waiting writer then locks a fresh file
            with contextlib.suppress(OSError):
                os.unlink(self.folder / LOCK_NAME)
        if self.remove_if_unused:  # a folder made only to be locked, and nothing written: leave no trace
            with contextlib.suppress(OSError):
                if is_empty(self.folder):
                    os.rmdir(self.folder)
        os.close(self.fd)  # closing the last descriptor drops the flock
        self.fd = -1


@contextlib.contextmanager
def hold(folder: Path, what: str) -> Iterator[Lock]:
    """Hold ``folder``'s lock for the block (the folder is created when missing)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    lock = Lock(folder, what)
    try:
        yield lock
    finally:
        lock.release()


@contextlib.contextmanager
def hold_new(folder: Path, what: str) -> Iterator[Lock]:
    """Hold ``folder``'s lock for the block; a folder created here and left holding only its lock file is
    removed at the end (a failed ``data build`` leaves no empty destination behind)."""
    created = not os.path.lexists(folder)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create {folder}: {exc.strerror}; nothing was written") from None
    lock = Lock(folder, what)
    lock.remove_if_unused = created
    try:
        yield lock
    finally:
        lock.release()


def acquire(folder: Path, what: str) -> Lock:
    """Take ``folder``'s lock until the innermost ``@releases_locks`` function returns (or the process ends)."""
    created = not os.path.lexists(folder)
    Path(folder).mkdir(parents=True, exist_ok=True)
    lock = Lock(folder, what)
    lock.remove_if_unused = created
    held = _held.get()
    if held is not None:
        held.append(lock)
    return lock


def releases_locks(func):
    """Release every lock ``acquire``\\ d during a call of ``func`` when it returns or raises."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        token = _held.set([])
        try:
            return func(*args, **kwargs)
        finally:
            for lock in reversed(_held.get() or []):
                lock.release()
            _held.reset(token)

    return wrapper


def is_empty(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but (perhaps) its lock file."""
    return not any(p.name != LOCK_NAME for p in Path(folder).iterdir())
