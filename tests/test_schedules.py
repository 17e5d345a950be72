"""Learning-rate schedules: the rates they give, saved in the run spec and the checkpoint, exact across --resume."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from conftest import TINY, invoke, read_metrics
from test_errors import assert_clean_error

from seqstudio.config import TrainConfig
from seqstudio.training.schedule import after_validation, lr_factor, schedule_horizon
from seqstudio.training.state import TrainState


def test_cosine_warms_up_then_decays_to_the_floor_at_the_horizon_and_stays():
    c = TrainConfig(schedule="cosine", lr_warmup_steps=2, lr_floor=0.1)
    factors = [lr_factor(c, step, horizon=10) for step in range(14)]
    assert factors[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert factors[6] == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the decay (steps 2..10)
    assert factors[10:] == pytest.approx([0.1] * 4)
    assert all(a >= b for a, b in zip(factors[1:], factors[2:]))
    assert lr_factor(TrainConfig(), 5, horizon=10) == 1.0  # constant


def test_the_horizon_is_schedule_steps_or_the_step_budget_and_a_time_budget_alone_is_refused():
    assert schedule_horizon(TrainConfig(schedule="cosine", schedule_steps=30, max_steps=100), 100) == 30
    assert schedule_horizon(TrainConfig(schedule="cosine", max_steps=100), 100) == 100
    with pytest.raises(Exception, match="train.schedule_steps"):
        TrainConfig(schedule="cosine", max_minutes=5)
    assert schedule_horizon(TrainConfig(schedule="cosine", max_minutes=5, schedule_steps=40), None) == 40


def test_plateau_drops_after_patience_validations_without_a_new_best_down_to_the_floor():
    c = TrainConfig(schedule="plateau", plateau_patience=2, plateau_factor=0.5, lr_floor=0.2)
    s = TrainState()
    drops = [after_validation(c, s, improved) for improved in
             (True, False, False, False, True, False, False, False, False, False, False)]
    assert drops == [False, False, True, False, False, False, True, False, True, False, False]
    assert s.lr_scale == 0.2  # 1 -> 0.5 -> 0.25 -> the floor
    assert lr_factor(c, 100, horizon=0, lr_scale=s.lr_scale) == 0.2


COMMON = [*TINY, "--seed", 3, "--set", "train.valid_every=1", "--set", "train.patience=0"]


@pytest.mark.parametrize("schedule", [
    ["--lr", 0.01, "--set", "train.schedule=cosine", "--set", "train.schedule_steps=8",
     "--set", "train.lr_warmup_steps=2"],
    ["--lr", 0.05, "--set", "train.schedule=plateau", "--set", "train.plateau_patience=1",
     "--set", "train.plateau_factor=0.5", "--set", "train.lr_floor=0.01"]], ids=["cosine", "plateau"])
def test_a_schedule_resumes_exactly(chorales, tmp_path, schedule):
    full, split = tmp_path / "full", tmp_path / "split"
    assert invoke("train", chorales, "--run-dir", full, "--max-steps", 8, *COMMON, *schedule).exit_code == 0
    assert invoke("train", chorales, "--run-dir", split, "--max-steps", 4, *COMMON, *schedule).exit_code == 0
    result = invoke("train", "--resume", "--run-dir", split, "--max-steps", 8, "--quiet")
    assert result.exit_code == 0, result.output

    def figures(run):
        records = read_metrics(run)
        return ([r["lr"] for r in records if r["split"] == "train"],
                [(r["step"], r["nll"]) for r in records if r["split"] == "valid"])

    (lr_full, valid_full), (lr_split, valid_split) = figures(full), figures(split)
    assert len(lr_full) == len(valid_full) == 8
    assert lr_split == lr_full and valid_split == valid_full  # identical validation figures and rates
    assert min(lr_full) < 0.99 * float(schedule[1])  # the schedule did lower the rate inside the run
    a = torch.load(full / "last.pt", weights_only=True)
    b = torch.load(split / "last.pt", weights_only=True)
    a["state"].pop("elapsed"), b["state"].pop("elapsed")  # wall time, the one counter that may differ
    assert a["state"] == b["state"] and "lr_scale" in a["state"]
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, atol=0, rtol=0, msg=key)
    saved = yaml.safe_load((full / "config.yaml").read_text())["train"]
    assert saved["schedule"] == schedule[3].split("=")[1]


def test_cosine_rates_in_the_log_follow_the_formula(chorales, tmp_path):
    run = tmp_path / "r"
    result = invoke("train", chorales, "--run-dir", run, "--max-steps", 6, *TINY, "--lr", 0.004,
                    "--set", "train.schedule=cosine", "--set", "train.lr_warmup_steps=2",
                    "--set", "train.lr_floor=0.25", "--set", "train.valid_every=1")
    assert result.exit_code == 0, result.output
    lrs = [r["lr"] for r in read_metrics(run) if r["split"] == "train"]
    expected = [0.004 * f for f in (0.5, 1.0, 1.0)]
    expected += [0.004 * (0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi * p / 4))) for p in (1, 2, 3)]
    assert lrs == pytest.approx(expected)


@pytest.mark.parametrize("setting, fragment", [
    ("train.schedule=linear", "train.schedule must be one of constant, cosine, plateau"),
    ("train.lr_floor=2", "train.lr_floor"), ("train.plateau_factor=1", "train.plateau_factor"),
    ("train.plateau_patience=0", "train.plateau_patience"), ("train.schedule_steps=-1", "train.schedule_steps")])
def test_bad_schedule_options_are_one_line(chorales, tmp_path, setting, fragment):
    assert_clean_error(invoke("train", chorales, "--run-dir", tmp_path / "r", "--max-steps", 1, *TINY,
                              "--set", setting), fragment)


def test_cosine_with_only_a_time_budget_is_refused_in_one_line(chorales, tmp_path):
    assert_clean_error(invoke("train", chorales, "--run-dir", tmp_path / "r", "--max-minutes", 1, *TINY,
                              "--set", "train.schedule=cosine"), "train.schedule_steps")
