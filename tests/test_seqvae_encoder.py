"""The seq-VAE's encoder reads padded windows of different lengths without packing on CPU
(``backends/bidirectional.py``): the same posterior and gradients as ``pack_padded_sequence``."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from seqstudio import registry
from seqstudio.backends.bidirectional import reverse_within_lengths
from seqstudio.spec import Binary, Categorical, FeatureSpec


def _packed_posterior(model, x, lengths):
    features = model.spec.to_features(x)
    packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
    _, (h, _) = model.encoder(packed)
    e = model.condition_vector(None, x.shape[0])
    from seqstudio.backends.autoregressive import cat_condition

    mu, logvar = model.to_posterior(cat_condition(torch.cat([h[0], h[1]], dim=-1), e)).chunk(2, dim=-1)
    return mu, logvar.clamp(-12.0, 8.0)


def test_reverse_within_lengths_keeps_the_padding_at_the_end():
    x = torch.arange(8.0).view(2, 4, 1)
    out = reverse_within_lengths(x, torch.tensor([3, 4]))
    assert out[..., 0].tolist() == [[2.0, 1.0, 0.0, 3.0], [7.0, 6.0, 5.0, 4.0]]


def test_unpacked_encoder_equals_the_packed_one_values_and_gradients():
    torch.manual_seed(0)
    cls = registry.load_backend("seqvae")
    spec = FeatureSpec([Binary(5), Categorical(4)])
    model = cls(spec, cls.tiny_config())
    x = torch.cat([torch.randint(0, 2, (5, 11, 5)).float(), torch.randint(0, 4, (5, 11, 1)).float()], dim=-1)
    lengths = torch.tensor([11, 4, 1, 7, 10])
    mu, logvar = model.encode(x, lengths)
    mu_p, logvar_p = _packed_posterior(model, x, lengths)
    assert torch.allclose(mu, mu_p, atol=1e-6) and torch.allclose(logvar, logvar_p, atol=1e-6)
    grads = torch.autograd.grad((mu.sum() + logvar.sum()), list(model.encoder.parameters()))
    grads_p = torch.autograd.grad((mu_p.sum() + logvar_p.sum()), list(model.encoder.parameters()))
    for g, gp in zip(grads, grads_p):
        assert torch.allclose(g, gp, atol=1e-5)
    full = torch.full((5,), 11)  # no padding: the one fused bidirectional call, the same states
    assert torch.allclose(model.encode(x, full)[0], _packed_posterior(model, x, full)[0], atol=1e-6)
    # padding never leaks in: changing what lies past a window's length changes nothing
    y = x.clone()
    y[1, 4:] = 1.0 - y[1, 4:].clamp(0, 1)
    assert torch.allclose(model.encode(y, lengths)[0], mu, atol=1e-6)
