"""Reliability, part three (issue 31): hostile YAML and regexes, links in run directories and at destinations,
one writer per run directory, read-only and full destinations, interrupted builds, used output folders and
unbounded counts. Every case goes through the real CLI with real files, hashes its inputs before and after, and
runs what used to hang or blow up memory in a subprocess with a time limit and a peak-RSS bound (both hold with
the CPU and the default CUDA builds of torch).
"""

from __future__ import annotations

import concurrent.futures as futures
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import TINY, invoke, read_metrics
from test_errors import assert_clean_error
from test_reliability import assert_one_line_error, cli, snapshot


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(trained_run, dest)
    return dest


def alias_bomb(levels: int = 9) -> str:
    """YAML anchors that expand to 10**levels elements (a few hundred bytes)."""
    lines = ["_b0: &b0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"_b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


# -- 1. alias bombs --------------------------------------------------------------------------------------------------
def test_yaml_alias_bombs_are_refused_quickly_everywhere(run_copy, chorale_copy, tmp_path):
    config = run_copy / "config.yaml"
    config.write_text(alias_bomb() + config.read_text().replace("lr:", "lr: *b9\n  old_lr:", 1))
    (chorale_copy / "seqstudio.yaml").write_text(alias_bomb() + "domain: *b9\n")
    own = tmp_path / "mine.yaml"
    own.write_text(alias_bomb() + "train:\n  lr: *b9\n")
    before = snapshot(tmp_path)
    for command in (("info", run_copy), ("generate", run_copy, "-o", tmp_path / "out"), ("report", run_copy),
                    ("train", chorale_copy, "--run-dir", tmp_path / "r1", "--max-steps", "1", *TINY),
                    ("train", chorale_copy, "--domain", "midi", "--config", own, "--run-dir", tmp_path / "r2",
                     "--max-steps", "1", *TINY)):
        run = cli(*command, cwd=tmp_path, timeout=60)
        assert_one_line_error(run, "alias", max_seconds=40)
        assert len(run.stderr) < 600, run.stderr
    assert snapshot(tmp_path) == before
    recursive = tmp_path / "loop.yaml"
    recursive.write_text("train: &t\n  lr: 0.1\n  self: *t\n")
    assert_clean_error(invoke("train", chorale_copy, "--config", recursive, "--max-steps", "1", *TINY), "recursive")


# -- 2. catastrophic regexes ------------------------------------------------------------------------------------------
def test_catastrophic_regexes_on_file_names_end_in_one_line(chorale_copy, tmp_path):
    """A nested repeat is refused before any matching; an exponential pattern without one (``(a|a)*``) is
    stopped by the time limit. Either way one line, within seconds, nothing changed."""
    first = sorted(chorale_copy.glob("*.mid"))[0]
    shutil.copy(first, chorale_copy / ("a" * 34 + "!.mid"))
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "mine.yaml").write_text("name: mine\ndomain: midi\nsource: {type: folder, glob: '*.mid', "
                                       "exclude: '^(a+)+$'}\n")
    (recipes / "slow.yaml").write_text("name: slow\ndomain: midi\nsource: {type: folder, glob: '*.mid', "
                                       "exclude: '^(a|a)*$'}\n")
    calls = []
    for pattern, fragment in (("^(a+)+$", "repeats a group"), ("(a*)*b", "repeats a group")):
        folder = tmp_path / f"data{len(calls)}"
        shutil.copytree(chorale_copy, folder)
        (folder / "seqstudio.yaml").write_text(f"domain: midi\nattributes: {{x: '{pattern}'}}\n")
        calls.append((("train", folder, "--run-dir", tmp_path / f"r{len(calls)}", "--max-steps", "1", *TINY),
                      fragment))
    calls.append((("data", "build", "mine", tmp_path / "built", "--source", chorale_copy, "--quiet"),
                  "repeats a group"))
    calls.append((("data", "build", "slow", tmp_path / "built2", "--source", chorale_copy, "--quiet"),
                  "took more than"))
    before = snapshot(tmp_path)
    for args, fragment in calls:
        run = cli(*args, cwd=tmp_path, timeout=120, env={"SEQSTUDIO_RECIPES": str(recipes)})
        assert_one_line_error(run, fragment, max_seconds=90)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "built").exists() and not (tmp_path / "r0").exists()


