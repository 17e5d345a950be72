"""From a folder of files to padded training batches: discovery, splits, parallel cached encoding, windows.

* Splits: a folder with ``train/ valid/ test/`` subfolders is used as given (benchmarks depend on fixed
  splits); otherwise each file's split is decided by a hash of its *content*, so it never changes when files
  are renamed, moved or added.
* Encoding runs in worker processes and is cached on disk keyed by file content + domain + codec config and
  state, so a second ``train`` on the same folder starts without re-parsing.
* Broken files are skipped with a warning naming them; only a folder with nothing usable is an error.
"""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import registry, safe_io
from .atomic import atomic_write
from .domain import Codec, Domain
from .errors import DataError

log = logging.getLogger("seqstudio")
SPLITS = ("train", "valid", "test")
CACHE_VERSION = 3  # 2: entries carry a checksum (``_cache_entry``); 3: and the pieces' attributes (conditions)


def cache_dir() -> Path:
    return Path(os.environ.get("SEQSTUDIO_CACHE", Path.home() / ".cache" / "seqstudio"))


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
    try:
        info = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
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
    found, refused = [], []
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            reason = None
            if path.is_symlink():
                target = os.path.realpath(path)
                if os.path.commonpath([real_root, target]) != real_root:
                    reason = f"a link to {target}, outside the data folder"
            reason = reason or safe_io.special_file_reason(path)
            if reason:
                if Path(name).suffix.lower() in domain.extensions:  # only files the domain would have read
                    refused.append(f"{path} ({reason})")
            elif domain.accepts(path):
                found.append(path)
    if refused:
        shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        log.warning("skipped %d file(s) that are not regular files inside %s: %s", len(refused), root, shown)
    return sorted(found)


def _content_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


SMALL_TRAIN = 4  # a train split this small is checked for a readable file when the codec must fit on it


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
    # Position on [0, 1) from content: stable under renames, independent of the other files.
    scored = sorted(((_score(_content_hash(f)), f) for f in files), key=lambda t: (t[0], str(t[1])))
    splits = {s: [] for s in SPLITS}
    for score, f in scored:
        splits[_split_for(score, valid_fraction, test_fraction)].append(f)
    # Tiny folders: make sure there is something to train and to validate on.
    if not splits["valid"] and len(files) >= 2 and valid_fraction > 0:
        pool = "train" if len(splits["train"]) > 1 else "test"
        if splits[pool]:
            splits["valid"].append(splits[pool].pop(0))
    if not splits["train"]:
        donor = "test" if splits["test"] else "valid"
        splits["train"].append(splits[donor].pop())
    _readable_train(splits, domain)
    splits = SplitFiles({s: sorted(v) for s, v in splits.items()})
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


def _score(hex_digest: str) -> float:
    return int(hex_digest[:12], 16) / 16**12


def _split_for(score: float, valid_fraction: float, test_fraction: float) -> str:
    return "valid" if score < valid_fraction else "test" if score < valid_fraction + test_fraction else "train"


def assign_collection(items: dict[str, list], file_hash: str, valid_fraction: float,
                      test_fraction: float) -> dict[str, list]:
    """A many-sample file's samples by split: its own splits kept, unassigned ones (key ``""``) placed by a hash
    of (file content, position) — the same file always splits the same way, whatever else is in the folder."""
    out = {s: list(items.get(s, [])) for s in SPLITS}
    for i, item in enumerate(items.get("", [])):
        score = _score(hashlib.sha256(f"{file_hash}:{i}".encode()).hexdigest())
        out[_split_for(score, valid_fraction, test_fraction)].append(item)
    return out


