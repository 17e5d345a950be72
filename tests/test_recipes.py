"""Data recipes: pluggable source types, recipes shipped as plugin package data, and a recipe's codec section
reaching training — through the real CLI, on real files."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TINY, invoke
from test_errors import assert_clean_error
from test_registry import make_distribution
from test_vrnn import roll

pytest.importorskip("seqstudio_midi")
from seqstudio_midi.domain import MidiDomain  # noqa: E402
from seqstudio_midi.pianoroll import PianoRollCodec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PLUGINS = {"seqstudio_midi": REPO / "plugins/midi", "seqstudio_text": REPO / "plugins/text",
           "seqstudio_strokes": REPO / "plugins/strokes"}

# Two chords held for two frames, a rest, one note; and a one-note piece per split.
FRAMES = {"train": [[[60, 64], [60, 64], [], [67]], [[62], [62], [65]]], "valid": [[[55], [57]]],
          "test": [[[48, 52, 55], [48]]]}
SOURCE_MODULE = '''
from pathlib import Path
from seqstudio.recipe_sources import RecipeSource


class EveryOther(RecipeSource):
    """A third-party source: every other file of the user's folder, in name order."""

    def files(self, source, scratch):
        return sorted(Path(source).glob("*.mid"))[::2]
'''


@pytest.fixture
def recipes(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    monkeypatch.setenv("SEQSTUDIO_RECIPES", str(folder))
    return folder


def write_recipe(folder: Path, name: str, **fields) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "description": f"test recipe {name}", **fields}))
    return path


def frames_json(tmp_path: Path) -> Path:
    path = tmp_path / "frames.json"
    path.write_text(json.dumps(FRAMES))
    return path


def test_a_third_party_source_type_builds_a_recipe(recipes, chorales, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    make_distribution(site, "everyother", """
        [seqstudio.recipe_sources]
        every-other = everyother:EveryOther
        """, SOURCE_MODULE)
    write_recipe(recipes, "halves", domain="midi", source={"type": "every-other"})
    listing = invoke("data", "list")
    (line,) = [line for line in listing.output.splitlines() if line.startswith("halves ")]
    assert line.endswith("(needs --source)")
    result = invoke("data", "build", "halves", tmp_path / "out", "--source", chorales, "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mid")) == sorted(p.name for p in
                                                                              sorted(chorales.glob("*.mid"))[::2])


def test_unknown_source_type_lists_the_installed_ones(recipes, tmp_path):
    write_recipe(recipes, "odd", domain="midi", source={"type": "ftp"})
    assert_clean_error(invoke("data", "build", "odd", tmp_path / "out"), "unknown source type 'ftp'", "folder",
                       "python-package", "music21-corpus", "pitch-frames-json")


def test_a_broken_source_plugin_does_not_break_data_list(recipes, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    make_distribution(site, "brokensource", """
        [seqstudio.recipe_sources]
        broken = brokensource_missing_module:Source
        """)
    write_recipe(recipes, "needs-broken", domain="midi", source={"type": "broken"})
    listing = invoke("data", "list")
    assert listing.exit_code == 0
    assert "needs-broken" in listing.output and "bach-chorales" in listing.output
    assert_clean_error(invoke("data", "build", "needs-broken", tmp_path / "out"), "broken", "failed to load")


def test_a_recipe_named_like_a_plugins_is_used_and_the_shadowed_one_named(recipes):
    mine = write_recipe(recipes, "bach-chorales", domain="midi", source={"type": "folder"})
    listing = invoke("data", "list")
    assert listing.exit_code == 0
    (line,) = [line for line in listing.output.splitlines() if line.startswith("bach-chorales ")]
    assert "test recipe bach-chorales" in line  # $SEQSTUDIO_RECIPES comes first
    warning = listing.output  # the CLI's log (stderr) is in it
    assert "two data recipes are named 'bach-chorales'" in warning and str(mine) in warning
    assert "seqstudio_midi" in warning  # the plugin's file, ignored, is named too


def test_a_folder_source_takes_only_regular_files_inside_the_folder(recipes, chorales, tmp_path):
    import os
    source = tmp_path / "mine"
    source.mkdir()
    first, second = sorted(chorales.glob("*.mid"))[:2]
    (source / "a.mid").write_bytes(first.read_bytes())
    (source / "outside.mid").symlink_to(second)  # a link out of the folder
    os.mkfifo(source / "pipe.mid")  # reading it would hang
    write_recipe(recipes, "mine", domain="midi", source={"type": "folder", "glob": "*.mid"})
    result = invoke("data", "build", "mine", tmp_path / "out", "--source", source, "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mid")) == ["a.mid"]
    warning = result.output  # the CLI's log (stderr) is in it
    assert "outside.mid" in warning and "pipe.mid" in warning and "leaves out 2 file(s)" in warning


def test_a_user_file_is_checked_against_the_recipe_sha256(recipes, chorales, tmp_path):
    midi = sorted(chorales.glob("*.mid"))[0]
    good = hashlib.sha256(midi.read_bytes()).hexdigest()
    write_recipe(recipes, "one-file", domain="midi", source={"type": "file", "sha256": good})
    result = invoke("data", "build", "one-file", tmp_path / "ok", "--source", midi, "--quiet")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "ok").glob("*.mid")] == [midi.name]
    other = sorted(chorales.glob("*.mid"))[1]
    assert_clean_error(invoke("data", "build", "one-file", tmp_path / "bad", "--source", other), "sha256",
                       "does not match", "one-file")
    assert_clean_error(invoke("data", "build", "one-file", tmp_path / "none"), "needs your copy", "--source FILE")


def test_pitch_frames_recipe_records_its_codec_and_training_starts_from_it(recipes, tmp_path):
    """The jsb-bl2012 recipe's pieces without the file it checks: a plugin source that writes split folders, and
    a codec section that `train` applies below --set."""
    jsb = yaml.safe_load((REPO / "plugins/midi/seqstudio_midi/data_recipes/jsb-bl2012.yaml").read_text())
    del jsb["source"]["sha256"]
    write_recipe(recipes, "frames", **{k: v for k, v in jsb.items() if k not in ("name", "description")})
    data = tmp_path / "frames"
    result = invoke("data", "build", "frames", data, "--source", frames_json(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    assert "wrote 4 files" in result.output
    info = yaml.safe_load((data / "seqstudio.yaml").read_text())
    assert info["domain"] == "midi" and info["codec"] == {"name": "pianoroll", **jsb["codec"]}
    codec = PianoRollCodec(PianoRollCodec.Config(**{k: v for k, v in jsb["codec"].items() if k != "name"}))
    for split, pieces in FRAMES.items():
        files = sorted((data / split).glob("*.mid"))
        assert [torch.equal(codec.encode(MidiDomain().read(f)), roll(p)) for f, p in zip(files, pieces)] == \
            [True] * len(pieces)

    def trained_codec(*args):
        run = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
        result = invoke("train", data, "--run-dir", run, "--max-steps", 1, *TINY, "--set", "train.samples=0",
                        "--set", "train.workers=1", "--batch-size", 2, *args)
        assert result.exit_code == 0, result.output
        return yaml.safe_load((run / "config.yaml").read_text())["codec"]

    applied = trained_codec()
    assert {k: applied[k] for k in jsb["codec"]} == jsb["codec"]
    assert trained_codec("--set", "codec.onsets=true")["onsets"] is True  # --set still wins
    events = trained_codec("--codec", "events")  # recorded for pianoroll: another codec keeps its own defaults
    assert events["name"] == "events" and events["steps_per_quarter"] == 4


def test_a_wrong_codec_section_fails_the_build(recipes, chorales, tmp_path):
    path = write_recipe(recipes, "bad-codec", domain="midi", source={"type": "folder"},
                        codec={"name": "pianoroll", "onset": False})
    assert_clean_error(invoke("data", "build", "bad-codec", tmp_path / "out", "--source", chorales), str(path),
                       "unknown codec option 'onset'", "onsets")
    assert not (tmp_path / "out").exists()


def test_plugin_recipes_ship_in_their_wheels_and_are_found_when_installed(tmp_path):
    """Build the plugins' wheels as pip would for a non-editable install, check every recipe is inside, install
    the MIDI plugin's into a target folder and list the recipes from there."""
    wheels, sources = tmp_path / "wheels", tmp_path / "src"
    for root in PLUGINS.values():  # a fresh checkout's files only: an editable install's egg-info lists more
        shutil.copytree(root, sources / root.name, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), *(str(sources / root.name) for root in PLUGINS.values())],
                   check=True, cwd=tmp_path)
    for package, root in PLUGINS.items():
        shipped = sorted(p.name for p in (root / package / "data_recipes").glob("*.yaml"))
        assert shipped, package
        (wheel,) = wheels.glob(f"{package}-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith(f"{package}/data_recipes/")
                      and n.endswith(".yaml")) == shipped
        assert "[seqstudio.recipes]" in entry_points and f"{package}.data_recipes" in entry_points
    target = tmp_path / "target"
    (wheel,) = wheels.glob("seqstudio_midi-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, cwd=tmp_path)
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from seqstudio import recipes; "
              "print(recipes.get_recipe('bach-chorales').path)")
    found = subprocess.run([sys.executable, "-c", script, str(target)], check=True, capture_output=True,
                           text=True, cwd=tmp_path).stdout.strip()
    assert Path(found) == target / "seqstudio_midi" / "data_recipes" / "bach-chorales.yaml"


def test_the_demo_builds_its_data_with_progress_shown(tmp_path):
    import re
    import shutil
    import subprocess
    from pathlib import Path

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    dry = subprocess.run([make, "-n", "-C", str(root), f"DEMO_DIR={tmp_path}/demo", f"{tmp_path}/demo/data/.built"],
                         capture_output=True, text=True, timeout=60)
    builds = [line for line in dry.stdout.splitlines() if "data build bach-chorales" in line]
    assert len(builds) == 1 and not re.search(r"\s(--quiet|-q)\b", builds[0]), dry.stdout + dry.stderr
    shown = invoke("data", "build", "bach-chorales", tmp_path / "three", "--limit", 3)  # what that line shows
    assert shown.exit_code == 0 and re.search(r"\d+/3", shown.stderr), shown.stderr
