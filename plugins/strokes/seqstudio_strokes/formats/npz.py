"""sketch-rnn / QuickDraw ``.npz``: ``read_npz``, ``write_npz`` and the restricted unpickler behind them."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from seqstudio import safe_io
from seqstudio.atomic import atomic_write
from seqstudio.errors import DataError

from ..ink import Ink, from_stroke3, to_stroke3
from .common import MAX_POINTS, format_reader, short_reason, coordinate_problem, log

NPZ_SPLITS = ("train", "valid", "test")
MAX_NPZ_BYTES = 2 << 30  # what an .npz may expand to (QuickDraw's largest category files are ~100 MB)

_NUMPY_CORE = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core to numpy._core
_SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_CORE.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_CORE.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _NUMPY_CORE.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _NUMPY_CORE.multiarray.scalar,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: the only globals it resolves are numpy's array rebuilders.

    An object array inside an ``.npy`` is a pickle, and ``np.load(allow_pickle=True)`` would run whatever
    code a hostile file names. sketch-rnn's files *are* object arrays of arrays, so instead of refusing
    them this unpickler allows exactly the callables an array of arrays needs and rejects any other.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def _load_npy(member: io.BufferedIOBase) -> np.ndarray:
    """One ``.npy`` member: plain arrays without pickle at all, object arrays through ``_ArrayUnpickler``."""
    buf = io.BytesIO(member.read())
    version = np.lib.format.read_magic(buf)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    _shape, _fortran, dtype = header(buf)
    if not dtype.hasobject:
        buf.seek(0)
        return np.lib.format.read_array(buf, allow_pickle=False)
    # latin1: sketch-rnn's published files were pickled by Python 2 (its own loader passes encoding='latin1')
    return _ArrayUnpickler(buf, encoding="latin1").load()


def _npz_drawings(path: Path, split: str, array: Any) -> list[np.ndarray]:
    """The stroke-3 drawings of one split: an object array of ``(N, 3)`` arrays, or one ``(D, N, 3)`` array
    (what ``np.array`` makes of a list of equally long drawings)."""
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: {split!r} is a {type(array).__name__}, expected an array of drawings")
    if array.dtype != object and array.ndim == 3 and array.shape[2] == 3:
        return list(array)
    if array.dtype == object and array.ndim == 1:
        return list(array)
    raise DataError(f"{path}: {split!r} has shape {array.shape} and dtype {array.dtype}; expected an object "
                    "array of (N, 3) stroke-3 arrays (dx, dy, pen_lifted)")


def _stroke3(path: Path, split: str, index: int, drawing: Any) -> np.ndarray:
    where = f"{split}[{index}]"
    try:
        data = np.asarray(drawing, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {where} is not numeric stroke-3 data") from None
    if data.ndim != 2 or data.shape[1] != 3:
        raise DataError(f"{path}: {where} has shape {data.shape}, expected (N, 3) rows of (dx, dy, pen_lifted)")
    return data


def _drawing_problem(data: np.ndarray) -> str | None:
    """Why one stroke-3 drawing cannot be used (values, not shape), or ``None``."""
    if len(data) > MAX_POINTS:
        return f"more than {MAX_POINTS:,} points"
    if not np.isfinite(data).all():
        return "non-finite values"
    with np.errstate(over="ignore", invalid="ignore"):
        positions = np.cumsum(data[:, :2], axis=0)
    return coordinate_problem(data[:, :2]) or coordinate_problem(positions)


@format_reader
def read_npz(path: str | Path) -> dict[str, list[Ink]]:
    """Read a sketch-rnn / QuickDraw ``.npz``: splits ``train``/``valid``/``test`` of stroke-3 drawings.

    Returns the splits that hold drawings, in that order (at least one, else ``DataError``); other keys are
    ignored. Labels are the file stem, which is the QuickDraw category (``cat.npz`` -> ``"cat"``).

    Pickle policy: numeric arrays load with no pickle at all. Object arrays (how sketch-rnn stores drawings
    of different lengths) are pickles; they load through an unpickler that resolves only numpy's array
    constructors, so an npz from an untrusted source cannot run code - it fails with ``DataError`` instead.

    A drawing with no rows is skipped with one warning per file (a dataset may hold a few), and so is one whose
    values cannot be a drawing: non-finite, or out of range once stored as float32 (``1e300``, or ``3e38``
    whose running sums overflow), or with more than ``MAX_POINTS`` points. A drawing of the wrong shape means
    the file is not stroke-3 data and raises ``DataError``. Only a regular file is opened, and an archive whose
    directory declares more than ``MAX_NPZ_BYTES`` (or a zip bomb's ratio) is refused before decompressing.
    """
    path = Path(path)
    if safe_io.check_regular_file(path).st_size == 0:
        raise DataError(f"{path}: empty file")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not an .npz file (not a zip archive)") from None
    with archive:
        safe_io.check_zip_members(path, archive, MAX_NPZ_BYTES)
        members = {name[:-4] if name.endswith(".npy") else name: name for name in archive.namelist()}
        present = [split for split in NPZ_SPLITS if split in members]
        if not present:
            found = ", ".join(sorted(members)) or "none"
            raise DataError(f"{path}: no 'train', 'valid' or 'test' array (keys found: {found})")
        splits: dict[str, list[Ink]] = {}
        empty, bad, first_bad = 0, 0, ""
        for split in present:
            try:
                with archive.open(members[split]) as member:
                    array = _load_npy(member)
            except (pickle.UnpicklingError, ValueError, EOFError) as exc:
                raise DataError(f"{path}: cannot load {split!r} ({short_reason(exc)})") from None
            inks = []
            for index, drawing in enumerate(_npz_drawings(path, split, array)):
                data = _stroke3(path, split, index, drawing)
                if len(data) == 0:
                    empty += 1
                    continue
                problem = _drawing_problem(data)
                if problem:
                    bad += 1
                    first_bad = first_bad or f"{split}[{index}]: {problem}"
                    continue
                inks.append(from_stroke3(data, label=path.stem))
            if inks:
                splits[split] = inks
    if empty:
        log.warning("%s: skipped %d empty drawing(s)", path, empty)
    if bad:
        log.warning("%s: skipped %d drawing(s) whose values cannot be a drawing (first: %s)", path, bad, first_bad)
    if not splits:
        detail = f" usable (first problem: {first_bad})" if bad else ""
        raise DataError(f"{path}: the {'/'.join(present)} arrays hold no drawings{detail}")
    return splits


def write_npz(inks: list[Ink] | dict[str, list[Ink]], path: str | Path) -> None:
    """Write drawings as a sketch-rnn ``.npz``: per split an object array of float32 ``(N, 3)`` stroke-3.

    A plain list goes under ``train``; a dict keeps its split names. float32 rather than sketch-rnn's int16
    so model output and non-integer sources (SVG, InkML) are stored exactly; sketch-rnn's loaders cast to
    float anyway. The file is written atomically and reads back with ``read_npz``.
    """
    splits = {"train": inks} if isinstance(inks, list) else dict(inks)
    arrays = {}
    for split, items in splits.items():
        array = np.empty(len(items), dtype=object)  # filled one by one: np.array would stack equal lengths
        for i, ink in enumerate(items):
            array[i] = to_stroke3(ink).astype(np.float32)
        arrays[split] = array

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object, so numpy doesn't append ".npz" to the temporary name
            np.savez(f, **arrays)

    atomic_write(Path(path), write)
