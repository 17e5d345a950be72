"""Training that ends abnormally: divergence, signals, kill -9, and resuming runs in every state.

Real CLI runs on real chorales: in-process through CliRunner, and as a `python -m seqstudio train` subprocess
where a signal has to reach a real process. Every comparison with an uninterrupted run is on CPU with one
thread and the same seed, so the checkpoints must be bit-identical.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY, invoke, read_metrics, tiny_backend_args
from seqstudio import registry
from test_errors import assert_clean_error

STEPS = 200  # long enough that a signal sent after the first checkpoint (step 20) lands mid-training


def _args(backend: str, *extra) -> list[str]:
    return ["--backend", backend, "--seed", "3", "--batch-size", "8", "--threads", "1", "--device", "cpu",
            "--max-steps", STEPS, "--quiet", "--set", "train.valid_every=20", "--set", "train.samples=0",
            "--set", "train.lr=0.01", *tiny_backend_args(backend), *extra]


def _load(run_dir):
    return torch.load(run_dir / "last.pt", weights_only=True)


def assert_same_checkpoint(a: dict, b: dict) -> None:
    """Model, optimizers and every TrainState field equal (``elapsed`` is wall-clock time, so it is not)."""
    state_a, state_b = dict(a["state"]), dict(b["state"])
    state_a.pop("elapsed"), state_b.pop("elapsed")
    assert state_a == state_b
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert len(a["optimizers"]) == len(b["optimizers"])
    for opt_a, opt_b in zip(a["optimizers"], b["optimizers"]):
        assert opt_a["param_groups"] == opt_b["param_groups"]
        assert opt_a["state"].keys() == opt_b["state"].keys()
        for p in opt_a["state"]:
            for key, value in opt_a["state"][p].items():
                other = opt_b["state"][p][key]
                assert torch.equal(value, other) if torch.is_tensor(value) else value == other, (p, key)


_REFERENCES: dict = {}


@pytest.fixture
def reference(chorales, tmp_path_factory):
    """The uninterrupted run's final checkpoint, per backend (trained once per session)."""

    def get(backend: str) -> dict:
        if backend not in _REFERENCES:
            run_dir = tmp_path_factory.mktemp("reference") / backend
            result = invoke("train", chorales, "--run-dir", run_dir, *_args(backend))
            assert result.exit_code == 0, result.output
            _REFERENCES[backend] = _load(run_dir)
        return _REFERENCES[backend]

    return get


