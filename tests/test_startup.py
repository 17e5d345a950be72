"""Start-up: commands that only read (help, recipes, the cache, a run's description) never import torch, whose
import is most of a command's start-up (2-3 s, 15 s on a busy machine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import invoke

from seqstudio import api

PROBE = """
import sys
from seqstudio.cli import main
sys.argv = ["seqstudio", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH", code)
"""


def _run(*args) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, seqstudio, seqstudio.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["data", "list"], ["cache", "info"], ["cache", "--help"],
                                  ["train", "--help"], ["generate", "--help"]])
def test_commands_that_only_read_do_not_import_torch(args):
    output = _run(*args)
    assert output.strip().endswith("NO-TORCH 0"), output


def test_info_reads_the_run_without_torch_and_says_what_the_full_load_says(trained_run):
    output = _run("info", trained_run, "--json")
    assert output.strip().endswith("NO-TORCH 0"), output
    light = json.loads(invoke("info", trained_run, "--json").output)
    assert light == json.loads(json.dumps(api.run_info(trained_run)))
    assert light["conditions"] and light["conditions"]["attributes"]  # the chorales' run is conditioned


def test_info_on_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    result = invoke("info", tmp_path)
    assert result.exit_code == 1 and "not a seqstudio run directory" in result.output


def test_plugins_lists_from_memory_the_second_time_without_torch_and_says_the_same(tmp_path):
    env_cache = {"SEQSTUDIO_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", PROBE, "plugins"], capture_output=True, text=True, timeout=120,
                           env={**__import__("os").environ, **env_cache})
    second = subprocess.run([sys.executable, "-c", PROBE, "plugins"], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, **env_cache})
    assert first.stdout.strip().endswith("TORCH 0") and "NO-TORCH" not in first.stdout  # the first run imports
    assert second.stdout.strip().endswith("NO-TORCH 0"), second.stdout + second.stderr
    assert first.stdout.rsplit("\n", 2)[0] == second.stdout.rsplit("\n", 2)[0]  # the same listing
    assert "seqvae" in second.stdout and "midi" in second.stdout
    checked = invoke("plugins", "--check", env=env_cache)
    assert checked.exit_code == 0 and "seqvae" in checked.output


def test_a_plugin_that_breaks_after_it_was_remembered_is_reported_broken(tmp_path, monkeypatch):
    from seqstudio import registry

    memo = {}
    registry.describe("backend", memo)
    assert any("|seqvae|" in key for key in memo)
    (key,) = [k for k in memo if "|seqvae|" in k]
    changed = {key.rsplit("|", 1)[0] + "|0": memo[key]}  # another file time: the memo does not apply
    monkeypatch.setattr(registry, "load", lambda kind, name: (_ for _ in ()).throw(registry.PluginError("broken")))
    infos = {i.name: i for i in registry.describe("backend", changed)}
    assert infos["seqvae"].error == "broken"


# Each process that starts with this on its path says at exit what it imported (spawned workers included).
SITECUSTOMIZE = """
import atexit, json, os, sys

def _said():
    with open(os.path.join(os.environ["SEQSTUDIO_PROBE_DIR"], f"{os.getpid()}.json"), "w") as f:
        json.dump({"ppid": os.getppid(), "seqstudio": "seqstudio" in sys.modules, "torch": "torch" in sys.modules}, f)

atexit.register(_said)
"""
WORKERS = """
import os, sys
from pathlib import Path
from seqstudio import data, registry
from seqstudio.data import encode
encode.IN_PROCESS_SECONDS = 0.0  # every file goes to the workers
files = sorted(Path(sys.argv[1]).glob("*.mid"))
codec = data.make_codec(registry.load_domain("midi")(), sys.argv[2])
encoded = data.encode_files(files, "midi", codec, workers=2, progress=False, use_cache=False)
print(len(encoded), len(files), os.getpid())
"""


@pytest.mark.parametrize("codec_name", ["notes", "pianoroll"])
def test_encoding_workers_never_import_torch(chorales, tmp_path, codec_name):
    import os

    hook, said = tmp_path / "hook", tmp_path / "said"
    hook.mkdir(), said.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "SEQSTUDIO_PROBE_DIR": str(said),
           "PYTHONPATH": os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", WORKERS, str(chorales), codec_name], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0 and proc.stdout.split()[:2] == ["8", "8"], proc.stdout + proc.stderr
    loader = int(proc.stdout.split()[2])
    reports = {int(p.stem): json.loads(p.read_text()) for p in said.glob("*.json")}
    workers = [r for r in reports.values() if r["ppid"] == loader and r["seqstudio"]]
    assert len(workers) == 2, reports  # both workers started, loaded seqstudio, and said what they imported
    assert not any(r["torch"] for r in workers), reports
    assert reports[loader]["torch"], reports  # the loader itself did import torch
