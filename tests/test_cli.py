"""The CLI end to end on real chorales: train -> generate -> evaluate, as a user runs it."""

from __future__ import annotations

import json
import shutil

import music21
import pretty_midi
import pytest
import torch

from conftest import TINY, invoke, read_metrics


def test_train_writes_a_complete_run_directory(trained_run):
    for name in ("config.yaml", "codec.json", "spec.json", "last.pt", "best.pt", "metrics.jsonl"):
        assert (trained_run / name).is_file(), name
    records = read_metrics(trained_run)
    valid = [r for r in records if r["split"] == "valid"]
    train = [r for r in records if r["split"] == "train"]
    assert valid and train
    assert all(torch.isfinite(torch.tensor(r["nll"])) for r in records)
    assert valid[-1]["step"] == 6
    samples = sorted((trained_run / "samples").glob("*.mid"))
    assert len(samples) == 2 and all(p.with_suffix(".png").stat().st_size > 0 for p in samples)
    # the checkpoint is loadable without executing code
    ckpt = torch.load(trained_run / "best.pt", weights_only=True)
    assert "model" in ckpt and ckpt["state"]["step"] > 0
    # the run stopped on a validation step: last.pt must still say why it stopped
    assert torch.load(trained_run / "last.pt", weights_only=True)["state"]["stopped_because"] == "max_steps"


def test_generate_writes_midi_that_pretty_midi_and_music21_open(trained_run, tmp_path):
    out = tmp_path / "out"
    result = invoke("generate", trained_run, "-n", 3, "-o", out, "--seed", 3, "--temperature", 0.8)
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.mid"))
    assert len(files) == 3
    for f in files:
        pm = pretty_midi.PrettyMIDI(str(f))
        assert pm.instruments, f
        music21.converter.parse(str(f))
        assert f.with_suffix(".png").stat().st_size > 0


def test_generate_is_reproducible_with_a_seed(trained_run, tmp_path):
    for name in ("a", "b"):
        assert invoke("generate", trained_run, "-n", 2, "-o", tmp_path / name, "--seed", 7,
                      "--no-pictures").exit_code == 0
    generated = sorted((tmp_path / "a").glob("*.mid"))
    assert len(generated) == 2
    for fa in generated:
        notes_a = [(n.pitch, n.start) for i in pretty_midi.PrettyMIDI(str(fa)).instruments for n in i.notes]
        notes_b = [(n.pitch, n.start) for i in pretty_midi.PrettyMIDI(str(tmp_path / "b" / fa.name)).instruments
                   for n in i.notes]
        assert notes_a == notes_b


def test_generate_length_sets_the_number_of_steps(trained_run, tmp_path):
    result = invoke("generate", trained_run, "-n", 1, "-o", tmp_path, "--length", 16, "--seed", 0,
                    "--temperature", 0, "--no-pictures")
    assert result.exit_code == 0
    pm = pretty_midi.PrettyMIDI(str(next(tmp_path.glob("*.mid"))))
    # 16 steps at 4 steps per quarter and 120 bpm = 2 seconds at most
    assert pm.get_end_time() <= 2.0 + 1e-6


def test_interpolate_between_two_files(trained_run, chorales, tmp_path):
    a, b = sorted(chorales.glob("*.mid"))[:2]
    result = invoke("generate", trained_run, "--interpolate", a, b, "--steps", 4, "-o", tmp_path, "--seed", 0)
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("interp-*.mid"))) == 4


def test_evaluate_json_reports_held_out_figures(trained_run, chorales):
    result = invoke("evaluate", trained_run, chorales, "--split", "valid", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    for key in ("nll", "kl", "elbo", "accuracy"):
        assert isinstance(figures[key], float)
    assert figures["elbo"] == pytest.approx(-(figures["nll"] + figures["kl"]))
    assert 0.0 <= figures["accuracy"] <= 1.0
    assert figures["split"] == "valid" and figures["windows"] > 0


def test_evaluate_text_output(trained_run):
    result = invoke("evaluate", trained_run, "--split", "valid")
    assert result.exit_code == 0
    assert "elbo" in result.output and "accuracy" in result.output


def test_plugins_lists_domain_and_backend_with_origin():
    result = invoke("plugins")
    assert result.exit_code == 0
    assert "midi" in result.output and "seqstudio-midi" in result.output
    assert "seqvae" in result.output and "seqstudio.backends.seqvae:SeqVAE" in result.output
    sources = result.output.split("recipe sources:")[1]  # the recipe source types too, the plugins' among them
    assert "folder" in sources and "music21-corpus" in sources and "seqstudio-midi" in sources


def test_data_list_shows_the_embedded_recipes():
    result = invoke("data", "list")
    assert "bach-chorales" in result.output and "essen-folk" in result.output


def test_essen_recipe_splits_abc_books_into_tunes(tmp_path):
    result = invoke("data", "build", "essen-folk", tmp_path / "essen", "--limit", 5, "--quiet")
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "essen").glob("*.mid"))
    # one tune per file (the first book holds more than 5 tunes); music21 rejects the odd tune, which is
    # skipped with a warning rather than failing the build
    assert 4 <= len(files) <= 5 and f"wrote {len(files)} files" in result.output
    assert all(f.stem.startswith("altdeu10-") for f in files)
    assert all(pretty_midi.PrettyMIDI(str(f)).instruments[0].notes for f in files)


