"""Graves' attention window on its own: monotone positions, weights only on real symbols, the stopping rule, and
where a sampled line ends (``LineEnd``: the window past the end, then the pen lift)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqstudio.attention import AttentionWindow
from seqstudio.backends.window_rnn import LineEnd


def _symbols(lengths, vocab=5, width=None):
    width = width or max(lengths)
    ids = torch.randint(0, vocab, (len(lengths), width), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).float()
    return F.one_hot(ids, vocab).float() * mask.unsqueeze(-1), mask


def test_positions_only_move_forward_and_the_window_mixes_real_symbols_only():
    torch.manual_seed(0)
    window = AttentionWindow(hidden_size=8, symbol_size=5, mixtures=3)
    symbols, mask = _symbols([4, 7])
    kappa, w = window.initial(2)
    previous = kappa
    for _ in range(20):
        w, kappa, phi = window.step(torch.randn(2, 8), kappa, symbols, mask)
        assert (kappa > previous).all()
        previous = kappa
        assert w.shape == (2, 5) and phi.shape == (2, 8)
        assert (phi[0, 4:7] == 0).all()  # the padding after the first sequence's 4 symbols gets no weight
        torch.testing.assert_close(w, torch.einsum("bu,bus->bs", phi[:, :-1], symbols))


def test_the_stopping_rule_fires_once_the_window_is_past_the_last_symbol():
    window = AttentionWindow(hidden_size=1, symbol_size=5, mixtures=1)
    symbols, mask = _symbols([6])
    with torch.no_grad():
        window.params.weight.zero_()
        window.params.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))  # alpha 1, beta e, step exp(-1) per step
    kappa, _ = window.initial(1)
    done = []
    for _ in range(20):
        _, kappa, phi = window.step(torch.zeros(1, 1), kappa, symbols, mask)
        done.append(bool(window.finished(phi)))
    first = done.index(True)
    assert not any(done[:first]) and all(done[first:first + 3])  # once past the end, it stays past
    assert 5.5 <= float(kappa[0, 0].detach()) / 20 * (first + 1) <= 6.5  # half-way between the last symbol (5) and 6


def test_a_line_ends_at_the_first_pen_lift_once_the_window_has_passed_the_end():
    end = LineEnd(4, length=20, wait=5)
    for t in range(20):
        window = torch.tensor([t >= 2, t >= 3, False, t >= 4])
        lift = torch.tensor([t in (0, 6, 9), False, t == 1, t == 4])
        end.update(t, window, lift)
    # 0: passes at 2, pen down until its lift at 6 (the lift at 0, before the pass, does not count) -> 7 points
    # 1: passes at 3, the pen never lifts -> the cap, 5 steps after the pass -> 9 points
    # 2: lifts, but the window never passes -> the length limit
    # 3: passes and lifts at the same step -> ends there
    assert end.done_at.tolist() == [7, 9, 20, 5]


def test_without_segments_or_wait_a_line_ends_by_graves_rule_alone():
    for segment_end, wait in ((None, 5), (torch.tensor([False, False]), 0)):
        end = LineEnd(2, length=10, wait=wait)
        for t in range(10):
            end.update(t, torch.tensor([t >= 3, t >= 7]), segment_end)
        assert end.done_at.tolist() == [4, 8]
