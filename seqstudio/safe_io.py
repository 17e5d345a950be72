"""Bounded reading of untrusted files: one bad file may cost a few seconds and a little memory, never a run.

Readers of every domain (and the CLI, for ``--prime``/``--config``) use these helpers so that

* only *regular* files are opened: a FIFO would block forever, ``/dev/zero`` never ends, ``/proc`` and ``/sys``
  files are not data (``check_regular_file``, ``special_file_reason``);
* a file's size is checked *before* it is read or expanded (``read_bytes_limited``, ``check_zip_members``);
* XML is looked at with a streaming parser that refuses entity declarations, finds the root element however
  much comes before it and in whatever encoding the file declares (``xml_root``, ``count_xml_elements``);
* parsing stops after a time limit (CPU seconds, with a wall-clock backstop) that works in the main thread
  *and* in other threads, so it works in the loader's spawned worker processes, in ``render``/``convert`` and
  in a library caller's threads alike (``time_limit``, ``read_timeout``).

Every refusal is a ``DataError`` whose message starts with the file's path and says why.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import stat
import threading
import time
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import DataError

SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
DEFAULT_READ_TIMEOUT = 1800.0  # CPU seconds for one file, the last net; domains use less where they can tell
MAX_ZIP_BYTES = 256 << 20  # uncompressed bytes in one archive (a MusicXML .mxl, a QuickDraw .npz)
MAX_ZIP_RATIO = 200  # uncompressed / compressed; zeros compress ~1000:1, real MusicXML about 10-30:1


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages ("a named pipe (FIFO)", "a character device", ...)."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def not_regular(mode: int) -> str:
    """``"a character device, not a regular file"``: the reason a non-regular file is refused."""
    kind = file_kind(mode)
    return kind if kind.startswith("not") else f"{kind}, not a regular file"


def special_file_reason(path: str | Path) -> str | None:
    """Why ``path`` is not an ordinary file to read (``None`` when it is one). Never opens the file.

    Symlinks are followed: a link to ``/dev/zero`` is a character device, a link into ``/proc`` a special file.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return not_regular(st.st_mode)
    real = _real_path(path)
    if any(real == root or real.startswith(root + os.sep) for root in SPECIAL_ROOTS):
        return f"a special file ({real}), not data"
    return None


@functools.lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _real_path(path: str | Path) -> str:
    """``os.path.realpath(path)``, with the folders' real paths remembered: the loader checks every file of a
    folder of thousands, and resolving each path component by component was a tenth of a file's encoding.
    A file that is itself a link is resolved in full."""
    path = os.path.abspath(os.fspath(path))
    if os.path.islink(path):
        return os.path.realpath(path)
    folder, name = os.path.split(path)
    return os.path.join(_real_folder(folder), name)


def check_regular_file(path: str | Path) -> os.stat_result:
    """``os.stat(path)`` when ``path`` is a regular data file; else a one-line ``DataError`` naming it."""
    reason = special_file_reason(path)
    if reason:
        raise DataError(f"{path}: {reason}")
    return os.stat(path)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # unreachable


