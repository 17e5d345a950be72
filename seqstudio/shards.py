"""Encoded pieces stored compactly and read through the OS page cache (numpy memory maps).

Why numpy memory maps: numpy is already a core dependency, a memory map costs nothing until a page is touched
(the kernel shares and evicts those pages, so a 50k-file corpus does not live in the process's heap), and the
format is a plain byte matrix that any rank of a DDP job, or any machine on shared storage, can map read-only
at once. Arrow (``datasets``) would add a large dependency for the same row-slicing we need here.

Layout. One step of a piece is one *row* of bytes; each FeatureSpec part keeps its natural type there:

* ``Binary(n)``: ``n`` bits packed into ``ceil(n / 8)`` bytes (``np.packbits``; an 88-key roll with onsets is
  22 bytes a step instead of 704 as float32);
* ``Categorical(n)``: the class index in the smallest unsigned integer type that holds ``n`` classes;
* ``Real(n)``: ``n`` float32 values (float16 when asked, which is then lossy).

A shard is ``shard-ID.bin`` (the rows of many pieces, back to back) plus ``shard-ID.json`` (its index: for each
source file's content hash, the (row, length) of its pieces; the row layout; a SHA-256 of the ``.bin``). Shards
are written once under a fresh name, ``.bin`` then ``.json`` (each atomically), so concurrent runs filling one
cache never write the same file; a shard without its ``.json`` is not yet (or never) complete and is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import SeqStudioError
from .spec import Binary, Categorical, FeatureSpec

SHARD_VERSION = 2  # 2: a columnar index (flat lists, parsed and checked as arrays)
SPLIT_CODES = ("", "train", "valid", "test")  # a piece's split in the index ("": a single-sample file)
SHARD_PREFIX = "shard-"


class PackError(ValueError):
    """An encoded piece holds values its FeatureSpec part cannot (a Binary column that is not 0/1, ...)."""


class RowFormat:
    """How one step of a FeatureSpec is laid out in bytes (see the module docstring)."""

    def __init__(self, spec: FeatureSpec, real_dtype: str = "float32"):
        self.width = spec.storage_width
        self.real_dtype = np.dtype(real_dtype)
        self.layout = []  # (kind, storage columns, first byte, bytes, size, dtype)
        offset = 0
        for part, cols in spec.storage_slices():
            if isinstance(part, Binary):
                kind, dtype, nbytes = "bits", np.dtype(np.uint8), (part.size + 7) // 8
            elif isinstance(part, Categorical):
                dtype = np.dtype(np.uint8 if part.size <= 1 << 8 else np.uint16 if part.size <= 1 << 16 else np.uint32)
                kind, nbytes = "index", dtype.itemsize
            else:
                kind, dtype, nbytes = "real", self.real_dtype, part.size * self.real_dtype.itemsize
            self.layout.append((kind, cols, offset, nbytes, part.size, dtype))
            offset += nbytes
        self.row_bytes = offset
        self.has_real = any(kind == "real" for kind, *_ in self.layout)

    def describe(self) -> list:
        return [[kind, size, str(dtype)] for kind, _, _, _, size, dtype in self.layout]

    def pack(self, x) -> np.ndarray:
        """``[T, width]`` values -> ``[T, row_bytes]`` uint8; ``PackError`` when a part cannot hold them."""
        x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)  # a torch tensor, or numpy
        if x.ndim != 2 or x.shape[1] != self.width:
            raise PackError(f"shape {tuple(x.shape)}, expected [T, {self.width}]")
        out = np.empty((x.shape[0], self.row_bytes), dtype=np.uint8)
        for kind, cols, start, nbytes, size, dtype in self.layout:
            v = x[:, cols]
            if kind == "bits":
                if not np.all((v == 0) | (v == 1)):
                    raise PackError("a Binary part holds values other than 0 and 1")
                out[:, start : start + nbytes] = np.packbits(v.astype(np.uint8), axis=1)
            elif kind == "index":
                idx = v[:, 0]
                if not (np.all(idx == np.round(idx)) and np.all(idx >= 0) and np.all(idx < np.iinfo(dtype).max + 1)):
                    raise PackError("a Categorical part holds a value that is not a class index")
                out[:, start : start + nbytes] = idx.astype(dtype).reshape(-1, 1).view(np.uint8)
            else:
                out[:, start : start + nbytes] = np.ascontiguousarray(v.astype(dtype)).view(np.uint8)
        return out

    def unpack(self, rows: np.ndarray) -> np.ndarray:
        """``[..., row_bytes]`` uint8 -> ``[..., width]`` float32 (bit-exact for bits, indices and float32)."""
        out = np.empty(rows.shape[:-1] + (self.width,), dtype=np.float32)
        for kind, cols, start, nbytes, size, dtype in self.layout:
            raw = rows[..., start : start + nbytes]
            if kind == "bits":
                out[..., cols] = np.unpackbits(raw, axis=-1, count=size)
            else:
                out[..., cols] = np.ascontiguousarray(raw).view(dtype).reshape(rows.shape[:-1] + (-1,))
        return out

    def real_columns(self) -> list[tuple[int, int, np.dtype]]:
        """(first byte, bytes, dtype) of each Real part: the only columns that can hold NaN or inf."""
        return [(start, nbytes, dtype) for kind, _, start, nbytes, _, dtype in self.layout if kind == "real"]


# -- sources of rows ---------------------------------------------------------------------------------------------
class PackedPieces:
    """Pieces as rows of a uint8 matrix (memory-mapped from a shard, or in memory when there is no cache).

    The index: file ``i`` (content hash ``hashes[i]``) owns pieces ``first[i]:first[i + 1]``; piece ``p`` lies
    at rows ``piece_row[p]`` to ``piece_row[p] + piece_len[p]``, of split ``SPLIT_CODES[piece_split[p]]`` and
    ``piece_own[p]`` (a many-sample file's own sample of that split). ``collections``: file index -> ``{"own":
    counts}`` for many-sample files. ``spans`` caches this source's training windows per windowing
    configuration (``data.WindowSet``)."""

    def __init__(self, array: np.ndarray, fmt: RowFormat, index: dict):
        self.array, self.fmt = array, fmt
        self.hashes = list(index["hashes"])
        self.first = np.asarray(index["first"], dtype=np.int64)
        self.piece_row = np.asarray(index["row"], dtype=np.int64)
        self.piece_len = np.asarray(index["length"], dtype=np.int64)
        self.piece_split = np.asarray(index["split"], dtype=np.int8)
        self.collections = {int(i): v for i, v in index.get("collections", {}).items()}
        # what the domain said of each file's pieces (``Domain.attributes``, for conditions); None when unknown
        self.attributes = list(index.get("attributes") or [None] * len(self.hashes))
        self.files = {h: i for i, h in reversed(list(enumerate(self.hashes)))}  # the first of duplicates
        self.spans: dict[str, object] = {}

    @classmethod
    def from_rows(cls, arrays: list[np.ndarray], fmt: RowFormat) -> "PackedPieces":
        """In-memory pieces, one per packed array (an anonymous file each)."""
        lengths = [int(a.shape[0]) for a in arrays]
        index = {"hashes": [str(i) for i in range(len(arrays))], "first": list(range(len(arrays) + 1)),
                 "row": np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist() if arrays else [],
                 "length": lengths, "split": [0] * len(arrays), "own": [0] * len(arrays)}
        array = np.concatenate(arrays) if arrays else np.zeros((0, fmt.row_bytes), np.uint8)
        return cls(array, fmt, index)

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self.fmt.unpack(self.array[start:stop])

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Rows at the (any-shaped) integer index ``rows`` -> float32 ``rows.shape + [width]``."""
        return self.fmt.unpack(self.array[rows])

    def all_finite(self) -> bool:
        """Only Real parts can hold NaN/inf; they are checked in bounded chunks (a memory map stays unloaded)."""
        for start, nbytes, dtype in self.fmt.real_columns():
            for a in range(0, self.array.shape[0], 1 << 16):
                chunk = np.ascontiguousarray(self.array[a : a + (1 << 16), start : start + nbytes]).view(dtype)
                if not np.isfinite(chunk).all():
                    return False
        return True

    def spans_file(self, whash: str) -> Path | None:
        return None