# -- reading and encoding ---------------------------------------------------------------------------------------
def _codec_key(domain_name: str, codec: Codec, fractions: tuple[float, float]) -> str:
    """What the cached encodings depend on: not the windowing or augmentation options (``encoding_config``), so
    changing ``codec.window`` re-cuts cached pieces instead of re-reading every file."""
    attributes_version = getattr(registry.load_domain(domain_name), "attributes_version", 0)  # conditions
    blob = json.dumps([CACHE_VERSION, domain_name, codec.name, codec.encoding_config(), codec.state_dict(),
                       list(fractions), attributes_version], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _encode_one(codec: Codec, sample) -> torch.Tensor:
    x = codec.encode(sample).to(torch.float32)
    if x.dim() != 2 or x.shape[1] != codec.spec.storage_width:
        raise DataError(f"codec {codec.name} produced shape {tuple(x.shape)}, expected [T, {codec.spec.storage_width}]")
    return x


def _encode_collection(domain: Domain, codec: Codec, path: Path, fractions: tuple[float, float]):
    """A many-sample file as ``{split: [tensors]}``; samples the codec cannot encode are skipped and counted.

    Each split's list holds the file's own samples of that split first, then those placed there by position;
    ``"own"`` counts the first (so that a file in a ``valid/`` folder can feed valid alone, see
    ``pieces_for_split``)."""
    from .errors import SeqStudioError

    items = domain.read_collection(path)
    own_counts = {s: len(items.get(s, [])) for s in SPLITS}
    assigned = assign_collection(items, _content_hash(path), *fractions)
    out, own, failed = {}, {}, 0
    attrs = {}  # conditions: {split: [attribute dict per encoded sample]}
    for split, samples in assigned.items():
        out[split], own[split], attrs[split] = [], 0, []
        for i, sample in enumerate(samples):
            try:
                out[split].append(_encode_one(codec, sample))
                attrs[split].append(domain.attributes(sample, path))  # conditions
                own[split] += i < own_counts[split]
            except SeqStudioError:
                failed += 1
    if failed:
        log.warning("%s: %d of its samples could not be encoded and were skipped", path, failed)
    if not any(out.values()):
        raise DataError(f"{path.name}: none of its samples could be encoded")
    out["own"] = own
    return out, attrs  # conditions: the attributes beside the tensors


def _read_and_encode(domain_name: str, codec_name: str, codec_config: dict, codec_state: dict,
                     fractions: tuple[float, float], path: str, cache_path: str | None):
    """Worker: returns ``("ok", tensor or {split: [tensors]})`` or ``("error", message)``; never raises for a
    bad file. Reading and encoding one file stop after ``safe_io.read_timeout()`` seconds (the worker runs this
    in its main thread; in-process callers in other threads are limited too)."""
    from .errors import SeqStudioError

    try:
        domain = registry.load_domain(domain_name)()
        codec = make_codec(domain, codec_name, codec_config)
        codec.load_state_dict(codec_state)
        safe_io.check_regular_file(path)
        with safe_io.time_limit(safe_io.read_timeout(), str(path)):
            if domain.is_collection(Path(path)):
                x, attrs = _encode_collection(domain, codec, Path(path), fractions)
            else:
                sample = domain.read(Path(path))
                x, attrs = _encode_one(codec, sample), domain.attributes(sample, Path(path))  # conditions
        if cache_path:
            atomic_write(Path(cache_path), lambda tmp: torch.save(x, tmp))
        return "ok", x, attrs
    except SeqStudioError as exc:
        return "error", str(exc), None
    except Exception as exc:  # any parser crash on a bad file is that file's problem, not the run's
        return "error", f"{Path(path).name}: {type(exc).__name__}: {exc}", None


def codec_class(domain: Domain | type[Domain], codec_name: str) -> type[Codec]:
    """The domain's codec class called ``codec_name``; PluginError listing the domain's codecs if none."""
    from .errors import PluginError

    if codec_name not in domain.codecs:
        raise PluginError(f"domain {domain.name!r} has no codec {codec_name!r}; "
                          f"available: {', '.join(sorted(domain.codecs))}")
    return domain.codecs[codec_name]


def make_codec(domain: Domain, codec_name: str, config_values: dict | None = None) -> Codec:
    from . import config as config_mod

    cls = codec_class(domain, codec_name)
    return cls(config_mod.build(cls.Config, config_values or {}, "codec"))


def _pool(workers: int) -> futures.Executor:
    """Worker processes started fresh ("spawn"): forking a process whose PyTorch/OpenMP threads have run can
    deadlock the child. Spawned workers inherit ``sys.path``, so plugins found by the parent are found too."""
    return futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def encode_files(files: list[Path], domain_name: str, codec: Codec, workers: int = 0,
                 progress: bool = True, use_cache: bool = True,
                 fractions: tuple[float, float] = (0.1, 0.1)) -> dict[Path, torch.Tensor | dict]:
    """Encode every readable file (from cache when possible); warn about and skip the others.

    A many-sample file (``Domain.is_collection``) encodes to ``{split: [tensors]}``, its unassigned samples
    split with ``fractions`` = (valid, test); see ``pieces_for_split``.
    """
    from tqdm.auto import tqdm

    key = _codec_key(domain_name, codec, fractions)
    results = EncodedFiles()  # conditions: a dict with an ``attributes`` table beside it
    todo = []
    cache = _Cache.open(key, codec, registry.load_domain(domain_name)()) if use_cache else None
    for f in files:
        try:
            file_hash = _content_hash(f)
        except OSError as exc:
            log.warning("skipped %s: %s", f, exc.strerror)
            continue
        if cache is not None:
            value = cache.load(f, file_hash)
            if value is not None:
                results[f], results.attributes[f] = value  # conditions: (tensors, attributes)
                continue
        todo.append((f, file_hash))
    if not todo:
        return results.ordered(files)
    args = (domain_name, codec.name, vars(codec.config), codec.state_dict(), tuple(fractions))
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(todo), desc="encoding", unit="file", disable=not progress, leave=False)
    hashes = dict(todo)

    def collect(f, outcome):
        _collect(f, outcome, results)
        if cache is not None and f in results:  # the cache is written here, by this process, and checked
            cache.store(f, hashes[f], results[f], results.attributes.get(f))
        bar.update()

    # Workers are given no cache path: entries are written by this process (``_Cache.store``), so a cache that
    # cannot be written is one warning, never a reason to skip a file that was read and encoded.
    if workers == 1 or len(todo) < 4:
        for f, _ in todo:
            collect(f, _read_and_encode(*args, str(f), None))
    else:
        with _pool(min(workers, len(todo))) as pool:
            jobs = {pool.submit(_read_and_encode, *args, str(f), None): f for f, _ in todo}
            for job in futures.as_completed(jobs):
                collect(jobs[job], job.result())
    bar.close()
    return results.ordered(files)


