"""Worker processes that never outlive the command that started them.

A ``kill -9`` of ``seqstudio data build`` (or ``train``) used to leave its spawned pool workers (hundreds of MB
each) and their resource tracker running for as long as their current file took, or forever when they waited.
On Linux each worker asks the kernel to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``);
elsewhere it polls its parent from a daemon thread and exits when the parent is gone.
"""

from __future__ import annotations

import concurrent.futures as futures
import ctypes
import multiprocessing
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Pool initializer: this process ends when its parent does, however the parent ends."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="seqstudio-parent-watch").start()


def pool(workers: int) -> futures.Executor:
    """Spawned worker processes (forking a process whose PyTorch/OpenMP threads have run can deadlock the
    child) that die with their parent."""
    return futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=die_with_parent)
