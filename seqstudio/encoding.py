"""Reading and encoding one file into compact rows, in the loading process or in a worker process.

Nothing here imports torch, and neither need the domains and codecs it loads: a codec gives numpy
(``Codec.encode_array``), so a spawned encoding worker starts in a fraction of a second instead of the 1.5-10 s
that importing torch took (a cold first ``train`` of 305 files waited 9.5 s for its workers). The loader
(``seqstudio.data``) keeps everything that builds tensors; this module holds what a worker runs: the content
hash and the split rule of a many-sample file's samples, the domain and codec a worker builds once, and
``read_and_encode``, which never raises for a bad file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from typing import TYPE_CHECKING

from . import registry, safe_io
from .errors import DataError
from .shards import PackError, RowFormat

if TYPE_CHECKING:
    from .domain import Codec, Domain

log = logging.getLogger("seqstudio")
SPLITS = ("train", "valid", "test")
REAL_DTYPE = "float32"  # how Real parts are stored (float16 halves them, lossily)


HASHES: dict[tuple, str] = {}
HASHED = [0]  # files hashed anew by this process (not found in ``HASHES``)


def stat_key(path, st: os.stat_result) -> tuple:
    return (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def content_hash(path: Path) -> str:
    """SHA-256 of the file's content, remembered while the file's size, times and inode stay the same (in this
    process, and across runs for a data folder through ``_HashMemo``): a warm start then reads no file."""
    key = stat_key(path, os.stat(path))
    found = HASHES.get(key)
    if found is not None:
        return found
    with open(path, "rb") as f:
        key = stat_key(path, os.fstat(f.fileno()))
        HASHES[key] = hashlib.file_digest(f, "sha256").hexdigest()
        HASHED[0] += 1
        return HASHES[key]


def split_score(hex_digest: str) -> float:
    return int(hex_digest[:12], 16) / 16**12


def split_for(score: float, valid_fraction: float, test_fraction: float) -> str:
    return "valid" if score < valid_fraction else "test" if score < valid_fraction + test_fraction else "train"


def assign_collection(items: dict[str, list], file_hash: str, valid_fraction: float,
                      test_fraction: float) -> dict[str, list]:
    """A many-sample file's samples by split: its own splits kept, unassigned ones (key ``""``) placed by a hash
    of (file content, position) — the same file always splits the same way, whatever else is in the folder."""
    out = {s: list(items.get(s, [])) for s in SPLITS}
    for i, item in enumerate(items.get("", [])):
        score = split_score(hashlib.sha256(f"{file_hash}:{i}".encode()).hexdigest())
        out[split_for(score, valid_fraction, test_fraction)].append(item)
    return out


# -- reading and encoding one file ------------------------------------------------------------------------------
def encode_one(codec: Codec, sample) -> np.ndarray:
    """``[T, storage_width]`` float32 rows of one sample (``Codec.encode_array``)."""
    x = np.asarray(codec.encode_array(sample), dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != codec.spec.storage_width:
        raise DataError(f"codec {codec.name} produced shape {tuple(x.shape)}, expected [T, {codec.spec.storage_width}]")
    return x


def described(domain: Domain, sample, path: Path) -> dict:
    """What is stored with an encoded piece: its attributes (conditions) and its provenance (decoding)."""
    return {**domain.attributes(sample, path), **domain.provenance(sample, path)}


def encode_collection(domain: Domain, codec: Codec, path: Path, fractions: tuple[float, float]):
    """A many-sample file as ``{split: [arrays]}``; samples the codec cannot encode are skipped and counted.

    Each split's list holds the file's own samples of that split first, then those placed there by position;
    ``"own"`` counts the first (so that a file in a ``valid/`` folder can feed valid alone, see
    ``pieces_for_split``)."""
    from .errors import SeqStudioError

    items = domain.read_collection(path)
    own_counts = {s: len(items.get(s, [])) for s in SPLITS}
    assigned = assign_collection(items, content_hash(path), *fractions)
    out, own, failed = {}, {}, 0
    attrs = {}  # conditions: {split: [attribute dict per encoded sample]}
    for split, samples in assigned.items():
        out[split], own[split], attrs[split] = [], 0, []
        for i, sample in enumerate(samples):
            try:
                out[split].append(encode_one(codec, sample))
                attrs[split].append(described(domain, sample, path))  # conditions
                own[split] += i < own_counts[split]
            except SeqStudioError:
                failed += 1
    if failed:
        log.warning("%s: %d of its samples could not be encoded and were skipped", path, failed)
    if not any(out.values()):
        raise DataError(f"{path.name}: none of its samples could be encoded")
    out["own"] = own
    return out, attrs  # conditions: the attributes beside the arrays


def pack(fmt: RowFormat, codec: Codec, path: Path, value):
    """Encoded arrays -> compact rows (``shards.RowFormat``); a value the codec's FeatureSpec cannot hold is
    that file's problem (a ``DataError`` naming it), not the run's."""
    try:
        if not isinstance(value, dict):
            return fmt.pack(value)
        return {**{s: [fmt.pack(t) for t in value[s]] for s in SPLITS}, "own": value["own"]}
    except PackError as exc:
        raise DataError(f"{path.name}: codec {codec.name} produced values its FeatureSpec {codec.spec} cannot "
                        f"hold ({exc})") from None


def read_and_encode(domain_name: str, codec_name: str, codec_config: dict, codec_state: dict,
                    fractions: tuple[float, float], path: str):
    """Worker: returns ``("ok", rows or {split: [rows], "own": ...})`` with rows the compact uint8 encoding of
    a piece (``shards.RowFormat``), or ``("error", message)``; never raises for a bad file. Reading and
    encoding one file stop after ``safe_io.read_timeout()`` seconds (the worker runs this in its main thread;
    in-process callers in other threads are limited too).

    A domain may read files for encoding faster than ``read`` does (``read_for_encoding``: the MIDI domain
    parses with symusic instead of building a ``PrettyMIDI``); its codecs accept both kinds of sample."""
    from .errors import SeqStudioError

    try:
        domain, codec = worker_codec(domain_name, codec_name, codec_config, codec_state)
        safe_io.check_regular_file(path)
        with safe_io.time_limit(safe_io.read_timeout(), str(path)):
            if domain.is_collection(Path(path)):
                x, attrs = encode_collection(domain, codec, Path(path), fractions)
            else:
                sample = domain.read_for_encoding(Path(path))
                x, attrs = encode_one(codec, sample), described(domain, sample, Path(path))  # conditions
            return "ok", pack(RowFormat(codec.spec, REAL_DTYPE), codec, Path(path), x), attrs
    except SeqStudioError as exc:
        return "error", str(exc), None
    except Exception as exc:  # any parser crash on a bad file is that file's problem, not the run's
        return "error", f"{Path(path).name}: {type(exc).__name__}: {exc}", None


def read_and_encode_many(domain_name: str, codec_name: str, codec_config: dict, codec_state: dict,
                         fractions: tuple[float, float], paths: list[str]) -> list:
    """Worker: ``read_and_encode`` of each path (each file keeps its own time limit), in one task: a task per
    file cost the loader's process a pickled codec state and a future per file, CPU it took from the workers."""
    return [read_and_encode(domain_name, codec_name, codec_config, codec_state, fractions, path) for path in paths]


WORKER_CODECS: dict[str, tuple] = {}  # emptied by each encode_files; worker processes live for one call


def worker_codec(domain_name: str, codec_name: str, codec_config: dict, codec_state: dict):
    """The domain and codec a worker encodes with, built once per process and configuration (looking the
    plugin up among the installed packages' entry points costs more than encoding a small file)."""
    key = json.dumps([domain_name, codec_name, codec_config, codec_state], sort_keys=True, default=str)
    if key not in WORKER_CODECS:
        domain = registry.load_domain(domain_name)()
        codec = make_codec(domain, codec_name, codec_config)
        codec.load_state_dict(codec_state)
        WORKER_CODECS[key] = (domain, codec)
    return WORKER_CODECS[key]


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
