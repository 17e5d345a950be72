"""Stopping on a signal: SIGINT (Ctrl-C), SIGTERM (a scheduler, ``kill``) and SIGHUP (a closed terminal).

Python's defaults lose the work since the last checkpoint (SIGTERM and SIGHUP kill the process outright;
SIGINT raises KeyboardInterrupt wherever the loop happens to be). Inside ``StopSignals`` a signal only sets a
flag; the loop reads it between steps (a Python attribute, no host sync), saves ``last.pt`` and stops. The
first signal also puts the previous handlers back, so a second Ctrl-C (or SIGTERM) acts at once, as usual.

Under DDP each process's flag is reduced over the job at the budget's sync steps (``Budget``), so every
process stops at the same step even when only one was signalled.
"""

from __future__ import annotations

import signal
import threading

HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignals:
    """Context manager: while inside, ``received`` is the number of the first handled signal (0 = none)."""

    def __init__(self):
        self.received = 0
        self._previous: dict[int, object] = {}

    @staticmethod
    def name(signum: int) -> str:
        return signal.Signals(signum).name

    def _handle(self, signum, frame) -> None:
        self.received = self.received or signum
        self._restore()  # a second signal gets the usual behaviour (KeyboardInterrupt / termination)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()
