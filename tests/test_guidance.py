"""Classifier-free guidance (issue 33): ``--guidance W`` mixes the conditional and the unconditional prediction of
one conditional model, for every head type and every backend that accepts conditions."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from conftest import invoke, tiny_backend_args
from seqstudio import heads, registry
from seqstudio.backends.autoregressive import expand_prime
from seqstudio.backends.base import SamplingOptions, StepContext
from seqstudio.conditions import Attribute, ConditionSpec
from seqstudio.errors import ConfigError
from seqstudio.spec import FeatureSpec, Real
from test_backends import CODECS, examples, padded_batch
from test_conditions import COMMON, _shapes

CONDITIONAL_BACKENDS = [n for n in registry.names("backend") if registry.load_backend(n).accepts_conditions]
SPEC2 = ConditionSpec((Attribute("label", ("a", "b"), (3, 3)), Attribute("size", ("s", "m", "l"), (2, 2, 2))),
                      dropout=0.2, size=6)
ASKED = torch.tensor([[1, 2], [2, 3], [1, 0]])


def test_the_conditional_backends_are_the_five_built_ins():
    assert sorted(CONDITIONAL_BACKENDS) == ["lstmgan", "rnn", "seqvae", "transformer", "vrnn"]


def _trained(name, domain_name, codec_name, binary="factorized"):
    """A tiny conditional model of backend ``name`` after two updates on the codec's example windows."""
    _, codec, windows = examples(domain_name, codec_name)
    cls = registry.load_backend(name)
    torch.manual_seed(0)
    with heads.head_options(heads.HeadsConfig(binary=binary, nade_hidden=8)):
        model = cls(codec.spec, cls.tiny_config(), conditions=SPEC2)
    batch = padded_batch(windows)
    batch["condition"] = torch.tensor([[1 + i % 2, 1 + i % 3] for i in range(len(windows))])
    optimizers = model.configure_optimizers(1e-2)
    for step in range(2):
        model.training_step(batch, optimizers, StepContext(forward=model, clip_grad_norm=1.0, step=step))
    with torch.no_grad():  # two updates barely separate the conditions: make them matter, so the draws differ
        for table in model.condition_embedding.tables:
            table.weight.mul_(30.0)
    return model.eval(), codec, windows


def _draw(model, options, n=3, seed=5):
    return model.sample(n, options, generator=torch.Generator().manual_seed(seed))


# Every head type: stroke-5 (bivariate mixture + categorical pen), piano-roll (Bernoulli, and NADE), tokens
# (categorical). The guided loop runs the conditional and the unconditional row in one batch of 2n.
HEAD_CELLS = [("strokes", "stroke5", "factorized"), ("midi", "pianoroll", "factorized"),
              ("midi", "pianoroll", "nade"), ("text", "char", "factorized")]


@pytest.mark.parametrize("name", CONDITIONAL_BACKENDS)
@pytest.mark.parametrize("domain_name, codec_name, binary", HEAD_CELLS)
@pytest.mark.parametrize("primed", [False, True])
def test_guidance_one_is_conditional_and_zero_unconditional_sampling_draw_for_draw(
        name, domain_name, codec_name, binary, primed):
    model, codec, windows = _trained(name, domain_name, codec_name, binary)
    prime = windows[0][:3].unsqueeze(0) if primed else None
    plain = SamplingOptions(length=6, condition=ASKED, prime=prime)
    conditional = _draw(model, plain)
    unconditional = _draw(model, SamplingOptions(length=6, condition=torch.zeros_like(ASKED), prime=prime))
    first = [model.step(*model.start(3, expand_prime(prime, 3, model.device), SamplingOptions(condition=c), None),
                        SamplingOptions(condition=c), None)[0] for c in (ASKED, torch.zeros_like(ASKED))]
    assert not torch.allclose(*first, atol=1e-3)  # the condition matters to the model under test
    # --guidance 1 and 0: the plain draws, bit for bit
    assert torch.equal(_draw(model, dataclasses.replace(plain, guidance=1.0)), conditional)
    assert torch.equal(_draw(model, dataclasses.replace(plain, guidance=0.0)), unconditional)
    # The guided loop itself (two rows a step, mixed by the head; latent and noise draws shared by the rows) at 1
    # and 0: the same draws up to the float rounding of a batch of 2n rows instead of n. Over two steps that
    # rounding (1e-7) moves real values by far less than 1e-4 and flips no discrete draw here; over long
    # sequences a flip, then divergence, becomes possible, which is why 0 and 1 run unguided.
    short = dataclasses.replace(plain, length=2)
    for scale, condition in ((1.0, ASKED), (0.0, torch.zeros_like(ASKED))):
        expected = _draw(model, dataclasses.replace(short, condition=condition))
        guided = model.guided_sample(3, expand_prime(prime, 3, model.device),
                                     dataclasses.replace(short, guidance=scale), torch.Generator().manual_seed(5))
        torch.testing.assert_close(guided, expected, atol=1e-4, rtol=1e-4)
    for extra in ({}, {"temperature": 0.0}, {"top_p": 0.9, "top_k": 3}):
        stronger = _draw(model, SamplingOptions(length=6, condition=ASKED, prime=prime, guidance=3.0, **extra))
        assert stronger.shape == conditional.shape and torch.isfinite(stronger).all(), extra
        if prime is not None:
            assert torch.equal(stronger[:, :3], prime.expand(3, -1, -1))  # the prime kept verbatim


