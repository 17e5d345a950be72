"""The run specification end to end: resolved once, saved as config.yaml, loaded back, used by resume, and the
settings that ride on it (train.threads, the encoding cache key, declared domain abilities)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from conftest import TINY, invoke, read_metrics
from test_errors import assert_clean_error

from seqstudio import api, data, encoding, registry
from seqstudio.rundir import load_spec
from seqstudio.runspec import RunSpec

# config.yaml as the code before RunSpec wrote it for `trained_run` (no train.threads yet); {data} = the folder.
OLD_CONFIG = """\
domain: midi
codec:
  name: pianoroll
  window: 64
  hop: 0
  min_length: 4
  transpose: 0
  steps_per_quarter: 4
  pitch_low: 21
  pitch_high: 108
  merge_tracks: true
  tempo: 120.0
  onsets: true
  window_bars: 4
  hop_bars: 1
backend:
  name: seqvae
  latent_size: 8
  encoder_size: 24
  decoder_size: 24
  decoder_layers: 1
  dropout: 0.1
  beta: 1.0
  kl_warmup_steps: 1000
  free_nats: 0.0
  mixtures: 20
train:
  batch_size: 8
  lr: 0.001
  weight_decay: 0.0
  lr_warmup_steps: 0
  clip_grad_norm: 1.0
  init_output_bias: true
  max_steps: 6
  epochs: 0
  max_minutes: 0.0
  valid_every: 3
  patience: 10
  seed: 1
  device: auto
  precision: auto
  samples: 2
  workers: 0
  valid_fraction: 0.1
  test_fraction: 0.1
data:
  path: {data}
"""


@pytest.fixture
def torch_threads():
    """Tests that change PyTorch's thread count give it back."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def _overrides(args: list[str]) -> list[str]:
    return [value for flag, value in zip(args, args[1:]) if flag == "--set"]


# -- config.yaml <-> RunSpec ------------------------------------------------------------------------------------------
def test_config_yaml_round_trips_into_the_same_spec(trained_run, chorales):
    spec = load_spec(trained_run)
    text = (trained_run / "config.yaml").read_text()
    assert yaml.safe_dump(spec.to_dict(), sort_keys=False) == text
    assert RunSpec.from_dict(yaml.safe_load(text)) == spec
    # the same layers resolve into the same spec (the fixture's command line, see conftest)
    again = api.resolve_config(chorales, backend="seqvae", codec="pianoroll", overrides=_overrides(TINY),
                               train_options={"max_steps": 6, "seed": 1, "batch_size": 8})
    assert again == spec
    assert spec.codec_name == "pianoroll" and spec.backend_name == "seqvae" and spec.domain == "midi"
    assert spec.backend_config.latent_size == 8 and spec.train.max_steps == 6
    assert api.load(trained_run).spec == spec


def test_spec_is_frozen_and_objects_get_their_own_options(trained_run):
    spec = load_spec(trained_run)
    with pytest.raises(AttributeError):
        spec.backend_name = "vrnn"
    with pytest.raises(AttributeError):
        spec.train.lr = 1.0
    with pytest.raises(TypeError):
        spec.data["path"] = "elsewhere"
    codec = spec.make_codec()
    codec.config.window_bars = 99
    assert spec.codec_config.window_bars == 4


def test_a_config_yaml_written_before_the_run_spec_still_loads(trained_run, chorales, tmp_path):
    old = tmp_path / "old-run"
    shutil.copytree(trained_run, old)
    (old / "config.yaml").write_text(OLD_CONFIG.format(data=chorales.resolve()))
    spec = load_spec(old)
    assert spec.train.threads == 0 and spec.backend_config.latent_size == 8 and spec.data_path == chorales.resolve()
    result = invoke("generate", old, "-n", 2, "-o", tmp_path / "out", "--seed", 0, "--no-pictures")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("*.mid"))) == 2
    result = invoke("evaluate", old, "--split", "valid", "--json")
    assert result.exit_code == 0, result.output


def test_a_damaged_config_yaml_is_reported(trained_run, tmp_path):
    broken = tmp_path / "run"
    shutil.copytree(trained_run, broken)
    (broken / "config.yaml").write_text("domain: midi\ntrain: {}\n")
    assert_clean_error(invoke("generate", broken, "-o", tmp_path / "o"), "config.yaml", "not a run configuration")
    (broken / "config.yaml").write_text(OLD_CONFIG.replace("  latent_size: 8", "  latnet_size: 8"))
    assert_clean_error(invoke("generate", broken, "-o", tmp_path / "o"), "latnet_size", "latent_size")