# -- 3. reading through links -----------------------------------------------------------------------------------------
def _hashes(folder: Path) -> set[str]:
    return {v for v in snapshot(folder).values() if v != "special"}


def test_report_and_info_never_read_through_links_in_a_run(run_copy, tmp_path):
    import hashlib

    secret = tmp_path / "secret"
    secret.mkdir()
    first = sorted((run_copy / "samples").glob("*.mid"))[0]
    (secret / "secret.png").write_bytes(b"\x89PNG secret picture bytes")
    (secret / "secret.wav").write_bytes(b"RIFF secret audio bytes")
    (secret / "secret.mid").write_bytes(first.read_bytes() + b"secret")
    samples = run_copy / "samples"
    (samples / first.with_suffix(".png").name).unlink(missing_ok=True)
    (samples / first.with_suffix(".png").name).symlink_to(secret / "secret.png")
    (samples / first.with_suffix(".wav").name).symlink_to(secret / "secret.wav")
    (samples / "linked.mid").symlink_to(secret / "secret.mid")
    secrets = {hashlib.sha256(p.read_bytes()).hexdigest() for p in secret.iterdir()}
    before = snapshot(tmp_path)
    result = invoke("report", run_copy, "-o", tmp_path / "page")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "linked.mid" in result.output
    assert not _hashes(tmp_path / "page") & secrets
    assert "linked.mid" not in (tmp_path / "page" / "index.html").read_text()
    assert len(list((tmp_path / "page").rglob("*.png"))) >= 1  # the real samples are still shown
    (run_copy / "config.yaml").rename(secret / "config.yaml")
    (run_copy / "config.yaml").symlink_to(secret / "config.yaml")
    for command in (("info", run_copy), ("report", run_copy, "-o", tmp_path / "page2"),
                    ("generate", run_copy, "-o", tmp_path / "gen")):
        assert_clean_error(invoke(*command), "config.yaml is a symbolic link")
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if "/page/" not in k and "config.yaml" not in k} == \
        {k: v for k, v in before.items() if "config.yaml" not in k}


def test_gallery_shows_no_sheets_as_samples(tmp_path):
    from seqstudio import registry
    from seqstudio.report import sample_files

    domain = registry.load_domain("strokes")()
    for name in ("sample-000.svg", "sample-001.svg", "sample-sheet.svg", "sample-sheet.npz", "sample-sheet.png"):
        (tmp_path / name).write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert [p.name for p in sample_files(tmp_path, domain)] == ["sample-000.svg", "sample-001.svg"]


# -- 5. one writer per folder -----------------------------------------------------------------------------------------
def _wait_for_lock(folder: Path, proc, seconds: float = 120) -> str:
    import time

    deadline = time.monotonic() + seconds
    lock = folder / ".seqstudio-lock"
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if lock.is_file() and lock.read_text().strip():
            return lock.read_text().strip()
        time.sleep(0.2)
    raise AssertionError("no lock taken")


