"""Training, in small pieces: the loop (``trainer``), what stops it (``budget``), what it saves and resumes from
(``checkpoints``, ``state``), what it reports (``train_log``) and where it computes (``device``).

The caller (``api.train``) joins the process group and passes the ``DistInfo`` in, so the pieces never start or
leave a distributed job themselves.
"""

from .device import flush_denormals, resolve_device, use_threads
from .state import TrainState
from .trainer import Trainer

__all__ = ["Trainer", "TrainState", "flush_denormals", "resolve_device", "use_threads"]
