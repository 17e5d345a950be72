"""Which split each file feeds: the folder's own ``train/ valid/ test/`` subfolders, else a hash of its content."""

from __future__ import annotations

import logging
from pathlib import Path

from .. import safe_io
from ..domain import Domain
from ..encoding import SPLITS, content_hash, split_for, split_score
from ..errors import DataError
from ..gc_pause import gc_paused_call
from .discovery import find_files
from .hashing import HashMemo

log = logging.getLogger("seqstudio")


class SplitFiles(dict):
    """``{"train": [...], "valid": [...], "test": [...]}``; ``by_folder`` is True when the folder's own
    ``train/ valid/ test/`` subfolders gave the splits (then a many-sample file feeds only its folder's split)."""

    by_folder: bool = False
    hashes: dict  # {path: content hash} of the files split by content (``encode_files`` need not stat them again)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hashes = {}


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
    memo = HashMemo(str(root)).load()
    hashes = {f: content_hash(f) for f in files}
    score = {id(f): split_score(h) for f, h in hashes.items()}
    memo.save()
    splits = {s: [] for s in SPLITS}
    for f in files:
        splits[split_for(score[id(f)], valid_fraction, test_fraction)].append(f)
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
    from ..errors import SeqStudioError

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