def test_one_writer_per_run_directory(chorales, tmp_path):
    import signal
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "seqstudio", "train", str(chorales), "--run-dir", str(run_dir),
                              "--max-minutes", "3", "--seed", "1", "--codec", "pianoroll",
                              "--set", "train.patience=0", *TINY], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        pid = _wait_for_lock(run_dir, first)
        assert pid == str(first.pid)
        second = cli("train", chorales, "--run-dir", run_dir, "--max-steps", "2", *TINY, cwd=tmp_path)
        assert_one_line_error(second, "in use", f"pid {first.pid}")
        while not (run_dir / "last.pt").exists():  # the first has written a checkpoint: resume is possible
            assert first.poll() is None, first.communicate()
            import time
            time.sleep(0.3)
        resumed = cli("train", "--resume", "--run-dir", run_dir, "--max-steps", "2", "--quiet", cwd=tmp_path)
        assert_one_line_error(resumed, "in use", f"pid {first.pid}")
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM, err
    steps = [r["step"] for r in read_metrics(run_dir) if r["split"] == "train"]
    assert steps == sorted(steps)  # one writer: no interleaved records
    # the lock went with its holder: a resume now works
    result = invoke("train", "--resume", "--run-dir", run_dir, "--max-steps", str(max(steps) + 2), "--quiet")
    assert result.exit_code == 0, result.output


# -- 7, 8. data build: read-only and full destinations, interruption, workers --------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_killed_data_build_leaves_no_usable_half_folder_and_no_workers(chorales, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    source = tmp_path / "source"
    source.mkdir()
    for i in range(30):
        for f in sorted(chorales.glob("*.mid")):
            shutil.copy(f, source / f"{f.stem}-{i}.mid")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "many.yaml").write_text("name: many\ndomain: midi\nsource: {type: folder, glob: '*.mid'}\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQSTUDIO_RECIPES": str(recipes)}
    dest = tmp_path / "built"
    build = subprocess.Popen([sys.executable, "-m", "seqstudio", "data", "build", "many", str(dest), "--source",
                              str(source), "--workers", "1", "--quiet"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.suffix == ".mid" for p in tmp_path.glob(".seqstudio-build-*/*")):
        assert build.poll() is None, build.communicate()
        time.sleep(0.1)
    workers = [c for c in _children(build.pid)]
    assert workers
    build.kill()
    build.communicate()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "a worker outlived its killed parent"
    assert not dest.exists() or [p.name for p in dest.iterdir()] == [".seqstudio-lock"]
    result = invoke("train", dest, "--domain", "midi", "--max-steps", 1, *TINY)
    assert result.exit_code != 0  # nothing half-built to train on
    assert len(list(tmp_path.glob(".seqstudio-build-built-*"))) == 1
    assert invoke("data", "build", "many", dest, "--source", source, "--limit", 3, "--quiet",
                  env={"SEQSTUDIO_RECIPES": str(recipes)}).exit_code == 0
    assert sorted(p.suffix for p in dest.iterdir()) == [".mid"] * 3 + [".yaml"]
    assert list(tmp_path.glob(".seqstudio-build-*")) == []  # the killed build's staging folder was cleaned


def _in_namespace(kind: str, folder: Path, *args, size: str = "16k", timeout: float = 180):
    """The real CLI with ``folder`` made a read-only bind mount (``ro``) or a tiny tmpfs (``full``) in a private
    mount namespace (``unshare -rm``): real EROFS and ENOSPC errors. Returns (rc, stderr, files left in folder)."""
    import subprocess
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    mount = (f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}'" if kind == "ro"
             else f"mount -t tmpfs -o size={size} tmpfs '{folder}'")
    script = (f"{mount} || exit 99\n\"$@\"; rc=$?\necho '--left--'; find '{folder}' -mindepth 1 -printf '%P\\n'\n"
              f"exit $rc")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-m", "seqstudio",
                           *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode == 99:
        pytest.skip("no private mount namespace here (unshare -rm)")
    left = done.stdout.split("--left--", 1)[1].split()
    return done.returncode, done.stderr, left


def _unshare_works() -> bool:
    import subprocess

    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-rm", "true"]).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged mount namespaces (unshare -rm)")
