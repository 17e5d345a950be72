"""Batches grouped by length (seqstudio.training.length_groups): every window once per epoch, little padding,
the same batches for the same (seed, epoch), and a resumed whole-piece run equal to the uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY, invoke

from seqstudio.data import batch_indices
from seqstudio.training.length_groups import length_grouped_batches, padding_ratio, varies

LENGTHS = np.random.default_rng(0).integers(25, 130, size=229)  # like JSB's 229 training pieces


@pytest.mark.parametrize("batch_size", [1, 7, 16, 64, 300])
def test_every_window_is_in_exactly_one_batch_per_epoch(batch_size):
    for epoch in range(3):
        batches = length_grouped_batches(LENGTHS, batch_size, epoch, seed=4)
        assert sorted(torch.cat(batches).tolist()) == list(range(len(LENGTHS)))
        assert len(batches) == len(batch_indices(len(LENGTHS), batch_size, epoch, 4))  # the budget's epoch


def test_under_ddp_the_ranks_share_out_every_window_in_equal_numbers_of_batches():
    for world in (2, 3):
        per_rank = [length_grouped_batches(LENGTHS, 16, 1, seed=0, rank=r, world=world) for r in range(world)]
        assert len({len(b) for b in per_rank}) == 1
        assert len(per_rank[0]) == len(batch_indices(len(LENGTHS), 16, 1, 0, rank=0, world=world))
        assert set(torch.cat([torch.cat(b) for b in per_rank]).tolist()) == set(range(len(LENGTHS)))
        assert all(len(a) == len(b) for a, b in zip(per_rank[0], per_rank[1]))  # one step, equal batches


def test_grouped_batches_pad_little_and_change_with_the_epoch_not_with_a_repeat():
    grouped = length_grouped_batches(LENGTHS, 16, 0, seed=0)
    again = length_grouped_batches(LENGTHS, 16, 0, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(grouped, again))
    assert padding_ratio(LENGTHS, grouped) < 1.1 < 1.5 < padding_ratio(LENGTHS, batch_indices(229, 16, 0, 0))
    pairs = [{frozenset(b.tolist()) for b in length_grouped_batches(LENGTHS, 16, e, seed=0)} for e in range(2)]
    assert pairs[0] != pairs[1]  # windows meet other windows from epoch to epoch
    assert varies(LENGTHS) and not varies(np.full(10, 32))


WHOLE = ["--codec", "pianoroll", "--set", "codec.window=0", "--set", "codec.window_bars=0", "--set", "train.conditions=none"]


def test_whole_piece_training_says_it_groups_and_resumes_exactly(chorales, tmp_path):
    common = ["--seed", 3, *TINY, "--batch-size", 3, *WHOLE]
    said = invoke("train", chorales, "--run-dir", tmp_path / "full", "--max-steps", 7, *common)
    assert said.exit_code == 0, said.output
    assert invoke("train", chorales, "--run-dir", tmp_path / "split", "--max-steps", 4, *common).exit_code == 0
    result = invoke("train", "--resume", "--run-dir", tmp_path / "split", "--max-steps", 7, "--quiet")
    assert result.exit_code == 0, result.output
    full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert full["state"]["step"] == split["state"]["step"] == 7
    for key, value in full["model"].items():
        torch.testing.assert_close(split["model"][key], value, msg=key)


def test_the_train_log_says_what_grouping_saves_and_off_turns_it_off(chorales, tmp_path):
    args = [*[a for a in TINY if a != "--quiet"], "--max-steps", 1, "--batch-size", 3, *WHOLE]
    on = invoke("train", chorales, "--run-dir", tmp_path / "on", *args)
    assert on.exit_code == 0, on.output
    assert "batches grouped by length" in on.output and "real steps computed" in on.output
    off = invoke("train", chorales, "--run-dir", tmp_path / "off", *args, "--set", "train.length_grouping=off")
    assert off.exit_code == 0 and "grouped by length" not in off.output
    bad = invoke("train", chorales, "--run-dir", tmp_path / "bad", *args, "--set", "train.length_grouping=maybe")
    assert bad.exit_code != 0 and "length_grouping must be auto, on or off" in bad.output


def test_the_token_weights_of_an_epoch_average_one_so_every_real_step_weighs_alike():
    from seqstudio.training.length_groups import token_weight

    batches = length_grouped_batches(LENGTHS, 16, 0, seed=0)
    mean = LENGTHS.sum() / len(batches)
    weights = [token_weight(LENGTHS, b, mean) for b in batches]
    assert np.mean(weights) == pytest.approx(1.0) and max(weights) > 1.5 * min(weights)
    for b, w in zip(batches, weights):  # a batch's mean loss x its weight = its summed loss / the mean per batch
        assert w / LENGTHS[b.numpy()].sum() == pytest.approx(1 / mean)
