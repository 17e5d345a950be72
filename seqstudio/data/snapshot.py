"""A warm start in one read: what ``data.prepare`` made of an unchanged folder, kept in the cache.

Every warm start derived the same result from the same files again: list the folder, look up each file's
content hash and encoding, split, cut the windows, fit the conditions and the decoding defaults. That is about
40 microseconds of CPU a file (2 s at 50,000 files), so start-up grew with the corpus. When nothing it depends
on has changed the result is the same, so the run that computes it stores it
(``cache_dir()/prepared/KEY.json`` and ``KEY-DIGEST.npz``: the windows' index arrays, the codec's learned
state, the splits' file names and the messages the preparation logged), and later runs load it: they walk the
folder and ``stat`` its files (the fingerprint), map the shards and replay the messages.

What the result depends on is all in the key: the fingerprint (every file's path, size, modification and change
times and inode below the folder: the test the content-hash memo already trusts), the domain and codec with
their options and the state the codec was given, the training options that shape the data (all but the
optimisation, budget and device ones), the backend's capabilities, the splits asked for, the log level and the
versions. A shard the windows point at must still be the files that were verified (the size, times and inode
of its rows and of its index: a damaged index is found and the shard rebuilt by the ordinary path). A
folder with links or special files, windows that are not slices of shards (the text codec's end-of-text
windows) or a cache that cannot be written take the ordinary path, which is always right, only slower.
"""

from __future__ import annotations

import collections.abc
import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import stat
import sys
from pathlib import Path

import numpy as np
import torch

from .. import safe_io
from ..atomic import atomic_write
from ..cache import cache_dir
from ..errors import SeqStudioError
from ..shards import MappedRows, RowFormat, Shard
from .encode import CACHE_VERSION
from .fitted import Fitted
from .splitting import SplitFiles
from .windows import WindowSet

log = logging.getLogger("seqstudio")

VERSION = 2  # 2: the run's ``Fitted`` value (``fitted``) instead of the codec state and its slots
FOLDER = "prepared"
# Training options that cannot change what the data preparation makes (the others are in the key, so an
# option added later is safe by default: it only makes the key stricter).
NOT_DATA_OPTIONS = frozenset({
    "batch_size", "lr", "weight_decay", "lr_warmup_steps", "clip_grad_norm", "init_output_bias", "max_steps",
    "epochs", "max_minutes", "budget_clock", "valid_every", "patience", "seed", "device", "precision", "samples",
    "workers", "threads", "tensorboard", "schedule", "lr_floor", "schedule_steps", "plateau_factor",
    "plateau_patience", "valid_max_windows"})
# Messages about the cache itself (a shard found damaged and rebuilt) are true once, not at every later start.
CACHE_MESSAGES = ("encoding cache",)


def folder() -> Path:
    return cache_dir() / FOLDER


def fingerprint(root: Path) -> str | None:
    """A digest of every entry below folder ``root`` (names in order; files with size, times and inode), or None
    when the folder holds anything but plain folders and regular files (links, FIFOs, devices: the ordinary
    path decides about those, with its warnings) or lies in ``/proc``, ``/sys`` or ``/dev``."""
    root = os.fspath(root)
    real = os.path.realpath(root)
    if any(real == r or real.startswith(r + os.sep) for r in safe_io.SPECIAL_ROOTS) or not os.path.isdir(root):
        return None
    lines, stack = [], [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return None
        below = []
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                return None
            if stat.S_ISDIR(st.st_mode):
                lines.append(f"D {name}\n")
                below.append(name)
            elif stat.S_ISREG(st.st_mode):
                lines.append(f"F {name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n")
            else:
                return None
        stack.extend(reversed(below))
    return hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


class PathList(collections.abc.Sequence):
    """A split's files kept as path strings, made ``Path`` objects only when looked at: reporting how many files
    a split has must not build 50,000 of them."""

    def __init__(self, names: list[str]):
        self._names, self._paths = names, None

    def _all(self) -> list[Path]:
        if self._paths is None:
            self._paths = [Path(name) for name in self._names]
        return self._paths

    def __len__(self) -> int:
        return len(self._names)

    def __getitem__(self, i):
        return self._all()[i]

    def __iter__(self):
        return iter(self._all())

    def __eq__(self, other) -> bool:
        return isinstance(other, collections.abc.Sequence) and list(self) == list(other)

    def __add__(self, other) -> list[Path]:
        return list(self) + list(other)

    def __repr__(self) -> str:
        return f"PathList({len(self)} files)"


@contextlib.contextmanager
def captured_messages():
    """The seqstudio log records emitted inside, as ``[(level, message)]`` (they are emitted as usual too)."""
    records: list[tuple[int, str]] = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage()))

    handler = Capture(logging.DEBUG)
    log.addHandler(handler)
    try:
        yield records
    finally:
        log.removeHandler(handler)


