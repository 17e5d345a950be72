"""The encoding cache as something users can see and clear (``seqstudio cache info`` / ``cache clear``).

The cache (``data.cache_dir()``: ``$SEQSTUDIO_CACHE``, default ``~/.cache/seqstudio``) holds one folder per codec
key (16 hex digits) with shards (``shards``: ``shard-*.bin`` + ``shard-*.json``, ``shard-*.ok`` checksum stamps
and ``shard-*.win-*.npz`` window indexes) and, from older versions, one ``.pt`` per file; ``hashes/`` remembers
the content hashes of data folders' files, ``prepared/`` the stored preparations of warm starts (``data.snapshot``:
``KEY.json`` + ``KEY-DIGEST.npz``), ``models/`` the run directories made from installed or exported models
(``export.materialize``: ``NAME-KEY`` folders, remade from the model's folder whenever they are missing). Clearing
removes only files of those names in
folders of that name, never anything else a user may keep there (``SEQSTUDIO_CACHE`` pointed at a home folder
by mistake must not cost them a file). A shard's last use is its index's access time, which ``data`` sets each
time a run opens it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from .errors import ConfigError
from .shards import SHARD_PREFIX, read_index, remove_shard, stamp_path

KEY = re.compile(r"^[0-9a-f]{16}$")
def cache_dir() -> Path:
    """Where encoded data is kept: ``$SEQSTUDIO_CACHE``, default ``~/.cache/seqstudio``."""
    return Path(os.environ.get("SEQSTUDIO_CACHE", Path.home() / ".cache" / "seqstudio"))


PREPARED = re.compile(r"^[0-9a-f]{32}(\.json|-[0-9a-f]{16}\.npz)$")  # data.snapshot.Snapshot's files
LEGACY = re.compile(r"^[0-9a-f]{64}\.pt$")  # CACHE_VERSION 2: one torch file per source file
TEMPORARY = re.compile(r"^\.(shard-|[0-9a-f]{64}\.pt).*\.tmp$")  # atomic_write's temporaries
TEMPORARY_GRACE_S = 3600  # a younger temporary may be a concurrent run's write in progress
MODEL_FOLDER = re.compile(r"^[A-Za-z0-9._-]+-[0-9a-f]{16}$")  # export.materialize's NAME-KEY
MODEL_STAMP = ".materialized"  # export.MATERIALIZED: the folder was written completely
# What materialize writes into a model's run directory, and so all that clearing it removes (a user's own files
# there, e.g. samples written into it, are kept, and so is the folder then).
MODEL_FILES = ("config.yaml", "codec.json", "spec.json", "best.pt", "MODEL.md", "exported.json",
               "recogniser/recogniser.json", "recogniser/recogniser.pt")


def _folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and KEY.match(p.name))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _shard_files(index: Path) -> list[Path]:
    return [index, index.with_suffix(".bin"), stamp_path(index), *index.parent.glob(f"{index.stem}.win-*.npz")]


def _last_used(index: Path) -> float:
    st = index.stat()
    return max(st.st_atime, st.st_mtime)


def info(root: Path) -> dict:
    """``{"path", "bytes", "datasets": [...]}``: per codec key, its domain, codec, source folders, files,
    shards, bytes and last use."""
    datasets = []
    for folder in _folders(root):
        entry = {"key": folder.name, "domain": None, "codec": None, "sources": [], "files": 0, "shards": 0,
                 "bytes": 0, "last_used": None, "old_entries": 0}
        hashes: set[str] = set()
        for index in sorted(folder.glob(f"{SHARD_PREFIX}*.json")):
            meta = read_index(index) or {}
            entry["domain"] = entry["domain"] or meta.get("domain")
            entry["codec"] = entry["codec"] or meta.get("codec")
            if meta.get("source") and meta["source"] not in entry["sources"]:
                entry["sources"].append(meta["source"])
            hashes.update(h for h in meta.get("hashes", []) if isinstance(h, str))
            entry["shards"] += 1
            entry["bytes"] += sum(_size(p) for p in _shard_files(index))
            used = _last_used(index)
            entry["last_used"] = max(entry["last_used"] or 0, used)
        for path in folder.iterdir():
            if LEGACY.match(path.name):
                entry["old_entries"] += 1
                entry["bytes"] += _size(path)
        entry["files"] = len(hashes)
        datasets.append(entry)
    prepared = _prepared_files(root)
    prepared_bytes = sum(_size(p) for p in prepared)
    models = _model_folders(root)
    model_bytes = sum(_size(folder / name) for folder in models for name in (*MODEL_FILES, MODEL_STAMP))
    return {"path": str(root), "bytes": sum(d["bytes"] for d in datasets) + prepared_bytes + model_bytes,
            "datasets": datasets,
            "prepared": {"runs": sum(1 for p in prepared if p.suffix == ".json"), "bytes": prepared_bytes},
            "models": {"folders": [folder.name for folder in models], "bytes": model_bytes}}


def _model_folders(root: Path) -> list[Path]:
    """The run directories made from models (``export.materialize``), nothing else ``models/`` may hold."""
    folder = root / "models"
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if MODEL_FOLDER.match(p.name) and p.is_dir() and not p.is_symlink()
                  and (p / MODEL_STAMP).is_file())


def _clear_models(root: Path, older_than: float | None, now: float) -> int:
    """Remove the files materialize wrote (those of models unused for ``older_than`` seconds, when given), the
    folders left empty, and stale half-written stages; returns the bytes removed. A model's last use is its
    weights' access or change time."""
    removed = 0
    for folder in _model_folders(root):
        weights = folder / "best.pt"
        if older_than is not None and weights.is_file() and now - _last_used(weights) < older_than:
            continue
        (folder / MODEL_STAMP).unlink()  # first: a half-cleared folder is never taken for a whole one
        for name in MODEL_FILES:
            path = folder / name
            if path.is_file() and not path.is_symlink():
                removed += _size(path)
                path.unlink()
        for empty in (folder / "recogniser", folder):
            try:
                os.rmdir(empty)
            except OSError:
                pass
    models = root / "models"
    if models.is_dir() and not models.is_symlink():
        for stage in models.iterdir():  # materialize's temporaries, left by a process killed while writing
            if stage.name.startswith(".stage-") and stage.is_dir() and not stage.is_symlink() \
                    and now - stage.stat().st_mtime >= TEMPORARY_GRACE_S:
                shutil.rmtree(stage, ignore_errors=True)
        try:
            os.rmdir(models)
        except OSError:
            pass
    return removed


