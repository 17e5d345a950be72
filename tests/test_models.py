"""Models that travel: the exported layout (round trip, tampering), the seqstudio.models entry point, fine-tuning."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load, save_file

from seqstudio import models
from seqstudio.cli import main

from conftest import invoke


def run_cli(*args):
    """The real CLI, as a user sees it: errors become one line and an exit status, never a traceback."""
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("exported") / "model"
    invoke("export", trained_run, dest)
    return dest


def load_file(path: Path) -> dict:
    """The tensors of a safetensors file, read into memory (not memory-mapped: the tests overwrite the file)."""
    return load(Path(path).read_bytes())


def test_export_writes_the_hub_layout_and_round_trips_bit_for_bit(trained_run, exported, tmp_path):
    assert sorted(p.name for p in exported.iterdir()) == ["MODEL.md", "codec.json", "config.json",
                                                           "model.safetensors"]
    saved = torch.load(trained_run / "best.pt", weights_only=True)["model"]
    weights = load_file(exported / "model.safetensors")
    assert weights.keys() == saved.keys() and all(torch.equal(weights[k], saved[k]) for k in saved)
    again = tmp_path / "again"
    invoke("export", exported, again)  # the folder loads as a run, and exporting it gives the same bytes
    for name in ("MODEL.md", "codec.json", "config.json", "model.safetensors"):
        assert (again / name).read_bytes() == (exported / name).read_bytes(), name
    half, half_again = tmp_path / "half", tmp_path / "half-again"
    invoke("export", trained_run, half, "--dtype", "float16")
    invoke("export", half, half_again)  # a half-precision folder stays half precision, byte for byte
    assert all((half / n).read_bytes() == (half_again / n).read_bytes() for n in ("config.json", "model.safetensors"))
    assert (half / "model.safetensors").stat().st_size < 0.6 * (exported / "model.safetensors").stat().st_size


def test_an_exported_folder_works_wherever_a_run_does(exported, tmp_path):
    out = tmp_path / "out"
    invoke("generate", exported, "-n", "2", "-o", out, "--length", "16", "--seed", "0", "--no-pictures")
    assert len(list(out.glob("*.mid"))) == 2
    assert "midi / pianoroll / seqvae" in invoke("info", exported).output
    result = invoke("evaluate", exported, "--split", "valid", "--json")
    assert json.loads(result.output.strip().splitlines()[-1])["steps"] > 0
    invoke("report", exported, "-o", tmp_path / "page", "--quiet")
    assert (tmp_path / "page" / "index.html").is_file()
    from seqstudio import api

    assert api.load(models.resolve(exported)).backend is not None
    assert not any(p.name not in ("MODEL.md", "codec.json", "config.json", "model.safetensors")
                   for p in exported.iterdir()), "loading must not write into the folder"


def _tamper_bad_config(folder: Path):
    config = json.loads((folder / "config.json").read_text())
    config["run"]["backend"]["latent_size"] = 7  # another model than the weights'
    (folder / "config.json").write_text(json.dumps(config))


def _tamper_not_json(folder: Path):
    (folder / "config.json").write_text("{not json")


def _tamper_wrong_shape(folder: Path):
    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = torch.zeros(*(s + 1 for s in weights[name].shape))
    save_file(weights, folder / "model.safetensors")


def _tamper_pickled_weights(folder: Path):
    torch.save({"model": load_file(folder / "model.safetensors")}, folder / "model.safetensors")


def _tamper_pickle_beside(folder: Path):
    torch.save({}, folder / "pytorch_model.bin")


def _tamper_missing_codec(folder: Path):
    (folder / "codec.json").unlink()


def _tamper_nan(folder: Path):
    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, folder / "model.safetensors")


@pytest.mark.parametrize("tamper, expected", [
    (_tamper_bad_config, "model.safetensors does not fit"),
    (_tamper_not_json, "config.json is damaged: not valid JSON"),
    (_tamper_wrong_shape, "model.safetensors does not fit"),
    (_tamper_pickled_weights, "is not a safetensors file (it is a pickle"),
    (_tamper_pickle_beside, "pytorch_model.bin may hold a pickle"),
    (_tamper_missing_codec, "codec.json missing"),
    (_tamper_nan, "NaN or infinite"),
])
@pytest.mark.parametrize("command", ["generate", "info"])
def test_a_tampered_folder_is_refused_in_one_line(exported, tmp_path, tamper, expected, command):
    folder = tmp_path / "model"
    shutil.copytree(exported, folder)
    tamper(folder)
    args = [folder, "-o", tmp_path / "out"] if command == "generate" else [folder]
    result = run_cli(command, *args)
    assert result.exit_code != 0
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith(("Usage:", "Try "))]
    assert len(lines) == 1 and expected in lines[0], result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture
def third_party(exported, tmp_path, monkeypatch) -> Path:
    """A models package from elsewhere: a dist-info with an entry point in the seqstudio.models group, on sys.path."""
    site = tmp_path / "site"
    package = site / "acme_models"
    shutil.copytree(exported, package / "acme-chorales")
    (package / "__init__.py").write_text("raise RuntimeError('listing models must not import the package')\n")
    card = package / "acme-chorales" / "MODEL.md"
    card.write_text("# acme-chorales: chorales from a third party\n\nA card.\n")
    info = site / "acme_models-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-models\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seqstudio.models]\nacme = acme_models\n")
    monkeypatch.syspath_prepend(str(site))
    return package


def test_a_third_party_models_package_is_listed_and_usable(third_party, tmp_path):
    listed = json.loads(invoke("models", "--json").output)
    assert listed["acme-chorales"]["headline"] == "chorales from a third party"
    assert listed["acme-chorales"]["provider"] == "acme"
    assert any(line.split() == ["acme-chorales", "chorales", "from", "a", "third", "party"]
               for line in invoke("models").output.splitlines())
    out = tmp_path / "out"
    invoke("generate", "acme-chorales", "-n", "1", "-o", out, "--length", "8", "--no-pictures")
    assert len(list(out.glob("*.mid"))) == 1
    result = run_cli("generate", "no-such-model", "-o", out)
    assert result.exit_code != 0 and "no-such-model is neither a run directory nor an installed model" in result.output


def test_two_packages_shipping_one_name_are_refused(third_party, tmp_path, monkeypatch, caplog):
    site = tmp_path / "site2"
    shutil.copytree(third_party, site / "other_models")
    info = site / "other_models-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-models\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seqstudio.models]\nother = other_models\n")
    monkeypatch.syspath_prepend(str(site))
    assert "acme-chorales" not in models.installed()


# -- fine-tuning ----------------------------------------------------------------------------------------------------
def test_train_from_a_model_keeps_its_codec_and_starts_from_its_weights(exported, trained_run, chorales, tmp_path):
    run_dir = tmp_path / "tuned"
    invoke("train", chorales, "--from", exported, "--run-dir", run_dir, "--max-steps", "1", "--lr", "1e-9",
           "--set", "train.samples=0", "--quiet")
    assert json.loads((run_dir / "codec.json").read_text()) == json.loads((trained_run / "codec.json").read_text())
    tuned = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    base = torch.load(trained_run / "best.pt", weights_only=True)["model"]
    assert all(torch.allclose(tuned[k].float(), base[k].float(), atol=1e-6) for k in base)
    config = (run_dir / "config.yaml").read_text()
    assert "name: seqvae" in config and "name: pianoroll" in config


def test_train_from_refuses_what_does_not_fit(exported, chorales, tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    for i in range(6):
        (texts / f"t{i}.txt").write_text("some text that is not music\n" * 5)
    result = run_cli("train", texts, "--from", exported, "--run-dir", tmp_path / "r1", "--max-steps", "1")
    assert result.exit_code != 0 and "holds text files, but" in result.output and "midi model" in result.output
    result = run_cli("train", chorales, "--from", exported, "--run-dir", tmp_path / "r2", "--max-steps", "1",
                     "--set", "backend.latent_size=12")
    assert result.exit_code != 0 and "fine-tuning keeps the model it starts from" in result.output
    assert "backend.latent_size" in result.output


def test_train_from_a_text_model_refuses_unseen_characters(tmp_path):
    pytest.importorskip("seqstudio_text")
    seen, unseen = tmp_path / "seen", tmp_path / "unseen"
    for folder, text in ((seen, "abc abc cab bac\n"), (unseen, "xyz zyx xxy yzz\n")):
        folder.mkdir()
        for i in range(8):
            (folder / f"t{i}.txt").write_text(text * (4 + i))
    run_dir = tmp_path / "text-run"
    invoke("train", seen, "--run-dir", run_dir, "--backend", "rnn", "--max-steps", "2", "--set",
           "backend.hidden_size=16", "--set", "backend.phi_size=16", "--set", "train.samples=0", "--quiet")
    result = run_cli("train", unseen, "--from", run_dir, "--run-dir", tmp_path / "tuned", "--max-steps", "1")
    assert result.exit_code != 0 and "does not fit the codec of" in result.output, result.output
    invoke("train", seen, "--from", run_dir, "--run-dir", tmp_path / "ok", "--max-steps", "1", "--quiet")


# -- the shipped models (plugins/models) ------------------------------------------------------------------------------
SHIPPED = {"bach-chorales", "essen-folk", "essen-folk-abc", "hershey-script", "kanjivg"}
BUDGET_BYTES = 6_000_000  # the whole distribution's model folders (README: "a few MB")


def shipped() -> dict:
    return {name: m for name, m in models.installed().items() if m.provider == "seqstudio-models"}


def test_the_models_distribution_ships_every_model_within_its_size_budget():
    found = shipped()
    assert set(found) == SHIPPED
    total = sum(p.stat().st_size for m in found.values() for p in m.path.iterdir() if p.is_file())
    assert total <= BUDGET_BYTES, f"{total} bytes"
    listing = invoke("models").output
    assert all(name in listing for name in SHIPPED)


@pytest.fixture(scope="module")
def quick_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quick")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_model_loads_generates_and_gives_its_cards_figures(name, quick_data, tmp_path):
    """Not a retrain (`make models` is): the shipped weights, loaded with every check, give the card's quick-check
    likelihood with the code as it is now, within model_cards.QUICK_TOLERANCE."""
    from seqstudio import api, export, model_cards

    folder = shipped()[name].path
    export.check_folder(folder)
    card = folder / "MODEL.md"
    commands = model_cards.commands(card)
    assert commands[0].startswith("seqstudio data build ") and any(" train " in f" {c} " for c in commands)
    assert f"--run-dir runs/{name}" in " ".join(commands)
    run = api.load(models.resolve(name))
    out = tmp_path / "out"
    api.write_samples(run, api.generate(run, n=1, length=24, seed=0, progress=False), out, render=False)
    assert len(list(out.iterdir())) >= 1
    figures = model_cards.figures(card)
    now = model_cards.quick_check(run.path, figures["quick_check"], quick_data)
    assert abs(now["nll"] - figures["quick_check"]["nll"]) <= model_cards.QUICK_TOLERANCE, (now["nll"], figures)
    assert figures["test"]["nll"] and figures["judge"]["judge_accuracy"] is not None


def test_write_makes_a_line_with_the_shipped_handwriting_model(tmp_path):
    svg, png = tmp_path / "line.svg", tmp_path / "line.png"
    invoke("write", "hello world", "-o", svg)
    assert svg.read_text().count("<path") > 3
    invoke("write", "hello", "-o", png, "--style", svg, "--style-text", "hello world", "--seed", "1")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run_cli("write", "hello", "-o", tmp_path / "x.txt")
    assert result.exit_code != 0 and "write makes .svg or .png files" in result.output


def test_cache_info_counts_unpacked_models_and_clear_removes_only_what_unpacking_wrote(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))
    shown = invoke("info", exported).output  # unpacks the folder into the cache's models/, named as the model
    assert shown.startswith(f"model (a model, unpacked into {tmp_path / 'cache' / 'models'}")
    report = json.loads(invoke("cache", "info", "--json").output)
    (unpacked,) = report["models"]["folders"]
    assert unpacked.startswith("model-") and report["models"]["bytes"] > 0
    folder = tmp_path / "cache" / "models" / unpacked
    (folder / "notes.txt").write_text("mine")  # a user's file in there, and one beside the folders
    (folder.parent / "keep.txt").write_text("mine too")
    assert "1 model(s) unpacked" in invoke("cache", "info").output
    invoke("cache", "clear", "--older-than", "30d")  # just used: kept
    assert (folder / "best.pt").is_file()
    invoke("cache", "clear")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder.parent / "keep.txt").read_text() == "mine too"
    assert json.loads(invoke("cache", "info", "--json").output)["models"]["folders"] == []
    assert "midi / pianoroll / seqvae" in invoke("info", exported).output  # unpacked again when next used


def test_evaluating_a_model_whose_training_folder_is_elsewhere_names_the_recipe_to_build(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    folder = models.installed()["kanjivg"].path
    config = json.loads((folder / "config.json").read_text())
    moved = tmp_path / "kanjivg"
    shutil.copytree(folder, moved)
    config["run"]["data"]["path"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(config))
    result = run_cli("evaluate", moved, "--split", "test")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{tmp_path / 'gone'} is not on this machine: `seqstudio data build kanjivg DIR`" in result.output
