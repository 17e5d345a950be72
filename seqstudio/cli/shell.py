"""What every ``seqstudio`` command shares: errors as one line (``Group``), logging above the progress bars, the
file-argument check, the progress bars' refresh in logs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ..errors import SeqStudioError


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SeqStudioError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a read-only, full or vanished destination: one line, not a traceback
            raise click.ClickException(os_error_line(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


def os_error_line(exc: OSError) -> str:
    """One line for an ``OSError`` that reached the CLI: the file, the system's reason, what to do."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
    hint = {errno.EROFS: "write somewhere else", errno.EACCES: "check the permissions",
            errno.EPERM: "check the permissions", errno.ENOSPC: "free some space and run the command again",
            errno.EDQUOT: "free some space and run the command again"}.get(exc.errno)
    return f"{where}{reason}" + (f"; {hint}" if hint else "")


class _Formatter(logging.Formatter):
    def format(self, record):
        prefix = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return prefix + record.getMessage()


def only_regular_files(ctx, param, value):
    """Only regular files for options that are read whole: a FIFO or ``/dev/zero`` would hang the command."""
    if value is None:
        return value
    from ..errors import UnsafePathError
    from ..runcheck import regular_file

    for path in value if isinstance(value, tuple) else (value,):
        try:
            regular_file(Path(path))
        except UnsafePathError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


class _AboveTheBars(logging.StreamHandler):
    """Log lines go above any progress bar (``tqdm.write`` clears the bars, prints, redraws them): written
    plainly they landed on the bar's own line, and the bar's next refresh or its close erased them, so "see the
    warnings above" pointed at nothing."""

    def emit(self, record):
        try:
            from tqdm import tqdm

            # sys.stderr as it is now, the very stream the bars draw on (tqdm clears only bars on the same stream)
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # as logging.StreamHandler does: a broken stream is logging's own report, not a crash
            self.handleError(record)


def setup_logging(quiet: bool = False) -> None:
    log = logging.getLogger("seqstudio")
    for handler in list(log.handlers):
        log.removeHandler(handler)
    handler = _AboveTheBars(click.get_text_stream("stderr"))
    handler.setFormatter(_Formatter())
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


# Progress bars refresh at most this often (seconds) when stderr is not a terminal (a log file, CI, nohup):
# every refresh there is another line in the log.
LOG_REFRESH_SECONDS = 5


def quiet_bars_in_logs() -> None:
    """Where stderr is not a terminal, every progress bar (tqdm's, whoever made it) refreshes at most once in
    ``LOG_REFRESH_SECONDS``: its default ``mininterval`` is raised (tqdm may already be imported, by torch, so its
    ``TQDM_MININTERVAL`` variable is too late here; it is set too, for spawned workers)."""
    import os

    if sys.stderr.isatty():
        return
    os.environ.setdefault("TQDM_MININTERVAL", str(LOG_REFRESH_SECONDS))
    from tqdm import std

    init = std.tqdm.__init__
    if getattr(init, "seqstudio_log_refresh", False):
        return

    def slower(self, *args, **kwargs):
        kwargs.setdefault("mininterval", LOG_REFRESH_SECONDS)
        init(self, *args, **kwargs)

    slower.seqstudio_log_refresh = True
    std.tqdm.__init__ = slower