def test_read_only_and_full_destinations_are_one_line_and_leave_nothing(trained_run, chorales, tmp_path):
    midi = sorted(chorales.glob("*.mid"))[0]
    tune = tmp_path / "t.abc"
    tune.write_text("X:1\nT:t\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|\n")
    inputs = (tmp_path, trained_run, chorales)
    before = {k: v for folder in inputs for k, v in snapshot(folder).items()}
    cases = [("generate", trained_run, "-n", 2, "-o", "{D}/out"), ("report", trained_run, "-o", "{D}/page"),
             ("convert", tune, "{D}/t.mid"), ("plot", trained_run, "-o", "{D}/c.png"),
             ("render", midi, "-o", "{D}/x.wav"), ("render", midi, "-o", "{D}/x.png"),
             ("data", "build", "bach-chorales", "{D}/data", "--limit", 8, "--quiet")]
    jobs = []
    for kind, fragment in (("ro", "Read-only file system"), ("full", "no space left")):
        for case in cases:
            if kind == "full" and (case[0] == "convert" or case[-1] == "{D}/x.png"):
                continue  # a 141-byte MIDI file, a 4 kB piano roll (seqstudio/png.py) fit where the folder does
            folder = tmp_path / f"{kind}-{case[0]}-{case[-1] if case[0] == 'render' else ''}"
            jobs.append((case, fragment, kind, folder))

    def run(job):
        case, fragment, kind, folder = job
        return _in_namespace(kind, folder, *(str(a).format(D=folder) for a in case),
                             size="8k" if case[0] != "data" else "12k")

    with futures.ThreadPoolExecutor(2) as pool:  # two at a time (two cores)
        results = list(pool.map(run, jobs))
    assert len(results) == 12
    for (case, fragment, _, _), (rc, err, left) in zip(jobs, results):
        lines = [line for line in err.splitlines() if line.startswith("Error")]
        assert rc == 1 and "Traceback" not in err and "Exception ignored" not in err, (case, err)
        assert len(lines) == 1 and fragment in lines[0], (case, err)
        assert [name for name in left if name != "out"] == [], (case, left)  # at most an empty folder
    after = {k: v for folder in inputs for k, v in snapshot(folder).items()}
    assert {k: after.get(k) for k in before} == before  # the inputs are unchanged


# -- 9, 10, 11. generate -o: used folders, big -n, files as folders, leftovers ----------------------------------
def test_generate_replaces_its_previous_set_and_refuses_foreign_folders(trained_run, tmp_path):
    out = tmp_path / "out"
    before = snapshot(trained_run)
    assert invoke("generate", trained_run, "-n", 4, "-o", out, "--quiet").exit_code == 0
    assert len(list(out.glob("sample-*.mid"))) == 4
    result = invoke("generate", trained_run, "-n", 2, "-o", out)
    assert result.exit_code == 0 and "replacing the previous set" in result.output
    assert sorted(p.name for p in out.glob("sample-*.mid")) == ["sample-000.mid", "sample-001.mid"]
    assert sorted(p.name for p in out.glob("sample-*.png")) == ["sample-000.png", "sample-001.png"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sample-000.mid").write_bytes(b"my own file")
    assert_clean_error(invoke("generate", trained_run, "-n", 1, "-o", mine), "did not write", "sample-000.mid")
    assert (mine / "sample-000.mid").read_bytes() == b"my own file"
    (tmp_path / "file").write_text("x")
    assert_clean_error(invoke("generate", trained_run, "-o", tmp_path / "file"), "is not a folder")
    assert (tmp_path / "file").read_text() == "x"
    assert_clean_error(invoke("generate", trained_run, "-n", 100_001, "-o", out), "100000")
    assert snapshot(trained_run) == before


def test_a_big_n_streams_to_disk_and_a_killed_generate_leaves_nothing_behind(trained_run, tmp_path):
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "seqstudio", "generate", str(trained_run), "-n", "100000",
                             "-o", str(out), "--no-pictures", "--quiet", "--length", "8"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(list(out.glob(".seqstudio-*/sample-*"))) < 300:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert len(list(out.glob(".seqstudio-*/sample-*"))) >= 300  # batches on disk, not all in memory
        rss_mb = int(next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                          if line.startswith("VmHWM")).split()[1]) // 1024
        assert rss_mb < 1500, rss_mb
    finally:
        proc.kill()
        proc.communicate()
    assert list(out.glob("sample-*")) == []  # nothing half-done at the destination
    result = invoke("generate", trained_run, "-n", 2, "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        ["conditions.json", "sample-000.mid", "sample-000.png", "sample-001.mid", "sample-001.png"] or \
        len(list(out.glob("sample-*.mid"))) == 2
    assert [p.name for p in out.glob(".seqstudio-*") if p.is_dir()] == []  # the killed one's folder is gone


def test_data_build_into_a_file_and_recipe_globs_with_absolute_paths(chorales, tmp_path):
    (tmp_path / "file").write_text("x")
    assert_clean_error(invoke("data", "build", "bach-chorales", tmp_path / "file", "--limit", 1, "--quiet"),
                       "not a folder")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "abs.yaml").write_text(f"name: abs\ndomain: midi\nsource: {{type: folder, glob: '{chorales}/*.mid'}}\n")
    result = invoke("data", "build", "abs", tmp_path / "built", "--source", chorales, "--quiet",
                    env={"SEQSTUDIO_RECIPES": str(recipes)})
    assert "Traceback" not in result.output
    assert_clean_error(result, "glob")