def _start(chorales, run_dir, backend):
    cmd = [sys.executable, "-m", "seqstudio", "train", str(chorales), "--run-dir", str(run_dir),
           *map(str, _args(backend))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_first_checkpoint(proc, run_dir, timeout=300):
    deadline = time.monotonic() + timeout
    while not (run_dir / "last.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)


def _interrupt_then_resume(chorales, tmp_path, backend, signum):
    run_dir = tmp_path / "run"
    proc = _start(chorales, run_dir, backend)
    _wait_for_first_checkpoint(proc, run_dir)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    stopped = _load(run_dir)["state"]
    assert 20 <= stopped["step"] < STEPS, stopped  # it really stopped mid-training
    resumed = invoke("train", "--resume", "--run-dir", run_dir, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    return proc.returncode, err, stopped, _load(run_dir)


# -- signals ------------------------------------------------------------------------------------------------------
def test_sigterm_saves_last_pt_says_how_to_resume_and_resume_is_exact(chorales, tmp_path, reference):
    rc, err, stopped, final = _interrupt_then_resume(chorales, tmp_path, "seqvae", signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM, err
    lines = [line for line in err.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "SIGTERM" in lines[0] and f"seqstudio train --resume --run-dir {tmp_path / 'run'}" in lines[0]
    assert stopped["stopped_because"] == "SIGTERM"
    assert {"split": "stop", "reason": "SIGTERM", "step": stopped["step"]} in read_metrics(tmp_path / "run")
    assert_same_checkpoint(reference("seqvae"), final)


@pytest.mark.slow  # the same handler as SIGTERM's (the fast test above); one more subprocess each
@pytest.mark.parametrize("signame", ["SIGINT", "SIGHUP"])
def test_sigint_and_sighup_save_last_pt_at_the_step_reached(chorales, tmp_path, signame):
    run_dir = tmp_path / "run"
    proc = _start(chorales, run_dir, "seqvae")
    _wait_for_first_checkpoint(proc, run_dir)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + getattr(signal, signame), err
    state = _load(run_dir)["state"]
    assert state["stopped_because"] == signame and "--resume" in err


def test_ctrl_c_is_said_as_an_interruption_not_an_error(chorales, tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(chorales, run_dir, "seqvae")
    _wait_for_first_checkpoint(proc, run_dir)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "interrupted (Ctrl-C) at step" in err and "last.pt saved" in err and "--resume" in err, err
    assert "Error" not in err and "SIGINT" not in err and "Traceback" not in err, err


# -- kill -9 --------------------------------------------------------------------------------------------------------
BACKENDS = [pytest.param(name, marks=() if name == "seqvae" else pytest.mark.slow)
            for name in registry.names("backend")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_then_resume_gives_the_uninterrupted_checkpoint(chorales, tmp_path, reference, backend):
    rc, _, _, final = _interrupt_then_resume(chorales, tmp_path, backend, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert_same_checkpoint(reference(backend), final)


# -- divergence -------------------------------------------------------------------------------------------------
def test_divergence_stops_with_one_line_and_keeps_the_last_finite_checkpoint(chorales, tmp_path):
    run_dir = tmp_path / "run"
    result = invoke("train", chorales, "--run-dir", run_dir, "--backend", "vrnn", "--codec", "pianoroll", "--lr", 1000,
                    "--seed", 0,
                    "--max-steps", 40, "--batch-size", 8, "--quiet", "--set", "train.valid_every=2",
                    "--set", "train.conditions=none",  # the numerics of the unconditional model diverge by step 40
                    *tiny_backend_args("vrnn"))
    assert_clean_error(result, "diverged", "lower --lr")
    (stop,) = [r for r in read_metrics(run_dir) if r["split"] == "stop"]
    assert stop["reason"] == "diverged" and stop["step"] < 40
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(run_dir / name, weights_only=True)
        assert ckpt["state"]["step"] < stop["step"]
        assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point()), name
    assert f"last.pt keeps step {_load(run_dir)['state']['step']}" in result.output
    assert not (run_dir / "samples").exists()  # nothing generated from NaN weights


def test_data_that_is_nan_from_the_start_is_refused(chorales, tmp_path, monkeypatch):
    from seqstudio import data

    prepare = data.prepare

    def nan_scaled(*args, **kwargs):  # as if a codec had scaled the data by NaN
        prepared = prepare(*args, **kwargs)
        prepared.windows["train"].x = prepared.windows["train"].x * float("nan")
        return prepared

    monkeypatch.setattr(data, "prepare", nan_scaled)
    result = invoke("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 5, *TINY)
    assert_clean_error(result, "NaN or infinite")
    assert not (tmp_path / "run" / "last.pt").exists()


# -- resume edge cases --------------------------------------------------------------------------------------------
def _snapshot(run_dir):
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def test_resume_of_a_finished_run_says_nothing_to_do_and_changes_nothing(chorales, tmp_path):
    run_dir = tmp_path / "run"
    assert invoke("train", chorales, "--run-dir", run_dir, "--max-steps", 6, *TINY).exit_code == 0
    before = _snapshot(run_dir)
    for _ in range(2):  # each resume used to validate again: bad_validations + 1, last.pt rewritten
        result = invoke("train", "--resume", "--run-dir", run_dir, "--quiet")
        assert result.exit_code == 0, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "nothing to do" in result.output and "--max-steps" in result.output
    assert _snapshot(run_dir) == before


def test_resume_of_an_early_stopped_run_does_nothing_unless_patience_is_raised(chorales, tmp_path):
    run_dir = tmp_path / "run"
    args = ["--max-steps", 50, *TINY, "--set", "train.valid_every=1"]
    assert invoke("train", chorales, "--run-dir", run_dir, *args, "--set", "train.lr=0",
                  "--set", "train.patience=2").exit_code == 0
    before = _snapshot(run_dir)
    assert _load(run_dir)["state"]["step"] == 3
    for _ in range(2):  # used to train valid_every more steps each time
        result = invoke("train", "--resume", "--run-dir", run_dir, "--quiet")
        assert result.exit_code == 0 and "stopped early at step 3" in result.output, result.output
    assert _snapshot(run_dir) == before
    result = invoke("train", "--resume", "--run-dir", run_dir, "--set", "train.patience=4")
    assert result.exit_code == 0, result.output
    state = _load(run_dir)["state"]
    assert state["step"] == 5 and state["bad_validations"] == 4 and state["stopped_because"] == "early_stopping"


def test_a_run_killed_before_its_first_checkpoint_can_be_started_again(chorales, tmp_path):
    args = ["--max-steps", 6, "--seed", 2, *TINY]
    assert invoke("train", chorales, "--run-dir", tmp_path / "full", *args).exit_code == 0
    run_dir = tmp_path / "run"
    assert invoke("train", chorales, "--run-dir", run_dir, *args).exit_code == 0
    for name in ("last.pt", "best.pt", "metrics.jsonl"):  # what a kill before step valid_every leaves
        (run_dir / name).unlink()
    import shutil

    shutil.rmtree(run_dir / "samples")
    again = invoke("train", chorales, "--run-dir", run_dir, *args)
    assert_clean_error(again, "stopped before its first checkpoint", "--resume")
    result = invoke("train", "--resume", "--run-dir", run_dir, "--quiet")
    assert result.exit_code == 0, result.output
    assert "starts again from step 0" in result.output
    assert_same_checkpoint(_load(tmp_path / "full"), _load(run_dir))
