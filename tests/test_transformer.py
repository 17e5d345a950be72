"""The transformer backend: cached sampling is the training pass, the mask is causal, it trains on every codec, and
a primed run through the real CLI."""

from __future__ import annotations

import dataclasses
import math

import pretty_midi
import pytest
import torch

from seqstudio import heads, registry
from seqstudio.backends.base import SamplingOptions, StepContext
from seqstudio.backends.transformer import KVCache, Transformer, TransformerConfig
from seqstudio.conditions import Attribute, ConditionSpec
from seqstudio.errors import ConfigError

from conftest import invoke, tiny_backend_args
from test_backends import CODECS, SPEC, _sequences, _stepwise, examples, padded_batch

NADE = heads.HeadsConfig(binary="nade", nade_hidden=8)
CONDITIONS = ConditionSpec((Attribute("label", ("a", "b"), (3, 3)), Attribute("size", ("s", "m", "l"), (2, 2, 2))),
                           size=6)


def _model(head_options=None, conditions=None, **options) -> Transformer:
    torch.manual_seed(0)
    with heads.head_options(head_options):
        config = dataclasses.replace(Transformer.tiny_config(), **options)
        return Transformer(SPEC, config, conditions=conditions).eval()


def test_it_is_registered_through_its_entry_point():
    assert registry.load_backend("transformer") is Transformer


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
@pytest.mark.parametrize("head", [None, NADE], ids=["factorized", "nade"])
def test_cached_sampling_steps_equal_the_uncached_forward_pass(positions, head):
    model = _model(head, positions=positions)
    x = _sequences(steps=11)
    with torch.no_grad():
        trained = model.teacher_forced(x)
        stepped, states = _stepwise(model, x, *model.start(x.shape[0], None, SamplingOptions(), None))
    torch.testing.assert_close(stepped, trained, atol=1e-5, rtol=1e-5)
    cache = states[-1][0]
    # the cache holds one key per step and layer: the prefix is kept, not recomputed
    assert cache.position == x.shape[1] and all(k.shape[2] == x.shape[1] for k in cache.keys)


def test_a_prime_runs_into_the_cache_in_one_pass_and_continues_the_training_pass():
    model = _model()
    x = _sequences(steps=10)
    with torch.no_grad():
        trained = model.teacher_forced(x)
        state, pending = model.start(x.shape[0], x[:, :4], SamplingOptions(), None)
        assert state[0].position == 4
        stepped, _ = _stepwise(model, x[:, 4:], state, pending)
    torch.testing.assert_close(stepped, trained[:, 4:], atol=1e-5, rtol=1e-5)


def test_a_conditional_models_cached_steps_equal_its_training_pass():
    model = _model(conditions=CONDITIONS)
    x = _sequences()
    index = torch.tensor([[1, 2], [2, 0], [0, 3]])
    with torch.no_grad():
        trained = model.teacher_forced(x, index)
        stepped, _ = _stepwise(model, x, *model.start(x.shape[0], None, SamplingOptions(condition=index), None))
        other = model.teacher_forced(x, torch.tensor([[2, 1], [1, 0], [0, 1]]))
    torch.testing.assert_close(stepped, trained, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(other, trained)  # the condition reaches the output


@pytest.mark.parametrize("t", [0, 4, 8])
def test_the_mask_is_causal(t):
    model = _model(layers=3)
    x = _sequences(steps=9)
    changed = x.clone()
    changed[:, t, :2] += 3.0  # the real part
    changed[:, t, 2] = (changed[:, t, 2] + 1) % 3  # the categorical part
    changed[:, t, 3:] = 1 - changed[:, t, 3:]  # the binary part
    with torch.no_grad():
        before, after = model.teacher_forced(x), model.teacher_forced(changed)
    # output t predicts step t from steps < t: outputs up to t do not see the change; output t + 1 does
    torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1], atol=0, rtol=0)
    if t + 1 < x.shape[1]:
        assert not torch.allclose(after[:, t + 1], before[:, t + 1])


