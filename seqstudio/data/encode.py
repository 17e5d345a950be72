"""Encoding a folder's files: from the cache when it holds them, else read and encoded (here for the first
seconds, then in worker processes that never import torch, ``seqstudio.encoding``) and written to the cache."""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import json
import logging
import os
import time
from pathlib import Path

from .. import encoding, registry
from ..domain import Codec
from ..encoding import REAL_DTYPE, content_hash
from ..gc_pause import gc_paused
from ..shards import RowFormat
from ..workers import pool as worker_pool
from .cache_writer import EncodingCache, ShardWriter
from .discovery import common_folder
from .hashing import HashMemo
from .pieces import EncodedFiles, Piece

log = logging.getLogger("seqstudio")
CACHE_VERSION = 4  # 2: entries carry a checksum; 3: memory-mapped shards of many files (``shards``); 4: and the
# pieces' attributes (``Domain.attributes``, for conditions), in the shard index
# Reading and encoding a file runs in worker processes that never import torch (``seqstudio.encoding``).


def codec_key(domain_name: str, codec: Codec, fractions: tuple[float, float]) -> str:
    """What the cached encodings depend on: not the windowing or augmentation options (``encoding_config``), so
    changing ``codec.window`` re-cuts cached pieces instead of re-reading every file."""
    attributes_version = registry.load_domain(domain_name).attributes_version  # conditions
    blob = json.dumps([CACHE_VERSION, domain_name, codec.name, codec.encoding_config(), codec.state_dict(),
                       list(fractions), REAL_DTYPE, attributes_version], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def chunk_size(files: int, workers: int) -> int:
    """Files per worker task: up to 32, but at least 8 tasks per worker so the work stays balanced (and the
    progress bar moves) on small folders."""
    return max(1, min(32, files // (workers * 8)))


# Seconds of encoding done in the loading process before worker processes are started for the rest (a spawned
# worker's start-up took 2-10 s while it imported torch, and a cold first `train` of 305 files waited 9.5 s for
# it; without torch (``seqstudio.encoding``) it is about 1 s on a busy machine, still more than a small folder takes)
IN_PROCESS_SECONDS = 3.0


def encode_files(files: list[Path], domain_name: str, codec: Codec, workers: int = 0,
                 progress: bool = True, use_cache: bool = True,
                 fractions: tuple[float, float] = (0.1, 0.1), hashes: dict | None = None) -> dict[Path, Piece | dict]:
    """Encode every readable file (from cache when possible); warn about and skip the others. ``hashes``: the
    content hashes of (some of) the files taken moments before (``SplitFiles.hashes``), used instead of a
    second ``stat`` of each.

    Returns ``{path: Piece}`` (``Piece.tensor()`` gives the codec's tensor); a many-sample file
    (``Domain.is_collection``) gives ``{split: [Piece], "own": {...}}``, its unassigned samples split with
    ``fractions`` = (valid, test); see ``pieces_for_split``. New encodings are written to the cache as shards of
    many files (``shards``), at most ``SHARD_BYTES`` each, and read back memory-mapped.
    """
    from tqdm.auto import tqdm

    key = codec_key(domain_name, codec, fractions)
    fmt = RowFormat(codec.spec, REAL_DTYPE)
    encoding.WORKER_CODECS.clear()
    results = EncodedFiles()  # conditions: a dict with an ``attributes`` table beside it
    todo = []
    cache = EncodingCache.open(key, codec, domain_name, fmt) if use_cache else None
    folder = common_folder(files, absolute=False)
    with gc_paused():  # the warm path: a few objects a file, all kept
        memo = HashMemo(folder).load() if cache is not None and folder else None
        hashes = hashes or {}
        for f in files:
            try:
                file_hash = hashes.get(f) or content_hash(f)
            except OSError as exc:
                log.warning("skipped %s: %s", f, exc.strerror)
                continue
            if cache is not None:
                found = cache.load(file_hash)
                if found is not None:
                    results[f], results.attributes[f] = found  # conditions: (pieces, attributes)
                    continue
            todo.append((f, file_hash))
        if memo is not None:
            memo.save()
        if not todo:
            return results.ordered(files)
    args = (domain_name, codec.name, vars(codec.config), codec.state_dict(), tuple(fractions))
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(todo), desc="encoding", unit="file", disable=not progress, leave=False)
    writer = ShardWriter(cache, key, fmt, domain_name, codec, files)
    hashes = dict(todo)

    def collect(f, outcome):
        status, value, attrs = outcome
        if status == "ok":
            writer.add(f, hashes[f], value, attrs)
            if writer.full():
                results.add(writer.flush())
        else:
            log.warning("skipped %s: %s", f, value)
        bar.update()

    # Workers write nothing: shards are written by this process (``ShardWriter``), so a cache that cannot be
    # written is one warning, never a reason to skip a file that was read and encoded.
    # Small folders are encoded here: a spawned worker imports the plugins before its first file (about 1 s; 2-10 s
    # when it imported torch), more than a few hundred small files take in this process. Files are encoded here for up to
    # IN_PROCESS_SECONDS; only what is left then goes to the workers.
    started, done = time.perf_counter(), 0
    while done < len(todo) and (workers == 1 or len(todo) - done < 4
                                or time.perf_counter() - started < IN_PROCESS_SECONDS):
        collect(todo[done][0], encoding.read_and_encode(*args, str(todo[done][0])))
        done += 1
    todo = todo[done:]
    if todo:
        chunk = chunk_size(len(todo), workers)
        with worker_pool(min(workers, len(todo))) as pool:
            jobs = {pool.submit(encoding.read_and_encode_many, *args, [str(f) for f, _ in todo[i : i + chunk]]):
                    [f for f, _ in todo[i : i + chunk]] for i in range(0, len(todo), chunk)}
            for job in futures.as_completed(jobs):
                for f, outcome in zip(jobs.pop(job), job.result()):  # popped: a result is not kept twice
                    collect(f, outcome)
    results.add(writer.flush())
    bar.close()
    return results.ordered(files)
