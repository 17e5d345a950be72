"""Cyclic garbage collection paused around start-up work that builds many small objects and keeps them.

Listing, splitting and encoding a folder builds a few objects per file (paths, keys, pieces) and keeps nearly
all of them; each full collection meanwhile walks every object of the process (torch's included), which cost a
third of a warm start's CPU at 10,000 files. The objects made there are not cyclic garbage, so nothing is left
for later but an ordinary collection. Its own module, below everything that uses it (the data package, the
registry's plugin scan), so that none of them has to import another for it.
"""

from __future__ import annotations

import contextlib
import functools
import gc


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection inside (re-entrant)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def gc_paused_call(fn):
    """``fn`` run under ``gc_paused``."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with gc_paused():
            return fn(*args, **kwargs)
    return run