class EncodedFiles(dict):
    """``{path: tensor or {split: [tensors]}}`` (``encode_files``), with ``attributes``: ``{path: attribute dict
    or {split: [attribute dicts]}}``, what ``Domain.attributes`` said of each piece (``seqstudio.conditions``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attributes: dict = {}

    def ordered(self, files) -> "EncodedFiles":
        out = EncodedFiles({f: self[f] for f in files if f in self})
        out.attributes = {f: self.attributes.get(f) for f in out}
        return out


def _collect(path: Path, outcome, results) -> None:
    status, value, attrs = outcome
    if status == "ok":
        results[path] = value
        results.attributes[path] = attrs  # conditions
    else:
        log.warning("skipped %s: %s", path, value)


class _Cache:
    """The encoding cache of one codec key: ``cache_dir()/KEY/CONTENT_HASH.pt``, each entry
    ``{"checksum", "value"}`` where ``value`` is the encoded tensor (or ``{split: [tensors]}`` for a many-sample
    file) and ``checksum`` a SHA-256 of the file's content hash, the key and the tensors' bytes.

    An entry is used only when it loads as plain tensors (``weights_only``), its checksum matches (an entry of
    another file or codec, or a changed one, does not) and its tensors are float32 ``[T, storage_width]`` and
    finite; otherwise the file is encoded again, with one warning. A cache folder that cannot be used (not a
    folder, not writable, a full disk) is one warning and the run goes on without a cache: the cache only saves
    time, it must never make readable data look unreadable.
    """

    def __init__(self, folder: Path, key: str, codec: Codec, domain: Domain):
        self.folder, self.key, self.codec, self.domain = folder, key, codec, domain
        self.writable = True

    @classmethod
    def open(cls, key: str, codec: Codec, domain: Domain) -> "_Cache | None":
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
        return cls(folder, key, codec, domain)

    def path(self, file_hash: str) -> Path:
        return self.folder / f"{file_hash}.pt"

    def checksum(self, file_hash: str, value, attributes=None) -> str:
        h = hashlib.sha256(f"{CACHE_VERSION}:{self.key}:{file_hash}".encode())
        h.update(json.dumps(attributes, sort_keys=True, default=str).encode())  # conditions
        tensors = [value] if isinstance(value, torch.Tensor) else [
            t for split in sorted(set(value) & set(SPLITS)) for t in value[split]]
        if isinstance(value, dict):  # a many-sample file also records how many of each split are its own
            h.update(json.dumps(value.get("own", {}), sort_keys=True).encode())
        for t in tensors:
            h.update(f"{t.dtype}:{tuple(t.shape)};".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def problem(self, path: Path, file_hash: str, entry) -> str | None:
        """Why ``entry`` cannot be used for ``path`` (None when it can)."""
        if not isinstance(entry, dict) or set(entry) != {"checksum", "value", "attributes"}:
            return "not a seqstudio cache entry"
        value = entry["value"]
        width = self.codec.spec.storage_width
        if self.domain.is_collection(path):
            own = value.get("own", {}) if isinstance(value, dict) else None
            if not (isinstance(value, dict) and set(value) <= {*SPLITS, "own"}
                    and all(isinstance(value[s], list) for s in set(value) & set(SPLITS))
                    and isinstance(own, dict) and all(isinstance(n, int) for n in own.values())):
                return "not the pieces of a many-sample file"
            tensors = [t for s in set(value) & set(SPLITS) for t in value[s]]
        else:
            tensors = [value]
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                return f"holds a {type(t).__name__}, not a tensor"
            if t.dtype != torch.float32 or t.dim() != 2 or t.shape[1] != width:
                return f"holds a {t.dtype} tensor of shape {tuple(t.shape)}, expected float32 [T, {width}]"
            if not bool(torch.isfinite(t).all()):
                return "holds NaN or infinite values"
        if entry["checksum"] != self.checksum(file_hash, value, entry["attributes"]):
            return "its checksum does not match (it belongs to another file or was changed)"
        return None

    def load(self, path: Path, file_hash: str):
        """The cached encoding of ``path``, or None (absent, or unusable: warned, then encoded again)."""
        cache_path = self.path(file_hash)
        if not cache_path.exists():
            return None
        try:
            entry = torch.load(cache_path, weights_only=True)
            why = self.problem(path, file_hash, entry)
        except Exception as exc:
            why = f"unreadable ({type(exc).__name__})"
        if why is None:
            return entry["value"], entry["attributes"]
        log.warning("%s: its cached encoding %s is unusable (%s); encoding the file again", path, cache_path, why)
        return None

    def store(self, path: Path, file_hash: str, value, attributes=None) -> None:
        """Write an entry; the first failure is one warning and ends caching for this run."""
        from .errors import DiskFullError

        if not self.writable:
            return
        entry = {"checksum": self.checksum(file_hash, value, attributes), "value": value, "attributes": attributes}
        try:
            atomic_write(self.path(file_hash), lambda tmp: torch.save(entry, tmp))
        except DiskFullError:
            log.warning("encoding cache: no space left on %s; the remaining files are not cached", self.folder)
            self.writable = False
        except OSError as exc:
            log.warning("encoding cache %s cannot be written (%s); the remaining files are not cached",
                        self.folder, exc.strerror or exc)
            self.writable = False


def pieces_for_split(encoded: dict[Path, torch.Tensor | dict], files: dict[str, list[Path]],
                     split: str) -> list[torch.Tensor]:
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
            if isinstance(value, torch.Tensor):
                pieces.append(value)
            elif isinstance(value, dict):
                pieces.extend(_folder_share(value, split))
        return pieces
    pieces = [encoded[f] for f in files[split] if f in encoded and isinstance(encoded[f], torch.Tensor)]
    for value in encoded.values():
        if isinstance(value, dict):
            pieces.extend(value.get(split, []))
    if split == "train" and not pieces:
        for donor in ("valid", "test"):
            good = [f for f in files[donor] if isinstance(encoded.get(f), torch.Tensor)]
            if good:
                files[donor].remove(good[0])
                files["train"].append(good[0])
                log.warning("none of the training files could be read; training on %s (from the %s split) "
                            "instead%s", good[0], donor, "" if files[donor] else f", leaving {donor} empty")
                return [encoded[good[0]]]
    return pieces


def _folder_share(value: dict, split: str) -> list[torch.Tensor]:
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
@dataclass
class WindowSet:
    """All training windows of one split, padded into one tensor so a batch is a single index-select."""

    x: torch.Tensor  # [N, T_max, storage_width]
    lengths: torch.Tensor  # [N]
    pieces: int  # number of source files
    conditions: torch.Tensor | None = None  # [N, A] attribute indices per window (seqstudio.conditions)
    texts: torch.Tensor | None = None  # [N, U] symbol ids per window, 0 = padding (seqstudio.text_condition)

    def __len__(self) -> int:
        return self.x.shape[0]

    @classmethod
    def from_pieces(cls, encoded: list[torch.Tensor], codec: Codec, whole: bool = False,
                    conditions: torch.Tensor | None = None) -> "WindowSet":
        """``conditions``: ``[pieces, A]`` attribute indices, given to every window of each piece."""
        cut = [[x] if whole else codec.windows(x) for x in encoded]
        windows = [w for ws in cut for w in ws]
        width = codec.spec.storage_width
        per_window = None
        if conditions is not None:  # conditions: each window carries its piece's indices
            counts = torch.tensor([len(ws) for ws in cut], dtype=torch.long)
            per_window = conditions.repeat_interleave(counts, dim=0) if len(cut) else conditions
        if not windows:
            return cls(torch.zeros(0, 1, width), torch.zeros(0, dtype=torch.long), len(encoded), per_window)
        lengths = torch.tensor([w.shape[0] for w in windows])
        x = torch.zeros(len(windows), int(lengths.max()), width)
        for i, w in enumerate(windows):
            x[i, : w.shape[0]] = w
        return cls(x, lengths, len(encoded), per_window)


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
    """Padded batch on ``device``; ``codec`` + ``generator`` given = training augmentation applied."""
    lengths = windows.lengths[index]
    t = int(lengths.max())
    x = windows.x[index, :t]
    if codec is not None and generator is not None:
        x, lengths = _augment(x, lengths, codec, generator)
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    batch = {"x": x.to(device, non_blocking=True), "mask": mask.to(device, non_blocking=True),
             "lengths": lengths.to(device, non_blocking=True)}
    if windows.conditions is not None:  # conditions: [B, A] attribute indices
        batch["condition"] = windows.conditions[index].to(device, non_blocking=True)
    if windows.texts is not None:  # text: [B, U] symbol ids of whole lines and their mask
        text = windows.texts[index]
        text = text[:, : max(1, int((text > 0).sum(1).max()))]
        batch["text"] = text.to(device, non_blocking=True)
        batch["text_mask"] = (text > 0).to(device, non_blocking=True)
    return batch


def _augment(x, lengths, codec, generator):
    """Augment each window; a codec may shorten one (e.g. by dropping points), never lengthen it."""
    out = torch.zeros_like(x)
    new_lengths = lengths.clone()
    for i, n in enumerate(lengths.tolist()):
        y = codec.augment(x[i, :n], generator)
        if y.shape[0] > n:
            raise DataError(f"codec {codec.name}: augment lengthened a window ({n} -> {y.shape[0]} steps)")
        out[i, : y.shape[0]] = y
        new_lengths[i] = y.shape[0]
    return out, new_lengths
