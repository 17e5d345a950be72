"""Graves' attention window on its own: monotone positions, weights only on real symbols, the stopping rule."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqstudio.attention import AttentionWindow


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
