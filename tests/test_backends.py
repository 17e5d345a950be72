"""The backend contract, proved on every cell: every registered backend (and a test-only GRU plugin) x every codec
of every registered domain, fitted codecs included, with no skipped cell.

Each cell runs the whole path a user's data takes: the domain's own example samples -> (fit) -> encode ->
windows -> init from data -> two training steps at the backend's ``tiny_config`` -> sample with
``SamplingOptions`` (fresh and primed) -> decode -> ``Domain.write`` -> ``Domain.read``. A backend must work from
the FeatureSpec alone, whatever domain produced it.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap

import pytest
import torch

from seqstudio import heads, registry
from seqstudio.backends.autoregressive import shift_right
from seqstudio.backends.base import SamplingOptions, StepContext
from seqstudio.data import make_codec
from seqstudio.errors import PluginError
from seqstudio.spec import Binary, Categorical, FeatureSpec, Real

from gru_backend import GRULanguageModel

TEST_PLUGIN = "gru"  # registered by the `backend_class` fixture, through an entry point like any plugin


def _domain_codecs():
    for domain_name in registry.names("domain"):
        try:
            domain = registry.load_domain(domain_name)()
        except PluginError:  # a broken third-party plugin is reported by test_registry, not here
            continue
        for codec_name in sorted(domain.codecs):
            yield pytest.param(domain_name, codec_name, id=f"{domain_name}-{codec_name}")


BACKENDS = [*registry.names("backend"), TEST_PLUGIN]
CODECS = list(_domain_codecs())
_EXAMPLES: dict = {}


def examples(domain_name: str, codec_name: str):
    """The domain, its codec fitted on the domain's example samples when it learns from data, and the windows."""
    key = (domain_name, codec_name)
    if key not in _EXAMPLES:
        domain = registry.load_domain(domain_name)()
        samples = domain.example_samples()
        assert samples, f"domain {domain_name!r} gives no example samples"
        codec = make_codec(domain, codec_name)
        if codec.needs_fit:
            codec.fit(samples)
        windows = [w for s in samples for w in codec.windows(codec.encode(s))]
        assert len(windows) >= 2, f"{domain_name}/{codec_name}: the examples give {len(windows)} window(s)"
        _EXAMPLES[key] = domain, codec, windows
    return _EXAMPLES[key]


def padded_batch(windows: list[torch.Tensor]) -> dict:
    lengths = torch.tensor([w.shape[0] for w in windows])
    x = torch.zeros(len(windows), int(lengths.max()), windows[0].shape[1])
    for i, w in enumerate(windows):
        x[i, : w.shape[0]] = w
    return {"x": x, "mask": torch.arange(x.shape[1])[None] < lengths[:, None], "lengths": lengths}


