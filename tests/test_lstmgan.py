"""The LSTM-GAN backend: a short real training through the CLI on a few chorales (both MIDI codecs), its
generated MIDI, resume, `evaluate --samples`, and the pieces (relaxation, freezing, warnings) in isolation."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import music21
import pretty_midi
import pytest
import torch
from click.testing import CliRunner

from seqstudio.backends.base import SamplingOptions, StepContext
from seqstudio.distributed import DistInfo
from seqstudio.backends.lstmgan import LSTMGAN, LSTMGANConfig
from seqstudio.cli import main
from seqstudio.heads import build_head
from seqstudio.spec import Binary, Categorical, FeatureSpec

SMALL = ["--set", "backend.generator_size=32", "--set", "backend.generator_layers=1",
         "--set", "backend.discriminator_size=16", "--set", "backend.noise_size=8",
         "--set", "backend.pretrain_steps=2", "--set", "backend.balance_every=2", "--set", "backend.check_every=3",
         "--set", "train.valid_every=4", "--set", "train.samples=0", "--set", "train.workers=1"]
CODEC_OPTIONS = {"pianoroll": ["--set", "codec.window_bars=2"], "events": ["--set", "codec.window=48"]}


@pytest.fixture(scope="module")
def chorales(tmp_path_factory):
    dest = tmp_path_factory.mktemp("data") / "bach"
    result = CliRunner().invoke(main, ["data", "build", "bach-chorales", str(dest), "--limit", "6", "-q",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    return dest


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models on a CPU shared with other jobs: a second intra-op thread makes every op wait for it (we
    measured this file 6x slower under load), so these tests run single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _invoke(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _finite_records(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        for key, value in record.items():
            if isinstance(value, float):
                assert math.isfinite(value), (key, record)
    return records


def _opens_everywhere(path: Path) -> None:
    pm = pretty_midi.PrettyMIDI(str(path))
    assert pm.instruments  # a (possibly silent) piano track
    music21.converter.parse(str(path))


@pytest.mark.parametrize("codec", ["pianoroll", "events"])
def test_short_training_generation_resume_and_evaluate(chorales, tmp_path, codec):
    run_dir = tmp_path / f"gan-{codec}"
    _invoke(["train", str(chorales), "--backend", "lstmgan", "--codec", codec, "--run-dir", str(run_dir),
             "--max-steps", "8", "--batch-size", "8", "--seed", "1", "-q", *SMALL, *CODEC_OPTIONS[codec]])
    records = _finite_records(run_dir)
    train = [r for r in records if r["split"] == "train"]
    valid = [r for r in records if r["split"] == "valid"]
    assert valid and all({"gap", "fm", "d_accuracy"} <= set(r) for r in valid)
    assert any("d_loss" in r for r in train)  # adversarial steps ran after the MLE pretraining

    # Checkpoint/resume exactly as for the other backends.
    _invoke(["train", "--resume", "--run-dir", str(run_dir), "--max-steps", "10", "-q"])
    assert torch.load(run_dir / "last.pt", weights_only=True)["state"]["step"] == 10

    out = tmp_path / "generated"
    # Short files: an untrained generator sounds many keys at once, and music21 is slow on dense files.
    _invoke(["generate", str(run_dir), "-n", "2", "-o", str(out), "--seed", "0", "--no-pictures", "--length", "16"])
    paths = sorted(out.glob("*.mid"))
    assert len(paths) == 2
    for path in paths:
        _opens_everywhere(path)

    result = _invoke(["evaluate", str(run_dir), str(chorales), "--split", "train", "--samples", "6", "--json"])
    report = json.loads(result.output)
    assert 0.0 <= report["mean_overlap"] <= 1.0
    assert "nll" not in report and "pitch_range" in report["sample_metrics"]  # no likelihood part for a GAN
    text = _invoke(["evaluate", str(run_dir), str(chorales), "--split", "train", "--samples", "4"]).output
    assert "mean_overlap" in text and "pitch_class_entropy" in text


def test_evaluate_samples_on_a_likelihood_backend_reports_both(chorales, tmp_path):
    run_dir = tmp_path / "vae"
    _invoke(["train", str(chorales), "--backend", "seqvae", "--codec", "pianoroll", "--run-dir", str(run_dir),
             "--max-steps", "2", "--batch-size", "8", "-q", "--set", "codec.window_bars=2",
             "--set", "backend.encoder_size=16", "--set", "backend.decoder_size=16", "--set", "train.samples=0",
             "--set", "train.workers=1"])
    plain = json.loads(_invoke(["evaluate", str(run_dir), "--split", "train", "--json"]).output)
    assert "nll" in plain and "mean_overlap" not in plain  # unchanged without --samples
    both = json.loads(_invoke(["evaluate", str(run_dir), "--split", "train", "--json", "--samples", "4"]).output)
    assert {"nll", "kl", "elbo", "accuracy"} <= set(both) and 0.0 <= both["mean_overlap"] <= 1.0


# -- the pieces ---------------------------------------------------------------------------------------------------------
SPEC = FeatureSpec([Binary(5), Categorical(4)])


def test_relaxed_head_is_hard_and_differentiable():
    head = build_head(SPEC, 3)
    params = head(torch.randn(2, 6, 3, requires_grad=True))
    y = head.relaxed(params, 1.0, hard=True, noise=True)
    assert y.shape == (2, 6, SPEC.feature_width)
    assert set(y.detach().unique().tolist()) <= {0.0, 1.0}  # exactly like real data in feature layout
    assert torch.all(y[..., 5:].sum(-1) == 1)  # one-hot categorical part
    (y * torch.randn_like(y)).sum().backward()
    assert head.proj.weight.grad.abs().sum() > 0  # the critic's gradient reaches the generator
    soft = head.relaxed(params.detach(), 1.0)
    assert torch.all((soft > 0) & (soft < 1))


def _model(**overrides):
    torch.manual_seed(0)
    config = LSTMGANConfig(generator_size=16, discriminator_size=8, noise_size=4, pretrain_steps=0, **overrides)
    return LSTMGAN(SPEC, config)


def _batch(n=4, t=7):
    x = torch.cat([torch.randint(0, 2, (n, t, 5)).float(), torch.randint(0, 4, (n, t, 1)).float()], dim=-1)
    return {"x": x, "mask": torch.ones(n, t, dtype=torch.bool), "lengths": torch.full((n,), t)}


def test_training_step_updates_both_players_and_sample_is_storage_layout():
    model = _model(freeze_ratio=0.0)
    optimizers = model.configure_optimizers(1e-2)
    before_d = [p.detach().clone() for p in model.discriminator.parameters()]
    before_g = [p.detach().clone() for p in model.generator_parameters()]
    stats = model.training_step(_batch(), optimizers, StepContext(forward=model, clip_grad_norm=1.0, step=0))
    assert all(torch.isfinite(v).all() for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before_d, model.discriminator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_g, model.generator_parameters()))
    summary = model.summarize({k: float(v) for k, v in stats.items()})
    assert model.validation_score(summary) == summary["gap"]
    x = model.sample(3, SamplingOptions(length=5), generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 5, SPEC.storage_width)
    assert set(x[..., :5].unique().tolist()) <= {0.0, 1.0} and x[..., 5].max() < 4
    primed = model.sample(2, SamplingOptions(length=3, prime=_batch(1, 4)["x"]))
    assert primed.shape == (2, 7, SPEC.storage_width)


def test_freezing_stops_the_side_far_ahead():
    model = _model(freeze_ratio=0.7)
    model.balance.copy_(torch.tensor([0.2, 3.0, 1.0]))  # D's loss tiny, G's large: D is far ahead
    model._decide_freezing(DistInfo())
    assert model._frozen_flags == (True, False)
    optimizers = model.configure_optimizers(1e-2)
    before_d = [p.detach().clone() for p in model.discriminator.parameters()]
    stats = model.training_step(_batch(), optimizers,
                                StepContext(forward=model, clip_grad_norm=1.0, step=1))  # not a decision step
    assert all(torch.equal(a, b) for a, b in zip(before_d, model.discriminator.parameters()))
    assert float(stats["d_frozen_num"]) == 1.0
    model.balance.copy_(torch.tensor([2 * 1.4, 0.1, 1.0]))  # G far ahead
    model._decide_freezing(DistInfo())
    assert model._frozen_flags == (False, True)
    assert model.state_dict()["frozen"].tolist() == [0.0, 1.0]  # survives checkpoint / resume


def test_warnings_when_discriminator_wins_or_samples_collapse(caplog):
    model = _model()
    model.watch.copy_(torch.tensor([0.95 * 50, 0.001 * 50, 50.0, 0.0, 2.0]))
    with caplog.at_level(logging.WARNING, logger="seqstudio"):
        model._check_health(50, DistInfo())
    text = caplog.text
    assert "discriminator wins outright" in text and "samples collapse" in text
    caplog.clear()
    model.watch.copy_(torch.tensor([0.6 * 50, 0.4 * 50, 50.0, 1.8, 2.0]))  # a healthy game: no warning
    with caplog.at_level(logging.WARNING, logger="seqstudio"):
        model._check_health(100, DistInfo())
    assert caplog.text == ""


def test_config_is_validated():
    from seqstudio.errors import ConfigError

    with pytest.raises(ConfigError, match="relaxation"):
        LSTMGANConfig(relaxation="argmax")
    with pytest.raises(ConfigError, match="decision"):
        LSTMGANConfig(decision="last")
