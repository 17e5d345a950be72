"""The VRNN's smoothing posterior (``backend.posterior=smoothing``, SRNN-style): q(z_t | x_{t:T}, h_{t-1}) reads
the future and never the padding, its KL and IWAE bound are finite with IWAE >= ELBO, and a run trains,
evaluates and generates through the CLI. And SRNN's Resq (``backend.posterior_residual=true``, either posterior):
the fused loop with the prior's mean inside it against the plain autograd loop, the posterior mean on the prior
mean when the residual is zero, training, IWAE and a checkpoint round trip."""

from __future__ import annotations

import json
import math

import pytest
import torch

from seqstudio.backends.base import SamplingOptions
from seqstudio import api
from seqstudio.backends.vrnn import VRNN, VRNNConfig
from seqstudio.conditions import Attribute, ConditionSpec
from seqstudio.errors import ConfigError
from seqstudio.spec import Binary, FeatureSpec
from seqstudio.text_condition import TextSpec

from conftest import invoke, read_metrics
from vrnn_reference import OUTPUTS, double_model, random_inputs, reference_loop

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


# -- Resq: the posterior mean as a residual on the prior mean ---------------------------------------------------------
def _double(posterior: str, phi_layers: int, residual: bool = True) -> VRNN:
    return double_model(phi_layers, posterior=posterior, posterior_residual=residual)


@pytest.mark.parametrize("posterior", ["filtering", "smoothing"])
@pytest.mark.parametrize("phi_layers", [1, 2])
@pytest.mark.parametrize("T", [1, 6])
def test_resq_fused_loop_matches_the_plain_autograd_loop(posterior, phi_layers, T):
    model = _double(posterior, phi_layers)
    B = 3
    g, x, eps, h0, c0 = random_inputs(T, B)
    lengths = torch.full((B,), T)
    fused = model.filter(x, eps, state=(h0, c0), lengths=lengths)
    ref = reference_loop(model, x, eps, (h0, c0), lengths)
    for key in OUTPUTS:
        torch.testing.assert_close(fused[key], ref[key], atol=1e-12, rtol=0, msg=key)
    weights = {k: torch.randn(ref[k].shape, generator=g, dtype=torch.double) for k in OUTPUTS}
    loss = lambda out: sum((out[k] * weights[k]).sum() for k in OUTPUTS) + out["state"][0].square().sum()  # noqa
    inputs = [*model.parameters(), h0, c0]
    got = torch.autograd.grad(loss(fused), inputs, allow_unused=True)
    want = torch.autograd.grad(loss(ref), inputs, allow_unused=True)
    names = [n for n, _ in model.named_parameters()] + ["h0", "c0"]
    for name, a, b in zip(names, got, want):
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8, msg=name)
    prior_grad = dict(zip(names, got))["prior_net.0.0.weight"]
    assert prior_grad.abs().sum() > 0  # the prior's weights get gradient from the posterior's mean


TEXT = TextSpec("text", "abc ", (4, 3, 2, 1), mixtures=3, chars_per_step=0.3)


CONDITIONS = ConditionSpec((Attribute("label", ("a", "b"), (1, 1)),), dropout=0.0, size=4)


@pytest.mark.parametrize("posterior", ["filtering", "smoothing"])
@pytest.mark.parametrize("extra", [None, "text", "condition"])
@pytest.mark.parametrize("residual", [True, False])
def test_resq_with_a_zero_residual_puts_the_posterior_mean_on_the_prior_mean(posterior, extra, residual):
    """The prior inside the loop is the prior the KL reads after it (text and conditional runs: with what the
    window and the condition add to h_{t-1} before the prior)."""
    torch.manual_seed(0)
    model = VRNN(SPEC, VRNNConfig(hidden_size=16, latent_size=4, phi_size=16, posterior=posterior,
                                  posterior_residual=residual), text=TEXT if extra == "text" else None,
                 conditions=CONDITIONS if extra == "condition" else None)
    with torch.no_grad():  # delta = the posterior network's mean output = 0
        model.post_rest[-1].weight[:4].zero_()
        model.post_rest[-1].bias[:4].zero_()
    batch = _batch()
    ids = TEXT.tensor(["abc", "a b", "cc"]) if extra == "text" else None
    condition = torch.tensor([[1], [2], [0]]) if extra == "condition" else None
    with torch.no_grad():
        _, kl, (out, mu_p, _), _ = model._terms(batch["x"], batch["mask"], condition=condition, text=ids)
    assert torch.isfinite(kl).all()
    assert torch.allclose(out["mu_q"], mu_p, atol=1e-6) == residual
    if not residual:
        assert torch.equal(out["mu_q"], torch.zeros_like(out["mu_q"]))  # the plain posterior: mu_q = delta


def test_resq_needs_the_conditional_prior():
    with pytest.raises(ConfigError, match="posterior_residual"):
        VRNNConfig(posterior_residual=True, prior="independent")


def test_resq_checkpoint_round_trip_gives_the_same_posterior(tmp_path):
    config = dict(hidden_size=16, latent_size=4, phi_size=16, posterior="smoothing", posterior_residual=True)
    torch.manual_seed(0)
    model = VRNN(SPEC, VRNNConfig(**config))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    torch.manual_seed(1)
    again = VRNN(SPEC, VRNNConfig(**config))
    again.load_state_dict(torch.load(tmp_path / "m.pt"))
    batch = _batch()
    eps = torch.randn(9, 3, 4)
    with torch.no_grad():
        a = model.filter(batch["x"], eps, lengths=batch["lengths"])
        b = again.filter(batch["x"], eps, lengths=batch["lengths"])
    assert torch.equal(a["mu_q"], b["mu_q"]) and torch.equal(a["z"], b["z"])


@pytest.mark.parametrize("posterior", ["filtering", "smoothing"])
def test_resq_run_trains_without_nan_evaluates_with_iwae_and_round_trips(posterior, chorales, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", chorales, "--backend", "vrnn", "--run-dir", run, "--max-steps", "4", "--batch-size",
                    "8", "--set", "backend.hidden_size=16", "--set", "backend.phi_size=16", "--set",
                    "backend.latent_size=4", "--set", f"backend.posterior={posterior}", "--set",
                    "backend.posterior_residual=true", "--set", "train.valid_every=2", "--set", "train.samples=0",
                    "--quiet")
    assert result.exit_code == 0, result.output
    records = [r for r in read_metrics(run) if "nll" in r]
    assert records and all(math.isfinite(r["nll"]) and math.isfinite(r.get("kl", 0.0)) for r in records)
    loaded = api.load(run, which="last")
    assert loaded.backend.config.posterior_residual and loaded.backend.config.posterior == posterior
    figures = [json.loads(invoke("evaluate", run, "--checkpoint", "last", "--iw-samples", "4", "--json").output)
               for _ in range(2)]
    assert figures[0]["iwae"] == figures[1]["iwae"] and math.isfinite(figures[0]["iwae"])  # same seed, same run
    assert figures[0]["iwae"] >= figures[0]["elbo_k"]
    gen = invoke("generate", run, "-n", "1", "--length", "8", "--out", tmp_path / "gen", "--no-pictures")
    assert gen.exit_code == 0 and list((tmp_path / "gen").glob("*.mid"))
