"""Top-k and nucleus (top-p) sampling: off means plain sampling draw for draw, top-k = 1 is greedy, the truncation
keeps what it should, and bad values are one clear line from the API and the CLI."""

from __future__ import annotations

import pytest
import torch

from conftest import invoke
from test_errors import assert_clean_error

from seqstudio import api, heads, registry
from seqstudio.backends.base import SamplingOptions
from seqstudio.errors import ConfigError
from seqstudio.spec import Binary, Categorical, FeatureSpec, Real

SPEC = FeatureSpec([Categorical(5), Binary(6)])  # the parts top-k / top-p apply to
NADE = heads.HeadsConfig(binary="nade", nade_hidden=8)


def _draws(head, params, seed, **options):
    return head.sample(params, 1.0, torch.Generator().manual_seed(seed), **options)


@pytest.mark.parametrize("options", [heads.HeadsConfig(), NADE], ids=["factorized", "nade"])
def test_top_p_1_and_top_k_0_or_all_values_reproduce_plain_sampling(options):
    head = heads.build_head(SPEC, 4, options=options)
    params = torch.randn(64, head.proj.out_features) * 2
    plain = _draws(head, params, 3)
    for off in ({"top_k": 0, "top_p": 1.0}, {"top_k": 5}, {"top_p": 1.0}):
        torch.testing.assert_close(_draws(head, params, 3, **off), plain, atol=0, rtol=0)
    # and plain sampling is the distribution's: the categorical part's draws are torch.multinomial's
    reference = torch.multinomial(torch.softmax(params[:, :5], -1), 1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(plain[:, 0].long(), reference[:, 0])
    assert not torch.equal(_draws(head, params, 3, top_p=0.5), plain)  # a real truncation changes draws


@pytest.mark.parametrize("options", [heads.HeadsConfig(), NADE], ids=["factorized", "nade"])
def test_top_k_1_is_greedy(options):
    head = heads.build_head(SPEC, 4, options=options)
    params = torch.randn(200, head.proj.out_features) * 2
    for seed in range(3):
        torch.testing.assert_close(_draws(head, params, seed, top_k=1), head.mode(params), atol=0, rtol=0)


def test_top_k_1_makes_a_models_samples_its_greedy_decoding():
    cls = registry.load_backend("transformer")
    torch.manual_seed(0)
    with heads.head_options(NADE):
        model = cls(SPEC, cls.tiny_config()).eval()
    greedy = model.sample(3, SamplingOptions(length=7, temperature=0.0), torch.Generator().manual_seed(0))
    for seed in (1, 2):
        drawn = model.sample(3, SamplingOptions(length=7, top_k=1), torch.Generator().manual_seed(seed))
        assert torch.equal(drawn, greedy)


def test_the_truncations_keep_the_likeliest_values():
    logits = torch.log(torch.tensor([0.05, 0.5, 0.15, 0.3])).expand(2000, -1)
    head = heads.build_head(FeatureSpec([Categorical(4)]), 4)

    def seen(**options):
        return set(_draws(head, logits, 0, **options)[:, 0].long().tolist())

    assert seen() == {0, 1, 2, 3}
    assert seen(top_k=2) == {1, 3} and seen(top_k=3) == {1, 2, 3}
    assert seen(top_p=0.75) == {1, 3}  # 0.5 + 0.3 hold 0.75
    assert seen(top_p=0.4) == {1}  # the likeliest value always stays
    assert seen(top_p=0.9) == {1, 2, 3}
    # binary keys: each key's two values as a categorical
    probs = torch.tensor([0.9, 0.6, 0.05]).expand(2000, -1)
    nucleus = heads.truncate_binary(probs, top_p=0.85)
    assert nucleus[0].tolist() == pytest.approx([1.0, 0.6, 0.0])
    assert torch.equal(heads.truncate_binary(probs, top_k=1)[0], torch.tensor([1.0, 1.0, 0.0]))


def test_mixture_parts_ignore_the_controls():
    head = heads.build_head(FeatureSpec([Real(2)]), 4, mixtures=3)
    params = torch.randn(50, head.proj.out_features)
    assert torch.equal(_draws(head, params, 0, top_k=1, top_p=0.1), _draws(head, params, 0))


@pytest.mark.parametrize("bad, fragment", [({"top_k": -1}, "--top-k"), ({"top_k": 1.5}, "--top-k"),
                                           ({"top_p": 0.0}, "--top-p"), ({"top_p": 1.5}, "--top-p")])
def test_bad_values_are_refused(bad, fragment):
    with pytest.raises(ConfigError, match=fragment):
        SamplingOptions(**bad)


def test_the_cli_and_api_take_them_and_refuse_bad_values_in_one_line(trained_run, tmp_path):
    result = invoke("generate", trained_run, "-n", 2, "-o", tmp_path / "ok", "--seed", 0, "--top-k", 3, "--top-p",
                    0.9, "--no-pictures")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "ok").glob("*.mid"))) == 2
    assert_clean_error(invoke("generate", trained_run, "-o", tmp_path / "a", "--top-p", 0), "--top-p must be in (0, 1]")
    assert_clean_error(invoke("generate", trained_run, "-o", tmp_path / "b", "--top-k", -2), "--top-k must be")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    run = api.load(trained_run)
    assert len(api.generate(run, n=2, length=8, seed=0, top_k=2, top_p=0.8)) == 2
    with pytest.raises(ConfigError, match="--top-p"):
        api.generate(run, n=1, top_p=2.0)