def _prepared_files(root: Path) -> list[Path]:
    """The stored preparations' files (``data.snapshot``), nothing else that folder may hold."""
    folder = root / "prepared"
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if PREPARED.match(p.name) and p.is_file() and not p.is_symlink())


def parse_age(text: str) -> float:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"`` or a plain number of days -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not match:
        raise ConfigError(f"--older-than {text!r}: give an age such as 30d, 12h, 90m or 45s")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}[match.group(2)]
    return float(match.group(1)) * unit


def clear(root: Path, older_than: float | None = None) -> dict:
    """Remove the cache's shards (those not used for ``older_than`` seconds, when given), its old per-file
    entries and stale temporaries; then the codec folders left empty. Returns counts and bytes removed."""
    now = time.time()
    removed = {"shards": 0, "old_entries": 0, "bytes": 0}
    removed["bytes"] += _clear_models(root, older_than, now)
    for folder in _folders(root):
        for index in sorted(folder.glob(f"{SHARD_PREFIX}*.json")):
            if older_than is not None and now - _last_used(index) < older_than:
                continue
            removed["bytes"] += sum(_size(p) for p in _shard_files(index))
            remove_shard(index)
            removed["shards"] += 1
        for path in list(folder.iterdir()):
            if not path.is_file() or path.is_symlink():
                continue
            age = now - path.stat().st_mtime
            if LEGACY.match(path.name) and (older_than is None or age >= older_than):
                removed["bytes"] += _size(path)
                path.unlink()
                removed["old_entries"] += 1
            elif TEMPORARY.match(path.name) and age >= TEMPORARY_GRACE_S:
                path.unlink()
            elif path.name.startswith(SHARD_PREFIX) and path.suffix == ".bin" and not path.with_suffix(".json").exists() \
                    and age >= TEMPORARY_GRACE_S:  # a shard whose index was never written (a run killed between)
                removed["bytes"] += _size(path)
                path.unlink()
            elif path.name.startswith(SHARD_PREFIX) and path.suffix == ".ok" and not path.with_suffix(".json").exists():
                path.unlink()  # a checksum stamp left by a shard removed in between (``shards.mark_verified``)
        try:
            os.rmdir(folder)  # only when nothing else is left in it
        except OSError:
            pass
    for path in _prepared_files(root):  # a preparation that points at a removed shard is never used again anyway
        if older_than is None or now - path.stat().st_mtime >= older_than:
            removed["bytes"] += _size(path)
            path.unlink()
    try:
        os.rmdir(root / "prepared")
    except OSError:
        pass
    memos = root / "hashes"  # the content hashes of data folders' files (``data._HashMemo``)
    if memos.is_dir() and not memos.is_symlink():
        for path in memos.iterdir():
            if KEY.match(path.stem) and path.suffix == ".json" and path.is_file() and not path.is_symlink() \
                    and (older_than is None or now - path.stat().st_mtime >= older_than):
                path.unlink()
        try:
            os.rmdir(memos)
        except OSError:
            pass
    return removed


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
