"""The VRNN step loop written the obvious way, every op taped by autograd: the reference the fused loop
(vrnn_loop.py) must reproduce exactly, for the filtering and the smoothing posterior, with or without SRNN's
Resq (``posterior_residual``: mu_q = mu_p(h_{t-1}) + delta_t). Shared by test_vrnn_loop and test_smoothing."""

from __future__ import annotations

import torch

from seqstudio.backends.vrnn import VRNN, VRNNConfig, _stats
from seqstudio.spec import Binary, FeatureSpec

OUTPUTS = ("h_prev", "pz", "z", "mu_q", "logvar_q")


def double_model(phi_layers: int, D: int = 5, **options) -> VRNN:
    """A small float64 VRNN (``options``: more VRNNConfig fields, e.g. the posterior)."""
    torch.manual_seed(phi_layers)
    model = VRNN(FeatureSpec([Binary(D)]), VRNNConfig(hidden_size=7, latent_size=3, phi_size=6,
                                                      phi_layers=phi_layers, **options)).double()
    object.__setattr__(model.spec, "to_features", lambda v: v.double())  # the spec casts to float32 otherwise
    return model


def random_inputs(T: int, B: int = 3):
    """``(generator, x, eps, h0, c0)`` for ``double_model``'s sizes, seeded by ``T``; the generator goes on to
    draw the loss weights."""
    g = torch.Generator().manual_seed(T)
    x = (torch.rand(B, T, 5, generator=g) < 0.4).double()
    eps = torch.randn(T, B, 3, generator=g, dtype=torch.double)
    h0 = torch.randn(B, 7, generator=g, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(B, 7, generator=g, dtype=torch.double, requires_grad=True)
    return g, x, eps, h0, c0


def reference_loop(m: VRNN, x, eps, state, lengths=None):
    """The step loop of ``m``'s posterior, taped op by op; returns the OUTPUTS stacked over time and ``state``."""
    H, P = m.config.hidden_size, m.config.phi_size
    px = m.phi_x(m.spec.to_features(x))
    if m.config.posterior == "smoothing":
        qx = m.post_back(m.backward_states(px.transpose(0, 1), lengths)).unbind(0)
    else:
        qx = m.post_x(px).unbind(1)
    gx = m.gates_x(px).unbind(1)
    h, cell = state
    outs = {k: [] for k in OUTPUTS}
    for t in range(x.shape[1]):
        hp_post, hp_gates = m.from_h(h).split([P, 4 * H], dim=-1)
        mu, logvar = _stats(m.post_rest(qx[t] + hp_post))
        if m.config.posterior_residual:
            mu = m._prior(h)[0] + mu
        z = mu + eps[t] * torch.exp(0.5 * logvar)
        pz = m.phi_z(z)
        for key, value in zip(OUTPUTS, (h, pz, z, mu, logvar)):
            outs[key].append(value)
        h, cell = m._cell(gx[t] + hp_gates + m.gates_z(pz), cell)
    out = {k: torch.stack(v, dim=1) for k, v in outs.items()}
    out["state"] = (h, cell)
    return out
