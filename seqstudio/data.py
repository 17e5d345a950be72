"""From a folder of files to padded training batches: discovery, splits, parallel cached encoding, windows.

* Splits: a folder with ``train/ valid/ test/`` subfolders is used as given (benchmarks depend on fixed
  splits); otherwise each file's split is decided by a hash of its *content*, so it never changes when files
  are renamed, moved or added.
* Encoding runs in worker processes and is cached on disk keyed by file content + domain + codec config and
  state, so a second ``train`` on the same folder starts without re-parsing. The cache is a few memory-mapped
  shards of compact rows (``shards``); training windows are index entries into them (``WindowSet``) and a
  batch is gathered and expanded to float when it is needed, so memory stays flat as the corpus grows.
* Broken files are skipped with a warning naming them; only a folder with nothing usable is an error.
"""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import json
import logging
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import torch

from . import conditions as conditions_mod
from . import encoding, registry, safe_io
from .atomic import atomic_write
from .cache import cache_dir
from .domain import Codec, Domain
from .encoding import REAL_DTYPE, SPLITS, assign_collection, codec_class, make_codec  # noqa: F401 (the loader's names)
from .errors import DataError
from .gc_pause import gc_paused, gc_paused_call
from .errors import SeqStudioError as SeqStudioErrorBase
from .shards import (SHARD_PREFIX, SPLIT_CODES, FloatPieces, PackedPieces, RowFormat, Shard, read_index,
                     remove_shard, shard_problem, write_shard)

log = logging.getLogger("seqstudio")
CACHE_VERSION = 4  # 2: entries carry a checksum; 3: memory-mapped shards of many files (``shards``); 4: and the
# pieces' attributes (``Domain.attributes``, for conditions), in the shard index
# Reading and encoding a file runs in worker processes that never import torch (``seqstudio.encoding``).
_HASHES, _HASHED = encoding.HASHES, encoding.HASHED
_content_hash, _score, _split_for = encoding.content_hash, encoding.split_score, encoding.split_for
_encode_one = encoding.encode_one
_MEMOS_LOADED: dict[Path, tuple] = {}  # memo file -> its (size, mtime, inode, folder) when read into _HASHES


FOLDER_INFO = "seqstudio.yaml"


def folder_info(root: Path) -> dict:
    """What a data folder says about itself (``seqstudio.yaml``, written by ``seqstudio data build``).

    Extensions alone can be ambiguous (``.abc`` is music for the MIDI domain and text for the text domain), so a
    built dataset records its domain; an explicit ``--domain`` still wins.
    """
    import yaml

    path = Path(root) / FOLDER_INFO
    if not path.is_file():
        return {}
    from .safe_yaml import load

    try:
        if path.stat().st_size > (1 << 20):
            raise DataError(f"{path}: more than 1 MB, not a folder description seqstudio writes")
        info = load(path.read_text(), str(path), DataError)
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({str(exc).splitlines()[0][:200]})") from None
    return info if isinstance(info, dict) else {}


def folder_codec(root: Path, domain_name: str, codec_name: str) -> dict:
    """The codec options a built folder records (its recipe's ``codec:`` section), when training uses the domain
    and codec they were written for; training starts from them, below ``--config`` and ``--set``."""
    info = folder_info(root)
    codec = info.get("codec")
    if info.get("domain") != domain_name or not isinstance(codec, dict) or codec.get("name") != codec_name:
        return {}
    return {key: value for key, value in codec.items() if key != "name"}


def write_folder_info(root: Path, **info) -> None:
    import yaml

    atomic_write(Path(root) / FOLDER_INFO, lambda tmp: Path(tmp).write_text(yaml.safe_dump(info, sort_keys=False)))


# -- discovery and splits ---------------------------------------------------------------------------------------
class SplitFiles(dict):
    """``{"train": [...], "valid": [...], "test": [...]}``; ``by_folder`` is True when the folder's own
    ``train/ valid/ test/`` subfolders gave the splits (then a many-sample file feeds only its folder's split)."""

    by_folder: bool = False
    hashes: dict  # {path: content hash} of the files split by content (``encode_files`` need not stat them again)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hashes = {}


