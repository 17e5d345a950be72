"""Shared fixtures: real chorale files from music21's corpus, an isolated cache, and a CLI runner."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from seqstudio import registry
from seqstudio.cli import main


def tiny_backend_args(name: str) -> list[str]:
    """``--set backend.KEY=VALUE`` for every option where backend NAME's own ``tiny_config()`` differs from its
    defaults: the CLI tests train the configuration each backend declares small, never a guess from field names."""
    cls = registry.load_backend(name)
    tiny, default = cls.tiny_config(), cls.Config()
    return [arg for f in dataclasses.fields(tiny) if getattr(tiny, f.name) != getattr(default, f.name)
            for arg in ("--set", f"backend.{f.name}={getattr(tiny, f.name)}")]


# Small models so the whole suite stays fast on two CPU cores; the code paths are the full-size ones. The seq-VAE
# at its tiny_config, named (MIDI's default backend is the rnn since issue 25; most tests were written for this one).
TINY = ["--backend", "seqvae", *tiny_backend_args("seqvae"), "--set", "train.valid_every=3", "--set",
        "train.samples=2", "--batch-size", "8", "--quiet"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def chorales(tmp_path_factory) -> Path:
    """Eight Bach chorales as MIDI files, built through the real recipe."""
    dest = tmp_path_factory.mktemp("chorales") / "bach"
    result = CliRunner().invoke(main, ["data", "build", "bach-chorales", str(dest), "--limit", "8", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(list(dest.glob("*.mid"))) == 8
    return dest


@pytest.fixture
def chorale_copy(chorales, tmp_path) -> Path:
    """A private copy a test may add broken files to."""
    dest = tmp_path / "data"
    shutil.copytree(chorales, dest)
    return dest


@pytest.fixture(scope="session")
def trained_run(chorales, tmp_path_factory) -> Path:
    """One tiny seq-VAE piano-roll run shared by the generate/evaluate tests."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    result = CliRunner().invoke(main, ["train", str(chorales), "--run-dir", str(run_dir), "--max-steps", "6",
                                       "--seed", "1", "--codec", "pianoroll", *TINY])
    assert result.exit_code == 0, result.output
    return run_dir


def invoke(*args, **kwargs):
    """Run the real CLI in-process; exceptions propagate so a crash shows its traceback in the test."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
