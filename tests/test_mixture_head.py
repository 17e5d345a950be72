"""The Gaussian-mixture output head (pen offsets): its likelihood against torch.distributions, and sampling."""

import math

import pytest
import torch
from torch import distributions as D

from seqstudio.heads import build_head
from seqstudio.spec import Categorical, FeatureSpec, Real


def _reference_log_prob(params, target, k, n):
    """Direct computation with torch.distributions from the same raw parameters."""
    logits, mu, log_sigma, rest = params.split([k, k * n, k * n, params.shape[-1] - k * (1 + 2 * n)], dim=-1)
    mu = mu.reshape(*mu.shape[:-1], k, n)
    sigma = log_sigma.reshape(*mu.shape).clamp(-7, 7).exp()
    if n == 2:
        rho = torch.tanh(rest) * 0.999
        cov = torch.stack([torch.stack([sigma[..., 0] ** 2, rho * sigma[..., 0] * sigma[..., 1]], -1),
                           torch.stack([rho * sigma[..., 0] * sigma[..., 1], sigma[..., 1] ** 2], -1)], -2)
        comp = D.MultivariateNormal(mu.double(), covariance_matrix=cov.double())
    else:
        comp = D.Independent(D.Normal(mu.double(), sigma.double()), 1)
    mix = D.MixtureSameFamily(D.Categorical(logits=logits.double()), comp)
    return mix.log_prob(target.double())


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("k", [1, 5])
def test_mixture_log_prob_matches_torch_distributions(n, k):
    torch.manual_seed(0)
    head = build_head(FeatureSpec([Real(n)]), 8, mixtures=k)
    params = torch.randn(4, 7, head.proj.out_features)
    target = torch.randn(4, 7, n) * 2
    ours = head.log_prob(params, target)
    ref = _reference_log_prob(params, target, k, n)
    assert ours.shape == (4, 7)
    assert torch.allclose(ours.double(), ref, atol=1e-4), (ours - ref).abs().max()


def test_pen_offsets_plus_pen_state_sum_both_parts():
    torch.manual_seed(1)
    spec = FeatureSpec([Real(2), Categorical(3)])
    head = build_head(spec, 8, mixtures=3)
    params = torch.randn(2, 5, head.proj.out_features)
    x = torch.cat([torch.randn(2, 5, 2), torch.randint(0, 3, (2, 5, 1)).float()], -1)
    gmm_params, pen_logits = params[..., :-3], params[..., -3:]
    expected = _reference_log_prob(gmm_params, x[..., :2], 3, 2) + torch.log_softmax(pen_logits.double(), -1).gather(
        -1, x[..., 2:].long()).squeeze(-1)
    assert torch.allclose(head.log_prob(params, x).double(), expected, atol=1e-4)
    assert head.sample(params, 1.0).shape == (2, 5, 3)
    assert head.relaxed(params, 1.0, hard=True, noise=True).shape == (2, 5, spec.feature_width)


def test_samples_follow_the_mixture_and_bias_sharpens():
    torch.manual_seed(2)
    head = build_head(FeatureSpec([Real(2)]), 4, mixtures=2)
    # Two components: weight 0.8 at (+3, 0), weight 0.2 at (-3, 0), sigma 0.5, correlation 0.
    params = torch.tensor([math.log(0.8), math.log(0.2), 3.0, 0.0, -3.0, 0.0] + [math.log(0.5)] * 4 + [0.0, 0.0])
    params = params.expand(20000, -1)
    g = torch.Generator().manual_seed(0)
    draws = head.sample(params, 1.0, g)
    assert abs((draws[:, 0] > 0).float().mean().item() - 0.8) < 0.02
    assert abs(draws[draws[:, 0] > 0, 0].std().item() - 0.5) < 0.03
    sharp = head.sample(params, 1.0, g, bias=2.0)
    assert (sharp[:, 0] > 0).float().mean() > 0.95  # logits x (1 + b): the heavy component dominates
    assert sharp[sharp[:, 0] > 0, 0].std() < 0.2  # sigma x exp(-b)
    assert torch.allclose(head.mode(params[:1]), torch.tensor([[3.0, 0.0]]))


def test_init_bias_starts_components_at_the_data_spread():
    torch.manual_seed(3)
    head = build_head(FeatureSpec([Real(2), Categorical(3)]), 4, mixtures=4)
    x = torch.cat([torch.randn(8, 50, 2) * torch.tensor([2.0, 0.5]) + 1.0, torch.zeros(8, 50, 1)], -1)
    head.init_bias_from_data(x, torch.ones(8, 50, dtype=torch.bool))
    with torch.no_grad():
        head.proj.weight.zero_()
    ll_init = head.log_prob(head(torch.zeros(1, 50, 4)), x[:1]).mean()
    head.proj.reset_parameters()
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.zero_()
    ll_zero = head.log_prob(head(torch.zeros(1, 50, 4)), x[:1]).mean()
    assert ll_init > ll_zero + 1.0
