"""Encoded pieces: handles on rows of the cache's shards, the files' table of them (``EncodedFiles``), each
split's share, and raw samples for the codecs that fit before encoding."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .. import safe_io
from ..domain import Domain
from ..encoding import SPLITS, assign_collection, content_hash
from ..shards import SPLIT_CODES
from .discovery import given_split

log = logging.getLogger("seqstudio")


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


class EncodedFiles(dict):
    """``{path: Piece or {split: [Piece], "own": ...}}`` (``encode_files``), with ``attributes``: ``{path:
    attribute dict or {split: [attribute dicts]}}``, what ``Domain.attributes`` said of each piece
    (``seqstudio.conditions``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attributes: dict = {}

    def add(self, entries: dict) -> None:
        """``{path: (value, attributes)}`` from ``ShardWriter.flush``."""
        for path, (value, attrs) in entries.items():
            self[path], self.attributes[path] = value, attrs

    def ordered(self, files) -> "EncodedFiles":
        out = EncodedFiles({f: self[f] for f in files if f in self})
        out.attributes = {f: self.attributes.get(f) for f in out}
        return out


def file_entry(source, i: int):
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


def pieces_for_split(encoded: "EncodedFiles", files: dict[str, list[Path]],
                     split: str) -> tuple[list[Piece], list[dict]]:
    """The encoded pieces of ``split`` and the attribute dict of each: its single-sample files, plus that split's
    share of every many-sample file (whichever split the file itself landed in). A piece's attributes are
    looked up by the same key as the piece (its file, and for a many-sample file its split and position), in
    ``encoded.attributes``.

    When folders gave the splits (``SplitFiles.by_folder``) a file's split is its folder's, also inside a
    many-sample file: one in ``valid/`` feeds valid with its own ``valid`` samples and those it leaves to the
    loader, and feeds no other split (its ``train`` array would otherwise leak into training).

    When none of the training files could be encoded and folders did not fix the splits, a readable valid or
    test file is moved into train (``files`` is updated) with a warning, rather than failing the run.
    """
    table = getattr(encoded, "attributes", None) or {}
    keys: list[tuple] = []  # (path,) for a single-sample file, (path, split, position) inside a many-sample one
    if getattr(files, "by_folder", False):
        for f in files[split]:
            value = encoded.get(f)
            if isinstance(value, Piece):
                keys.append((f,))
            elif isinstance(value, dict):
                keys.extend((f, s, i) for s, i in _folder_share(value, split))
        return _with_attributes(encoded, table, keys)
    keys = [(f,) for f in files[split] if f in encoded and isinstance(encoded[f], Piece)]
    for path, value in encoded.items():
        if isinstance(value, dict):
            keys.extend((path, split, i) for i in range(len(value.get(split, []))))
    if split == "train" and not keys:
        for donor in ("valid", "test"):
            good = [f for f in files[donor] if isinstance(encoded.get(f), Piece)]
            if good:
                files[donor].remove(good[0])
                files["train"].append(good[0])
                log.warning("none of the training files could be read; training on %s (from the %s split) "
                            "instead%s", good[0], donor, "" if files[donor] else f", leaving {donor} empty")
                return _with_attributes(encoded, table, [(good[0],)])
    return _with_attributes(encoded, table, keys)


def _with_attributes(encoded, table: dict, keys: list[tuple]) -> tuple[list[Piece], list[dict]]:
    """The pieces ``keys`` name and their attribute dicts (``{}`` where the domain said nothing)."""
    pieces, attrs = [], []
    for key in keys:
        attr = table.get(key[0])
        if len(key) == 1:
            pieces.append(encoded[key[0]])
            attrs.append(attr if isinstance(attr, dict) else {})
        else:
            _, s, i = key
            pieces.append(encoded[key[0]][s][i])
            of_split = attr.get(s, []) if isinstance(attr, dict) else []
            attrs.append(of_split[i] if i < len(of_split) else {})
    return pieces, attrs


def _folder_share(value: dict, split: str) -> list[tuple[str, int]]:
    """What a many-sample file in ``split``'s folder gives that split, as ``(split, position)`` in the file: its
    own samples of the split, and every sample the loader placed by position (in whichever split)."""
    own = value.get("own") or {s: len(value.get(s, [])) for s in SPLITS}  # older cache entries: own only
    share = [(split, i) for i in range(min(own.get(split, 0), len(value.get(split, []))))]
    for s in SPLITS:
        share.extend((s, i) for i in range(own.get(s, 0), len(value.get(s, []))))
    return share


def read_samples(files: list[Path], domain: Domain, split: str = "train",
                 fractions: tuple[float, float] = (0.1, 0.1)) -> list:
    """Read raw samples (for codecs that must ``fit`` on data before encoding), skipping broken files.

    For a many-sample file only its ``split`` share is returned; one inside a ``train/ valid/ test/`` folder
    (``given_split``) gives only its folder's split, as in ``pieces_for_split``."""
    from ..errors import SeqStudioError

    samples = []
    for f in files:
        try:
            with safe_io.time_limit(safe_io.read_timeout(), str(f)):
                if domain.is_collection(f):
                    folder = given_split(f)
                    items = domain.read_collection(f)
                    if folder is None:
                        samples.extend(assign_collection(items, content_hash(f), *fractions)[split])
                    elif folder == split:
                        samples.extend(list(items.get(split, [])) + list(items.get("", [])))
                else:
                    samples.append(domain.read(f))
        except SeqStudioError as exc:
            log.warning("skipped %s: %s", f, exc)
    return samples