@pytest.mark.parametrize("name", CONDITIONAL_BACKENDS)
@pytest.mark.parametrize("domain_name, codec_name", CODECS)
def test_every_conditional_backend_samples_every_codec_with_guidance_without_nan(name, domain_name, codec_name):
    model, codec, _ = _trained(name, domain_name, codec_name)
    for scale in (0.5, 2.0, 4.0):
        for temperature in (1.0, 0.0):
            x = _draw(model, SamplingOptions(length=5, condition=ASKED, guidance=scale, temperature=temperature))
            assert x.shape == (3, 5, codec.spec.storage_width) and torch.isfinite(x).all(), (scale, temperature)
            codec.decode(x[0])  # a guided draw is a valid encoding


def test_mixture_guidance_extrapolates_weights_and_means_and_keeps_the_conditional_scales():
    head = heads.build_head(FeatureSpec([Real(2)]), 4, mixtures=2)
    part = head.parts[0]
    c, u = torch.randn(3, part.n_params), torch.randn(3, part.n_params)
    guided = part.guide(c, u, 3.0)
    first = 2 + 2 * 2  # weights and means
    torch.testing.assert_close(guided[:, :first], u[:, :first] + 3.0 * (c[:, :first] - u[:, :first]))
    assert torch.equal(guided[:, first:], c[:, first:])  # log-scales and correlation: the conditional row's
    assert torch.equal(part.guide(c, u, 0.0), u) and torch.equal(part.guide(c, u, 1.0), c)


def test_a_backend_whose_sampler_does_not_declare_guides_is_refused_guidance():
    from seqstudio.backends.base import Backend
    from seqstudio.guidance import check_guidance

    class OwnSampler(Backend):
        name = "own"

    assert all(registry.load_backend(n).guides for n in CONDITIONAL_BACKENDS)
    with pytest.raises(ConfigError, match="backend 'own' does not support --guidance"):
        check_guidance(2.0, SPEC2, backend=OwnSampler)
    check_guidance(1.0, SPEC2, backend=OwnSampler)  # 1 is plain sampling: every backend


def test_guidance_is_refused_below_zero_and_without_a_condition_model():
    with pytest.raises(ConfigError, match="--guidance must be"):
        SamplingOptions(guidance=-1.0)
    cls = registry.load_backend("rnn")
    _, codec, _ = examples("strokes", "stroke5")
    plain = cls(codec.spec, cls.tiny_config()).eval()
    with pytest.raises(ConfigError, match="no such conditions"):
        plain.sample(2, SamplingOptions(length=3, guidance=2.0))


# -- the CLI ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return _shapes(tmp_path_factory.mktemp("shapes") / "shapes", per_class=8)


def _train(shapes, run, *extra):
    result = invoke("train", shapes, "--backend", "rnn", "--run-dir", run, "--max-steps", 2,
                    *tiny_backend_args("rnn"), *COMMON, *extra)
    assert result.exit_code == 0, result.output
    return run


def test_generate_guidance_on_the_cli_and_a_run_without_condition_dropout_refuses_it(shapes, tmp_path):
    run = _train(shapes, tmp_path / "run")
    result = invoke("generate", run, "-n", 2, "--condition", "label=cross", "--guidance", 2.5, "-o", tmp_path / "g",
                    "--seed", 0, "--no-pictures")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "g" / "conditions.json").read_text()) == {
        "sample-000.svg": {"label": "cross"}, "sample-001.svg": {"label": "cross"}}

    strict = _train(shapes, tmp_path / "strict", "--set", "train.condition_dropout=0")
    refused = invoke("generate", strict, "-n", 2, "--guidance", 2, "-o", tmp_path / "h")
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --guidance needs a run trained with condition dropout")
    assert not (tmp_path / "h").exists()
    assert invoke("generate", strict, "-n", 1, "--guidance", 1, "-o", tmp_path / "i", "--no-pictures").exit_code == 0
    strict_eval = json.loads(invoke("evaluate", strict, "--samples", 4, "--json").output)
    assert "conditions" in strict_eval and "guidance" not in strict_eval  # nothing to guide with

    result = invoke("evaluate", run, "--samples", 6, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    curve, listened = figures["guidance"], figures["conditions"]["label"]
    assert curve["scales"] == [0, 1, 2, 4] and len(curve["judge_accuracy"]) == 4
    shares = curve["adherence"]["label"]
    assert len(shares) == 4 and all(0.0 <= v <= 1.0 for v in shares)
    # W = 0 is the unconditional model and W = 1 plain conditional sampling: the same samples, the same shares
    assert shares[0] == listened["unconditional"] and shares[1] == listened["asked"]
    assert curve["held_out"]["label"] == listened["held_out"]
    text = invoke("evaluate", run, "--samples", 6).output
    assert "--guidance W" in text and "label as asked" in text and "judge accuracy" in text
