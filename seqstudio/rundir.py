"""The run directory: everything needed to generate or evaluate later, and nothing that executes code.

Layout::

    config.yaml      the run's specification (``RunSpec.to_dict``: domain, codec, backend, train, data provenance)
    codec.json       what the run learned from its data (``data.Fitted``: the codec's state, conditions, text
                     alphabet and decoding defaults)
    spec.json        the FeatureSpec the backend was built for
    last.pt best.pt  checkpoints, written atomically, loaded with ``weights_only=True``
    metrics.jsonl    one JSON object per logged training/validation event
    samples/         a few files generated at the end of training
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml

from . import runcheck
from .atomic import atomic_write, disk_full_error, is_disk_full
from .backends.base import Backend
from .data.fitted import Fitted
from .domain import Codec, Domain
from .errors import ConfigError, PluginError, RunDirError, SeqStudioError, UnsafePathError
from .runspec import RunSpec
from .spec import Categorical, FeatureSpec, check_informative


@dataclasses.dataclass
class Run:
    """A loaded run: the objects ``generate`` and ``evaluate`` need, and the specification they were made from."""

    path: Path
    spec: RunSpec
    domain: Domain
    codec: Codec
    backend: Backend
    checkpoint: dict[str, Any]
    fitted: Fitted  # what training learned from the data (codec.json): its conditions and text alphabet
    which: str = "best"  # the checkpoint asked for (``best`` falls back to ``last`` before the first validation)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_run_files(path: Path, spec: RunSpec, codec: Codec, fitted: Fitted) -> None:
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path / "config.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False).encode())
    atomic_write_bytes(path / "codec.json", json.dumps(fitted.to_state()).encode())
    atomic_write_bytes(path / "spec.json", json.dumps(codec.spec.to_dict()).encode())


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append one record to ``metrics.jsonl``, never through a symbolic link (``O_NOFOLLOW``: a link planted
    there would make seqstudio append to a file outside the run), and a full disk said as such."""
    target = Path(path) / "metrics.jsonl"
    line = (json.dumps(record) + "\n").encode()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"{target} is a symbolic link; seqstudio never appends through a link "
                                  f"(remove it and run the command again)") from None
        if is_disk_full(exc, target.parent):
            raise disk_full_error(target.parent, target.name) from None
        raise
    try:
        os.write(fd, line)
    except OSError as exc:
        if is_disk_full(exc, target.parent):
            raise disk_full_error(target.parent, target.name) from None
        raise
    finally:
        os.close(fd)


def trim_metrics(path: Path, step: int) -> int:
    """Drop the ``metrics.jsonl`` records of steps after ``step`` (and a torn last line), atomically; returns how
    many were dropped. A resumed run continues from its checkpoint's step, so records a killed process wrote
    after that checkpoint would otherwise appear twice in the curves."""
    target = Path(path) / "metrics.jsonl"
    if not target.is_file() or target.is_symlink():
        return 0
    kept, dropped = [], 0
    for line in target.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
            keep = isinstance(record, dict) and int(record.get("step", 0)) <= step
        except (ValueError, TypeError):
            keep = False
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write_bytes(target, "".join(f"{line}\n" for line in kept).encode())
    return dropped


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "config.yaml").exists() and (Path(path) / "codec.json").exists()


def load_spec(path: Path) -> RunSpec:
    """The run's specification, from its ``config.yaml`` (any version's: missing options take defaults)."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory (expected a run directory written by `seqstudio train`)")
    if not is_run_dir(path):
        raise RunDirError(f"{path} is not a seqstudio run directory (no config.yaml/codec.json)")
    where = path / "config.yaml"
    values = runcheck.read_yaml_mapping(where)
    try:
        return RunSpec.from_dict(values, where=str(where))
    except (ConfigError, PluginError) as exc:
        raise RunDirError(f"{where}: {exc}") from None


def load_fitted(path: Path, spec: RunSpec) -> tuple[Codec, Fitted]:
    """The run's codec with what it learned when training began (``codec.json``, a ``data.Fitted``), checked: a
    state the codec cannot take is one line naming the file, not an error from deep inside the codec later."""
    where = Path(path) / "codec.json"
    state = runcheck.read_json(where, dict)
    codec = spec.make_codec()
    try:
        fitted = Fitted.from_state(state)
        fitted.apply(codec)
        is_fitted = codec.is_fitted
    except SeqStudioError as exc:
        raise RunDirError(f"{where}: {exc}") from None
    except Exception as exc:  # a plugin codec given a state of the wrong shape fails in its own way
        raise RunDirError(f"{where} is not a state of codec {codec.name!r} ({runcheck.first_line(exc)})") from None
    if not is_fitted:
        raise RunDirError(f"{where} holds no learned state for codec {codec.name!r}, which needs one "
                          f"(it is fitted on the training data); the run directory is damaged")
    return codec, fitted


def load_codec(path: Path, spec: RunSpec) -> Codec:
    """The run's codec, as ``load_fitted`` restores it."""
    return load_fitted(path, spec)[0]


