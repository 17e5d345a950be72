"""The VRNN backend and its RNN baseline: KL and IWAE maths, the three benchmark variants (VRNN, VRNN-I, RNN) on
real chorales, priming, old `latent: false` run directories, the jsb-bl2012 recipe. (That sampling runs the
transition training runs is tested for every autoregressive backend in test_backends.py.)

The likelihood test computes the exact log p(x) of a tiny model (one latent dimension, two steps) by numerical
integration over (z_1, z_2), so "the IWAE bound is a lower bound that tightens towards log p(x) as K grows" is
checked against the true value, not against another estimate.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from seqstudio import config as config_mod
from seqstudio.backends.base import SamplingOptions
from seqstudio.backends.rnn import RNN, RNNConfig
from seqstudio.backends.vrnn import VRNN, VRNNConfig, gaussian_kl, gaussian_log_prob
from seqstudio.cli import main
from seqstudio.domain import CodecConfig
from seqstudio.errors import ConfigError, DataError
from seqstudio.spec import Binary, Categorical, FeatureSpec

from conftest import tiny_backend_args

JSB_JSON = Path(__file__).resolve().parents[2] / "shared/datasets/jsb-chorales-quarter.json"
JSB_SHA256 = "2db9329f1881a1d3f49703ec556bf1d6f84b4f6c1d702c156536e93cf31e1c91"
REPO = Path(__file__).resolve().parents[1]
needs_jsb = pytest.mark.skipif(not JSB_JSON.is_file(), reason=f"{JSB_JSON} not present")

# The benchmark rows: (class, options beyond the shared sizes).
VARIANTS = {"vrnn": (VRNN, {}), "vrnn-i": (VRNN, {"prior": "independent"}), "rnn": (RNN, {})}
LATENT_ONLY = ("latent_size", "prior", "free_nats", "beta", "kl_warmup_steps", "iw_chunk")


def build(cls, spec, **kw):
    """``cls`` with the VRNN-only options dropped for the RNN (the two share every other option)."""
    config = cls.Config(**{k: v for k, v in kw.items() if cls is VRNN or k not in LATENT_ONLY})
    torch.manual_seed(0)
    return cls(spec, config)


def tiny(spec=FeatureSpec([Binary(4)]), cls=VRNN, **kw):
    return build(cls, spec, **{**dict(hidden_size=8, latent_size=2, phi_size=8, phi_layers=1), **kw})


def jsb_frames(split: str, n: int) -> list[list[list[int]]]:
    return json.loads(JSB_JSON.read_text())[split][:n]


def roll(piece) -> torch.Tensor:
    x = torch.zeros(len(piece), 88)
    for t, frame in enumerate(piece):
        for p in frame:
            x[t, p - 21] = 1.0
    return x


def batch_of(pieces) -> dict:
    rolls = [roll(p) for p in pieces]
    lengths = torch.tensor([r.shape[0] for r in rolls])
    x = torch.zeros(len(rolls), int(lengths.max()), 88)
    for i, r in enumerate(rolls):
        x[i, : r.shape[0]] = r
    return {"x": x, "mask": torch.arange(x.shape[1])[None] < lengths[:, None], "lengths": lengths}


# -- maths -----------------------------------------------------------------------------------------------------------
def test_kl_and_log_prob_match_torch_distributions():
    g = torch.Generator().manual_seed(1)
    shape = (5, 7, 6)
    mu_q, mu_p, z = (torch.randn(shape, generator=g) * 2 for _ in range(3))
    lv_q, lv_p = (torch.randn(shape, generator=g) * 1.5 for _ in range(2))
    q = torch.distributions.Normal(mu_q, torch.exp(0.5 * lv_q))
    p = torch.distributions.Normal(mu_p, torch.exp(0.5 * lv_p))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu_q, lv_q, mu_p, lv_p), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gaussian_log_prob(z, mu_q, lv_q), q.log_prob(z).sum(-1), rtol=1e-5, atol=1e-5)
    assert torch.all(gaussian_kl(mu_q, lv_q, mu_q, lv_q).abs() < 1e-5)


def _exact_log_likelihood(model: VRNN, x: torch.Tensor, grid: int = 801, span: float = 7.0) -> float:
    """log p(x) of a 2-step, 1-latent VRNN by the trapezoid rule over (z_1, z_2) on [-span, span]^2."""
    P = model.config.phi_size
    zs = torch.linspace(-span, span, grid, dtype=torch.float64)
    dz = zs[1] - zs[0]
    w = torch.full((grid,), float(dz), dtype=torch.float64)
    w[0] = w[-1] = dz / 2
    m = model.double()
    x = x.double()
    with torch.no_grad():
        h0 = torch.zeros(1, m.config.hidden_size, dtype=torch.float64)
        c0 = torch.zeros_like(h0)
        mu1, lv1 = m._prior(h0)
        z1 = zs[:, None]
        pz1 = m.phi_z(z1)
        h0s = h0.expand(grid, -1)
        log_px1 = m.head.log_prob(m._decode_params(pz1, h0s), x[0].expand(grid, -1))
        log_pz1 = gaussian_log_prob(z1, mu1, lv1)
        px1 = m.phi_x(x[0:1])
        gates = m.gates_x(px1) + m.from_h(h0s)[:, P:] + m.gates_z(pz1)
        h1, _ = m._cell(gates, c0.expand(grid, -1))
        mu2, lv2 = m._prior(h1)  # [grid, 1]
        pz2 = m.phi_z(zs[:, None])  # [grid, P]
        dec = m._decode_params(pz2[None].expand(grid, -1, -1), h1[:, None].expand(-1, grid, -1))
        log_px2 = m.head.log_prob(dec, x[1].expand(grid, grid, -1))  # [z1, z2]
        log_pz2 = gaussian_log_prob(zs[None, :, None], mu2[:, None], lv2[:, None])
        inner = torch.logsumexp(log_px2 + log_pz2 + w.log()[None], dim=1)
        total = torch.logsumexp(log_px1 + log_pz1 + inner + w.log(), dim=0)
    model.float()
    return float(total)


def test_iwae_is_a_lower_bound_that_tightens_towards_the_exact_likelihood():
    model = tiny(FeatureSpec([Binary(3)]), latent_size=1, hidden_size=6, phi_size=6).eval()
    with torch.no_grad():  # make the latent matter: large weights on z
        model.phi_z[0].weight.mul_(4.0)
        model.gates_z.weight.mul_(3.0)
    x = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    exact = _exact_log_likelihood(model, x[0])
    torch.manual_seed(0)
    w1 = model.log_weights(x, mask, 20000)
    elbo = float(w1.mean())
    gaps = {}
    for k in (1, 10, 100, 1000):
        bounds = [float(torch.logsumexp(w, 0) - math.log(k)) for w in w1.split(k)[: 20000 // k]]
        gaps[k] = exact - sum(bounds) / len(bounds)
    assert elbo < exact
    assert abs(gaps[1] - (exact - elbo)) < 1e-6  # K = 1 is the ELBO
    assert gaps[1] > gaps[10] > gaps[100] > gaps[1000] > -0.01, gaps  # tightens ...
    assert gaps[1000] < 0.1 * gaps[1] and gaps[1000] < 0.02, gaps  # ... towards log p(x)


def test_evaluate_batch_reports_iwae_at_least_elbo_and_refuses_unknown_options():
    model = tiny().eval()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 9, 4, generator=g) < 0.4).float()
    mask = torch.ones(4, 9, dtype=torch.bool)
    mask[1, 6:] = False
    stats = model.evaluate_batch({"x": x, "mask": mask}, iw_samples=64)
    summary = model.summarize({k: float(v) for k, v in stats.items()})
    assert summary["iwae"] >= summary["elbo_k"]
    assert abs(summary["elbo_k"] - summary["elbo"]) < 0.5
    with pytest.raises(ConfigError, match="iw_samples"):
        model.evaluate_batch({"x": x, "mask": mask}, beam=3)
    rnn = tiny(cls=RNN).eval()
    s = rnn.summarize({k: float(v) for k, v in rnn.evaluate_batch({"x": x, "mask": mask}, iw_samples=4).items()})
    assert s["iwae"] == pytest.approx(s["elbo"])  # no latent: the bound is the exact likelihood


def test_config_is_validated():
    with pytest.raises(ConfigError, match="prior"):
        VRNNConfig(prior="learned")
    with pytest.raises(ConfigError, match="dropout"):
        RNNConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="--backend rnn"):
        config_mod.build(VRNNConfig, {"latent": "false"}, "backend")
    assert config_mod.build(VRNNConfig, {"latent": True}, "backend") == VRNNConfig()  # an old run's default loads
    with pytest.raises(ConfigError, match="unknown codec option 'transpose'"):  # text, strokes: music codecs only
        config_mod.build(CodecConfig, {"transpose": 5}, "codec")
    assert config_mod.build(CodecConfig, {"transpose": 0}, "codec") == CodecConfig()


# -- old run directories ----------------------------------------------------------------------------------------------
def test_a_run_trained_with_latent_false_gets_a_one_line_error_that_says_how_to_load_it(chorales, tmp_path):
    """Run directories from before the split say ``backend: {name: vrnn, latent: false, ...}``. Loading one is a
    clear error naming ``--backend rnn``; done as the message says, the run loads as ``rnn`` (same weights)."""
    run = tmp_path / "old"
    r = CliRunner().invoke(main, ["train", str(chorales), "--backend", "rnn", *tiny_backend_args("rnn"),
                                  "--run-dir", str(run), "--max-steps", "2", "--batch-size", "8", "-q",
                                  "--set", "train.samples=0", "--set", "train.workers=1"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    new_backend = cfg["backend"]
    before_split = {k: v for k, v in VRNNConfig().__dict__.items()
                    if k not in ("posterior", "posterior_residual")}  # they came later
    old_backend = {**before_split, **new_backend, "name": "vrnn", "latent": False}
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "backend": old_backend}, sort_keys=False))
    r = CliRunner().invoke(main, ["generate", str(run), "-n", "1", "-o", str(tmp_path / "out"), "--length", "4"])
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output  # cli's clean exit, no crash
    assert len(lines) == 1 and lines[0].startswith("Error") and "--backend rnn" in lines[0], r.output
    for key in ["latent", *LATENT_ONLY]:  # what the message says to do
        assert key in lines[0]
        old_backend.pop(key)
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "backend": {**old_backend, "name": "rnn"}},
                                                    sort_keys=False))
    r = CliRunner().invoke(main, ["generate", str(run), "-n", "1", "-o", str(tmp_path / "out"), "--length", "4",
                                  "--no-pictures"])
    assert r.exit_code == 0, r.output


# -- real data ----------------------------------------------------------------------------------------------------------
@needs_jsb
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_train_on_chorales_without_nan(variant):
    cls, options = VARIANTS[variant]
    model = build(cls, FeatureSpec([Binary(88)]), hidden_size=32, latent_size=8, phi_size=32, phi_layers=2,
                  dropout=0.1, free_nats=0.05, **options)
    batch = batch_of(jsb_frames("train", 6))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(8):
        loss, stats = model.loss(batch, step=step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        assert all(torch.isfinite(v).all() for v in stats.values())
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert losses[-1] < losses[0]
    summary = model.summarize({k: float(v) for k, v in model.eval().evaluate_batch(batch, iw_samples=3).items()})
    assert all(math.isfinite(v) for v in summary.values())


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_priming_keeps_the_prime_and_continues(variant):
    spec = FeatureSpec([Binary(3), Categorical(5)])
    cls, options = VARIANTS[variant]
    model = tiny(spec, cls=cls, **options).eval()
    prime = torch.tensor([[[1, 0, 1, 4], [0, 0, 1, 2], [1, 1, 0, 0]]], dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    out = model.sample(4, SamplingOptions(length=6, temperature=0.8, prime=prime), generator=g)
    assert out.shape == (4, 9, 4)
    assert torch.equal(out[:, :3], prime.expand(4, -1, -1))
    assert torch.all((out[:, 3:, 3] >= 0) & (out[:, 3:, 3] < 5))
    plain = model.sample(2, SamplingOptions(length=5, temperature=0.0), generator=g)
    assert plain.shape == (2, 5, 4)


def test_code_is_device_agnostic():
    for path in [*(REPO / "seqstudio/backends").glob("*.py"), REPO / "seqstudio/heads.py",
                 REPO / "bench/vrnn_throughput.py"]:
        assert not re.search(r"\.cuda\(|device=['\"]cuda", path.read_text()), path


# -- the jsb-bl2012 recipe and the CLI ------------------------------------------------------------------------------------
@needs_jsb
def test_recipe_gives_back_the_json_frames_and_trains_evaluates_generates(tmp_path, monkeypatch):
    from seqstudio_midi import MidiDomain, PianoRollCodec

    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))
    assert hashlib.sha256(JSB_JSON.read_bytes()).hexdigest() == JSB_SHA256
    runner = CliRunner()
    data = tmp_path / "jsb"
    r = runner.invoke(main, ["data", "build", "jsb-bl2012", str(data), "--source", str(JSB_JSON), "--limit", "8",
                             "-q"])
    assert r.exit_code == 0, r.output
    raw = json.loads(JSB_JSON.read_text())
    codec = PianoRollCodec(PianoRollCodec.Config(steps_per_quarter=1, onsets=False, window=0, window_bars=0))
    domain = MidiDomain()
    assert len(list(data.rglob("*.mid"))) == 8  # --limit counts files in all
    for split in ("train", "valid", "test"):
        files = sorted((data / split).glob("*.mid"))
        assert len(files) >= 1
        for i, f in enumerate(files):  # test-000 has silent frames inside the piece
            assert torch.equal(codec.encode(domain.read(f)), roll(raw[split][i])), f
    run = tmp_path / "run"
    # no codec flags: the recipe's codec section, recorded in the folder's seqstudio.yaml, is where training starts
    r = runner.invoke(main, ["train", str(data), "--backend", "vrnn", "--run-dir", str(run),
                             "--max-steps", "2", "--batch-size", "4", "--set", "backend.hidden_size=16",
                             "--set", "backend.phi_size=16", "--set", "backend.latent_size=4",
                             "--set", "train.samples=0", "--set", "train.workers=1", "-q"])
    assert r.exit_code == 0, r.output
    saved = yaml.safe_load((run / "config.yaml").read_text())["codec"]
    assert {k: saved[k] for k in ("steps_per_quarter", "onsets", "window", "window_bars")} == \
        {"steps_per_quarter": 1, "onsets": False, "window": 0, "window_bars": 0}
    r = runner.invoke(main, ["evaluate", str(run), "--split", "valid", "--iw-samples", "5", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    assert result["iwae"] >= result["elbo"] - 0.05 and result["steps"] == sum(
        len(p) for p in raw["valid"][: len(list((data / "valid").glob("*.mid")))])
    prime_file = data / "test" / "test-000.mid"
    r = runner.invoke(main, ["generate", str(run), "-n", "2", "--prime", str(prime_file), "--length", "8",
                             "-o", str(tmp_path / "out"), "--no-pictures", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "starts with test-000.mid" in r.output
    prime = codec.encode(domain.read(prime_file))
    for f in sorted((tmp_path / "out").glob("*.mid")):
        out = codec.encode(domain.read(f))
        assert torch.equal(out[: prime.shape[0]], prime)  # the prime, unchanged, then the continuation
        assert out.shape[0] <= prime.shape[0] + 8


@needs_jsb
def test_recipe_refuses_a_file_with_the_wrong_checksum(tmp_path):
    from seqstudio import recipes

    bad = tmp_path / "jsb.json"
    bad.write_text(JSB_JSON.read_text().replace("60", "61", 1))
    with pytest.raises(DataError, match="sha256"):
        recipes.build("jsb-bl2012", tmp_path / "out", source=bad, progress=False)
    with pytest.raises(ConfigError, match="--source"):
        recipes.build("jsb-bl2012", tmp_path / "out2", progress=False)