class FloatPieces:
    """Pieces kept as float32 rows in memory: windows a codec builds itself (not slices of a piece: the text
    codec appends an end-of-text token) and tensors handed in directly."""

    def __init__(self, array: np.ndarray, piece_row: np.ndarray, piece_len: np.ndarray):
        self.array, self.piece_row, self.piece_len = array, piece_row, piece_len
        self.spans: dict[str, object] = {}

    @classmethod
    def from_tensors(cls, tensors: list[torch.Tensor], width: int) -> "FloatPieces":
        lengths = np.array([t.shape[0] for t in tensors], dtype=np.int64)
        rows = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(tensors) else lengths
        array = (np.concatenate([np.asarray(t.detach().cpu().float().numpy() if hasattr(t, "detach") else t, dtype=np.float32)
                                 .reshape(-1, width) for t in tensors])
                 if len(tensors) else np.zeros((0, width), np.float32))
        return cls(array, rows, lengths)

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self.array[start:stop]

    def gather(self, rows: np.ndarray) -> np.ndarray:
        return self.array[rows]

    def all_finite(self) -> bool:
        return bool(np.isfinite(self.array).all())

    def spans_file(self, whash: str) -> Path | None:
        return None


class Shard(PackedPieces):
    """A written shard, memory-mapped read-only."""

    def __init__(self, index_path: Path, meta: dict, fmt: RowFormat):
        self.index_path, self.meta = Path(index_path), meta
        self.bin_path = self.index_path.with_suffix(".bin")
        rows, width = int(meta["rows"]), int(meta["row_bytes"])
        array = (np.memmap(self.bin_path, dtype=np.uint8, mode="r", shape=(rows, width)) if rows
                 else np.zeros((0, width), np.uint8))
        super().__init__(array, fmt, meta)

    @property
    def name(self) -> str:
        return self.index_path.stem

    def spans_file(self, whash: str) -> Path:
        return self.index_path.with_name(f"{self.name}.win-{whash}.npz")