# -- progress bars in logs ------------------------------------------------------------------------------------------
def test_progress_bars_refresh_rarely_when_stderr_is_not_a_terminal(chorales, tmp_path):
    run = cli("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 60, "--set", "train.valid_every=1000",
              "--set", "train.samples=0", *[a for a in TINY if a != "--quiet"], cwd=tmp_path, timeout=300)
    assert run.rc == 0, run.stderr
    refreshes = [line for line in run.stderr.replace("\r", "\n").splitlines() if "step/s" in line or "s/step" in line]
    assert refreshes, run.stderr
    assert len(refreshes) <= run.seconds / 5 + 3, (len(refreshes), run.seconds)


# -- 6. signals during validation, unbalanced splits -----------------------------------------------------------------
def test_a_signal_during_a_long_validation_stops_it_and_unbalanced_splits_are_named(chorales, tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time

    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "valid").mkdir()
    for f in sorted(chorales.glob("*.mid")):
        shutil.copy(f, data / "train" / f.name)
        for i in range(60):  # a valid split ~60x the train split: each validation takes many seconds
            shutil.copy(f, data / "valid" / f"{f.stem}-{i}.mid")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "seqstudio", "train", str(data), "--domain", "midi", "--run-dir",
                             str(run_dir), "--max-steps", "100", *TINY, "--set", "train.valid_every=2"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().strip()):  # step 2's train record: validation begins
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "valid split has" in err and "dominates" in err
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["split"] for r in records] == ["train", "stop"], records  # validation abandoned, not finished
    assert (run_dir / "last.pt").is_file()


def _valid_heavy(chorales, tmp_path, copies: int) -> Path:
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "valid").mkdir()
    for f in sorted(chorales.glob("*.mid")):
        shutil.copy(f, data / "train" / f.name)
        for i in range(copies):
            shutil.copy(f, data / "valid" / f"{f.stem}-{i}.mid")
    return data


