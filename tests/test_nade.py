"""The NADE head for Binary parts (``--set heads.binary=nade``): its one-pass likelihood against a key-by-key
computation, normalisation, sampling frequencies, every backend training with it, and the option's round trip
through a run directory into a new process."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest
import torch
import yaml

from seqstudio import heads
from seqstudio.backends.base import SamplingOptions, StepContext
from seqstudio.errors import ConfigError
from seqstudio.heads import HeadsConfig, NADEPart, build_head
from seqstudio.spec import Binary, Categorical, FeatureSpec

from conftest import TINY, invoke
from test_backends import BACKENDS, CODECS, backend_class, examples, padded_batch  # noqa: F401 (fixture)

NADE = HeadsConfig(binary="nade", nade_hidden=6)


def _nade_head(d: int, spec=None, scale: float = 1.0, seed: int = 0):
    """A NADE head over ``Binary(d)`` with weights large enough that the keys really depend on each other."""
    torch.manual_seed(seed)
    head = build_head(spec or FeatureSpec([Binary(d)]), 8, options=NADE)
    (part,) = [p for p in head.parts if isinstance(p, NADEPart)]
    with torch.no_grad():
        part.W.normal_(0, scale)
        part.V.normal_(0, scale)
    return head, part


def _key_by_key_log_prob(part: NADEPart, params, v):
    """log p(v) as the product of the D conditionals, each computed from scratch from the keys below it (double)."""
    b, c = params.double().split([part.size, part.hidden], dim=-1)
    W, V = part.W.double(), part.V.double()
    total = torch.zeros(v.shape[:-1], dtype=torch.float64)
    for d in range(part.size):
        a = c.clone()
        for k in range(d):
            a = a + v[..., k : k + 1].double() * W[k]
        p = torch.sigmoid(b[..., d] + (torch.sigmoid(a) * V[d]).sum(-1))
        total = total + torch.where(v[..., d] > 0.5, torch.log(p), torch.log1p(-p))
    return total


def test_log_prob_equals_the_product_of_the_conditionals_computed_key_by_key():
    head, part = _nade_head(7)
    params = torch.randn(3, 5, head.proj.out_features) * 2
    v = (torch.rand(3, 5, 7) < 0.4).float()
    ours = head.log_prob(params, v)
    assert ours.shape == (3, 5)
    assert torch.allclose(ours.double(), _key_by_key_log_prob(part, params, v), atol=1e-4)


def test_gradients_equal_those_of_the_key_by_key_computation():
    head, part = _nade_head(6)
    params = (torch.randn(2, 4, head.proj.out_features) * 2).requires_grad_()
    v = (torch.rand(2, 4, 6) < 0.4).float()
    weights = torch.randn(2, 4)  # a loss that weighs the frames differently
    ours = torch.autograd.grad((head.log_prob(params, v) * weights).sum(), [params, part.W, part.V])
    ref = torch.autograd.grad((_key_by_key_log_prob(part, params, v) * weights.double()).sum(),
                              [params, part.W, part.V])
    for a, b in zip(ours, ref):
        assert torch.allclose(a.double(), b.double(), atol=1e-4), (a - b).abs().max()


def test_accuracy_is_that_of_the_teacher_forced_conditionals():
    head, part = _nade_head(5)
    params = torch.randn(3, 4, head.proj.out_features)
    v = (torch.rand(3, 4, 5) < 0.5).float()
    mask = torch.ones(3, 4, dtype=torch.bool)
    fresh = head.accuracy_stats(params, v, mask)  # nothing cached yet for these tensors
    head.log_prob(params, v)
    cached = head.accuracy_stats(params, v, mask)
    assert [int(t) for t in fresh] == [int(t) for t in cached]
    other = (torch.rand(3, 4, 5) < 0.5).float()  # another target: not the cached logits
    expected = build_head(FeatureSpec([Binary(5)]), 8).parts[0].accuracy_stats(
        part.conditional_logits(params, other), other, mask)
    assert [int(t) for t in head.accuracy_stats(params, other, mask)] == [int(t) for t in expected]


def test_probabilities_of_all_frames_sum_to_one():
    head, _ = _nade_head(6, scale=1.5)
    frames = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)))  # all 64 frames
    params = torch.randn(4, 1, head.proj.out_features).expand(-1, len(frames), -1)
    total = torch.logsumexp(head.log_prob(params, frames.expand(4, -1, -1)).double(), dim=-1)
    assert torch.allclose(total, torch.zeros(4, dtype=torch.float64), atol=1e-5), total


def test_samples_follow_the_joint_distribution_and_it_is_not_factorized():
    head, part = _nade_head(3)
    # Key 1 follows key 0; key 2 is on when exactly key 0 of the two is: a joint no factorized head can give.
    with torch.no_grad():
        part.W.copy_(torch.tensor([[4.0], [-4.0], [0.0]]).expand(3, 6))
        part.V.copy_(torch.tensor([[0.0], [2.0], [2.0]]).expand(3, 6))
    params = torch.tensor([[0.0, -6.0, -9.0] + [-2.0] * 6])
    frames = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    joint = head.log_prob(params.expand(len(frames), -1), frames).exp()
    n = 40000
    draws = head.sample(params.expand(n, -1), 1.0, torch.Generator().manual_seed(0))
    codes = (draws * torch.tensor([4.0, 2.0, 1.0])).sum(-1).long()  # the same order as itertools.product
    freq = torch.bincount(codes, minlength=8).float() / n
    assert torch.allclose(freq, joint, atol=0.015), (freq, joint)  # 0.015: > 5 standard errors at n = 40000
    marginals = (frames * joint.unsqueeze(-1)).sum(0)
    product = torch.where(frames > 0.5, marginals, 1 - marginals).prod(-1)
    assert (product - joint).abs().max() > 0.1  # so independent keys would fail the frequency check


def test_mode_relaxation_and_gradients():
    head, part = _nade_head(5)
    params = torch.randn(4, head.proj.out_features, requires_grad=True)
    mode = head.sample(params, 0.0)
    assert set(mode.unique().tolist()) <= {0.0, 1.0}
    soft = head.relaxed(params, 0.5, hard=True, noise=True)
    assert set(soft.detach().unique().tolist()) <= {0.0, 1.0}
    soft.sum().backward()
    assert params.grad.abs().sum() > 0 and part.W.grad.abs().sum() > 0 and part.V.grad.abs().sum() > 0


def test_other_parts_keep_their_heads_and_factorized_checkpoints_keep_their_keys():
    spec = FeatureSpec([Binary(4), Categorical(3)])
    head = build_head(spec, 8, options=NADE)
    assert [type(p).__name__ for p in head.parts] == ["NADEPart", "CategoricalPart"]
    assert head.proj.out_features == 4 + 6 + 3
    params = torch.randn(2, 5, head.proj.out_features)
    x = torch.cat([(torch.rand(2, 5, 4) < 0.5).float(), torch.randint(0, 3, (2, 5, 1)).float()], -1)
    assert head.log_prob(params, x).shape == (2, 5) and head.sample(params, 1.0).shape == (2, 5, 5)
    assert set(build_head(spec, 8).state_dict()) == {"proj.weight", "proj.bias"}  # the default: unchanged


def test_head_options_are_validated():
    with pytest.raises(ConfigError, match="heads.binary"):
        HeadsConfig(binary="made")
    with pytest.raises(ConfigError, match="nade_hidden"):
        HeadsConfig(binary="nade", nade_hidden=0)


PIANO_ROLL = [c for c in CODECS if any(isinstance(p, Binary) for p in examples(*c.values)[1].spec.parts)]


@pytest.mark.parametrize("backend_class", BACKENDS, indirect=True)
@pytest.mark.parametrize("domain_name, codec_name", PIANO_ROLL)
def test_every_backend_trains_and_samples_with_the_nade_head(backend_class, domain_name, codec_name):
    _, codec, windows = examples(domain_name, codec_name)
    torch.manual_seed(0)
    with heads.head_options(NADE):
        model = backend_class(codec.spec, backend_class.tiny_config())
    assert any(isinstance(p, NADEPart) for m in model.modules() if isinstance(m, heads.OutputHead) for p in m.parts)
    batch = padded_batch(windows)
    model.init_from_data(batch["x"], batch["mask"])
    optimizers = model.configure_optimizers(1e-2)
    for step in range(3):  # the GAN: one MLE step, then adversarial steps through the NADE's relaxation
        stats = model.training_step(batch, optimizers, StepContext(forward=model, clip_grad_norm=1.0, step=step))
    summary = model.summarize({k: float(v) for k, v in stats.items()})
    assert summary and all(math.isfinite(v) for v in summary.values()), summary
    assert all(torch.isfinite(p).all() for p in model.parameters())
    out = model.sample(2, SamplingOptions(length=5), torch.Generator().manual_seed(0))
    assert out.shape == (2, 5, codec.spec.storage_width) and torch.isfinite(out).all()


def test_nade_run_round_trips_through_the_run_directory_into_a_new_process(chorales, tmp_path):
    run = tmp_path / "run"
    invoke("train", chorales, "--run-dir", run, "--max-steps", "4", *TINY, "--codec", "pianoroll",
           "--set", "heads.binary=nade", "--set", "heads.nade_hidden=12")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["heads"] == {"binary": "nade", "nade_hidden": 12}
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    weights = state.get("model", state)
    assert any(k.endswith("part_modules.0.W") and tuple(v.shape)[1] == 12 for k, v in weights.items())
    out = tmp_path / "gen"
    proc = subprocess.run([sys.executable, "-m", "seqstudio", "generate", str(run), "-n", "2", "--length", "8",
                           "--out", str(out), "--seed", "0", "--no-pictures"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(list(out.glob("*.mid"))) == 2
    result = invoke("evaluate", run, "--json")
    assert result.exit_code == 0 and math.isfinite(yaml.safe_load(result.output)["nll"])


def test_a_bad_head_option_is_one_line_and_a_nonzero_exit(chorales, tmp_path):
    from click.testing import CliRunner

    from seqstudio.cli import main

    result = CliRunner().invoke(main, ["train", str(chorales), "--run-dir", str(tmp_path / "r"), "--max-steps",
                                       "1", "--set", "heads.binary=made", "--quiet"])
    assert result.exit_code != 0 and "heads.binary" in result.output and "Traceback" not in result.output


def test_evaluation_in_chunks_gives_the_same_logits(monkeypatch):
    head, part = _nade_head(5)
    params = torch.randn(7, 3, head.proj.out_features)
    v = (torch.rand(7, 3, 5) < 0.5).float()
    with torch.no_grad():
        whole = head.log_prob(params, v)
        monkeypatch.setattr(NADEPart, "EVAL_FRAMES", 4)  # 21 frames in 6 passes
        chunked = head.log_prob(params, v)
    assert torch.allclose(whole, chunked, atol=1e-6)
