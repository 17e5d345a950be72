"""The run directory: everything needed to generate or evaluate later, and nothing that executes code.

Layout::

    config.yaml      resolved configuration (domain, codec, backend, train, data provenance)
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

from . import config as config_mod
from . import registry
from .atomic import atomic_write
from .backends.base import Backend
from .data import make_codec
from .domain import Codec, Domain
from .errors import RunDirError
from .spec import FeatureSpec


@dataclasses.dataclass
class Run:
    """A loaded run: the objects ``generate`` and ``evaluate`` need."""

    path: Path
    config: dict[str, Any]
    domain: Domain
    codec: Codec
    backend: Backend
    checkpoint: dict[str, Any]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """A crash mid-write never leaves a truncated checkpoint."""
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def write_run_files(path: Path, cfg: dict[str, Any], codec: Codec) -> None:
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path / "config.yaml", yaml.safe_dump(cfg, sort_keys=False).encode())
    atomic_write_bytes(path / "codec.json", json.dumps(codec.state_dict()).encode())
    atomic_write_bytes(path / "spec.json", json.dumps(codec.spec.to_dict()).encode())


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with open(path / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "config.yaml").is_file() and (Path(path) / "codec.json").is_file()


def load_config(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory (expected a run directory written by `seqstudio train`)")
    if not is_run_dir(path):
        raise RunDirError(f"{path} is not a seqstudio run directory (no config.yaml/codec.json)")
    try:
        return yaml.safe_load((path / "config.yaml").read_text())
    except yaml.YAMLError as exc:
        raise RunDirError(f"{path / 'config.yaml'} is damaged: {exc}") from None


def build_parts(cfg: dict[str, Any]) -> tuple[Domain, Codec, type[Backend], Any]:
    """Domain, unfitted codec, backend class and backend config from a resolved config dict."""
    domain = registry.load_domain(cfg["domain"])()
    codec_values = dict(cfg["codec"])
    codec = make_codec(domain, codec_values.pop("name"), codec_values)
    backend_values = dict(cfg["backend"])
    backend_cls = registry.load_backend(backend_values.pop("name"))
    backend_cfg = config_mod.build(backend_cls.Config, backend_values, "backend")
    return domain, codec, backend_cls, backend_cfg


def load_run(path: Path, which: str = "best", device: str | torch.device = "cpu") -> Run:
    """Rebuild domain, codec and backend from a run directory and load a checkpoint into it."""
    path = Path(path)
    cfg = load_config(path)
    domain, codec, backend_cls, backend_cfg = build_parts(cfg)
    codec.load_state_dict(json.loads((path / "codec.json").read_text()))
    spec = FeatureSpec.from_dict(json.loads((path / "spec.json").read_text()))
    backend = backend_cls(spec, backend_cfg)
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
    return Run(path, cfg, domain, codec, backend, checkpoint)