def test_validation_reads_at_most_valid_max_windows_evenly_spaced_and_says_so(chorales, tmp_path, monkeypatch):
    """Bounded validation: a valid split of many windows is validated on ``train.valid_max_windows`` of them
    (each validation gathers only those, batch by batch), with one warning; 0 validates every window."""
    from seqstudio import data as data_mod

    folder = _valid_heavy(chorales, tmp_path, 4)
    read = []
    gather = data_mod.WindowSet.gather

    def counting(self, index):
        read.append((len(self), len(index)))
        return gather(self, index)

    monkeypatch.setattr(data_mod.WindowSet, "gather", counting)
    args = [a for a in TINY if a != "--quiet"]
    result = invoke("train", folder, "--domain", "midi", "--run-dir", tmp_path / "capped", "--max-steps", 2, *args,
                    "--set", "train.valid_every=2", "--set", "train.valid_max_windows=8", "--set", "train.samples=0")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "capped" / "data.json").read_text())
    assert info["valid windows"] > 8 * 4 and info["valid windows validated"] == 8, info
    warning = [line for line in result.output.splitlines() if "evenly spaced windows" in line]
    assert len(warning) == 1 and f"of the valid split's {info['valid windows']}" in warning[0], result.output
    assert [r["split"] for r in read_metrics(tmp_path / "capped")].count("valid") == 1
    assert (info["valid windows"], 8) not in read and (8, 8) in read, read  # the whole split was never read
    read.clear()
    result = invoke("train", folder, "--domain", "midi", "--run-dir", tmp_path / "all", "--max-steps", 2, *args,
                    "--set", "train.valid_every=2", "--set", "train.valid_max_windows=0", "--set", "train.samples=0")
    assert result.exit_code == 0 and "evenly spaced windows" not in result.output, result.output
    info = json.loads((tmp_path / "all" / "data.json").read_text())
    assert info["valid windows validated"] == info["valid windows"] > 8


def test_a_capped_valid_split_keeps_each_windows_conditions_and_texts():
    import numpy as np
    import torch

    from seqstudio.api import capped_validation
    from seqstudio.data import WindowSet
    from seqstudio.shards import FloatPieces

    rows = np.arange(100, dtype=np.float32).reshape(100, 1)
    source = FloatPieces(rows, np.arange(0, 100, 2), np.full(50, 2))
    windows = WindowSet([source], np.zeros(50, np.int16), np.arange(0, 100, 2), np.full(50, 2), 50, 1,
                        torch.arange(50).unsqueeze(1))
    windows.texts = torch.arange(50).unsqueeze(1) + 1
    capped = capped_validation(windows, 5)
    assert len(capped) == 5 and capped.conditions.flatten().tolist() == [0, 12, 24, 37, 49]
    assert capped.texts.flatten().tolist() == [1, 13, 25, 38, 50]
    assert capped.x[:, 0, 0].tolist() == [0.0, 24.0, 48.0, 74.0, 98.0]
    assert capped_validation(windows, 0) is windows and capped_validation(windows, 50) is windows


def test_valid_max_windows_must_not_be_negative(chorales, tmp_path):
    run = cli("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 1, *TINY,
              "--set", "train.valid_max_windows=-1", cwd=tmp_path, timeout=120)
    assert_one_line_error(run, "valid_max_windows")


# -- resume from no checkpoint: no record twice ----------------------------------------------------------------------
def test_a_run_restarted_from_step_0_logs_no_step_twice(chorales, tmp_path):
    run_dir = tmp_path / "run"
    assert invoke("train", chorales, "--run-dir", run_dir, "--max-steps", 6, "--seed", 2, *TINY).exit_code == 0
    for name in ("last.pt", "best.pt"):  # killed after writing step 3's records, before its checkpoint
        (run_dir / name).unlink()
    result = invoke("train", "--resume", "--run-dir", run_dir, "--quiet")
    assert result.exit_code == 0, result.output
    keys = [(r["split"], r["step"]) for r in read_metrics(run_dir)]
    assert len(keys) == len(set(keys)) and ("train", 6) in keys, keys


def test_report_of_damaged_records_is_a_page_not_a_traceback(run_copy, tmp_path):
    """Found by bench/tamper_rundirs.py (seed 31): a flipped byte in data.json made ``report`` crash."""
    (run_copy / "data.json").write_bytes((run_copy / "data.json").read_bytes() + b"\xa0\xff")
    (run_copy / "evaluation-test.json").write_bytes(b"\xff{")
    result = invoke("report", run_copy, "-o", tmp_path / "page", "--quiet")
    assert result.exit_code == 0, result.output
    assert "evaluation-test.json" in (tmp_path / "page" / "index.html").read_text()
