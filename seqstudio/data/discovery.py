"""Which files of a folder are data: regular files inside it that the domain reads, in a stable order; and the
split a ``train/ valid/ test/`` folder gives a file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .. import safe_io
from ..domain import Domain
from ..encoding import SPLITS
from ..errors import DataError

log = logging.getLogger("seqstudio")


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


def given_split(path: Path) -> str | None:
    """The split a ``train/ valid/ test/`` folder gives ``path`` (the nearest enclosing folder named after a
    split whose parent has a ``train/`` folder), or None."""
    for ancestor in Path(path).parents:
        if ancestor.name in SPLITS and (ancestor.parent / "train").is_dir():
            return ancestor.name
    return None


def common_folder(files: list[Path], absolute: bool = True) -> str:
    try:
        path = os.path.abspath if absolute else os.fspath
        # each folder once: commonpath splits every path it is given (0.3 s for 50,000 files in 50 folders)
        return os.path.commonpath({os.path.dirname(path(f)) for f in files}) if files else ""
    except ValueError:
        return ""
