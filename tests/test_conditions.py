"""Conditional generation (issue 13): attributes read from real files, the condition through the run directory,
condition dropout, the CLI's errors, and every backend trained conditionally."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

from conftest import TINY, invoke, read_metrics, tiny_backend_args
from seqstudio import conditions, registry
from seqstudio.backends.base import SamplingOptions, StepContext
from seqstudio.conditions import Attribute, ConditionEmbedding, ConditionSpec
from seqstudio.errors import ConfigError

CONDITIONAL_BACKENDS = [n for n in registry.names("backend") if registry.load_backend(n).accepts_conditions]
COMMON = ["--set", "train.valid_every=3", "--set", "train.samples=2", "--set", "train.workers=1",
          "--batch-size", "8", "--quiet"]


# -- data the tests write ----------------------------------------------------------------------------------------------
def _midi(path: Path, key_number: int | None, meter=(3, 4), pitches=(67, 70, 74, 72, 70, 69, 67, 62)):
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(80, p, 0.5 * i, 0.5 * i + 0.5) for i, p in enumerate(pitches)]
    pm.instruments.append(inst)
    if key_number is not None:
        pm.key_signature_changes = [pretty_midi.KeySignature(key_number, 0.0)]
    if meter:
        pm.time_signature_changes = [pretty_midi.TimeSignature(meter[0], meter[1], 0.0)]
    pm.write(str(path))
    return path


def _shapes(folder: Path, per_class: int = 24) -> Path:
    """A folder of two sketch-rnn .npz files, one class each (circle.npz, cross.npz)."""
    from seqstudio_strokes.formats.npz import write_npz
    from seqstudio_strokes.ink import Ink

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)

    def circle():
        t = np.linspace(0, 2 * np.pi, 12)
        return Ink([np.stack([50 + 30 * np.cos(t), 50 + 30 * np.sin(t)], 1) + rng.normal(0, 1, (12, 2))])

    def cross():
        j = lambda: float(rng.normal(0, 2))  # noqa: E731
        return Ink([[[50 + j(), 10], [50 + j(), 90]], [[10, 50 + j()], [90, 50 + j()]]])

    for name, make in (("circle", circle), ("cross", cross)):
        write_npz({"train": [make() for _ in range(per_class)], "valid": [make() for _ in range(6)],
                   "test": [make() for _ in range(6)]}, folder / f"{name}.npz")
    return folder


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return _shapes(tmp_path_factory.mktemp("shapes") / "shapes")


@pytest.fixture(scope="module")
def shapes_run(shapes, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "shapes-rnn"
    result = invoke("train", shapes, "--backend", "rnn", "--run-dir", run, "--max-steps", 4,
                    *tiny_backend_args("rnn"), *COMMON)
    assert result.exit_code == 0, result.output
    return run


# -- attributes --------------------------------------------------------------------------------------------------------
def test_midi_key_and_meter_come_from_meta_events_else_from_key_analysis(tmp_path):
    from seqstudio_midi.domain import MidiDomain

    domain = MidiDomain()
    with_key = _midi(tmp_path / "gminor.mid", key_number=19)  # 12 + 7: G minor
    attrs = domain.attributes(domain.read(with_key), with_key)
    assert attrs == {"key": "G:minor", "mode": "minor", "meter": "3/4", "_key_source": "meta"}
    c_major = _midi(tmp_path / "scale.mid", key_number=None, meter=None,
                    pitches=(60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60))
    attrs = domain.attributes(domain.read(c_major), c_major)
    assert attrs["_key_source"] == "analysis" and (attrs["key"], attrs["mode"]) == ("C:major", "major")


def test_abc_header_gives_meter_and_key_and_they_map_back_to_a_prime(tmp_path):
    from seqstudio_text.domain import TextDomain

    path = tmp_path / "tune.abc"
    path.write_text("X:1\nT:A jig\nM:6/8\nL:1/8\nK:Dm\nDFA dAF|GBd gdB|\n")
    domain = TextDomain()
    attrs = domain.attributes(domain.read(path), path)
    assert attrs == {"meter": "6/8", "key": "D:minor", "_header": "MLK", "_unit": "1/8"}
    assert str(domain.condition_prime(attrs)) == "X:1\nM:6/8\nL:1/8\nK:Dm\n"  # the training tunes' shape
    assert str(domain.condition_prime({"meter": "2/4", "key": "G:major"})) == "X:1\nM:2/4\nL:1/16\nK:G\n"
    assert domain.attributes(domain.example_samples()[0], tmp_path / "a.txt") == {}  # plain text: none


def test_a_sketch_rnn_file_stem_is_the_class_label(shapes):
    from seqstudio_strokes.domain import StrokesDomain

    domain = StrokesDomain()
    drawings = domain.read_collection(shapes / "cross.npz")["train"]
    assert {domain.attributes(d, shapes / "cross.npz")["label"] for d in drawings} == {"cross"}


# -- the spec and the embedding ----------------------------------------------------------------------------------------
def test_fit_picks_attributes_with_more_than_one_value_and_keeps_provenance():
    pieces = [{"mode": "major", "meter": "4/4", "_key_source": "meta"},
              {"mode": "minor", "meter": "4/4", "_key_source": "analysis"},
              {"mode": "minor", "meter": "4/4"}, {}]
    spec = ConditionSpec.fit(pieces)
    assert spec.names == ["mode"]  # meter has one value: nothing to condition on
    assert spec.attributes[0].values == ("minor", "major") and dict(spec.notes)["_key_source"]
    assert spec.indices({"mode": "dorian"}) == [0] and spec.indices({}) == [0]  # unknown and missing: 0
    assert ConditionSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert ConditionSpec.fit(pieces, "none") is None
    assert ConditionSpec.fit(pieces, "meter").names == ["meter"]
    with pytest.raises(ConfigError, match="carries no attribute tempo"):
        ConditionSpec.fit(pieces, "tempo")
    drawn = spec.sample(400, torch.Generator().manual_seed(0))
    assert set(drawn[:, 0].tolist()) <= {0, 1, 2} and (drawn[:, 0] == 1).sum() > (drawn[:, 0] == 2).sum()


def test_a_provenance_note_lists_its_commonest_values_and_sums_the_rest():
    """A Lakh-size corpus has thousands of distinct tempos: the note keeps the 12 commonest (by value), and one
    entry counts the others, so the log line and codec.json stay short."""
    pieces = [{"mode": "major" if i % 2 else "minor", "_tempo": str(60 + i % 40)} for i in range(400)]
    pieces += [{"mode": "major", "_tempo": "200"}] * 30  # the commonest value
    notes = dict(ConditionSpec.fit(pieces).notes)["_tempo"]
    assert len(notes) == 13 and notes[-1] == ("29 other values", 290)
    assert ("200", 30) in notes and sum(n for _, n in notes) == 430
    kept = [value for value, _ in notes[:-1]]
    assert kept == sorted(kept)
    few = dict(ConditionSpec.fit(pieces[:8]).notes)["_tempo"]
    assert few == tuple(sorted((str(60 + i), 1) for i in range(8)))  # few values: all listed, no "other"


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_condition_dropout_off_and_on(rate):
    spec = ConditionSpec((Attribute("label", ("a", "b", "c"), (1, 1, 1)),), dropout=rate, size=4)
    emb = ConditionEmbedding(spec).train()
    index = torch.tensor([[1], [2], [3]] * 20)
    unknown = emb.embed(torch.zeros_like(index))
    trained = emb(index)
    if rate == 0.0:
        torch.testing.assert_close(trained, emb.embed(index))
    else:
        torch.testing.assert_close(trained, unknown)  # every condition dropped: the unconditional embedding
    emb.eval()
    torch.testing.assert_close(emb(index), emb.embed(index))  # never dropped outside training


def test_condition_dropout_drops_about_the_asked_share():
    spec = ConditionSpec((Attribute("label", ("a",), (1,)),), dropout=0.3, size=2)
    emb = ConditionEmbedding(spec).train()
    torch.manual_seed(0)
    dropped = (emb.drop(torch.ones(4000, 1, dtype=torch.long)) == 0).float().mean()
    assert 0.25 < float(dropped) < 0.35


# -- every backend, conditionally --------------------------------------------------------------------------------------
SPEC2 = ConditionSpec((Attribute("label", ("a", "b"), (3, 3)), Attribute("size", ("s", "m", "l"), (2, 2, 2))),
                      dropout=0.2, size=6)


@pytest.mark.parametrize("name", CONDITIONAL_BACKENDS)
@pytest.mark.parametrize("domain_name, codec_name", [("strokes", "stroke5"), ("midi", "pianoroll")])
def test_every_backend_trains_conditionally_without_nan_and_listens(name, domain_name, codec_name):
    from test_backends import examples, padded_batch

    _, codec, windows = examples(domain_name, codec_name)
    cls = registry.load_backend(name)
    torch.manual_seed(0)
    model = cls(codec.spec, cls.tiny_config(), conditions=SPEC2)
    batch = padded_batch(windows)
    batch["condition"] = torch.tensor([[1 + i % 2, 1 + i % 3] for i in range(len(windows))])
    optimizers = model.configure_optimizers(1e-2)
    for step in range(3):
        stats = model.training_step(batch, optimizers, StepContext(forward=model, clip_grad_norm=1.0, step=step))
    summary = model.summarize({k: float(v) for k, v in stats.items()})
    assert summary and all(math.isfinite(v) for v in summary.values()), summary
    assert model.condition_embedding.tables[0].weight.grad is not None  # the condition reached the loss
    model.eval()
    if model.has_likelihood:
        assert all(math.isfinite(float(v)) for v in model.evaluate_batch(batch).values())
    samples = {}
    for label in (1, 2):
        g = torch.Generator().manual_seed(3)
        options = SamplingOptions(length=5, condition=torch.tensor([[label, 0]]))
        samples[label] = model.sample(2, options, generator=g)
        assert samples[label].shape == (2, 5, codec.spec.storage_width) and torch.isfinite(samples[label]).all()
    if model.can_interpolate:  # the encoder of a conditional model, asked for no condition: "unknown"
        path = model.interpolate(windows[0], windows[1], 3, SamplingOptions(length=4))
        assert path.shape == (3, 4, codec.spec.storage_width)
    # same seed, other condition: the condition changes what is computed (the embedding is an input)
    a, b = (model.condition_vector(torch.tensor([[i, 0]]), 1) for i in (1, 2))
    assert not torch.equal(a, b)


def test_conditional_rnn_sampling_step_is_its_training_transition():
    from test_backends import SPEC, _sequences, _stepwise

    cls = registry.load_backend("rnn")
    torch.manual_seed(0)
    model = cls(SPEC, cls.tiny_config(), conditions=SPEC2).eval()
    x = _sequences()
    index = torch.tensor([[1, 2], [2, 0], [0, 3]])
    with torch.no_grad():
        trained = model.teacher_forced(x, index)
        state, pending = model.start(x.shape[0], None, SamplingOptions(condition=index), None)
        stepped, _ = _stepwise(model, x, state, pending)
    torch.testing.assert_close(stepped, trained, atol=1e-5, rtol=1e-5)


def test_a_backend_without_conditions_trains_unconditionally_under_auto_and_is_refused_a_list(
        shapes, tmp_path, monkeypatch):
    from test_backends import install_test_plugin

    install_test_plugin(tmp_path / "site", monkeypatch)
    run = tmp_path / "gru"
    result = invoke("train", shapes, "--backend", "gru", "--run-dir", run, "--max-steps", 2,
                    *tiny_backend_args("gru"), *COMMON)
    assert result.exit_code == 0, result.output
    assert json.loads(invoke("info", run, "--json").output)["conditions"] is None
    result = invoke("train", shapes, "--backend", "gru", "--run-dir", tmp_path / "gru2", "--max-steps", 2,
                    "--set", "train.conditions=label", *tiny_backend_args("gru"), *COMMON)
    assert result.exit_code != 0
    assert "cannot be conditioned" in result.output and "train.conditions=none" in result.output


# -- the CLI, end to end -----------------------------------------------------------------------------------------------
def test_train_conditions_by_default_and_info_lists_the_values(shapes_run):
    info = json.loads(invoke("info", shapes_run, "--json").output)
    assert info["conditions"]["attributes"] == {"label": {"circle": 24, "cross": 24}}
    text = invoke("info", shapes_run).output
    assert "label: circle (24), cross (24)" in text
    assert all(math.isfinite(r["nll"]) for r in read_metrics(shapes_run))
    names = sorted(p.name for p in (shapes_run / "samples").glob("sample-0*.svg"))
    assert names == ["sample-000.svg", "sample-001.svg"]  # the usual names; what each was asked: conditions.json
    recorded = json.loads((shapes_run / "samples" / "conditions.json").read_text())
    assert set(recorded) == set(names) and all(v["label"] in ("circle", "cross") for v in recorded.values())


def test_generate_with_a_condition_records_it_and_an_unknown_value_is_one_line(shapes_run, tmp_path):
    result = invoke("generate", shapes_run, "-n", 2, "--condition", "label=cross", "-o", tmp_path / "g", "--seed", 0)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "g" / "conditions.json").read_text()) == {
        "sample-000.svg": {"label": "cross"}, "sample-001.svg": {"label": "cross"}}
    bad = invoke("generate", shapes_run, "--condition", "label=sheep", "-o", tmp_path / "h")
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert bad.output.strip().splitlines() == ["Error: --condition label=sheep: unknown value; valid: circle, cross"]
    bad = invoke("generate", shapes_run, "--condition", "key=G:minor", "-o", tmp_path / "h")
    assert bad.exit_code != 0 and "its conditions: label" in bad.output


def test_the_condition_survives_the_run_directory(shapes_run):
    """A new process loads the run and gets, for label=cross, the embedding this process computes."""
    from seqstudio import api

    run = api.load(shapes_run)
    cs = run.fitted.conditions
    here = run.backend.condition_vector(cs.tensor({"label": "cross"}), 1)[0].tolist()
    code = ("import json, sys; from seqstudio import api; run = api.load(sys.argv[1]); "
            "cs = run.fitted.conditions; s = api.generate(run, n=1, seed=0, conditions=['label=cross']); "
            "print(json.dumps({'asked': s.conditions, 'e': run.backend.condition_vector("
            "cs.tensor({'label': 'cross'}), 1)[0].tolist()}))")
    out = subprocess.run([sys.executable, "-c", code, str(shapes_run)], capture_output=True, text=True, check=True)
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert there["asked"] == [{"label": "cross"}]
    assert there["e"] == pytest.approx(here)
    other = run.backend.condition_vector(cs.tensor({"label": "circle"}), 1)[0].tolist()
    assert there["e"] != pytest.approx(other)


def test_evaluate_reports_the_likelihood_conditioned_as_trained(shapes_run, shapes):
    result = json.loads(invoke("evaluate", shapes_run, "--json").output)
    assert result["conditioned_on"] == ["label"] and math.isfinite(result["nll"])


def test_a_run_trained_without_conditions_refuses_condition(shapes, tmp_path):
    run = tmp_path / "plain"
    result = invoke("train", shapes, "--backend", "rnn", "--run-dir", run, "--max-steps", 2,
                    "--set", "train.conditions=none", *tiny_backend_args("rnn"), *COMMON)
    assert result.exit_code == 0, result.output
    assert "none" in invoke("info", run).output
    result = invoke("generate", run, "--condition", "label=cross", "-o", tmp_path / "g")
    assert result.exit_code != 0 and "trained without conditions" in result.output
    assert "Traceback" not in result.output


def test_text_conditions_become_an_abc_header_prime(tmp_path):
    tunes = tmp_path / "tunes"
    tunes.mkdir()
    for i, (meter, key) in enumerate([("6/8", "Dm"), ("3/4", "G"), ("6/8", "G"), ("3/4", "Dm")] * 2):
        # the unit length first, and 1/16 where ABC's default for 6/8 and 3/4 is 1/8: primes must follow the tunes
        (tunes / f"t{i}.abc").write_text(f"X:1\nL:1/16\nM:{meter}\nK:{key}\nDFA dAF|GBd gdB|ABc dcB|\n")
    run = tmp_path / "abc"
    result = invoke("train", tunes, "--domain", "text", "--backend", "rnn", "--run-dir", run, "--max-steps", 2,
                    *tiny_backend_args("rnn"), *COMMON)
    assert result.exit_code == 0, result.output
    info = json.loads(invoke("info", run, "--json").output)["conditions"]
    assert info["mode"] == "prime" and set(info["attributes"]) == {"key", "meter"}
    result = invoke("generate", run, "-n", 2, "--length", 5, "--condition", "meter=6/8", "--condition", "key=D:minor",
                    "-o", tmp_path / "g")
    assert result.exit_code == 0, result.output
    outputs = sorted((tmp_path / "g").glob("*.abc"))
    assert len(outputs) == 2 and all(p.read_text().startswith("X:1\nL:1/16\nM:6/8\nK:Dm\n") for p in outputs)
    # without --condition, each tune's header is drawn from the training tunes' (meter, key) pairs, written
    # as its prime and recorded in conditions.json, as a conditional run of another domain does
    result = invoke("generate", run, "-n", 12, "--length", 5, "--seed", 3, "-o", tmp_path / "u")
    assert result.exit_code == 0, result.output
    asked = json.loads((tmp_path / "u" / "conditions.json").read_text())
    outputs = sorted((tmp_path / "u").glob("*.abc"))
    assert sorted(asked) == [p.name for p in outputs] and len(outputs) == 12
    pairs = {(v["meter"], v["key"]) for v in asked.values()}
    assert pairs <= {("6/8", "D:minor"), ("3/4", "G:major"), ("6/8", "G:major"), ("3/4", "D:minor")}
    assert len(pairs) >= 2  # drawn, not one header for all
    from seqstudio_text.attributes import attributes, prime_text

    for path in outputs:
        assert path.read_text().startswith(prime_text({"_header": "LMK", "_unit": "1/16", **asked[path.name]}))
        assert {k: v for k, v in attributes(path.read_text()).items() if not k.startswith("_")} == asked[path.name]


def test_evaluate_samples_measures_whether_the_model_listened(shapes_run):
    result = json.loads(invoke("evaluate", shapes_run, "--samples", 8, "--json").output)
    row = result["conditions"]["label"]
    assert row["samples"] == 8 and row["held_out_windows"] == 12
    assert all(0.0 <= row[k] <= 1.0 for k in ("asked", "unconditional", "held_out"))
    assert row["held_out"] >= 0.9  # the judge tells circles from crosses on real held-out drawings


def test_music_judges_key_and_mode_by_analysis():
    from seqstudio_midi.domain import MidiDomain

    judges = MidiDomain().condition_judges(["key", "mode", "meter"], lambda: [])
    scale = MidiDomain().example_samples()[0]  # a C major scale
    assert set(judges) == {"key", "mode"} and judges["key"](scale) == "C:major" and judges["mode"](scale) == "major"


def test_an_augmentation_the_domain_cannot_follow_leaves_the_key_out_but_keeps_the_mode(tmp_path):
    from types import SimpleNamespace

    from seqstudio.config import TrainConfig
    from seqstudio_midi.domain import MidiDomain

    domain = MidiDomain()
    attrs = [{"key": "G:minor", "mode": "minor"}, {"key": "C:major", "mode": "major"}]
    codec = SimpleNamespace(config=SimpleNamespace(transpose=3))  # transposes, but says nothing of by how much
    pieces = [[0]] * len(attrs)  # what the fit reads of a piece: its length
    spec, text = conditions.fit_for_run(codec, domain, pieces, attrs, TrainConfig())
    assert spec.names == ["mode"] and text is None
    with pytest.raises(ConfigError, match="augmentation changes key"):
        conditions.fit_for_run(SimpleNamespace(config=SimpleNamespace(transpose=3)), domain, pieces, attrs,
                               TrainConfig(conditions="key"))


@pytest.mark.parametrize("codec_name", ["notes", "pianoroll", "events"])
def test_transposition_moves_the_key_with_the_notes(codec_name):
    from seqstudio.config import TrainConfig
    from seqstudio.data import make_codec
    from seqstudio_midi.domain import MidiDomain

    domain = MidiDomain()
    codec = make_codec(domain, codec_name, {"transpose": 3})
    attrs = [{"key": "G:minor", "mode": "minor"}, {"key": "C:major", "mode": "major"}] * 2
    spec, _ = conditions.fit_for_run(codec, domain, [[0]] * len(attrs), attrs, TrainConfig(conditions="key,mode"))
    key = spec.attributes[spec.names.index("key")]
    assert key.values[:2] == ("C:major", "G:minor") and key.counts[:2] == (2, 2)  # training indices unchanged
    assert set(key.values) == {"A:major", "Bb:major", "B:major", "C:major", "Db:major", "D:major", "Eb:major",
                               "E:minor", "F:minor", "F#:minor", "G:minor", "G#:minor", "A:minor", "Bb:minor"}
    moves = conditions.move_tables(spec, codec, domain)
    rows = spec.tensor({"key": "G:minor", "mode": "minor"}, 3)
    moved = conditions.moved_indices(rows, [2, -3, None], moves)
    assert [spec.labels(r) for r in moved.tolist()] == [{"key": "A:minor", "mode": "minor"},
                                                        {"key": "E:minor", "mode": "minor"},
                                                        {"key": "G:minor", "mode": "minor"}]


def test_a_transposed_run_takes_the_readme_key_condition_and_its_batches_move_the_key(chorales, tmp_path):
    """README: ``generate RUN --condition key=G:minor``, on a run trained as the demo is (notes, transpose 3)."""
    from seqstudio import api
    from seqstudio import data
    from seqstudio.data import make_batch
    from seqstudio.rundir import load_fitted

    run = tmp_path / "run"
    args = ["--backend", "rnn", *tiny_backend_args("rnn"), "--codec", "notes", "--set", "codec.transpose=3",
            "--set", "train.valid_every=3", "--set", "train.samples=0", "--batch-size", "8", "--max-steps", 2]
    result = invoke("train", chorales, "--run-dir", run, *args)
    assert result.exit_code == 0, result.output
    assert "key moves with the codec's augmentation" in result.output, result.output
    spec = conditions.ConditionSpec.from_dict(json.loads((run / "codec.json").read_text())["_conditions"])
    key = spec.attributes[spec.names.index("key")]
    trained = [v for v, n in zip(key.values, key.counts) if n > 0]
    reached = [v for v, n in zip(key.values, key.counts) if n == 0]
    assert trained and reached and "G:minor" in key.values, key
    for value in ("G:minor", reached[0]):
        out = tmp_path / f"gen-{value.replace(':', '-')}"
        result = invoke("generate", run, "-n", 2, "--length", 16, "--condition", f"key={value}", "-o", out,
                        "--seed", 0, "--quiet")
        assert result.exit_code == 0, result.output
        assert len(list(out.glob("sample-*.mid"))) == 2
        assert {c["key"] for c in json.loads((out / "conditions.json").read_text()).values()} == {value}

    # Each training window's key index is its piece's key moved by the window's transposition.
    loaded = api.load_spec(run)
    prepared = data.prepare(loaded, fitted=load_fitted(run, loaded)[1], progress=False, splits=("train",))
    codec, windows = prepared.codec, prepared.windows["train"]
    index = torch.arange(min(len(windows), 24))
    batch = make_batch(windows, index, torch.device("cpu"), codec, torch.Generator().manual_seed(7))
    x, lengths = windows.gather(index)
    again = torch.Generator().manual_seed(7)
    shifts = [codec.augment_with_change(x[i, :n], again)[1] for i, n in enumerate(lengths.tolist())]
    from seqstudio_midi.attributes import transposed_key

    j = spec.names.index("key")
    before = [spec.attributes[j].label(int(r[j])) for r in windows.conditions[index]]
    after = [spec.attributes[j].label(int(r[j])) for r in batch["condition"]]
    assert any(k != 0 for k in shifts), shifts
    assert after == [transposed_key(b, k) if b != conditions.UNKNOWN else b for b, k in zip(before, shifts)]


def test_the_train_log_says_the_provenance_counts_in_words_not_internal_keys(chorales, tmp_path):
    args = [a for a in TINY if a != "--quiet"]
    result = invoke("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 1, *args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("conditions:")]
    assert lines and not any(": _" in line or "_key_source" in line or "_program" in line for line in lines), lines
    assert any("key signature (meta)" in line for line in lines), lines
