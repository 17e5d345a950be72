"""The VRNN's smoothing posterior (``backend.posterior=smoothing``, SRNN-style): q(z_t | x_{t:T}, h_{t-1}) reads
the future and never the padding, its KL and IWAE bound are finite with IWAE >= ELBO, and a run trains,
evaluates and generates through the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from seqstudio.backends.base import SamplingOptions
from seqstudio.backends.vrnn import VRNN, VRNNConfig
from seqstudio.errors import ConfigError
from seqstudio.spec import Binary, FeatureSpec

from conftest import invoke

SPEC = FeatureSpec([Binary(6)])


def _model(posterior: str) -> VRNN:
    torch.manual_seed(0)
    return VRNN(SPEC, VRNNConfig(hidden_size=16, latent_size=4, phi_size=16, posterior=posterior))


def _batch():
    torch.manual_seed(1)
    x = (torch.rand(3, 9, 6) < 0.3).float()
    lengths = torch.tensor([9, 5, 7])
    mask = torch.arange(9) < lengths.unsqueeze(1)
    return {"x": x * mask.unsqueeze(-1), "mask": mask, "lengths": lengths}


@pytest.mark.parametrize("posterior, reads_future", [("filtering", False), ("smoothing", True)])
def test_the_posterior_reads_the_future_only_when_smoothing(posterior, reads_future):
    model = _model(posterior)
    batch = _batch()
    eps = torch.randn(9, 3, 4)
    later = batch["x"].clone()
    later[0, 6:] = 1.0 - later[0, 6:]  # change only steps 6.. of the first sequence
    with torch.no_grad():
        a = model.filter(batch["x"], eps, lengths=batch["lengths"])["mu_q"]
        b = model.filter(later, eps, lengths=batch["lengths"])["mu_q"]
    assert torch.equal(a[1:], b[1:])
    assert (not torch.allclose(a[0, :6], b[0, :6])) == reads_future


def test_padding_never_reaches_the_smoothing_posterior_of_real_steps():
    model = _model("smoothing")
    batch = _batch()
    eps = torch.randn(9, 3, 4)
    noisy = batch["x"].clone()
    noisy[1, 5:] = 1.0  # padding of the second sequence (length 5)
    with torch.no_grad():
        a = model.filter(batch["x"], eps, lengths=batch["lengths"])["mu_q"]
        b = model.filter(noisy, eps, lengths=batch["lengths"])["mu_q"]
    assert torch.equal(a[1, :5], b[1, :5])
    # the same sequence alone, unpadded, gives the same posterior
    with torch.no_grad():
        alone = model.filter(batch["x"][1:2, :5], eps[:5, 1:2])["mu_q"]
    assert torch.allclose(alone[0], a[1, :5], atol=1e-6)


def test_smoothing_kl_and_iwae_are_finite_and_iwae_is_at_least_the_elbo():
    model = _model("smoothing")
    batch = _batch()
    loss, stats = model.loss(batch)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and float(stats["kl"]) > 0
    assert model.backward_rnn.weight_ih_l0.grad.abs().sum() > 0  # the backward RNN is trained
    with torch.no_grad():
        ev = model.evaluate_batch(batch, iw_samples=20)
    assert all(math.isfinite(float(v)) for v in ev.values())
    assert float(ev["iwae"]) >= float(ev["elbo_k"])
    out = model.sample(2, SamplingOptions(length=6), torch.Generator().manual_seed(0))
    assert out.shape == (2, 6, 6)


def test_posterior_option_is_validated():
    with pytest.raises(ConfigError, match="backend.posterior"):
        VRNNConfig(posterior="smooth")


def test_smoothing_run_trains_evaluates_with_iwae_and_generates(chorales, tmp_path):
    run = tmp_path / "run"
    invoke("train", chorales, "--backend", "vrnn", "--run-dir", run, "--max-steps", "4", "--batch-size", "8",
           "--set", "backend.hidden_size=16", "--set", "backend.phi_size=16", "--set", "backend.latent_size=4",
           "--set", "backend.posterior=smoothing", "--set", "train.valid_every=2", "--set", "train.samples=1",
           "--quiet")
    result = invoke("evaluate", run, "--iw-samples", "4", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert math.isfinite(summary["iwae"]) and math.isfinite(summary["kl"])
    assert summary["iwae"] >= summary["elbo_k"]
    gen = invoke("generate", run, "-n", "1", "--length", "8", "--out", tmp_path / "gen", "--no-pictures")
    assert gen.exit_code == 0 and list((tmp_path / "gen").glob("*.mid"))
