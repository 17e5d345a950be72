"""Typed exceptions raised by the library.

Library code never prints or exits: it raises one of these, and only ``cli.py`` turns them into a single
clear line and a non-zero exit status. Anything that is *not* a ``SeqStudioError`` is a bug in seqstudio
and is allowed to show a traceback.
"""


class SeqStudioError(Exception):
    """Base class: a user-facing problem with a message that explains what to do."""


class ConfigError(SeqStudioError):
    """A configuration value, override or YAML file is wrong."""


class DataError(SeqStudioError):
    """Input data is missing, empty, unreadable or of the wrong kind."""


class PluginError(SeqStudioError):
    """A domain or backend is unknown, broken or registered twice."""


class RunDirError(SeqStudioError):
    """A run directory is missing, incomplete or not a seqstudio run."""


class DiskFullError(SeqStudioError):
    """A write failed because the file system holding it is full (or over quota); nothing half-written is left."""


class InUseError(SeqStudioError):
    """Another seqstudio process is writing into the folder (it holds the folder's lock, ``seqstudio.runlock``)."""


class WriteError(SeqStudioError):
    """A destination cannot be written (a read-only file system, no permission, not a folder); nothing was
    written there."""


class UnsafePathError(SeqStudioError):
    """seqstudio was asked to write through a symbolic link, or to read something that is not a regular file
    (a FIFO or a device would hang or never end)."""


class TrainingDiverged(SeqStudioError):
    """The loss (or the weights) became NaN/inf; the checkpoints keep the last finite weights."""


class TrainingInterrupted(SeqStudioError):
    """A signal (SIGINT, SIGTERM, SIGHUP) stopped training; ``last.pt`` was saved, so the run can be resumed.

    ``exit_code`` follows the shell's convention for a death by that signal (128 + its number)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class NothingToDo(SeqStudioError):
    """``--resume`` of a run that is already finished (budget reached or stopped early): not a failure, the
    CLI prints the message and exits 0; nothing is changed."""