def find_files(root: Path, domain: Domain) -> list[Path]:
    """The files under ``root`` that ``domain`` reads, sorted. Only regular files inside ``root`` count: a
    symlink leading out of the folder, a FIFO, a device or a ``/proc``/``/sys`` file is skipped (one warning
    names them), and no symlinked folder is entered; ``root`` itself being such a file is a ``DataError``."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data path {root} does not exist")
    if not root.is_dir():
        safe_io.check_regular_file(root)
        return [root] if domain.accepts(root) else []
    real_root = os.path.realpath(root)
    # Below a root outside /proc, /sys and /dev, an entry that is neither a link nor anything but a regular file
    # (known from the directory listing, no stat) is a plain file inside the folder: only the others are checked.
    plain_ok = not any(real_root == r or real_root.startswith(r + os.sep) for r in safe_io.SPECIAL_ROOTS)
    found, refused = [], []  # found: (the path's parts below root, for the sort; the path)
    stack = [(root, ())]
    while stack:
        folder, parts = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        stack.extend(reversed([(folder / e.name, parts + (e.name,)) for e in entries
                               if e.is_dir(follow_symlinks=False)]))
        for entry in entries:
            if entry.name.startswith(".") or entry.is_dir(follow_symlinks=False):
                continue
            path = folder / entry.name
            reason = None
            if entry.is_symlink():
                target = os.path.realpath(path)
                if os.path.commonpath([real_root, target]) != real_root:
                    reason = f"a link to {target}, outside the data folder"
                reason = reason or safe_io.special_file_reason(path)
            elif not (plain_ok and entry.is_file(follow_symlinks=False)):
                reason = safe_io.special_file_reason(path)
            if reason:
                if Path(entry.name).suffix.lower() in domain.extensions:  # only files the domain would have read
                    refused.append(f"{path} ({reason})")
            elif domain.accepts(path):
                found.append((parts + (entry.name,), path))
    if refused:
        shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        log.warning("skipped %d file(s) that are not regular files inside %s: %s", len(refused), root, shown)
    # ``sorted(paths)``'s order (pathlib compares parts), from the names the walk already has: asking each path
    # for its parts parses it again
    found.sort(key=lambda t: t[0])
    return [path for _, path in found]


class _HashMemo:
    """The content hashes of one data folder's files, kept in the cache (``cache_dir()/hashes/ID.json``) keyed by
    (path, size, mtime, ctime, inode): any change to a file makes it hashed again. Only a time saver: an
    unreadable or unwritable memo is ignored."""

    def __init__(self, root: str):
        self.prefix = os.path.join(root, "")
        name = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:16]
        self.path = cache_dir() / "hashes" / f"{name}.json"
        self.hashed_before = _HASHED[0]

    def load(self) -> "_HashMemo":
        """Read the memo into ``_HASHES`` (not again in this process while the memo file is unchanged: a run
        loads it when it splits the folder and again when it encodes the files)."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino, self.prefix)
            if _MEMOS_LOADED.get(self.path) != stamp:
                for rel, (size, mtime, ctime, ino, digest) in json.loads(self.path.read_text())["files"].items():
                    _HASHES[(self.prefix + rel, size, mtime, ctime, ino)] = digest
                _MEMOS_LOADED[self.path] = stamp
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.hashed_before = _HASHED[0]
        return self

    def save(self) -> None:
        """Write the folder's known hashes when this process hashed a file anew (the latest key of a path wins)."""
        if _HASHED[0] == self.hashed_before:
            return
        n = len(self.prefix)
        entries = {key[0][n:]: [*key[1:], digest] for key, digest in _HASHES.items() if key[0].startswith(self.prefix)}
        try:
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(json.dumps({"files": entries})))
        except (OSError, SeqStudioErrorBase):
            pass


SMALL_TRAIN = 4  # a train split this small is checked for a readable file when the codec must fit on it