def read_bytes_limited(path: str | Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of regular file ``path``, refusing (``DataError``) anything else or more than ``max_bytes``.

    The file is opened non-blocking and checked again on the open descriptor, so a FIFO swapped in after the
    first check cannot block, and at most ``max_bytes + 1`` bytes are ever read (a file that grows while being
    read cannot swamp memory).
    """
    check_regular_file(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with open(fd, "rb", closefd=True) as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path}: {not_regular(st.st_mode)}")
        if st.st_size > max_bytes:
            raise DataError(f"{path}: {_size(st.st_size)} is more than the {_size(max_bytes)} a {what} may have")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(f"{path}: more than the {_size(max_bytes)} a {what} may have")
    return data


def check_zip_members(path: str | Path, archive: zipfile.ZipFile, max_bytes: int = MAX_ZIP_BYTES,
                      max_ratio: float = MAX_ZIP_RATIO) -> None:
    """Refuse a zip bomb from the archive's directory, before anything is decompressed.

    ``zipfile`` never returns more bytes for a member than its directory entry declares, so bounding the
    declared sizes bounds what a reader of the archive can be made to hold.
    """
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.file_size > 1 << 20 and info.file_size > max_ratio * max(info.compress_size, 1):
            raise DataError(f"{path}: member {info.filename!r} expands {info.file_size // max(info.compress_size, 1)}"
                            f" times ({_size(info.file_size)}); refusing a likely zip bomb")
    if total > max_bytes:
        raise DataError(f"{path}: the archive expands to {_size(total)}, more than the {_size(max_bytes)} allowed")


# -- XML ----------------------------------------------------------------------------------------------------------
class _Stop(Exception):
    pass


def _expat(on_start, forbid_entities: bool = True):
    from xml.parsers import expat

    parser = expat.ParserCreate()

    def entity(*_args):
        raise DataError("entity declarations are not allowed")

    if forbid_entities:
        parser.EntityDeclHandler = entity
    parser.StartElementHandler = on_start
    return parser


def _feed(parser, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


def _chunks(path: str | Path, limit: int, size: int = 1 << 16) -> Iterator[bytes]:
    check_regular_file(path)
    with open(path, "rb") as f:
        read = 0
        while read < limit:
            chunk = f.read(min(size, limit - read))
            if not chunk:
                return
            read += len(chunk)
            yield chunk


def xml_root(path: str | Path, max_bytes: int = 1 << 20) -> str | None:
    """The local name of ``path``'s root element, or ``None`` (not XML, unreadable, special, or no root element
    in the first ``max_bytes``). Streams with expat, so a long prolog (comments, a DOCTYPE with an internal
    subset) and UTF-16 files are handled; entity declarations make the answer ``None``."""
    found: list[str] = []

    def start(name, _attrs):
        found.append(name.rsplit("}", 1)[-1].rsplit(":", 1)[-1])
        raise _Stop

    try:
        _feed(_expat(start), _chunks(path, max_bytes))
    except _Stop:
        pass
    except Exception:  # not XML, a bomb, unreadable: not recognisably ours
        return found[0] if found else None
    return found[0] if found else None


def xml_has_element(path: str | Path, names: set[str], max_bytes: int = 1 << 20) -> bool:
    """Whether one of the elements ``names`` (local names) starts within the first ``max_bytes`` of ``path``."""
    hit: list[bool] = []

    def start(name, _attrs):
        if name.rsplit("}", 1)[-1].rsplit(":", 1)[-1] in names:
            hit.append(True)
            raise _Stop

    try:
        _feed(_expat(start), _chunks(path, max_bytes))
    except _Stop:
        return True
    except Exception:
        return bool(hit)
    return False


def count_xml_elements(data: bytes, names: dict[str, int], where: str) -> dict[str, int]:
    """Count the elements ``names`` (local name -> most allowed) in XML ``data``; ``DataError`` as soon as one
    passes its limit, or for entity declarations and malformed XML. One expat pass, no tree built."""
    from xml.parsers import expat

    counts = dict.fromkeys(names, 0)

    def start(name, _attrs):
        local = name.rsplit("}", 1)[-1]
        if local in counts:
            counts[local] += 1
            if counts[local] > names[local]:
                raise DataError(f"{where}: more than {names[local]:,} <{local}> elements; too big to read "
                                f"(the limit bounds the time and memory one file may take)")

    parser = _expat(start)
    try:
        parser.Parse(data, True)
    except DataError as exc:
        raise DataError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None
    except expat.ExpatError as exc:
        raise DataError(f"{where}: not well-formed XML ({expat.ErrorString(exc.code)} at line {exc.lineno})") \
            from None
    return counts


# -- time limits -----------------------------------------------------------------------------------------------------
class _Expired(BaseException):
    """Raised into the timed block; a BaseException so parsers' own ``except Exception`` let it through."""


def read_timeout(default: float = DEFAULT_READ_TIMEOUT) -> float:
    """CPU seconds one file may take to read: ``$SEQSTUDIO_READ_TIMEOUT`` when set (``0`` = no limit), else
    ``default``."""
    value = os.environ.get("SEQSTUDIO_READ_TIMEOUT", "").strip()
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        return default


