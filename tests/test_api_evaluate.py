"""``api.evaluate`` decides what to measure and keeps the record, as ``seqstudio evaluate`` does: a Python caller
gets the same figures and the same ``evaluation-SPLIT.json`` (the command is a thin layer over it)."""

import json
import shutil

import pytest

from conftest import invoke
from seqstudio import api
from seqstudio.errors import ConfigError


@pytest.fixture
def run_copy(trained_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    for old in copy.glob("evaluation-*.json"):
        old.unlink()
    return copy


def test_a_python_caller_gets_the_commands_figures_and_record(run_copy):
    run = api.load(run_copy, which="last")
    result = api.evaluate(run, split="valid", seed=0, progress=False)
    assert result["split"] == "valid" and result["windows"] > 0 and "elbo" in result
    assert "sample_metrics" not in result  # a backend with a likelihood: no samples unless asked
    record = json.loads((run_copy / "evaluation-valid.json").read_text())
    assert record == {**json.loads(json.dumps(result, default=str)), "checkpoint": "last"}
    cli = invoke("evaluate", run_copy, "--split", "valid", "--json", "--checkpoint", "last")
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output.strip().splitlines()[-1]) == json.loads(json.dumps(result, default=str))


def test_samples_are_judged_when_asked_and_nothing_is_recorded_when_not_wanted(run_copy):
    run = api.load(run_copy)
    result = api.evaluate(run, split="valid", samples=4, seed=0, progress=False, record=False)
    assert result["samples"] == 4 and "mean_overlap" in result and "judge" in result and "elbo" in result
    assert not list(run_copy.glob("evaluation-*.json"))


def test_a_backend_without_a_likelihood_needs_samples(run_copy, monkeypatch):
    run = api.load(run_copy)
    monkeypatch.setattr(type(run.backend), "has_likelihood", False)
    with pytest.raises(ConfigError, match="has no likelihood"):
        api.evaluate(run, samples=0, progress=False)
