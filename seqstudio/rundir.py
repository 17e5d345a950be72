"""The run directory: everything needed to generate or evaluate later, and nothing that executes code.

Layout::

    config.yaml      the run's specification (``RunSpec.to_dict``: domain, codec, backend, train, data provenance)
    codec.json       the codec's learned state (vocabulary, scales...)
    spec.json        the FeatureSpec the backend was built for
    last.pt best.pt  checkpoints, written atomically, loaded with ``weights_only=True``
    metrics.jsonl    one JSON object per logged training/validation event
    samples/         a few files generated at the end of training
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from .atomic import atomic_write
from .backends.base import Backend
from .domain import Codec, Domain
from .errors import RunDirError
from .runspec import RunSpec
from .spec import FeatureSpec


@dataclasses.dataclass
class Run:
    """A loaded run: the objects ``generate`` and ``evaluate`` need, and the specification they were made from."""

    path: Path
    spec: RunSpec
    domain: Domain
    codec: Codec
    backend: Backend
    checkpoint: dict[str, Any]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_run_files(path: Path, spec: RunSpec, codec: Codec) -> None:
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path / "config.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False).encode())
    atomic_write_bytes(path / "codec.json", json.dumps(codec.state_dict()).encode())
    atomic_write_bytes(path / "spec.json", json.dumps(codec.spec.to_dict()).encode())


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with open(path / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "config.yaml").is_file() and (Path(path) / "codec.json").is_file()


def load_spec(path: Path) -> RunSpec:
    """The run's specification, from its ``config.yaml`` (any version's: missing options take defaults)."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory (expected a run directory written by `seqstudio train`)")
    if not is_run_dir(path):
        raise RunDirError(f"{path} is not a seqstudio run directory (no config.yaml/codec.json)")
    try:
        values = yaml.safe_load((path / "config.yaml").read_text())
    except yaml.YAMLError as exc:
        raise RunDirError(f"{path / 'config.yaml'} is damaged: {exc}") from None
    return RunSpec.from_dict(values, where=str(path / "config.yaml"))


def load_codec(path: Path, spec: RunSpec) -> Codec:
    """The run's codec with the state it learned when training began (``codec.json``)."""
    codec = spec.make_codec()
    codec.load_state_dict(json.loads((Path(path) / "codec.json").read_text()))
    return codec


def load_run(path: Path, which: str = "best", device: str | torch.device = "cpu") -> Run:
    """Rebuild domain, codec and backend from a run directory and load a checkpoint into it."""
    path = Path(path)
    spec = load_spec(path)
    codec = load_codec(path, spec)
    backend = spec.make_backend(FeatureSpec.from_dict(json.loads((path / "spec.json").read_text())))
    ckpt_path = path / f"{which}.pt"
    if not ckpt_path.exists():
        ckpt_path = path / "last.pt"
    if not ckpt_path.exists():
        raise RunDirError(f"{path} has no checkpoint yet (best.pt/last.pt); has training started?")
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        backend.load_state_dict(checkpoint["model"])
    except Exception as exc:
        raise RunDirError(f"cannot load {ckpt_path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    backend.to(device).eval()
    return Run(path, spec, spec.make_domain(), codec, backend, checkpoint)
