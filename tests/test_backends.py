"""Every registered backend x every registered domain codec: forward, backward, no NaN, sample, decode, write.

Data is synthesised from each codec's FeatureSpec alone, which is the point: a backend must work from the
spec, whatever domain produced it.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seqstudio import heads, registry
from seqstudio.backends.base import SamplingOptions, StepContext
from seqstudio.data import make_codec
from seqstudio.spec import Binary, Categorical, FeatureSpec, Real


def _domain_codecs():
    for domain_name in registry.names("domain"):
        try:
            domain = registry.load_domain(domain_name)()
        except Exception:  # a broken third-party plugin is tested by test_registry, not here
            continue
        for codec_name, codec_cls in sorted(domain.codecs.items()):
            try:  # most codecs know their FeatureSpec before fitting; one that cannot is trained in its own tests
                make_codec(domain, codec_name).spec
                marks = []
            except Exception:
                marks = [pytest.mark.skip(reason="codec's FeatureSpec depends on data it must be fitted on")]
            yield pytest.param(domain_name, codec_name, id=f"{domain_name}-{codec_name}", marks=marks)


def random_batch(spec: FeatureSpec, batch: int = 3, steps: int = 7) -> dict:
    g = torch.Generator().manual_seed(0)
    cols = []
    for part in spec.parts:
        if isinstance(part, Binary):
            cols.append((torch.rand(batch, steps, part.size, generator=g) < 0.1).float())
        elif isinstance(part, Categorical):
            cols.append(torch.randint(0, part.size, (batch, steps, 1), generator=g).float())
        else:
            cols.append(torch.randn(batch, steps, part.size, generator=g))
    lengths = torch.tensor([steps, steps - 2, 3])[:batch]
    mask = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)
    return {"x": torch.cat(cols, dim=-1), "mask": mask, "lengths": lengths}


def small_config(backend_cls):
    """The backend's defaults with every *_size shrunk, so the matrix stays fast."""
    values = {}
    for f in dataclasses.fields(backend_cls.Config):
        default = getattr(backend_cls.Config(), f.name)
        if f.name.endswith("_size") and isinstance(default, int) and not isinstance(default, bool):
            values[f.name] = min(default, 16)
    return backend_cls.Config(**values)


@pytest.mark.parametrize("backend_name", registry.names("backend"))
@pytest.mark.parametrize("domain_name, codec_name", list(_domain_codecs()))
def test_every_backend_trains_and_samples_on_every_codec(backend_name, domain_name, codec_name, tmp_path):
    torch.manual_seed(0)
    domain = registry.load_domain(domain_name)()
    codec = make_codec(domain, codec_name)
    backend_cls = registry.load_backend(backend_name)
    model = backend_cls(codec.spec, small_config(backend_cls))
    batch = random_batch(codec.spec)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizers = model.configure_optimizers(1e-2)
    for step in range(2):
        stats = model.training_step(batch, optimizers, StepContext(forward=model, clip_grad_norm=1.0, step=step))
    assert float(stats["steps"]) == float(batch["mask"].sum())
    summary = model.summarize({k: float(v) for k, v in stats.items()})
    assert summary and all(torch.isfinite(torch.tensor(v)) for v in summary.values()), summary
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "training_step did not update any weight"
    model.eval()
    g = torch.Generator().manual_seed(1)
    x = model.sample(2, SamplingOptions(length=5), generator=g)
    assert x.shape == (2, 5, codec.spec.storage_width)
    assert torch.isfinite(x).all()
    sample = codec.decode(x[0])
    path = tmp_path / f"out{domain.output_extension}"
    domain.write(sample, path)
    assert path.exists()


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
