"""Content hashes of a folder's files, remembered between runs: a file's split and its cache entry are keyed by its
content, and hashing 50,000 files again at every start would cost seconds. The hashes themselves are taken by
``seqstudio.encoding`` (torch-free, shared with the workers); this module keeps the memo on disk."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .. import encoding
from ..atomic import atomic_write
from ..cache import cache_dir
from ..errors import SeqStudioError

MEMOS_LOADED: dict[Path, tuple] = {}  # memo file -> its (size, mtime, inode, folder) when read into encoding.HASHES


class HashMemo:
    """The content hashes of one data folder's files, kept in the cache (``cache_dir()/hashes/ID.json``) keyed by
    (path, size, mtime, ctime, inode): any change to a file makes it hashed again. Only a time saver: an
    unreadable or unwritable memo is ignored."""

    def __init__(self, root: str):
        self.prefix = os.path.join(root, "")
        name = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:16]
        self.path = cache_dir() / "hashes" / f"{name}.json"
        self.hashed_before = encoding.HASHED[0]

    def load(self) -> "HashMemo":
        """Read the memo into ``encoding.HASHES`` (not again in this process while the memo file is unchanged: a run
        loads it when it splits the folder and again when it encodes the files)."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino, self.prefix)
            if MEMOS_LOADED.get(self.path) != stamp:
                for rel, (size, mtime, ctime, ino, digest) in json.loads(self.path.read_text())["files"].items():
                    encoding.HASHES[(self.prefix + rel, size, mtime, ctime, ino)] = digest
                MEMOS_LOADED[self.path] = stamp
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.hashed_before = encoding.HASHED[0]
        return self

    def save(self) -> None:
        """Write the folder's known hashes when this process hashed a file anew (the latest key of a path wins)."""
        if encoding.HASHED[0] == self.hashed_before:
            return
        n = len(self.prefix)
        entries = {key[0][n:]: [*key[1:], digest] for key, digest in encoding.HASHES.items() if key[0].startswith(self.prefix)}
        try:
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(json.dumps({"files": entries})))
        except (OSError, SeqStudioError):
            pass