class MappedRows(PackedPieces):
    """A shard's rows alone, memory-mapped, without its file index: what a stored preparation (``data.snapshot``) needs,
    whose windows already say which rows they are."""

    def __init__(self, bin_path: Path, rows: int, row_bytes: int, fmt: RowFormat):
        self.bin_path, self.fmt, self.spans = Path(bin_path), fmt, {}
        self.array = (np.memmap(self.bin_path, dtype=np.uint8, mode="r", shape=(rows, row_bytes)) if rows
                      else np.zeros((0, row_bytes), np.uint8))


def shard_problem(index_path: Path, meta: dict, key: str, fmt: RowFormat, verify: bool = True) -> str | None:
    """Why the shard of ``index_path`` cannot be used (None when it can): another format or key, a ``.bin``
    missing or of the wrong size (truncated), or, with ``verify``, a SHA-256 that does not match."""
    try:
        if meta.get("version") != SHARD_VERSION or meta.get("key") != key:
            return "written by another version or for another codec"
        if int(meta["row_bytes"]) != fmt.row_bytes or meta.get("format") != fmt.describe():
            return "its row layout is not this codec's"
        rows = int(meta["rows"])
        first = np.asarray(meta["first"], dtype=np.int64)
        row, length = np.asarray(meta["row"], dtype=np.int64), np.asarray(meta["length"], dtype=np.int64)
        split = np.asarray(meta["split"], dtype=np.int64)
        n = len(meta["hashes"])
        if not (first.shape == (n + 1,) and first[0] == 0 and (np.diff(first) >= 0).all()
                and row.shape == length.shape == split.shape == (int(first[-1]),)
                and len(meta["own"]) == len(row) and isinstance(meta.get("collections", {}), dict)
                and len(meta.get("attributes") or [None] * n) == n):
            return "its index is malformed"
        if len(row) and ((row < 0).any() or (length < 0).any() or (row + length > rows).any()
                         or (split < 0).any() or (split >= len(SPLIT_CODES)).any()):
            return "its index points outside the shard"
    except (KeyError, TypeError, ValueError):
        return "its index is malformed"
    bin_path = index_path.with_suffix(".bin")
    try:
        size = bin_path.stat().st_size
    except OSError:
        return "its data file is missing"
    expected = rows * fmt.row_bytes
    if size != expected:
        return f"truncated or overlong ({size:,} of {expected:,} bytes)"
    if verify and not is_verified(index_path, meta):
        with open(bin_path, "rb") as f:
            stamp = _stamp(os.fstat(f.fileno()), meta)
            if hashlib.file_digest(f, "sha256").hexdigest() != meta.get("sha256"):
                return "its checksum does not match (the data was changed or damaged)"
        mark_verified(index_path, stamp)
    return None


