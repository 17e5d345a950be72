"""Seconds from starting one spawned encoding worker to its first encoded file, as the loader sees them: the
worker's start-up (imports) plus one small file. Issue 32: workers that never import torch.

    PYTHONPATH=CODE:CODE/plugins/midi python bench/worker_startup.py new|main FOLDER

``new``: this checkout's worker (``seqstudio.encoding``); ``main``: a checkout from before it, whose worker lived
in ``seqstudio.data`` (and imported torch). Run from outside the checkout so that PYTHONPATH picks the code.
"""

import concurrent.futures as futures
import multiprocessing
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    if sys.argv[1] == "new":
        from seqstudio.encoding import read_and_encode_many as encode
    else:
        from seqstudio.data import _read_and_encode_many as encode
    first = [str(sorted(Path(sys.argv[2]).rglob("*.mid"))[0])]
    t0 = time.perf_counter()
    with futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        status = pool.submit(encode, "midi", "pianoroll", {}, {}, (0.1, 0.1), first).result()[0][0]
    print(f"{sys.argv[1]}: first file from a fresh worker after {time.perf_counter() - t0:.2f} s wall ({status})")