def install_test_plugin(site, monkeypatch) -> None:
    """Install the GRU test backend the way pip installs a package: a .dist-info with entry_points.txt on
    sys.path (its module, tests/gru_backend.py, is importable already)."""
    info = site / "gru_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gru-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [seqstudio.backends]
        {TEST_PLUGIN} = gru_backend:GRULanguageModel
        """))
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def backend_class(request, tmp_path, monkeypatch):
    """The class registered as ``request.param``, loaded through the registry (the test plugin installed first)."""
    if request.param == TEST_PLUGIN:
        install_test_plugin(tmp_path / "site", monkeypatch)
    cls = registry.load_backend(request.param)
    assert cls.name == request.param
    return cls


def test_the_test_plugin_is_registered_only_where_installed(tmp_path, monkeypatch):
    assert TEST_PLUGIN not in registry.names("backend")
    install_test_plugin(tmp_path / "site", monkeypatch)
    assert registry.load_backend(TEST_PLUGIN) is GRULanguageModel
    info = {i.name: i for i in registry.describe("backend")}[TEST_PLUGIN]
    assert info.distribution == "gru-plugin" and info.error is None


def _write_and_read_back(domain, sample, path):
    """Write ``sample``; read the file back. Returns what was read (None for an empty sample: a silent MIDI file,
    empty text, is legitimately refused by ``read``)."""
    domain.write(sample, path)
    assert path.is_file()
    if domain.sample_steps(sample) == 0:
        return None
    back = domain.read(path)
    assert domain.sample_steps(back) > 0
    return back


@pytest.mark.parametrize("backend_class", BACKENDS, indirect=True)
@pytest.mark.parametrize("domain_name, codec_name", CODECS)
def test_every_backend_on_every_codec_from_examples_to_files(backend_class, domain_name, codec_name, tmp_path):
    domain, codec, windows = examples(domain_name, codec_name)
    torch.manual_seed(0)
    model = backend_class(codec.spec, backend_class.tiny_config())
    batch = padded_batch(windows)
    model.init_from_data(batch["x"], batch["mask"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizers = model.configure_optimizers(1e-2)
    for step in range(2):
        stats = model.training_step(batch, optimizers, StepContext(forward=model, clip_grad_norm=1.0, step=step))
    assert float(stats["steps"]) == float(batch["mask"].sum())
    summary = model.summarize({k: float(v) for k, v in stats.items()})
    assert summary and all(math.isfinite(v) for v in summary.values()), summary
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "training_step did not update any weight"

    model.eval()
    g = torch.Generator().manual_seed(1)
    fresh = model.sample(2, SamplingOptions(length=6), generator=g)
    assert fresh.shape == (2, 6, codec.spec.storage_width) and torch.isfinite(fresh).all()
    prime = windows[0][: max(2, windows[0].shape[0] // 2)].unsqueeze(0)
    assert domain.sample_steps(codec.decode(prime[0])) > 0  # the examples hold something from the first step on
    primed = model.sample(2, SamplingOptions(length=6, temperature=0.8, bias=0.5, prime=prime), generator=g)
    assert primed.shape == (2, prime.shape[1] + 6, codec.spec.storage_width)
    assert torch.equal(primed[:, : prime.shape[1]], prime.expand(2, -1, -1))  # the prime, verbatim

    sample = codec.decode(fresh[0])
    _write_and_read_back(domain, sample, tmp_path / f"fresh{domain.output_extension_for(sample)}")
    sample = codec.decode(primed[0])
    assert _write_and_read_back(domain, sample, tmp_path / f"primed{domain.output_extension_for(sample)}")


@pytest.mark.parametrize("domain_name", registry.names("domain"))
def test_example_samples_survive_write_and_read(domain_name, tmp_path):
    domain = registry.load_domain(domain_name)()
    samples = domain.example_samples()
    assert len(samples) >= 2
    for i, sample in enumerate(samples):
        back = _write_and_read_back(domain, sample, tmp_path / f"ex{i}{domain.output_extension_for(sample)}")
        assert domain.sample_steps(back) == domain.sample_steps(sample)


def test_a_domain_without_example_samples_breaks_the_contract_loudly():
    from seqstudio.domain import Domain

    with pytest.raises(NotImplementedError, match="part of the domain contract"):
        Domain().example_samples()


# -- sampling uses the training transition ---------------------------------------------------------------------------
# A drift between the per-step transition ``sample`` runs and the teacher-forced training pass (one cuDNN/oneDNN
# call, or the VRNN's fused loop) is a model that samples from another distribution than the one it was trained
# and evaluated on. So: feed a sequence step by step through ``step`` and compare with training, to 1e-5.
SPEC = FeatureSpec([Real(2), Categorical(3), Binary(4)])


def _sequences(batch=3, steps=9):
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.randn(batch, steps, 2, generator=g), torch.randint(0, 3, (batch, steps, 1), generator=g),
                      (torch.rand(batch, steps, 4, generator=g) < 0.3).float()], dim=-1)


def _stepwise(model, x, state, pending):
    """Head parameters of every step of ``x`` from ``model.step``, teacher-forced; and the state after each."""
    params, states = [], []
    for t in range(x.shape[1]):
        p, state = model.step(state, pending, SamplingOptions(), None)
        params.append(p)
        states.append(state)
        pending = model.spec.to_features(x[:, t])
    return torch.stack(params, dim=1), states


def _small(cls, **options):
    torch.manual_seed(0)
    return cls(SPEC, dataclasses.replace(cls.tiny_config(), **options)).eval()


@pytest.mark.parametrize("backend_class", ["rnn", "seqvae", TEST_PLUGIN], indirect=True)
def test_sampling_step_is_the_training_transition(backend_class):
    model = _small(backend_class)
    x = _sequences()
    with torch.no_grad():
        if backend_class.name == "seqvae":  # the decoder, given the same z
            z = torch.randn(x.shape[0], model.config.latent_size)
            trained = model.decode_teacher_forced(x, z)
            stepped, _ = _stepwise(model, x, *model._start_from(z, None))
        else:
            trained = (model.teacher_forced(x) if backend_class.name == "rnn"
                       else model.head(model.gru(shift_right(model.spec.to_features(x)))[0]))
            stepped, _ = _stepwise(model, x, *model.start(x.shape[0], None, SamplingOptions(), None))
    torch.testing.assert_close(stepped, trained, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("phi_layers", [1, 2])
def test_vrnn_sampling_step_is_the_fused_loops_transition(phi_layers, monkeypatch):
    """Given the same z_t (the posterior's, in place of the prior draw only sampling makes), the sampling step's
    recurrence and decoder give the fused training loop's h_{t-1} and head parameters."""
    from seqstudio.backends.vrnn import VRNN

    model = _small(VRNN, phi_layers=phi_layers)
    x = _sequences()
    with torch.no_grad():
        out = model.filter(x)
        trained = model._decode_params(out["pz"], out["h_prev"])
        posterior = list(out["z"].unbind(1))
        monkeypatch.setattr(model, "draw_latent", lambda h, options, generator: posterior.pop(0))
        stepped, states = _stepwise(model, x, *model.start(x.shape[0], None, SamplingOptions(), None))
    torch.testing.assert_close(torch.stack([s[0] for s in states], 1), out["h_prev"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stepped, trained, atol=1e-5, rtol=1e-5)


def test_bernoulli_head_log_prob_matches_torch_distributions():
    spec = FeatureSpec([Binary(5)])
    head = heads.build_head(spec, 4)
    logits = torch.randn(2, 3, 5)
    x = (torch.rand(2, 3, 5) < 0.5).float()
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(head.log_prob(logits, x), expected)


def test_categorical_head_log_prob_matches_torch_distributions():
    spec = FeatureSpec([Categorical(6), Binary(2)])
    head = heads.build_head(spec, 4)
    params = torch.randn(2, 3, 8)
    index = torch.randint(0, 6, (2, 3))
    bits = (torch.rand(2, 3, 2) < 0.5).float()
    x = torch.cat([index.unsqueeze(-1).float(), bits], dim=-1)
    expected = (torch.distributions.Categorical(logits=params[..., :6]).log_prob(index)
                + torch.distributions.Bernoulli(logits=params[..., 6:]).log_prob(bits).sum(-1))
    torch.testing.assert_close(head.log_prob(params, x), expected)


def test_head_sampling_at_zero_temperature_is_the_mode():
    spec = FeatureSpec([Categorical(4), Binary(3)])
    head = heads.build_head(spec, 4)
    params = torch.tensor([[0.0, 3.0, 1.0, -1.0, 2.0, -2.0, 0.5]])
    assert head.sample(params, temperature=0).tolist() == [[1.0, 1.0, 0.0, 1.0]]


def test_frame_accuracy_ignores_silent_frames():
    spec = FeatureSpec([Binary(4)])
    head = heads.build_head(spec, 4)
    x = torch.tensor([[[1.0, 0, 0, 0], [0, 0, 0, 0]]])
    params = torch.tensor([[[5.0, -5, -5, -5], [-5.0, -5, -5, -5]]])
    num, den = head.accuracy_stats(params, x, torch.ones(1, 2, dtype=torch.bool))
    assert (float(num), float(den)) == (1.0, 1.0)
    params_wrong = torch.tensor([[[5.0, 5, -5, -5], [-5.0, -5, -5, -5]]])
    num, den = head.accuracy_stats(params_wrong, x, torch.ones(1, 2, dtype=torch.bool))
    assert float(num) / float(den) == 0.5


def test_feature_spec_layouts_round_trip():
    spec = FeatureSpec([Real(2), Categorical(3), Binary(2)])
    assert (spec.storage_width, spec.feature_width) == (5, 7)
    x = torch.tensor([[0.5, -1.0, 2.0, 1.0, 0.0]])
    assert spec.to_features(x).tolist() == [[0.5, -1.0, 0.0, 0.0, 1.0, 1.0, 0.0]]
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_heads_start_at_the_data_marginals():
    spec = FeatureSpec([Binary(3), Categorical(4)])
    head = heads.build_head(spec, 8)
    bits = torch.tensor([[1.0, 0, 0], [1.0, 1, 0], [0.0, 0, 0], [1.0, 0, 0]])
    tokens = torch.tensor([[2.0], [2.0], [1.0], [3.0]])
    x = torch.cat([bits, tokens], dim=-1).unsqueeze(0)
    head.init_bias_from_data(x, torch.ones(1, 4, dtype=torch.bool))
    probs = torch.sigmoid(head.proj.bias[:3])
    torch.testing.assert_close(probs, torch.tensor([0.75, 0.25, 1e-4]), atol=1e-6, rtol=1e-4)
    token_probs = torch.softmax(head.proj.bias[3:], dim=0)  # add-one smoothed counts 1, 2, 3, 2
    torch.testing.assert_close(token_probs, torch.tensor([1.0, 2.0, 3.0, 2.0]) / 8)


def test_a_new_part_type_is_one_spec_class_and_one_head_class(monkeypatch):
    """Counts per step under a Poisson head: nothing in OutputHead, the backends or the trainer changes."""
    from dataclasses import dataclass

    from seqstudio import spec as spec_mod

    @dataclass(frozen=True)
    class Count(spec_mod.PartType):
        """``size`` non-negative counts per step."""

    class PoissonPart(heads.PartHead):
        n_params = property(lambda self: self.part.size)  # log-rates

        def log_prob(self, log_rate, target):
            return torch.distributions.Poisson(log_rate.exp()).log_prob(target).sum(-1)

        def sample(self, log_rate, temperature, generator, bias=0.0):
            return torch.poisson(log_rate.exp(), generator=generator)

        def mode(self, log_rate):
            return log_rate.exp().floor()

        def relaxed(self, log_rate, temperature, hard=False, noise=False):
            return log_rate.exp()

        def accuracy_stats(self, log_rate, target, mask):
            return (self.mode(log_rate) == target).all(-1).logical_and(mask).sum(), mask.sum()

        def init_bias(self, bias, values):
            bias.copy_(values.mean(0).clamp_min(1e-3).log())

    monkeypatch.setitem(spec_mod.PART_TYPES, "count", Count)
    monkeypatch.setitem(heads.PART_HEADS, Count, PoissonPart)
    spec = FeatureSpec([Count(2), Categorical(3)])
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.poisson(torch.full((4, 6, 2), 3.0), generator=g),
                   torch.randint(0, 3, (4, 6, 1), generator=g).float()], dim=-1)
    batch = {"x": x, "mask": torch.ones(4, 6, dtype=torch.bool), "lengths": torch.full((4,), 6)}
    model = registry.load_backend("rnn")(spec, registry.load_backend("rnn").tiny_config())
    model.init_from_data(x, batch["mask"])
    assert torch.allclose(model.head.proj.bias[:2].exp(), x[..., :2].mean((0, 1)))
    stats = model.training_step(batch, model.configure_optimizers(1e-2), StepContext(forward=model, clip_grad_norm=1.0))
    assert math.isfinite(float(stats["nll"]))
    out = model.eval().sample(3, SamplingOptions(length=5, temperature=0.7), generator=g)
    assert out.shape == (3, 5, 3) and (out[..., :2] >= 0).all() and (out[..., :2] == out[..., :2].round()).all()