# -- resume -----------------------------------------------------------------------------------------------------------
def test_resume_uses_the_saved_spec_with_new_budgets_and_threads(chorales, tmp_path, torch_threads):
    run_dir = tmp_path / "run"
    first = invoke("train", chorales, "--run-dir", run_dir, "--max-steps", 3, "--lr", 0.002, *TINY,
                   "--set", "backend.latent_size=6")
    assert first.exit_code == 0, first.output
    saved = load_spec(run_dir)
    result = invoke("train", "--resume", "--run-dir", run_dir, "--max-steps", 5, "--threads", 1, "--quiet")
    assert result.exit_code == 0, result.output
    resumed = load_spec(run_dir)
    assert resumed.backend_config == saved.backend_config and resumed.codec_config == saved.codec_config
    assert resumed.train.lr == 0.002 and resumed.train.max_steps == 5 and resumed.train.threads == 1
    assert torch.load(run_dir / "last.pt", weights_only=True)["state"]["step"] == 5


def test_resume_takes_a_new_learning_rate_and_logs_each_step_once(chorales, tmp_path):
    run_dir = tmp_path / "run"
    first = invoke("train", chorales, "--run-dir", run_dir, "--max-steps", 4, "--lr", 0.002, *TINY,
                   "--set", "train.valid_every=2")
    assert first.exit_code == 0, first.output
    # a process killed after its last checkpoint (step 4) had logged steps 5 and 6, and a torn line
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 5, "split": "train", "lr": 0.002}) + "\n")
        f.write(json.dumps({"step": 6, "split": "valid"}) + "\n" + '{"step": 7, "spl')
    result = invoke("train", "--resume", "--run-dir", run_dir, "--max-steps", 8, "--lr", 0.0005, "--quiet")
    assert result.exit_code == 0, result.output
    records = read_metrics(run_dir)
    train = [(r["step"], r["lr"]) for r in records if r["split"] == "train"]
    assert [step for step, _ in train] == sorted({step for step, _ in train})  # no step twice
    assert all(lr == 0.002 for step, lr in train if step <= 4)
    assert all(lr == 0.0005 for step, lr in train if step > 4) and train[-1][0] == 8
    assert load_spec(run_dir).train.lr == 0.0005


def test_resume_refuses_a_changed_model_and_leaves_the_run_as_it_was(chorales, tmp_path):
    run_dir = tmp_path / "run"
    assert invoke("train", chorales, "--run-dir", run_dir, "--max-steps", 2, *TINY).exit_code == 0
    before = (run_dir / "config.yaml").read_bytes()
    result = invoke("train", "--resume", "--run-dir", run_dir, "--max-steps", 4, "--quiet",
                    "--set", "backend.latent_size=9")
    assert_clean_error(result, "does not match this configuration", "change only budgets")
    assert (run_dir / "config.yaml").read_bytes() == before
    assert invoke("generate", run_dir, "-n", 1, "-o", tmp_path / "out", "--no-pictures").exit_code == 0