class Snapshot:
    """The stored preparation of one run's data: ``for_run`` computes the key (None when no snapshot applies),
    ``load`` returns ``(fitted, files, sets)`` or None, ``save`` stores them (never an error: it only saves
    time)."""

    def __init__(self, key: str):
        self.key = key
        self.index = folder() / f"{key}.json"

    @classmethod
    def for_run(cls, spec, domain, codec, fitted: Fitted | None, splits) -> "Snapshot | None":
        if os.environ.get("SEQSTUDIO_NO_PREPARED"):  # benchmarks of the ordinary path
            return None
        digest = fingerprint(spec.data_path)
        if digest is None:
            return None
        backend = spec.backend_class
        try:
            given = fitted.to_state() if fitted is not None else codec.state_dict() if codec.is_fitted else None
        except Exception:  # a codec whose state cannot be written: no snapshot
            return None
        described = {
            "version": VERSION, "cache": CACHE_VERSION, "seqstudio": sys.modules["seqstudio"].__version__,
            "root": os.path.realpath(spec.data_path), "data_path": str(spec.data_path), "fingerprint": digest,
            "domain": [spec.domain, type(domain).__module__, type(domain).__qualname__,
                       getattr(domain, "attributes_version", None),
                       getattr(sys.modules.get(type(domain).__module__.split(".")[0]), "__version__", None)],
            "codec": [codec.name, vars(codec.config), given, fitted is not None],
            "train": {k: v for k, v in vars(spec.train).items() if k not in NOT_DATA_OPTIONS},
            "backend": [getattr(backend, "name", None), bool(getattr(backend, "accepts_conditions", False)),
                        bool(getattr(backend, "accepts_text", False))],
            "splits": list(splits), "log_level": log.getEffectiveLevel(),
        }
        try:
            text = json.dumps(described, sort_keys=True, default=str)
        except (TypeError, ValueError):
            return None
        return cls(hashlib.sha256(text.encode()).hexdigest()[:32])

    # -- reading ----------------------------------------------------------------------------------------------------
    def load(self, codec):
        """``(fitted, files, sets)`` from the snapshot, with ``codec`` given the state it had (and the messages
        replayed); None when there is no usable snapshot."""
        try:
            meta = json.loads(self.index.read_text())
            if meta.get("version") != VERSION or meta.get("key") != self.key:
                return None
            sources = []
            for s in meta["sources"]:
                bin_path = cache_dir() / s["bin"]
                if [_stamp(os.stat(bin_path)), _stamp(os.stat(bin_path.with_suffix(".json")))] != s["stamp"]:
                    return None  # the shard (its rows or its index) was changed since it was verified
                sources.append((bin_path, int(s["rows"]), int(s["row_bytes"]), s["format"]))
            with np.load(folder() / meta["arrays"]) as z:
                arrays = {name: z[name] for name in z.files}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:  # on a copy first: a state the codec refuses must leave the caller's codec as it was
            fitted = Fitted.from_state(meta["fitted"])
            trial = fitted.apply(copy.deepcopy(codec))
            fmt = RowFormat(trial.spec, meta["real_dtype"])
            if any(fmt.row_bytes != row_bytes or fmt.describe() != layout for _, _, row_bytes, layout in sources):
                return None
            mapped = [MappedRows(path, rows, row_bytes, fmt) for path, rows, row_bytes, _ in sources]
            sets = {}
            for split, info in meta["sets"].items():
                own = [mapped[i] for i in info["sources"]]
                conditions = arrays.get(f"{split}.conditions")
                sets[split] = WindowSet(own, arrays[f"{split}.src"], arrays[f"{split}.row"], arrays[f"{split}.length"],
                                        int(info["pieces"]), int(info["width"]),
                                        torch.from_numpy(conditions) if conditions is not None else None)
                texts = arrays.get(f"{split}.texts")
                sets[split].texts = torch.from_numpy(texts) if texts is not None else None
            files = SplitFiles({split: PathList(names) for split, names in meta["files"].items()})
            files.by_folder = bool(meta["by_folder"])
            messages = [(int(level), str(message)) for level, message in meta.get("messages", [])]
        except Exception:  # anything at all (a plugin codec's own error included): the ordinary path decides
            return None
        fitted.apply(codec)  # as it went on the copy
        for path in (self.index, folder() / meta["arrays"]):  # last used (``cache clear --older-than``)
            with contextlib.suppress(OSError):
                os.utime(path)
        for level, message in messages:
            log.log(level, "%s", message)
        return fitted, files, sets

    # -- writing ----------------------------------------------------------------------------------------------------
    def save(self, fitted: Fitted, files, sets, messages: list[tuple[int, str]], real_dtype: str) -> bool:
        """Store the preparation when every window lies in a verified shard; True when stored."""
        root = cache_dir()
        ids, sources, arrays, described = {}, [], {}, {}
        try:
            for split, windows in sets.items():
                own = []
                for source in windows.sources:
                    if not isinstance(source, Shard):
                        return False
                    if id(source) not in ids:
                        ids[id(source)] = len(sources)
                        sources.append(_source_record(source, root))
                    own.append(ids[id(source)])
                described[split] = {"sources": own, "pieces": int(windows.pieces), "width": int(windows.width)}
                arrays[f"{split}.src"], arrays[f"{split}.row"] = windows.src, windows.row
                arrays[f"{split}.length"] = windows.length
                if windows.conditions is not None:
                    arrays[f"{split}.conditions"] = windows.conditions.numpy()
                if getattr(windows, "texts", None) is not None:
                    arrays[f"{split}.texts"] = windows.texts.numpy()
            meta = {"version": VERSION, "key": self.key, "sources": sources, "sets": described,
                    "fitted": fitted.to_state(), "real_dtype": real_dtype,
                    "files": {split: [os.fspath(p) for p in paths] for split, paths in files.items()},
                    "by_folder": bool(getattr(files, "by_folder", False)),
                    "messages": [(level, m) for level, m in messages if not m.startswith(CACHE_MESSAGES)]}
            json.dumps(meta)  # all of it can be written
        except (OSError, TypeError, ValueError):
            return False
        try:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            data = buffer.getvalue()
            name = f"{self.key}-{hashlib.sha256(data).hexdigest()[:16]}.npz"  # written once under its content's name
            meta["arrays"] = name
            if not (folder() / name).exists():
                atomic_write(folder() / name, lambda tmp: Path(tmp).write_bytes(data))
            atomic_write(self.index, lambda tmp: Path(tmp).write_text(json.dumps(meta)))
        except (OSError, SeqStudioError):
            return False
        return True


def _source_record(shard, root: Path) -> dict:
    """Where a shard's rows are and what they are, and the stamps its rows and index had when stored."""
    return {"bin": os.path.relpath(shard.bin_path, root), "rows": int(shard.array.shape[0]),
            "row_bytes": int(shard.fmt.row_bytes), "format": shard.fmt.describe(),
            "stamp": [_stamp(os.stat(shard.bin_path)), _stamp(os.stat(shard.index_path))]}


def _stamp(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"