def test_python_api_matches_the_cli(trained_run, chorales, tmp_path):
    import seqstudio

    run = seqstudio.load(trained_run)
    x = seqstudio.encode_file(run, sorted(chorales.glob("*.mid"))[0])
    assert x.shape[1] == run.codec.spec.storage_width
    decoded = seqstudio.decode_tensor(run, x)
    assert isinstance(decoded, pretty_midi.PrettyMIDI)
    samples = seqstudio.generate(run, n=2, length=8, seed=0)
    paths = seqstudio.write_samples(run, samples, tmp_path, render=False)
    assert [p.suffix for p in paths] == [".mid", ".mid"]


def test_config_file_and_overrides_reach_the_run(chorales, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("backend:\n  latent_size: 5\ncodec:\n  window_bars: 2\ntrain:\n  lr: 0.002\n")
    run_dir = tmp_path / "run"
    result = invoke("train", chorales, "--run-dir", run_dir, "--config", cfg, "--max-steps", 2, *TINY,
                    "--codec", "pianoroll", "--set", "backend.latent_size=6")
    assert result.exit_code == 0, result.output
    import yaml

    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["backend"]["latent_size"] == 6  # --set beats the file
    assert saved["codec"]["window_bars"] == 2
    assert saved["train"]["lr"] == 0.002
    assert saved["train"]["max_steps"] == 2


def test_folder_with_train_valid_test_subfolders_is_used_as_given(chorales, tmp_path):
    files = sorted(chorales.glob("*.mid"))
    for split, chunk in (("train", files[:5]), ("valid", files[5:7]), ("test", files[7:])):
        (tmp_path / "d" / split).mkdir(parents=True)
        for f in chunk:
            (tmp_path / "d" / split / f.name).write_bytes(f.read_bytes())
    from seqstudio import data, registry

    splits = data.split_files(tmp_path / "d", registry.load_domain("midi")())
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [5, 2, 1]
    assert {p.name for p in splits["valid"]} == {f.name for f in files[5:7]}


def test_hash_split_depends_on_content_not_names(chorales, tmp_path):
    from seqstudio import data, registry

    domain = registry.load_domain("midi")()
    before = data.split_files(chorales, domain)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for f in chorales.glob("*.mid"):
        (renamed / f"x-{f.stem[::-1]}.mid").write_bytes(f.read_bytes())
    after = data.split_files(renamed, domain)
    for split in data.SPLITS:
        assert sorted(f"x-{p.stem[::-1]}.mid" for p in before[split]) == sorted(p.name for p in after[split])
    assert before["train"] and before["valid"]


def test_second_run_reads_encodings_from_the_cache(chorales, monkeypatch):
    from seqstudio import data, encoding, registry

    domain = registry.load_domain("midi")()
    codec = data.make_codec(domain, "pianoroll")
    files = sorted(chorales.glob("*.mid"))
    first = data.encode_files(files, "midi", codec, workers=1, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("a cached file was parsed again")

    monkeypatch.setattr(encoding, "read_and_encode", refuse)
    second = data.encode_files(files, "midi", codec, workers=1, progress=False)
    assert list(first) == list(second)
    assert all(torch.equal(first[f].tensor(), second[f].tensor()) for f in files)
    # a different codec configuration is a different cache entry
    other = data.make_codec(domain, "pianoroll", {"steps_per_quarter": 2})
    with pytest.raises(AssertionError, match="parsed again"):
        data.encode_files(files[:1], "midi", other, workers=1, progress=False)


def test_resume_gives_the_same_model_as_an_uninterrupted_run(chorales, tmp_path):
    # the split falls inside the learning-rate warm-up, which the resumed run must continue, not restart
    common = ["--seed", 5, *TINY, "--set", "codec.transpose=2", "--set", "train.lr_warmup_steps=7"]
    assert invoke("train", chorales, "--run-dir", tmp_path / "full", "--max-steps", 8, *common).exit_code == 0
    assert invoke("train", chorales, "--run-dir", tmp_path / "split", "--max-steps", 5, *common).exit_code == 0
    result = invoke("train", "--resume", "--run-dir", tmp_path / "split", "--max-steps", 8, "--quiet")
    assert result.exit_code == 0, result.output
    full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert full["state"]["step"] == split["state"]["step"] == 8
    for key, value in full["model"].items():
        torch.testing.assert_close(split["model"][key], value, msg=key)


def test_learning_rate_warms_up_linearly_then_stays(chorales, tmp_path):
    result = invoke("train", chorales, "--run-dir", tmp_path / "r", "--max-steps", 6, "--lr", 0.004, *TINY,
                    "--set", "train.lr_warmup_steps=4", "--set", "train.valid_every=1")
    assert result.exit_code == 0, result.output
    lrs = [r["lr"] for r in read_metrics(tmp_path / "r") if r["split"] == "train"]
    assert lrs == pytest.approx([0.001, 0.002, 0.003, 0.004, 0.004, 0.004])
    bad = invoke("train", chorales, "--run-dir", tmp_path / "bad", *TINY, "--set", "train.lr_warmup_steps=-1")
    assert bad.exit_code != 0 and "lr_warmup_steps must be >= 0" in bad.output


def test_output_heads_start_at_the_data_marginals_unless_switched_off(chorales, tmp_path):
    biases = {}
    for init in ("true", "false"):
        run = tmp_path / init
        result = invoke("train", chorales, "--run-dir", run, "--max-steps", 1, "--lr", 1e-9, *TINY,
                        "--set", f"train.init_output_bias={init}")
        assert result.exit_code == 0, result.output
        model = torch.load(run / "last.pt", weights_only=True)["model"]
        (key,) = [k for k in model if k.endswith("head.proj.bias")]
        biases[init] = model[key]
    # a piano-roll is mostly silent: at the marginals nearly every key's logit is far below 0
    assert float(biases["true"].median()) < -2.0
    assert float(biases["false"].abs().max()) < 0.5  # PyTorch's default: uniform within 1/sqrt(fan_in)


def test_max_minutes_budget_stops_training(chorales, tmp_path):
    result = invoke("train", chorales, "--run-dir", tmp_path / "r", "--max-minutes", 0.002, *TINY)
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["state"]
    assert state["stopped_because"] == "max_minutes", state


def test_events_codec_trains_and_generates(chorales, tmp_path):
    run_dir = tmp_path / "run"
    result = invoke("train", chorales, "--codec", "events", "--run-dir", run_dir, "--max-steps", 3, *TINY)
    assert result.exit_code == 0, result.output
    assert invoke("generate", run_dir, "-n", 2, "-o", tmp_path / "out", "--length", 40,
                  "--seed", 0).exit_code == 0
    generated = sorted((tmp_path / "out").glob("*.mid"))
    assert len(generated) == 2
    for f in generated:
        pretty_midi.PrettyMIDI(str(f))


def test_early_stopping_when_validation_stops_improving(chorales, tmp_path):
    # lr=0: the model never changes, so validation (same noise every time) never improves after the first.
    result = invoke("train", chorales, "--run-dir", tmp_path / "r", "--max-steps", 50, *TINY,
                    "--set", "train.lr=0", "--set", "train.patience=2", "--set", "train.valid_every=1")
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["state"]
    assert state["stopped_because"] == "early_stopping"
    assert state["step"] == 3


def test_generate_says_which_step_it_used_and_whether_the_run_is_still_training(trained_run, tmp_path):
    done = invoke("generate", trained_run, "-n", 1, "-o", tmp_path / "a", "--no-pictures")
    assert done.exit_code == 0, done.output
    assert "using best.pt (step" in done.output and "training finished: max_steps" in done.output
    running = tmp_path / "running"  # a run whose last.pt gives no reason for stopping: it is still going
    shutil.copytree(trained_run, running)
    last = torch.load(running / "last.pt", weights_only=True)
    last["state"]["stopped_because"] = ""
    torch.save(last, running / "last.pt")
    result = invoke("generate", running, "-n", 1, "-o", tmp_path / "b", "--no-pictures")
    assert result.exit_code == 0, result.output
    assert "using best.pt from step" in result.output and "still training" in result.output
    assert f"last.pt is at step {last['state']['step']}" in result.output


def test_midi_trains_note_tokens_on_the_rnn_when_nothing_is_named(chorales, tmp_path):
    """Issue 25: the MIDI defaults are the pair the sample judge ranked best (BENCHMARKS.md), not the seq-VAE's roll."""
    run = tmp_path / "run"
    result = invoke("train", chorales, "--run-dir", run, "--max-steps", 1, "--batch-size", 4, "--quiet",
                    "--set", "train.samples=0", "--set", "backend.hidden_size=16", "--set", "backend.phi_size=16")
    assert result.exit_code == 0, result.output
    config = (run / "config.yaml").read_text()
    assert "codec:\n  name: notes\n" in config and "backend:\n  name: rnn\n" in config
    generated = tmp_path / "out"
    assert invoke("generate", run, "-n", 1, "-o", generated, "--length", 40, "--no-pictures", "--quiet").exit_code == 0
    assert len(list(generated.glob("*.mid"))) == 1
