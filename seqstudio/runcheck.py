"""Checks on a run directory's files before anything trusts them: a run directory may come from elsewhere.

Every file is checked for what it must be before it is used, and a problem is one ``RunDirError`` line naming
the file and what is wrong with it (not a traceback from deep inside the codec or the backend):

* it must be a regular file (a FIFO or a device such as ``/dev/zero`` would hang the reader), not empty and not
  absurdly large;
* ``config.yaml`` is a YAML mapping (read with ``yaml.safe_load``: no tags, so no code), ``codec.json`` a JSON
  object and ``spec.json`` a JSON list of parts;
* a checkpoint loads with ``torch.load(weights_only=True)`` (never unpickling arbitrary objects, so a malicious
  pickle cannot run), holds a ``model`` mapping of tensors, and every floating-point weight is finite.

No file of a run directory is read through a symbolic link (``refuse_link``): a ``report`` would copy a linked
secret into its page. Writing into a run directory (``train --resume``) is refused when an entry seqstudio writes is a symbolic link
(``check_no_links``): appending to ``metrics.jsonl`` or writing ``samples/`` through a planted link would change
a file outside the run. The run directory itself may be a link: the user named it.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from .errors import RunDirError, UnsafePathError
from .safe_io import not_regular

# Generous bounds: seqstudio's own files are far smaller (a BPE tokenizer's codec.json is a few MB).
MAX_TEXT_BYTES = {"config.yaml": 1 << 20, "spec.json": 1 << 20, "codec.json": 256 << 20}
# What ``train --resume`` writes into a run directory (``samples`` is a folder).
WRITTEN_ENTRIES = ("config.yaml", "codec.json", "spec.json", "last.pt", "best.pt", "metrics.jsonl", "samples")


def regular_file(path: Path, what: str = "") -> os.stat_result:
    """``path``'s stat (following a link) when it is a regular file; ``UnsafePathError`` naming it otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UnsafePathError(f"{path} does not exist") from None
    except OSError as exc:
        raise UnsafePathError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{what or path} is {not_regular(st.st_mode)}; "
                              f"seqstudio reads only regular files")
    return st


def _run_file(path: Path) -> os.stat_result:
    """A run directory's file: a regular file, and not a symbolic link (a link could make ``report``,
    ``info`` or ``generate`` show or load a file outside the run, e.g. copy a secret into a report)."""
    refuse_link(path)
    try:
        return regular_file(path, str(path))
    except UnsafePathError as exc:
        raise RunDirError(str(exc)) from None


def refuse_link(path: Path) -> None:
    """``RunDirError`` when ``path``, an entry of a run directory, is a symbolic link."""
    if os.path.islink(path):
        raise RunDirError(f"{path} is a symbolic link (to {os.readlink(path)[:200]}); seqstudio reads no links "
                          f"inside a run directory (it could show or load a file outside the run): replace the "
                          f"link by the file")


def read_text(path: Path) -> str:
    """A run directory's text file, checked for type and size."""
    st = _run_file(path)
    limit = MAX_TEXT_BYTES.get(path.name, 1 << 20)
    if st.st_size == 0:
        raise RunDirError(f"{path} is empty (0 bytes): the run directory is damaged")
    if st.st_size > limit:
        raise RunDirError(f"{path} is {st.st_size} bytes, more than a seqstudio run writes ({limit}): "
                          f"not a run file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is not UTF-8 text: the run directory is damaged") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror}") from None


def read_yaml_mapping(path: Path) -> dict:
    import yaml

    from .safe_yaml import load

    try:
        values = load(read_text(path), str(path), RunDirError)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RunDirError(f"{path} is damaged: not valid YAML{where} ({problem})") from None
    if not isinstance(values, dict):
        raise RunDirError(f"{path} is not a run configuration: expected a mapping of sections, "
                          f"got {type(values).__name__}")
    return values


def read_json(path: Path, kind: type) -> Any:
    try:
        value = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is damaged: not valid JSON ({exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno})") from None
    if not isinstance(value, kind):
        expected = "a JSON object" if kind is dict else "a JSON list"
        raise RunDirError(f"{path} is damaged: expected {expected}, got {type(value).__name__}")
    return value


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (an exception may have an empty message, e.g. EOFError)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file, loaded without executing code and checked for shape and finite weights."""
    import pickle

    import torch

    st = _run_file(path)
    if st.st_size == 0:
        raise RunDirError(f"cannot load {path}: it is empty (0 bytes), the checkpoint was not written completely")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses every global that is not a tensor type: this is where a malicious pickle stops.
        raise RunDirError(f"cannot load {path}: not a seqstudio checkpoint, it holds objects other than "
                          f"weights, which are never loaded ({first_line(exc)})") from None
    except Exception as exc:
        raise RunDirError(f"cannot load {path}: not a readable checkpoint ({first_line(exc)})") from None
    model = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(model, dict) or not model:
        raise RunDirError(f"cannot load {path}: not a seqstudio checkpoint (no 'model' weights)")
    for name, value in model.items():
        if not isinstance(value, torch.Tensor):
            raise RunDirError(f"{path}: weight {name!r} is a {type(value).__name__}, not a tensor")
        if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
            raise RunDirError(f"{path}: weight {name!r} holds NaN or infinite values; the checkpoint is unusable")
    return checkpoint


def check_state(path: Path, checkpoint: dict[str, Any]) -> None:
    """What ``--resume`` reads besides the weights: optimizer states (a list) and the counters (a mapping)."""
    if not isinstance(checkpoint.get("optimizers"), list) or not isinstance(checkpoint.get("state"), dict):
        raise RunDirError(f"{path} cannot be resumed from: it holds no optimizer state or counters")
    for key, value in checkpoint["state"].items():
        if isinstance(value, float) and math.isnan(value):
            raise RunDirError(f"{path}: training counter {key!r} is NaN")


def check_no_links(run_dir: Path) -> None:
    """Refuse a run directory in which an entry seqstudio writes (or one inside ``samples/``) is a symbolic link."""
    run_dir = Path(run_dir)
    entries = [run_dir / name for name in WRITTEN_ENTRIES]
    samples = run_dir / "samples"
    if samples.is_dir() and not samples.is_symlink():
        entries += sorted(samples.iterdir())
    for entry in entries:
        if entry.is_symlink():
            raise UnsafePathError(f"{entry} is a symbolic link (to {os.readlink(entry)}); seqstudio never "
                                  f"writes through a link, which would change a file outside the run directory: "
                                  f"remove the link and run the command again")