def _async_exc(thread_id: int, exc) -> None:
    """Raise ``exc`` in thread ``thread_id`` at its next bytecode; ``None`` withdraws one not raised yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc is not None else None)


WALL_FACTOR = 4.0  # the wall-clock backstop of a limit, as a multiple of its CPU seconds


RETRY_SECONDS = 0.1  # CPU seconds after which an expired limit raises again (its ``_Expired`` was swallowed)


class _Expiry:
    """The signal handler of one ``time_limit`` block: once the limit is due it raises ``_Expired``, and raises
    again after every further ``RETRY_SECONDS`` of CPU time the block goes on using. The retry is needed because
    Python swallows an exception raised inside a ``__del__`` or a weakref callback ("Exception ignored in ..."):
    a signal landing there (music21 drops weak references all the time) once let a tune run to the end past its
    limit. Between raises it is deaf: a second timer due at the same moment (the wall-clock backstop), or one
    delivered late on a busy machine, must not raise again while the first ``_Expired`` unwinds through
    ``contextlib``'s exit code, outside ``time_limit``'s translation; unwinding takes microseconds of CPU, and
    the retry waits for 0.1 s of it. ``armed`` is cleared first thing on the way out."""

    def __init__(self):
        self.armed = True
        self.raised_at: float | None = None

    def __call__(self, _signum, _frame):
        if not self.armed:
            return
        now = time.process_time()
        if self.raised_at is not None and now - self.raised_at < RETRY_SECONDS / 2:
            return  # the last raise is still unwinding (or this is its twin signal)
        self.raised_at = now
        signal.setitimer(signal.ITIMER_REAL, 0)  # the backstop is spent either way
        signal.setitimer(signal.ITIMER_PROF, RETRY_SECONDS)  # again only if the block keeps working
        raise _Expired()


@contextlib.contextmanager
def _itimer(which: int, signum: int, seconds: float, clock, handler: _Expiry):
    """One interval timer calling ``handler`` after ``seconds`` of ``clock``; nests (an outer timer keeps
    running and wins if it is due first)."""
    start = clock()
    outer_left, _ = signal.getitimer(which)
    previous = signal.signal(signum, handler)
    signal.setitimer(which, min(seconds, outer_left) if outer_left > 0 else seconds)
    try:
        yield
    finally:
        handler.armed = False  # first: a signal handled from here on is a no-op
        signal.setitimer(which, 0)
        signal.signal(signum, previous)
        if outer_left > 0:
            signal.setitimer(which, max(outer_left - (clock() - start), 1e-3))


@contextlib.contextmanager
def _alarm(seconds: float, wall: float):
    """Main thread: ``ITIMER_PROF`` (process CPU time, SIGPROF) for the work, ``ITIMER_REAL`` (SIGALRM) as the
    wall-clock backstop, which also interrupts a blocking ``open`` or ``read``. Both share one handler, which
    keeps raising until the block leaves and never raises once it is leaving."""
    handler = _Expiry()
    try:
        with _itimer(signal.ITIMER_PROF, signal.SIGPROF, seconds, time.process_time, handler), \
                _itimer(signal.ITIMER_REAL, signal.SIGALRM, wall, time.monotonic, handler):
            yield
    finally:
        handler.armed = False


@contextlib.contextmanager
def _async(seconds: float, wall: float):
    """Any other thread: a watcher thread polls this thread's CPU clock (and the wall clock) and raises into it
    (``PyThreadState_SetAsyncExc``) between bytecodes."""
    target = threading.get_ident()
    try:
        cpu_clock = time.pthread_getcpuclockid(target)
        cpu = lambda: time.clock_gettime(cpu_clock)  # noqa: E731
    except (AttributeError, OSError):  # no per-thread CPU clock here: wall time only
        cpu = time.monotonic
    cpu_start, wall_start = cpu(), time.monotonic()
    lock = threading.Lock()
    done = threading.Event()
    state = {"active": True, "fired": False}

    def watch():
        while not done.wait(min(0.05, seconds / 4)):
            if cpu() - cpu_start > seconds or time.monotonic() - wall_start > wall:
                break
        else:
            return  # the block ended in time
        while True:  # raise, and raise again while the block works on (a ``__del__`` may have swallowed it)
            with lock:
                if not state["active"]:
                    return
                state["fired"] = True
                _async_exc(target, _Expired)
            fired_at = cpu()
            while cpu() - fired_at < RETRY_SECONDS:  # the thread's CPU time: unwinding costs microseconds of it
                if done.wait(0.05):
                    return

    watcher = threading.Thread(target=watch, daemon=True, name="seqstudio-time-limit")
    watcher.start()
    try:
        yield
    finally:
        done.set()
        with lock:
            state["active"] = False
            if state["fired"]:
                _async_exc(target, None)  # an exception not raised yet must not escape later, elsewhere


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str, wall_factor: float = WALL_FACTOR):
    """Stop the block after ``seconds`` of CPU time, or ``wall_factor`` times as many seconds of wall time, with
    ``DataError("{what}: gave up after ...")``.

    CPU time measures the work a file costs whatever else the machine is doing (a long score parsed in 150 s
    alone takes 450 s of wall time on a busy machine, and must not be cut off for it); the wall-clock backstop
    catches a block that waits without working. Works in the main thread (interval timers and signals, which
    also interrupt a blocking ``open``/``read``) and in any other thread (an asynchronous exception), so in the
    loader's spawned workers, in ``render``/``convert`` and in a library caller's threads alike. Both interrupt
    Python code, which is where parsers such as music21, mido and svg.path spend their time; C code that never
    returns to Python is not interrupted, which is why readers also bound sizes before parsing. ``None`` or
    ``0`` = no limit.
    """
    if not seconds or seconds <= 0:
        yield
        return
    on_main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    cpu_start, wall_start = time.process_time(), time.monotonic()
    try:
        with (_alarm if on_main else _async)(seconds, seconds * wall_factor):
            yield
    except _Expired:
        raise DataError(f"{what}: gave up after {time.process_time() - cpu_start:.1f} s of CPU time "
                        f"({time.monotonic() - wall_start:.1f} s of wall time); one file may take {seconds:g} s "
                        f"of CPU time ($SEQSTUDIO_READ_TIMEOUT changes it)") from None