def test_sampling_past_the_training_window_and_learned_positions_refuse_to_run_off_their_table():
    x = _sequences(steps=8)
    long = _model().sample(2, SamplingOptions(length=40, prime=x[:1]), torch.Generator().manual_seed(0))
    assert long.shape == (2, 48, SPEC.storage_width) and torch.isfinite(long).all()
    learned = _model(positions="learned", max_positions=12)
    assert learned.sample(2, SamplingOptions(length=12), torch.Generator().manual_seed(0)).shape[1] == 12
    with pytest.raises(ConfigError, match="max_positions"):
        learned.sample(2, SamplingOptions(length=13), torch.Generator().manual_seed(0))


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="multiple of backend.heads"):
        TransformerConfig(d_model=10, heads=3)
    with pytest.raises(ConfigError, match="backend.positions"):
        TransformerConfig(positions="rotary")
    with pytest.raises(ConfigError, match="dropout"):
        TransformerConfig(dropout=1.0)


def test_the_cache_refuses_a_chunk_after_cached_steps():
    model = _model()
    cache = KVCache(model.config.layers)
    features = SPEC.to_features(_sequences(steps=4))
    with torch.no_grad():
        model.hidden(features, None, cache)
        with pytest.raises(ValueError, match="one step at a time"):
            model.hidden(features, None, cache)


@pytest.mark.parametrize("head", [None, NADE], ids=["factorized", "nade"])
def test_it_trains_a_few_steps_without_nan_on_every_codec(head):
    trained = 0
    for param in CODECS:
        _, codec, windows = examples(*param.values)
        torch.manual_seed(0)
        with heads.head_options(head):
            model = Transformer(codec.spec, Transformer.tiny_config())
        batch = padded_batch(windows)
        model.init_from_data(batch["x"], batch["mask"])
        optimizers = model.configure_optimizers(3e-3)
        losses = []
        for step in range(5):
            stats = model.training_step(batch, optimizers, StepContext(forward=model, clip_grad_norm=1.0, step=step))
            losses.append(float(stats["nll"]) / float(stats["steps"]))
        assert all(math.isfinite(v) for v in losses), (param.id, losses)
        assert all(torch.isfinite(p).all() for p in model.parameters()), param.id
        trained += 1
    assert trained == len(CODECS) >= 5  # every codec of every registered domain (midi, strokes, text)


def test_train_then_generate_with_a_prime_through_the_cli(chorales, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", chorales, "--backend", "transformer", "--run-dir", run, "--max-steps", 4,
                    *tiny_backend_args("transformer"), "--set", "train.valid_every=2", "--set", "train.samples=1",
                    "--batch-size", 8, "--quiet")
    assert result.exit_code == 0, result.output
    prime = sorted(chorales.glob("*.mid"))[0]
    out = tmp_path / "gen"
    result = invoke("generate", run, "-n", 2, "--prime", prime, "--length", 16, "-o", out, "--seed", 0,
                    "--top-p", 0.9, "--no-pictures")
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.mid"))
    assert len(files) == 2
    first_prime_note = min(n.start for i in pretty_midi.PrettyMIDI(str(prime)).instruments for n in i.notes)
    for f in files:  # the prime, then 16 generated steps after it
        notes = [n for i in pretty_midi.PrettyMIDI(str(f)).instruments for n in i.notes]
        assert notes and min(n.start for n in notes) == pytest.approx(first_prime_note, abs=0.3)
    result = invoke("evaluate", run, chorales, "--split", "valid", "--json", "--iw-samples", 2)
    assert result.exit_code == 0, result.output


@pytest.mark.slow  # two torchrun processes (make test-all)
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_process_ddp_training_with_the_nade_head_and_a_schedule(chorales, tmp_path):
    import json
    import os
    import subprocess
    import sys

    run = tmp_path / "ddp"
    env = {**os.environ, "SEQSTUDIO_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "seqstudio",
           "train", str(chorales), "--backend", "transformer", "--run-dir", str(run), "--max-steps", "4",
           "--device", "cpu", "--seed", "0", "--quiet", "--batch-size", "4", *map(str, tiny_backend_args("transformer")),
           "--set", "heads.binary=nade", "--set", "train.schedule=cosine", "--set", "train.valid_every=2",
           "--set", "train.samples=1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "valid"] == [2, 4]
    assert all(math.isfinite(r["nll"]) for r in records)
    assert len(list((run / "samples").glob("*.mid"))) == 1