@gc_paused_call
def split_files(root: Path, domain: Domain, valid_fraction: float = 0.1,
                test_fraction: float = 0.1) -> SplitFiles:
    """``{"train": [...], "valid": [...], "test": [...]}`` for the files under ``root``.

    With ``train/ valid/ test/`` subfolders, each file's split is its folder's (``SplitFiles.by_folder``);
    otherwise a hash of its content decides. A tiny folder is arranged so that train holds a file the domain can
    read (the codec may have to fit on it), and an empty valid or test split is reported with a warning.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    if root.is_dir() and (root / "train").is_dir():
        splits = SplitFiles({s: find_files(root / s, domain) if (root / s).is_dir() else [] for s in SPLITS})
        splits.by_folder = True
        if not splits["train"]:
            raise DataError(f"{root / 'train'} holds no {domain.name} files ({', '.join(domain.extensions)})")
        _warn_empty(splits, root, domain)
        return splits
    files = find_files(root, domain)
    if not files:
        if root.is_dir() and not any(root.iterdir()):
            raise DataError(f"data folder {root} is empty")
        raise DataError(f"no {domain.name} files ({', '.join(domain.extensions)}) found in {root}")
    # Position on [0, 1) from content: stable under renames, independent of the other files. ``files`` is in
    # path order, so each split is too, with no sort (a sort of 50,000 paths costs more than their hashes).
    memo = _HashMemo(str(root)).load()
    hashes = {f: _content_hash(f) for f in files}
    score = {id(f): _score(h) for f, h in hashes.items()}
    memo.save()
    splits = {s: [] for s in SPLITS}
    for f in files:
        splits[_split_for(score[id(f)], valid_fraction, test_fraction)].append(f)
    # Tiny folders: make sure there is something to train and to validate on (the lowest-scored train file goes
    # to valid, the highest-scored test or valid file to train; ties by path).
    moved = False
    if not splits["valid"] and len(files) >= 2 and valid_fraction > 0:
        pool = "train" if len(splits["train"]) > 1 else "test"
        if splits[pool]:
            f = min(splits[pool], key=lambda f: score[id(f)])
            splits[pool].remove(f)
            splits["valid"].append(f)
            moved = True
    if not splits["train"]:
        donor = "test" if splits["test"] else "valid"
        f = max(reversed(splits[donor]), key=lambda f: score[id(f)])
        splits[donor].remove(f)
        splits["train"].append(f)
        moved = True
    if len(splits["train"]) <= SMALL_TRAIN:
        _readable_train(splits, domain)
        moved = True
    if moved:
        rank = {id(f): i for i, f in enumerate(files)}
        splits = {s: sorted(v, key=lambda f: rank[id(f)]) for s, v in splits.items()}
    splits = SplitFiles(splits)
    splits.hashes = hashes
    _warn_empty(splits, root, domain)
    return splits


def _readable(domain: Domain, path: Path) -> bool:
    from .errors import SeqStudioError

    try:
        with safe_io.time_limit(safe_io.read_timeout(), str(path)):
            if domain.is_collection(path):
                return any(domain.read_collection(path).values())
            domain.read(path)
        return True
    except SeqStudioError:
        return False
    except Exception:  # a parser crash: that file cannot be read either
        return False


def _readable_train(splits: dict[str, list[Path]], domain: Domain) -> None:
    """When the codec of ``domain`` must fit on the training files and train holds only a few, make sure one of
    them reads: else swap in a readable file from valid or test (a hash can put a tiny folder's only good file
    in valid, and the run then failed with "none of the 1 training files could be read"). Domains whose codecs
    need no fit are rescued later, without extra reads, by ``pieces_for_split``."""
    if len(splits["train"]) > SMALL_TRAIN or not any(c.needs_fit for c in domain.codecs.values()):
        return
    if any(_readable(domain, f) for f in splits["train"]):
        return
    for donor in ("valid", "test"):
        for f in splits[donor]:
            if _readable(domain, f):
                splits[donor].remove(f)
                bad = splits["train"].pop(0)
                splits["train"].append(f)
                splits[donor].append(bad)
                log.warning("none of the training files could be read; training on %s (from the %s split) instead",
                            f, donor)
                return


def _warn_empty(splits: dict[str, list[Path]], root: Path, domain: Domain) -> None:
    if any(domain.is_collection(f) for s in SPLITS for f in splits[s]):
        return  # a many-sample file feeds every split
    empty = [s for s in ("valid", "test") if not splits[s]]
    if empty:
        log.warning("%s: the %s split%s empty (%d file(s) in all); add files, or train/ valid/ test/ folders, to "
                    "validate and test on held-out data", root, " and ".join(empty),
                    " is" if len(empty) == 1 else "s are", sum(len(v) for v in splits.values()))


def given_split(path: Path) -> str | None:
    """The split a ``train/ valid/ test/`` folder gives ``path`` (the nearest enclosing folder named after a
    split whose parent has a ``train/`` folder), or None."""
    for ancestor in Path(path).parents:
        if ancestor.name in SPLITS and (ancestor.parent / "train").is_dir():
            return ancestor.name
    return None


# -- reading and encoding ---------------------------------------------------------------------------------------
def _codec_key(domain_name: str, codec: Codec, fractions: tuple[float, float]) -> str:
    """What the cached encodings depend on: not the windowing or augmentation options (``encoding_config``), so
    changing ``codec.window`` re-cuts cached pieces instead of re-reading every file."""
    attributes_version = registry.load_domain(domain_name).attributes_version  # conditions
    blob = json.dumps([CACHE_VERSION, domain_name, codec.name, codec.encoding_config(), codec.state_dict(),
                       list(fractions), REAL_DTYPE, attributes_version], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _chunk_size(files: int, workers: int) -> int:
    """Files per worker task: up to 32, but at least 8 tasks per worker so the work stays balanced (and the
    progress bar moves) on small folders."""
    return max(1, min(32, files // (workers * 8)))


# Seconds of encoding done in the loading process before worker processes are started for the rest (a spawned
# worker's start-up took 2-10 s while it imported torch, and a cold first `train` of 305 files waited 9.5 s for
# it; without torch (``seqstudio.encoding``) it is about 1 s on a busy machine, still more than a small folder takes)
IN_PROCESS_SECONDS = 3.0

def _pool(workers: int) -> futures.Executor:
    """Worker processes started fresh ("spawn"): forking a process whose PyTorch/OpenMP threads have run can
    deadlock the child. Spawned workers inherit ``sys.path``, so plugins found by the parent are found too; they
    die with their parent (``seqstudio.workers``)."""
    from .workers import die_with_parent

    return futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=die_with_parent)


class Piece:
    """One encoded piece: a handle on rows of a shard (memory-mapped) or of an in-memory source. ``tensor()``
    expands it to the float32 ``[T, storage_width]`` tensor the codec produced."""

    __slots__ = ("source", "index")

    def __init__(self, source, index: int):
        self.source, self.index = source, index

    def __len__(self) -> int:
        return int(self.source.piece_len[self.index])

    def tensor(self) -> torch.Tensor:
        row = int(self.source.piece_row[self.index])
        return torch.from_numpy(np.ascontiguousarray(self.source.rows(row, row + len(self))))


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

    key = _codec_key(domain_name, codec, fractions)
    fmt = RowFormat(codec.spec, REAL_DTYPE)
    encoding.WORKER_CODECS.clear()
    results = EncodedFiles()  # conditions: a dict with an ``attributes`` table beside it
    todo = []
    cache = _Cache.open(key, codec, domain_name, fmt) if use_cache else None
    folder = _common_folder(files, absolute=False)
    with gc_paused():  # the warm path: a few objects a file, all kept
        memo = _HashMemo(folder).load() if cache is not None and folder else None
        hashes = hashes or {}
        for f in files:
            try:
                file_hash = hashes.get(f) or _content_hash(f)
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
    writer = _ShardWriter(cache, key, fmt, domain_name, codec, files)
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

    # Workers write nothing: shards are written by this process (``_ShardWriter``), so a cache that cannot be
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
        chunk = _chunk_size(len(todo), workers)
        with _pool(min(workers, len(todo))) as pool:
            jobs = {pool.submit(encoding.read_and_encode_many, *args, [str(f) for f, _ in todo[i : i + chunk]]):
                    [f for f, _ in todo[i : i + chunk]] for i in range(0, len(todo), chunk)}
            for job in futures.as_completed(jobs):
                for f, outcome in zip(jobs.pop(job), job.result()):  # popped: a result is not kept twice
                    collect(f, outcome)
    results.add(writer.flush())
    bar.close()
    return results.ordered(files)


class EncodedFiles(dict):
    """``{path: Piece or {split: [Piece], "own": ...}}`` (``encode_files``), with ``attributes``: ``{path:
    attribute dict or {split: [attribute dicts]}}``, what ``Domain.attributes`` said of each piece
    (``seqstudio.conditions``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attributes: dict = {}

    def add(self, entries: dict) -> None:
        """``{path: (value, attributes)}`` from ``_ShardWriter.flush``."""
        for path, (value, attrs) in entries.items():
            self[path], self.attributes[path] = value, attrs

    def ordered(self, files) -> "EncodedFiles":
        out = EncodedFiles({f: self[f] for f in files if f in self})
        out.attributes = {f: self.attributes.get(f) for f in out}
        return out


SHARD_BYTES = 256 << 20  # a shard is written once this many bytes of rows are waiting (and at the end)


def _entry(source, i: int):
    """File ``i`` of ``source``'s index as ``(value, attributes)``: the loader's value (``_entry_value``) and
    what the domain said of its pieces (``Domain.attributes``; None for a shard written without them)."""
    return _entry_value(source, i), source.attributes[i]


def _entry_value(source, i: int):
    """File ``i`` of ``source``'s index as the loader's value: a Piece, or ``{split: [Piece], "own": ...}``."""
    a, b = int(source.first[i]), int(source.first[i + 1])
    collection = source.collections.get(i)
    if collection is None:
        return Piece(source, a)
    value = {s: [] for s in SPLITS}
    for p in range(a, b):
        value[SPLIT_CODES[source.piece_split[p]]].append(Piece(source, p))
    value["own"] = dict(collection.get("own") or {})
    return value


class _ShardWriter:
    """Collects packed encodings and writes them as one shard (or, without a writable cache, keeps them in
    memory, still compact)."""

    def __init__(self, cache: "_Cache | None", key: str, fmt: RowFormat, domain_name: str, codec: Codec,
                 files: list[Path]):
        self.cache, self.key, self.fmt = cache, key, fmt
        self.info = {"domain": domain_name, "codec": codec.name, "source": _common_folder(files)}
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
            entry = _entry(source, source.files[file_hash])
            for path in paths:
                out[path] = entry
        self._reset()
        return out


def _common_folder(files: list[Path], absolute: bool = True) -> str:
    try:
        path = os.path.abspath if absolute else os.fspath
        # each folder once: commonpath splits every path it is given (0.3 s for 50,000 files in 50 folders)
        return os.path.commonpath({os.path.dirname(path(f)) for f in files}) if files else ""
    except ValueError:
        return ""


class _Cache:
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
    def open(cls, key: str, codec: Codec, domain_name: str, fmt: RowFormat) -> "_Cache | None":
        from .errors import DiskFullError

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
        return None if found is None else _entry(*found)

    def write(self, index: dict, arrays: list[np.ndarray], info: dict) -> "Shard | None":
        """Write a shard and map it; the first failure is one warning and ends caching for this run."""
        from .errors import DiskFullError

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


def pieces_for_split(encoded: dict[Path, Piece | dict], files: dict[str, list[Path]],
                     split: str) -> list[Piece]:
    """The encoded pieces of ``split``: its single-sample files, plus that split's share of every many-sample
    file (whichever split the file itself landed in).

    When folders gave the splits (``SplitFiles.by_folder``) a file's split is its folder's, also inside a
    many-sample file: one in ``valid/`` feeds valid with its own ``valid`` samples and those it leaves to the
    loader, and feeds no other split (its ``train`` array would otherwise leak into training).

    When none of the training files could be encoded and folders did not fix the splits, a readable valid or
    test file is moved into train (``files`` is updated) with a warning, rather than failing the run.
    """
    if getattr(files, "by_folder", False):
        pieces = []
        for f in files[split]:
            value = encoded.get(f)
            if isinstance(value, Piece):
                pieces.append(value)
            elif isinstance(value, dict):
                pieces.extend(_folder_share(value, split))
        return pieces
    pieces = [encoded[f] for f in files[split] if f in encoded and isinstance(encoded[f], Piece)]
    for value in encoded.values():
        if isinstance(value, dict):
            pieces.extend(value.get(split, []))
    if split == "train" and not pieces:
        for donor in ("valid", "test"):
            good = [f for f in files[donor] if isinstance(encoded.get(f), Piece)]
            if good:
                files[donor].remove(good[0])
                files["train"].append(good[0])
                log.warning("none of the training files could be read; training on %s (from the %s split) "
                            "instead%s", good[0], donor, "" if files[donor] else f", leaving {donor} empty")
                return [encoded[good[0]]]
    return pieces


def _folder_share(value: dict, split: str) -> list[Piece]:
    """What a many-sample file in ``split``'s folder gives that split: its own samples of the split, and every
    sample the loader placed by position (in whichever split)."""
    own = value.get("own") or {s: len(value.get(s, [])) for s in SPLITS}  # older cache entries: own only
    share = list(value.get(split, [])[: own.get(split, 0)])
    for s in SPLITS:
        share.extend(value.get(s, [])[own.get(s, 0):])
    return share


def read_samples(files: list[Path], domain: Domain, split: str = "train",
                 fractions: tuple[float, float] = (0.1, 0.1)) -> list:
    """Read raw samples (for codecs that must ``fit`` on data before encoding), skipping broken files.

    For a many-sample file only its ``split`` share is returned; one inside a ``train/ valid/ test/`` folder
    (``given_split``) gives only its folder's split, as in ``pieces_for_split``."""
    from .errors import SeqStudioError

    samples = []
    for f in files:
        try:
            with safe_io.time_limit(safe_io.read_timeout(), str(f)):
                if domain.is_collection(f):
                    folder = given_split(f)
                    items = domain.read_collection(f)
                    if folder is None:
                        samples.extend(assign_collection(items, _content_hash(f), *fractions)[split])
                    elif folder == split:
                        samples.extend(list(items.get(split, [])) + list(items.get("", [])))
                else:
                    samples.append(domain.read(f))
        except SeqStudioError as exc:
            log.warning("skipped %s: %s", f, exc)
    return samples


# -- windows and batches ----------------------------------------------------------------------------------------
def _windowing_hash(codec: Codec) -> str:
    """What cutting pieces into windows depends on beyond the pieces: the codec and its whole configuration
    and state (a window may depend on any of them; the encoding key is part of the shard already)."""
    blob = json.dumps([codec.name, vars(codec.config), codec.state_dict()], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _span_of(w: torch.Tensor, x: torch.Tensor) -> int | None:
    """The first row of ``x`` that window ``w`` starts at when ``w`` is a slice of rows of ``x``, else None."""
    if (w.dim() != 2 or w.shape[1] != x.shape[1] or w.dtype != x.dtype or w.shape[0] == 0
            or w.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
            or (w.shape[0] > 1 and w.stride() != x.stride()) or w.stride(1) != x.stride(1)):
        return None
    offset = w.storage_offset() - x.storage_offset()
    if offset % x.stride(0):
        return None
    start = offset // x.stride(0)
    return start if 0 <= start and start + w.shape[0] <= x.shape[0] else None


class _Spans:
    """The windows of every piece of one source: window ``first[p]:first[p + 1]`` belong to piece ``p``; each
    is ``(src, row, length)`` with ``src`` 0 = rows of the source, 1 = rows of ``extra`` (windows the codec built
    itself rather than sliced, kept in memory)."""

    def __init__(self, first, src, row, length, extra=None):
        self.first, self.src, self.row, self.length, self.extra = first, src, row, length, extra


def _source_spans(source, codec: Codec, whash: str) -> _Spans:
    """The windows of every piece of ``source`` (cached on the source, and beside a shard on disk when every
    window is a slice of its piece: a warm start then cuts nothing)."""
    spans = source.spans.get(whash)
    if spans is not None:
        return spans
    path = source.spans_file(whash)
    n = len(source.piece_row)
    if path is not None and path.is_file():
        try:
            with np.load(path) as z:
                first, row, length = z["first"], z["row"], z["length"]
            if first.shape == (n + 1,) and row.shape == length.shape == (int(first[-1]),):
                spans = _Spans(first, np.zeros(len(row), np.int8), row, length)
        except (OSError, ValueError, KeyError):
            spans = None
    if spans is None:
        first, src, rows, lengths, extra = [0], [], [], [], []
        extra_rows = 0
        for p in range(n):
            start = int(source.piece_row[p])
            x = torch.from_numpy(np.ascontiguousarray(source.rows(start, start + int(source.piece_len[p]))))
            for w in codec.windows(x):
                at = _span_of(w, x)
                if at is None:
                    extra.append(w.detach().to(torch.float32).contiguous())
                    src.append(1)
                    rows.append(extra_rows)
                    extra_rows += w.shape[0]
                else:
                    src.append(0)
                    rows.append(start + at)
                lengths.append(w.shape[0])
            first.append(len(rows))
        width = codec.spec.storage_width
        spans = _Spans(np.array(first, np.int64), np.array(src, np.int8), np.array(rows, np.int64),
                       np.array(lengths, np.int64), FloatPieces.from_tensors(extra, width) if extra else None)
        if path is not None and not extra:
            def save(tmp):
                with open(tmp, "wb") as f:
                    np.savez(f, first=spans.first, row=spans.row, length=spans.length)
            try:
                atomic_write(path, save)
            except (OSError, SeqStudioErrorBase):
                pass  # a cache that cannot be written only costs the cutting again next time
    source.spans[whash] = spans
    return spans


class WindowSet:
    """The training windows of one split as ``(source, first row, length)`` index entries into compact rows
    (memory-mapped shards, ``shards``); ``gather`` builds a padded float batch on the fly. Nothing is padded
    or expanded ahead of time, so memory does not grow with the corpus. Under DDP every rank maps the same
    shards read-only (the OS shares their pages) and gathers only its own batches (``batch_indices``).

    ``x`` (the old padded ``[N, T_max, storage_width]`` tensor) is still available for small sets and tests;
    assigning it replaces the windows by that tensor's."""

    def __init__(self, sources: list, src: np.ndarray, row: np.ndarray, length: np.ndarray, pieces: int,
                 width: int, conditions: torch.Tensor | None = None):
        self.sources, self.src, self.row, self.length = sources, src, row, length
        self.pieces, self.width = pieces, width
        self.conditions = conditions  # [N, A] attribute indices per window (seqstudio.conditions), or None
        self.texts: torch.Tensor | None = None  # [N, U] symbol ids per window, 0 = padding (seqstudio.text_condition)
        self.condition_moves = None  # how the conditions move with the augmentation (conditions.move_tables)

    def __len__(self) -> int:
        return int(self.length.shape[0])

    @property
    def lengths(self) -> torch.Tensor:
        return torch.from_numpy(self.length)

    @property
    def max_length(self) -> int:
        return int(self.length.max()) if len(self) else 1

    def window(self, i: int) -> torch.Tensor:
        """Window ``i`` as float32 ``[length, storage_width]``."""
        source, row = self.sources[int(self.src[i])], int(self.row[i])
        return torch.from_numpy(np.ascontiguousarray(source.rows(row, row + int(self.length[i]))))

    def gather(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``index`` as a zero-padded float32 batch ``[B, t, storage_width]`` (``t`` the longest of
        them) and their lengths: one fancy-indexed read and one expansion per source."""
        idx = index.numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        idx = idx.astype(np.int64).reshape(-1)
        lengths = self.length[idx]
        t = int(lengths.max()) if len(idx) else 1
        out = np.zeros((len(idx), t, self.width), dtype=np.float32)
        steps = np.arange(t)
        src = self.src[idx]
        for s in np.unique(src):
            sel = np.flatnonzero(src == s)
            first = self.row[idx[sel]][:, None]
            valid = steps[None, :] < lengths[sel][:, None]
            values = self.sources[int(s)].gather(np.where(valid, first + steps[None, :], first))
            values[~valid] = 0.0
            out[sel] = values
        return torch.from_numpy(out), torch.from_numpy(lengths.copy())

    def subset(self, index) -> "WindowSet":
        """The windows ``index`` (numpy integers), with their conditions and texts; the rows are shared."""
        idx = np.asarray(index, dtype=np.int64)
        out = WindowSet(self.sources, self.src[idx], self.row[idx], self.length[idx], self.pieces, self.width,
                        self.conditions[torch.from_numpy(idx)] if self.conditions is not None else None)
        out.texts = self.texts[torch.from_numpy(idx)] if self.texts is not None else None
        out.condition_moves = self.condition_moves
        return out

    @property
    def x(self) -> torch.Tensor:
        if not len(self):
            return torch.zeros(0, 1, self.width)
        return self.gather(np.arange(len(self)))[0]

    @x.setter
    def x(self, value: torch.Tensor) -> None:
        n, t = value.shape[0], value.shape[1]
        source = FloatPieces(value.detach().to(torch.float32).reshape(n * t, -1).numpy().copy(),
                             np.arange(n, dtype=np.int64) * t, self.length.copy())
        self.sources, self.src, self.row = [source], np.zeros(n, np.int16), np.arange(n, dtype=np.int64) * t

    def all_finite(self) -> bool:
        """Whether every window is finite; windows of sources that cannot hold NaN (bits, indices) are not
        read at all, the others in bounded chunks."""
        risky = [i for i, s in enumerate(self.sources)
                 if isinstance(s, FloatPieces) or getattr(getattr(s, "fmt", None), "has_real", False)]
        if not risky:
            return True
        idx = np.flatnonzero(np.isin(self.src, risky))
        for a in range(0, len(idx), 4096):
            if not torch.isfinite(self.gather(idx[a : a + 4096])[0]).all():
                return False
        return True

    @classmethod
    @gc_paused_call
    def from_pieces(cls, encoded: list, codec: Codec, whole: bool = False,
                    conditions: torch.Tensor | None = None) -> "WindowSet":
        """Windows of ``encoded`` (``Piece`` handles, or tensors) as ``codec.windows`` cuts them (``whole``:
        each piece is one window), in the order of the pieces. ``conditions``: ``[pieces, A]`` attribute
        indices, given to every window of each piece."""
        width = codec.spec.storage_width
        tensors = [p for p in encoded if not isinstance(p, Piece)]
        if tensors:  # plain tensors: kept in memory as they are
            mem = FloatPieces.from_tensors(tensors, width)
            it = iter(range(len(tensors)))
            encoded = [p if isinstance(p, Piece) else Piece(mem, next(it)) for p in encoded]
        whash = "whole" if whole else _windowing_hash(codec)
        sources, ids = [], {}

        def sid(source) -> int:
            if id(source) not in ids:
                ids[id(source)] = len(sources)
                sources.append(source)
            return ids[id(source)]

        srcs, rows, lengths = [], [], []
        counts = []  # windows per piece (conditions)
        for piece in encoded:
            source = piece.source
            if whole:
                srcs.append(np.array([sid(source)], np.int16))
                rows.append(source.piece_row[piece.index : piece.index + 1])
                lengths.append(source.piece_len[piece.index : piece.index + 1])
                counts.append(1)
                continue
            spans = _source_spans(source, codec, whash)
            a, b = int(spans.first[piece.index]), int(spans.first[piece.index + 1])
            counts.append(b - a)
            if a == b:
                continue
            src = spans.src[a:b]
            own, extra = sid(source), (sid(spans.extra) if spans.extra is not None else -1)
            srcs.append(np.where(src == 0, own, extra).astype(np.int16))
            rows.append(spans.row[a:b])
            lengths.append(spans.length[a:b])
        per_window = None
        if conditions is not None:  # conditions: each window carries its piece's indices
            per_window = conditions.repeat_interleave(torch.tensor(counts, dtype=torch.long), dim=0)
        if not rows:
            return cls(sources, np.zeros(0, np.int16), np.zeros(0, np.int64), np.zeros(0, np.int64),
                       len(encoded), width, per_window)
        return cls(sources, np.concatenate(srcs), np.concatenate(rows).astype(np.int64),
                   np.concatenate(lengths).astype(np.int64), len(encoded), width, per_window)


def batch_indices(n: int, batch_size: int, epoch: int, seed: int, shuffle: bool = True, rank: int = 0,
                  world: int = 1) -> list[torch.Tensor]:
    """This rank's batches for one epoch: same order for the same (seed, epoch), equal count on every rank."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    if world > 1:  # pad so every rank gets the same number of batches (DDP would hang otherwise)
        per_rank = -(-n // world)
        order = torch.cat([order, order[: per_rank * world - n]])[rank::world]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def make_batch(windows: WindowSet, index: torch.Tensor, device: torch.device, codec: Codec | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Padded batch on ``device``, gathered from the windows' compact rows and expanded to float here;
    ``codec`` + ``generator`` given = training augmentation applied."""
    x, lengths = windows.gather(index)
    t = x.shape[1]
    changes = None
    if codec is not None and generator is not None:
        x, lengths, changes = _augment(x, lengths, codec, generator)
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    batch = {"x": x.to(device, non_blocking=True), "mask": mask.to(device, non_blocking=True),
             "lengths": lengths.to(device, non_blocking=True)}
    if windows.conditions is not None:  # conditions: [B, A] attribute indices
        rows = windows.conditions[index]
        if changes is not None and windows.condition_moves is not None:  # a key transposed with the notes
            rows = conditions_mod.moved_indices(rows, changes, windows.condition_moves)
        batch["condition"] = rows.to(device, non_blocking=True)
    if windows.texts is not None:  # text: [B, U] symbol ids of whole lines and their mask
        text = windows.texts[index]
        text = text[:, : max(1, int((text > 0).sum(1).max()))]
        batch["text"] = text.to(device, non_blocking=True)
        batch["text_mask"] = (text > 0).to(device, non_blocking=True)
    return batch


def _augment(x, lengths, codec, generator):
    """Augment each window; a codec may shorten one (e.g. by dropping points), never lengthen it. Also gives
    what the codec changed in each (``Codec.augment_with_change``), for the conditions to follow."""
    out = torch.zeros_like(x)
    new_lengths = lengths.clone()
    changes = []
    for i, n in enumerate(lengths.tolist()):
        y, change = codec.augment_with_change(x[i, :n], generator)
        changes.append(change)
        if y.shape[0] > n:
            raise DataError(f"codec {codec.name}: augment lengthened a window ({n} -> {y.shape[0]} steps)")
        out[i, : y.shape[0]] = y
        new_lengths[i] = y.shape[0]
    return out, new_lengths, changes
