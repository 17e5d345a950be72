"""The VRNN's fused step loop (vrnn_loop.py) against the plain autograd loop it replaces, and against finite
differences.

The reference below is the loop written the obvious way — every op taped by autograd — so any difference in a
forward value or in any parameter's gradient is a bug in the hand-written backward. gradcheck checks that
backward once more against numerical derivatives, independently of the reference.
"""

from __future__ import annotations

import pytest
import torch

from seqstudio.backends.vrnn import VRNN, VRNNConfig
from seqstudio.backends.vrnn_loop import fused_filter
from seqstudio.spec import Binary, FeatureSpec
from vrnn_reference import OUTPUTS, double_model, random_inputs, reference_loop


def scalar(out, weights):
    """A loss touching every output (including z and the final state, which training itself never uses)."""
    h, c = out["state"]
    return sum((out[k] * weights[k]).sum() for k in OUTPUTS) + (h * h).sum() + (c * weights["c"]).sum()


@pytest.mark.parametrize("phi_layers", [1, 2, 3])
@pytest.mark.parametrize("T", [1, 6, 7])  # odd and even lengths: the no-grad path alternates two state buffers
def test_fused_loop_matches_the_plain_autograd_loop(phi_layers, T):
    model = double_model(phi_layers)
    B = 3
    g, x, eps, h0, c0 = random_inputs(T, B)
    fused = model.filter(x, eps, state=(h0, c0))
    ref = reference_loop(model, x, eps, (h0, c0))
    for key in OUTPUTS:
        assert torch.allclose(fused[key], ref[key], atol=1e-12, rtol=0), key
    for a, b in zip(fused["state"], ref["state"]):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)

    weights = {k: torch.randn(ref[k].shape, generator=g, dtype=torch.double) for k in OUTPUTS}
    weights["c"] = torch.randn(B, 7, generator=g, dtype=torch.double)
    inputs = [*model.parameters(), h0, c0]
    got = torch.autograd.grad(scalar(fused, weights), inputs, allow_unused=True)
    want = torch.autograd.grad(scalar(ref, weights), inputs, allow_unused=True)
    names = [n for n, _ in model.named_parameters()] + ["h0", "c0"]
    for name, a, b in zip(names, got, want):
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.allclose(a, b, atol=1e-10, rtol=1e-8), (name, float((a - b).abs().max()))

    with torch.no_grad():  # untaped path (evaluation, IWAE, priming): no per-step buffers kept
        untaped = model.filter(x, eps, state=(h0, c0))
    for key in OUTPUTS:
        assert torch.allclose(untaped[key], fused[key], atol=1e-12, rtol=0), key
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(untaped["state"], fused["state"]))


def test_fused_loop_backward_passes_gradcheck():
    model = double_model(phi_layers=2)
    post_hidden = model._post_hidden
    phi_z = [m for m in model.phi_z if isinstance(m, torch.nn.Linear)]
    T, B, H, P = 4, 2, 7, 6
    g = torch.Generator().manual_seed(1)
    x_proj = torch.randn(T, B, P + 4 * H, generator=g, dtype=torch.double, requires_grad=True)
    eps = torch.randn(T, B, 3, generator=g, dtype=torch.double)
    h0 = torch.randn(B, H, generator=g, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(B, H, generator=g, dtype=torch.double, requires_grad=True)

    def run(x_proj, h0, c0, w_h, w_g, *flat):
        # rebuild Linear-like holders around the (gradchecked) weight tensors
        lins = [type("Lin", (), {"weight": flat[i], "bias": flat[i + 1]}) for i in range(0, len(flat), 2)]
        n = len(post_hidden)
        return fused_filter(x_proj, eps, h0, c0, w_h, w_g, lins[:n], lins[n], lins[n + 1 :])

    flat = []
    for lin in [*post_hidden, model.post_rest[2], *phi_z]:
        flat += [lin.weight, lin.bias]
    assert torch.autograd.gradcheck(run, (x_proj, h0, c0, model.from_h.weight, model.gates_z.weight, *flat),
                                    eps=1e-6, atol=1e-5)


def test_bf16_autocast_runs_the_loop_in_float32_and_trains():
    torch.manual_seed(0)
    model = VRNN(FeatureSpec([Binary(6)]), VRNNConfig(hidden_size=8, latent_size=2, phi_size=8))
    x = (torch.rand(3, 5, 6) < 0.4).float()
    batch = {"x": x, "mask": torch.ones(3, 5, dtype=torch.bool)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.filter(x)
        loss, _ = model.loss(batch)
    assert all(out[k].dtype == torch.float32 for k in OUTPUTS)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(gr.abs().sum() > 0 for gr in grads)