def test_a_refused_model_change_on_resume_is_one_clean_line_before_any_data_is_read(chorales, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(chorales, data)
    run_dir = tmp_path / "run"
    assert invoke("train", data, "--run-dir", run_dir, "--max-steps", 2, *TINY).exit_code == 0
    shutil.rmtree(data)  # a resume that read the data first would fail on the missing folder instead
    result = invoke("train", "--resume", "--run-dir", run_dir, "--max-steps", 4, "--set", "backend.latent_size=9")
    assert_clean_error(result, "does not match this configuration", "backend.latent_size: ", "-> 9",
                       "change only budgets")
    assert "encoding" not in result.output and "size mismatch" not in result.output


# -- train.threads ------------------------------------------------------------------------------------------------------
def test_train_threads_applies_to_training_generation_and_evaluation(chorales, tmp_path, monkeypatch,
                                                                     torch_threads):
    seqvae = registry.load_backend("seqvae")
    seen = []
    original = seqvae.training_step

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(seqvae, "training_step", spy)
    default, wanted = torch_threads, torch_threads + 1
    result = invoke("train", chorales, "--run-dir", tmp_path / "plain", "--max-steps", 2, *TINY)
    assert result.exit_code == 0, result.output
    assert seen == [default, default]  # 0: PyTorch's own choice is left alone
    seen.clear()
    run_dir = tmp_path / "run"
    result = invoke("train", chorales, "--run-dir", run_dir, "--max-steps", 2, *TINY, "--set", f"train.threads={wanted}")
    assert result.exit_code == 0, result.output
    assert seen == [wanted, wanted]
    for command in (["generate", run_dir, "-n", 1, "-o", tmp_path / "out", "--no-pictures"],
                    ["evaluate", run_dir, "--split", "valid", "--json"]):
        torch.set_num_threads(default)
        assert invoke(*command).exit_code == 0
        assert torch.get_num_threads() == wanted, command[0]
    assert_clean_error(invoke("train", chorales, "--run-dir", tmp_path / "bad", "--set", "train.threads=-1"),
                       "train.threads must be >= 0")


# -- the encoding cache -------------------------------------------------------------------------------------------------
def test_changing_windows_reuses_cached_encodings_but_an_encoding_option_does_not(chorales, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(cache))
    common = ["--max-steps", 1, *TINY, "--codec", "pianoroll", "--set", "train.workers=1", "--set", "train.samples=0"]
    assert invoke("train", chorales, "--run-dir", tmp_path / "a", *common).exit_code == 0
    def codec_keys():  # the cache's per-codec folders (beside them: hashes/ and prepared/)
        return sorted(p.name for p in cache.iterdir() if p.name not in ("hashes", "prepared"))

    keys = codec_keys()
    assert len(keys) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("a cached file was parsed again")

    with monkeypatch.context() as m:
        m.setattr(encoding, "read_and_encode", refuse)
        result = invoke("train", chorales, "--run-dir", tmp_path / "b", *common, "--set", "codec.window_bars=2",
                        "--set", "codec.hop_bars=2", "--set", "codec.min_length=8", "--set", "codec.transpose=3")
        assert result.exit_code == 0, result.output
        assert codec_keys() == keys
        with pytest.raises(AssertionError, match="parsed again"):
            invoke("train", chorales, "--run-dir", tmp_path / "c", *common, "--set", "codec.steps_per_quarter=2")


def test_codecs_say_which_options_change_the_encoding():
    midi, strokes = registry.load_domain("midi")(), registry.load_domain("strokes")()
    roll = data.make_codec(midi, "pianoroll").encoding_config()
    assert "steps_per_quarter" in roll and "onsets" in roll
    assert not {"window", "hop", "min_length", "window_bars", "hop_bars", "transpose"} & set(roll)
    assert "transpose" not in data.make_codec(midi, "events").encoding_config()
    ink = data.make_codec(strokes, "stroke5").encoding_config()
    assert "simplify" in ink and not {"scale_jitter", "drop_points", "window"} & set(ink)


def test_fitted_is_declared_by_the_codec():
    strokes = data.make_codec(registry.load_domain("strokes")(), "stroke5")
    assert strokes.needs_fit and not strokes.is_fitted
    strokes.load_state_dict({"scale": 2.5})
    assert strokes.is_fitted
    assert data.make_codec(registry.load_domain("midi")(), "pianoroll").is_fitted  # nothing to learn


# -- declared domain abilities ------------------------------------------------------------------------------------------
def test_domains_declare_what_they_can_draw(tmp_path):
    abilities = {name: (cls.can_render, cls.can_write_sheet)
                 for name in ("midi", "strokes", "text") for cls in [registry.load_domain(name)]}
    assert abilities == {"midi": (True, False), "strokes": (True, True), "text": (False, False)}
    note = tmp_path / "note.txt"
    note.write_text("hello\n")
    assert_clean_error(invoke("render", note, "-o", tmp_path / "note.png"), "'text' cannot draw samples")
    assert not (tmp_path / "note.png").exists()


# -- train.threads=0 (auto) -------------------------------------------------------------------------------------------
def test_auto_threads_use_the_idle_cores_and_honour_omp_num_threads(monkeypatch, torch_threads):
    from seqstudio.training import device

    assert device.idle_cores(cores=2, load=0.1) == 2
    assert device.idle_cores(cores=2, load=1.2) == 1  # one core busy with another job
    assert device.idle_cores(cores=2, load=7.0) == 1  # never below one
    assert device.idle_cores(cores=16, load=3.6) == 12
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert device.auto_threads() is None  # the user's setting, which PyTorch already follows, stays
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(device, "idle_cores", lambda: 6)
    assert device.auto_threads() == 6
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two torchrun processes on this machine share its idle cores
    assert device.auto_threads() == 3
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setattr(device, "idle_cores", lambda: 1)
    assert device.use_threads(0) == 1 and torch.get_num_threads() == 1
    assert device.use_threads(2) == 2 and torch.get_num_threads() == 2


def test_training_and_generation_flush_denormals(chorales, trained_run, tmp_path):
    """Weight decay pulls unused weights into the denormal range, where x86 computes many times slower
    (BENCHMARKS.md, "Denormals"): training, generation and evaluation read and write them as zero."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals (not x86 with SSE3)")
    tiny = torch.tensor([1e-39])
    assert (tiny * 1.0).item() != 0  # kept, with flushing off
    try:
        assert invoke("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", "1", *TINY).exit_code == 0
        assert (tiny * 1.0).item() == 0
        for command in (["generate", trained_run, "-n", "1", "-o", tmp_path / "out", "--seed", "0"],
                        ["evaluate", trained_run, "--split", "valid", "--json"]):
            torch.set_flush_denormal(False)
            assert invoke(*command).exit_code == 0
            assert (tiny * 1.0).item() == 0, command[0]
    finally:
        torch.set_flush_denormal(True)