def load_feature_spec(path: Path, codec: Codec) -> FeatureSpec:
    """``spec.json``, which must be what the restored codec describes (else codec.json or spec.json was
    changed), and must carry information in every part."""
    where = Path(path) / "spec.json"
    items = runcheck.read_json(where, list)
    try:
        feature_spec = FeatureSpec.from_dict(items)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(f"{where} is damaged: not a list of feature parts ({runcheck.first_line(exc)})") from None
    try:
        codec_spec = codec.spec
        check_informative(codec_spec, codec.name)
    except SeqStudioError as exc:
        raise RunDirError(f"{where.parent / 'codec.json'}: {exc}") from None
    except Exception as exc:
        raise RunDirError(f"{where.parent / 'codec.json'} is not a state of codec {codec.name!r} "
                          f"({runcheck.first_line(exc)})") from None
    if feature_spec != codec_spec:
        raise RunDirError(f"{where} says {feature_spec} but codec.json gives codec {codec.name!r} {codec_spec}: "
                          f"the run directory was changed")
    _check_decodes(codec, where.parent / "codec.json")
    return feature_spec


def _check_decodes(codec: Codec, where: Path) -> None:
    """Decode one tensor that visits every class of every categorical part (up to 2048): a learned state of the
    wrong type (a vocabulary of numbers) fails here, at load, rather than in ``generate``."""
    spec = codec.spec
    steps = max(min(p.size, 2048) if isinstance(p, Categorical) else 1 for p in spec.parts)
    columns = []
    for part, _ in spec.storage_slices():
        if isinstance(part, Categorical):
            # highest class first: class 0 often ends a sequence, and decoding would stop before the others
            columns.append((part.size - 1 - torch.arange(steps) % part.size).float().unsqueeze(1))
        else:
            columns.append(torch.zeros(steps, part.storage_width))
    try:
        codec.decode(torch.cat(columns, dim=1))
    except Exception as exc:
        raise RunDirError(f"{where} is not a usable state of codec {codec.name!r}: decoding fails "
                          f"({runcheck.first_line(exc)})") from None


def _checkpoint_path(path: Path, which: str) -> Path:
    ckpt_path = path / f"{which}.pt"
    if not os.path.lexists(ckpt_path):
        ckpt_path = path / "last.pt"
    if not os.path.lexists(ckpt_path):
        raise RunDirError(f"{path} has no checkpoint yet (best.pt/last.pt); has training started?")
    return ckpt_path


def _build_backend(spec: RunSpec, feature_spec: FeatureSpec, weights: dict, ckpt_path: Path,
                   condition_spec=None, text_spec=None) -> Backend:
    """The backend, first built without memory (``meta`` device) and compared with the checkpoint's shapes, so
    options changed in config.yaml (a layer of a billion units) are refused before anything is allocated."""
    try:
        with torch.device("meta"):
            model = spec.make_backend(feature_spec, condition_spec, text_spec)
            shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    except SeqStudioError as exc:
        raise RunDirError(f"{ckpt_path.parent / 'config.yaml'}: {exc}") from None
    except Exception:
        shapes = None  # a backend that cannot be built on "meta": compared by load_state_dict below
    if shapes is not None:
        saved = {k: tuple(v.shape) for k, v in weights.items()}
        if shapes != saved:
            diff = sorted(set(shapes) ^ set(saved)) or [k for k in shapes if shapes[k] != saved[k]]
            raise RunDirError(f"{ckpt_path} does not match the backend that {ckpt_path.parent / 'config.yaml'} "
                              f"describes (first difference: {diff[0]!r}); the run directory was changed")
    backend = spec.make_backend(feature_spec, condition_spec, text_spec)
    try:
        backend.load_state_dict(weights)
    except Exception as exc:
        raise RunDirError(f"cannot load {ckpt_path}: {runcheck.first_line(exc)}") from None
    return backend


def load_run(path: Path, which: str = "best", device: str | torch.device = "cpu") -> Run:
    """Rebuild domain, codec and backend from a run directory and load a checkpoint into it; every file is
    checked first (``seqstudio.runcheck``), so a damaged or changed run is one ``RunDirError`` naming the file."""
    path = Path(path)
    spec = load_spec(path)
    codec, fitted = load_fitted(path, spec)
    feature_spec = load_feature_spec(path, codec)
    ckpt_path = _checkpoint_path(path, which)
    checkpoint = runcheck.load_checkpoint(ckpt_path)
    backend = _build_backend(spec, feature_spec, checkpoint["model"], ckpt_path, fitted.conditions, fitted.text)
    backend.to(device).eval()
    return Run(path, spec, spec.make_domain(), codec, backend, checkpoint, fitted, which)


def check_resumable(path: Path) -> None:
    """Before ``train --resume`` changes anything: no planted links among what it writes, and a ``last.pt``
    that loads as weights with optimizer state (the trainer then checks that it fits the model). A run that
    stopped before its first checkpoint has no ``last.pt``: it is started again from step 0 (``api.train``)."""
    path = Path(path)
    runcheck.check_no_links(path)
    last = path / "last.pt"
    if os.path.lexists(last):
        runcheck.check_state(last, runcheck.load_checkpoint(last))