# -- verified once, trusted while unchanged -----------------------------------------------------------------------
# A warm start used to read every shard in full to check its SHA-256 (0.3 s for the 280 MB of a 50,000-file
# corpus, and the whole corpus pulled through the page cache at each start). The ``.ok`` stamp beside a shard
# records the ``.bin``'s size, modification and change times and inode when its rows last matched the checksum;
# while they are the same the rows are trusted. Any write to the ``.bin`` (even one that puts its modification
# time back) changes its change time, and replacing it changes the inode, so the full check runs again then;
# what a stamp cannot see is damage below the file system (a failing disk), which the rows' checksum was never a
# guard against between starts either.
def _stamp(st: os.stat_result, meta: dict) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {meta.get('sha256')}"


def stamp_path(index_path: Path) -> Path:
    return Path(index_path).with_suffix(".ok")


def is_verified(index_path: Path, meta: dict) -> bool:
    """Whether the shard's ``.bin`` is the one whose rows were last found to match its checksum."""
    try:
        recorded = stamp_path(index_path).read_text()
        return recorded == _stamp(Path(index_path).with_suffix(".bin").stat(), meta)
    except OSError:
        return False


def mark_verified(index_path: Path, stamp: str) -> None:
    """Record that the ``.bin`` with ``stamp`` matched its checksum (only a time saver: a failure is ignored)."""
    try:
        atomic_write(stamp_path(index_path), lambda tmp: Path(tmp).write_text(stamp))
    except (OSError, SeqStudioError):  # a full disk (DiskFullError) included
        pass


def read_index(index_path: Path) -> dict | None:
    try:
        meta = json.loads(Path(index_path).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def write_shard(folder: Path, key: str, fmt: RowFormat, index: dict, arrays: list[np.ndarray], info: dict) -> Path:
    """Write one shard (``.bin`` then ``.json``, each atomically) under a fresh name; returns the ``.json``.

    ``index``: the columns of ``PackedPieces`` (``hashes``, ``first``, ``row``, ``length``, ``split``, ``own``,
    ``collections``) with rows counted over ``arrays`` laid back to back."""
    name = f"{SHARD_PREFIX}{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:12]}"
    digest = hashlib.sha256()
    rows = sum(a.shape[0] for a in arrays)

    def write_bin(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            for a in arrays:
                data = np.ascontiguousarray(a, dtype=np.uint8).tobytes()
                digest.update(data)
                f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(folder / f"{name}.bin", write_bin)
    meta = {"version": SHARD_VERSION, "key": key, "rows": rows, "row_bytes": fmt.row_bytes,
            "format": fmt.describe(), "sha256": digest.hexdigest(), "created": time.time(), **info, **index}
    index_path = folder / f"{name}.json"
    atomic_write(index_path, lambda tmp: Path(tmp).write_text(json.dumps(meta)))
    try:  # the rows were just hashed as they were written: the first warm start need not read them again
        mark_verified(index_path, _stamp((folder / f"{name}.bin").stat(), meta))
    except OSError:
        pass
    return index_path


def remove_shard(index_path: Path) -> None:
    """Delete a shard's files (index first, so no reader takes a half-deleted shard for a whole one)."""
    index_path = Path(index_path)
    for path in [index_path, index_path.with_suffix(".bin"), stamp_path(index_path),
                 *index_path.parent.glob(f"{index_path.stem}.win-*")]:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
