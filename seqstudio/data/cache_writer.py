"""The encoding cache's files: new encodings written as shards of many files, and the shards of one codec key
opened, checked and looked up by content hash (``shards`` holds the format)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..cache import cache_dir
from ..domain import Codec
from ..encoding import SPLITS
from ..gc_pause import gc_paused_call
from ..shards import (SHARD_PREFIX, SPLIT_CODES, PackedPieces, RowFormat, Shard, read_index, remove_shard,
                      shard_problem, write_shard)
from .discovery import common_folder
from .pieces import file_entry

log = logging.getLogger("seqstudio")


SHARD_BYTES = 256 << 20  # a shard is written once this many bytes of rows are waiting (and at the end)


class ShardWriter:
    """Collects packed encodings and writes them as one shard (or, without a writable cache, keeps them in
    memory, still compact)."""

    def __init__(self, cache: "EncodingCache | None", key: str, fmt: RowFormat, domain_name: str, codec: Codec,
                 files: list[Path]):
        self.cache, self.key, self.fmt = cache, key, fmt
        self.info = {"domain": domain_name, "codec": codec.name, "source": common_folder(files)}
        self._reset()

    def _reset(self) -> None:
        self.index = {"hashes": [], "first": [0], "row": [], "length": [], "split": [], "own": [],
                      "collections": {}, "attributes": []}
        self.paths: dict[str, list[Path]] = {}  # content hash -> the files with that content
        self.arrays: list[np.ndarray] = []
        self.rows = 0

    def add(self, path: Path, file_hash: str, packed, attributes=None) -> None:
        if file_hash in self.paths:  # the same content twice in one folder
            self.paths[file_hash].append(path)
            return
        ix = self.index
        if isinstance(packed, np.ndarray):
            parts = [(0, 0, packed)]
        else:
            own = packed["own"]
            parts = [(SPLIT_CODES.index(s), int(i < own.get(s, 0)), a) for s in SPLITS for i, a in enumerate(packed[s])]
            ix["collections"][str(len(ix["hashes"]))] = {"own": own}
        for split, own_flag, a in parts:
            ix["row"].append(self.rows)
            ix["length"].append(int(a.shape[0]))
            ix["split"].append(split)
            ix["own"].append(own_flag)
            self.arrays.append(a)
            self.rows += int(a.shape[0])
        ix["hashes"].append(file_hash)
        ix["first"].append(len(ix["row"]))
        ix["attributes"].append(attributes)  # conditions: what the domain said of the file's pieces
        self.paths[file_hash] = [path]

    def full(self) -> bool:
        return self.rows * self.fmt.row_bytes >= SHARD_BYTES

    def flush(self) -> dict[Path, tuple]:
        """``{path: (value, attributes)}`` of everything added since the last flush, now in a shard."""
        if not self.paths:
            return {}
        source = None
        if self.cache is not None and self.cache.writable:
            source = self.cache.write(self.index, self.arrays, self.info)
        if source is None:  # no cache, or it could not be written: the rows stay in memory
            array = np.concatenate(self.arrays) if self.arrays else np.zeros((0, self.fmt.row_bytes), np.uint8)
            source = PackedPieces(array, self.fmt, self.index)
        out = {}
        for file_hash, paths in self.paths.items():
            entry = file_entry(source, source.files[file_hash])
            for path in paths:
                out[path] = entry
        self._reset()
        return out


class EncodingCache:
    """The encoding cache of one codec key: ``cache_dir()/KEY/shard-*.{bin,json}`` (``shards``).

    Opening it reads every shard's index and checks each shard: its layout, its size (a truncated ``.bin``) and
    a SHA-256 of its rows. A shard that fails is removed with one warning naming it, and its files are encoded
    again (into a new shard). When two shards hold the same file (two runs encoded it at once), the first by
    name is used; both hold the same rows. A cache folder that cannot be used (not a folder, not writable, a
    full disk) is one warning and the run goes on without a cache: the cache only saves time, it must never
    make readable data look unreadable.
    """

    def __init__(self, folder: Path, key: str, fmt: RowFormat):
        self.folder, self.key, self.fmt = folder, key, fmt
        self.writable = True
        self.entries: dict[str, tuple] = {}
        self._load()

    @classmethod
    def open(cls, key: str, codec: Codec, domain_name: str, fmt: RowFormat) -> "EncodingCache | None":
        from ..errors import DiskFullError

        root = cache_dir()
        folder = root / key
        where = f"{root} (SEQSTUDIO_CACHE)" if "SEQSTUDIO_CACHE" in os.environ else str(root)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".probe"
            atomic_write(probe, lambda tmp: tmp.write_bytes(b"seqstudio cache probe\n"))
            probe.unlink()
        except DiskFullError:
            log.warning("encoding cache %s: no space left on %s; encoding without a cache", where, folder)
            return None
        except OSError as exc:
            reason = ("it is not a folder" if isinstance(exc, (NotADirectoryError, FileExistsError))
                      else exc.strerror or str(exc))
            log.warning("encoding cache %s cannot be used (%s); encoding without a cache", where, reason)
            return None
        return cls(folder, key, fmt)

    @gc_paused_call  # parses each shard's index: lists of a few entries per file, all kept
    def _load(self) -> None:
        now = time.time()
        for index_path in sorted(self.folder.glob(f"{SHARD_PREFIX}*.json")):
            meta = read_index(index_path)
            why = "its index is unreadable" if meta is None else shard_problem(index_path, meta, self.key, self.fmt)
            if why is not None:
                files = len(meta.get("hashes", [])) if isinstance(meta, dict) else 0
                log.warning("encoding cache shard %s is unusable (%s); removed, its %d file(s) are encoded again",
                            index_path.with_suffix(".bin"), why, files)
                remove_shard(index_path)
                continue
            shard = Shard(index_path, meta, self.fmt)
            for file_hash, i in shard.files.items():
                self.entries.setdefault(file_hash, (shard, i))
            try:
                os.utime(index_path, (now, index_path.stat().st_mtime))  # atime = last used (cache info/clear)
            except OSError:
                pass

    def load(self, file_hash: str):
        """The cached encoding of a file (by content hash), or None."""
        found = self.entries.get(file_hash)
        return None if found is None else file_entry(*found)

    def write(self, index: dict, arrays: list[np.ndarray], info: dict) -> "Shard | None":
        """Write a shard and map it; the first failure is one warning and ends caching for this run."""
        from ..errors import DiskFullError

        try:
            index_path = write_shard(self.folder, self.key, self.fmt, index, arrays, info)
            return Shard(index_path, read_index(index_path), self.fmt)
        except DiskFullError:
            log.warning("encoding cache: no space left on %s; the remaining files are not cached", self.folder)
        except (OSError, TypeError) as exc:
            log.warning("encoding cache %s cannot be written (%s); the remaining files are not cached",
                        self.folder, getattr(exc, "strerror", None) or exc)
        self.writable = False
        return None
