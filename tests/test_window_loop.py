"""The text window layer's fused loop (window_loop.py) against the plain autograd loop it replaces
(``TextWindowLayer.fused = False``), and against finite differences.

The reference is the layer's own ``_cell`` loop with every op taped by autograd, so any difference in a forward
value or in the gradient of any parameter or input is a bug in the hand-written backward. gradcheck checks that
backward once more against numerical derivatives, independently of the reference.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from seqstudio.backends.window_loop import fused_window
from seqstudio.backends.window_rnn import TextWindowLayer


def layer(F=3, H=5, S=6, K=2, seed=0) -> TextWindowLayer:
    torch.manual_seed(seed)
    spec = SimpleNamespace(vocab_size=S, mixtures=K, chars_per_step=0.3)
    m = TextWindowLayer(spec, F, H).double()
    with torch.no_grad():  # move the window away from its initialisation so every term of its gradient matters
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


def inputs(m: TextWindowLayer, B=3, T=9, lengths=(4, 2, 3), seed=1):
    g = torch.Generator().manual_seed(seed)
    U = max(lengths)
    text = torch.randint(1, m.symbol_size, (B, U), generator=g)
    text = text * (torch.arange(U).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1))  # 0 = padding
    previous = torch.randn(B, T, m.from_x.in_features, generator=g, dtype=torch.float64).requires_grad_()
    h0 = 0.5 * torch.randn(B, m.hidden_size, generator=g, dtype=torch.float64)
    c0 = 0.5 * torch.randn(B, m.hidden_size, generator=g, dtype=torch.float64)
    kappa0 = torch.rand(B, m.window.mixtures, generator=g, dtype=torch.float64)
    w0 = torch.rand(B, m.symbol_size, generator=g, dtype=torch.float64)
    state = tuple(s.requires_grad_() for s in (h0, c0, kappa0, w0))
    return previous, text, state


def run_and_grads(m, fused, previous, text, state, seed=2):
    """ctx, final state and the gradients of a random weighting of all of them w.r.t. every parameter, the
    inputs and the initial state."""
    m.fused = fused
    ctx, final = m.run(previous, text, state)
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in (ctx, *final)]
    loss = sum((w * t).sum() for w, t in zip(weights, (ctx, *final)))
    wrt = [*m.parameters(), previous, *state]
    grads = torch.autograd.grad(loss, wrt)
    return [ctx.detach(), *[s.detach() for s in final]], grads


@pytest.mark.parametrize("shape", [dict(B=3, T=9, lengths=(4, 2, 3)), dict(B=1, T=1, lengths=(1,)),
                                   dict(B=2, T=30, lengths=(7, 7))])
def test_the_fused_loop_gives_the_plain_loops_values_and_gradients(shape):
    m = layer()
    previous, text, state = inputs(m, **shape)
    values, grads = run_and_grads(m, True, previous, text, state)
    ref_values, ref_grads = run_and_grads(m, False, previous, text, state)
    for got, want in zip(values, ref_values):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    names = [n for n, _ in m.named_parameters()] + ["previous", "h0", "c0", "kappa0", "w0"]
    for name, got, want in zip(names, grads, ref_grads):
        assert want.abs().max() > 0, name  # every input and parameter takes part
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=name)


def test_the_fused_loop_without_grad_gives_the_same_values_and_state():
    m = layer()
    previous, text, state = inputs(m)
    with torch.no_grad():
        m.fused = True
        ctx, final = m.run(previous, text, state)
        m.fused = False
        ref_ctx, ref_final = m.run(previous, text, state)
    torch.testing.assert_close(ctx, ref_ctx, rtol=1e-10, atol=1e-12)
    for got, want in zip(final, ref_final):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_the_hand_written_backward_matches_finite_differences():
    m = layer(F=2, H=3, S=4, K=2)
    previous, text, (h0, c0, kappa0, w0) = inputs(m, B=2, T=4, lengths=(3, 2))
    onehot, mask = m.symbols(text)
    ids = text.clamp(min=0, max=m.symbol_size - 1)
    w_p, b_p = m.window.params.weight, m.window.params.bias

    def f(gx, h0, c0, kappa0, w0, w_wh, w_p, b_p):
        out, final = fused_window(gx, ids, mask, onehot, (h0, c0, kappa0, w0), w_wh, w_p, b_p, 1.3)
        return (out, *final)

    gx = m.from_x(previous).transpose(0, 1).detach().requires_grad_()
    args = (gx, h0, c0, kappa0, w0, m.from_wh.weight, w_p, b_p)
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-6)


def test_trace_runs_the_plain_loop_and_agrees_with_the_fused_context():
    m = layer()
    previous, text, state = inputs(m)
    with torch.no_grad():
        ctx, final = m.run(previous, text, state)
        traced, traced_final, kappa, phi = m.run(previous, text, state, trace=True)
    torch.testing.assert_close(ctx, traced, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(final[2], kappa[:, -1], rtol=1e-10, atol=1e-12)
    assert phi.shape == (3, 9, text.shape[1] + 1)
