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


class UnsafePathError(SeqStudioError):
    """seqstudio was asked to write through a symbolic link, or to read something that is not a regular file
    (a FIFO or a device would hang or never end)."""
