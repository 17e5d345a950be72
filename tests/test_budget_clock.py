"""``train.budget_clock``: a CPU-time budget means the same work however busy the machine is."""

from __future__ import annotations

import time

import pytest
import torch

from conftest import TINY, invoke
from seqstudio.config import TrainConfig
from seqstudio.distributed import DistInfo
from seqstudio.errors import ConfigError
from seqstudio.training.budget import Budget
from seqstudio.training.state import TrainState


def _elapsed_after(clock: str, work) -> float:
    budget = Budget(TrainConfig(max_minutes=1.0, budget_clock=clock), per_epoch=10, dist=DistInfo(),
                    device=torch.device("cpu"), sync_every=1)
    state = TrainState()
    work()
    budget.tick(state)
    return state.elapsed


def _busy(cpu_seconds: float) -> None:
    """Compute until this process has used ``cpu_seconds`` of CPU (however long that takes on a busy host)."""
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


def test_a_cpu_budget_does_not_count_time_spent_waiting():
    assert _elapsed_after("wall", lambda: time.sleep(0.3)) >= 0.3
    assert _elapsed_after("cpu", lambda: time.sleep(0.3)) < 0.1
    assert _elapsed_after("cpu", lambda: _busy(0.3)) >= 0.3  # computing does count


def test_an_unknown_clock_is_one_clear_error():
    with pytest.raises(ConfigError, match="budget_clock"):
        TrainConfig(budget_clock="sundial")


def test_train_stops_on_a_cpu_time_budget(chorales, tmp_path):
    result = invoke("train", chorales, "--run-dir", tmp_path / "r", "--max-minutes", 0.002,
                    "--set", "train.budget_clock=cpu", *TINY)
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["state"]
    assert state["stopped_because"] == "max_minutes", state
