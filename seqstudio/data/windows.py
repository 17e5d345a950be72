"""Training windows: each piece cut by ``Codec.windows`` into index entries ``(source, first row, length)`` over
the cache's compact rows, gathered into padded float batches only when needed."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from ..atomic import atomic_write
from ..domain import Codec
from ..errors import SeqStudioError
from ..gc_pause import gc_paused_call
from ..shards import FloatPieces
from .pieces import Piece


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
            except (OSError, SeqStudioError):
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
