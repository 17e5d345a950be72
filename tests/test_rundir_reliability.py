"""A run directory, a disk, a cache or a plugin that is not what it should be: one clear line, never a traceback,
a hang, code executed, or a file outside the run changed.

Full disks are simulated without one: writes under a folder go to ``/dev/full`` (so Python raises the kernel's
own ``OSError(ENOSPC)`` and ``torch.save`` its own ``RuntimeError("[enforce fail at inline_container.cc...")``),
and ``os.statvfs`` reports the folder's file system as full, as a real full disk does.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TINY, invoke
from test_errors import assert_clean_error
from test_registry import TOY_MODULE, make_distribution, site  # noqa: F401 (fixture)


# -- helpers ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(trained_run, dest)
    return dest


def _cli(*args, timeout=120, env=None):
    """The real command in a subprocess: for cases that used to hang (the timeout fails the test)."""
    return subprocess.run([sys.executable, "-m", "seqstudio", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def _assert_clean_subprocess(proc, *fragments):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


class Evil:
    """Unpickling this creates a file: the proof that a pickle ran code."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def _tamper_config(run: Path, change) -> None:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    change(cfg)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))


def _nan_weights(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][name] = torch.full_like(ckpt["model"][name], float("nan"))
    torch.save(ckpt, path)


# -- 1. tampered run directories ------------------------------------------------------------------------------------
TAMPERINGS = {
    "codec.json empty": (lambda r: (r / "codec.json").write_text(""), ("codec.json", "empty")),
    "codec.json invalid": (lambda r: (r / "codec.json").write_text("{"), ("codec.json", "not valid JSON")),
    "codec.json a list": (lambda r: (r / "codec.json").write_text("[1, 2]"), ("codec.json", "JSON object")),
    "config.yaml a list": (lambda r: (r / "config.yaml").write_text("- 1\n- 2\n"), ("config.yaml", "mapping")),
    "config.yaml bad value": (lambda r: _tamper_config(r, lambda c: c["codec"].update(window_bars="many")),
                              ("config.yaml", "window_bars")),
    "config.yaml bigger model": (lambda r: _tamper_config(r, lambda c: c["backend"].update(decoder_size=4096)),
                                 ("best.pt", "does not match")),
    "spec.json changed": (lambda r: (r / "spec.json").write_text('[{"type": "categorical", "size": 7}]'),
                          ("spec.json", "codec.json")),
    "spec.json garbage": (lambda r: (r / "spec.json").write_text('[{"kind": 1}]'), ("spec.json",)),
    "best.pt empty": (lambda r: (r / "best.pt").write_bytes(b""), ("best.pt", "empty")),
    "best.pt NaN weights": (lambda r: _nan_weights(r / "best.pt"), ("best.pt", "NaN")),
    "best.pt not a dict": (lambda r: torch.save([1, 2], r / "best.pt"), ("best.pt", "not a seqstudio checkpoint")),
    "best.pt a folder": (lambda r: ((r / "best.pt").unlink(), (r / "best.pt").mkdir()), ("best.pt", "folder")),
}


@pytest.mark.parametrize("command", ["generate", "evaluate"])
@pytest.mark.parametrize("case", list(TAMPERINGS))
def test_tampered_run_directory_is_one_line_naming_the_file(run_copy, tmp_path, command, case):
    tamper, fragments = TAMPERINGS[case]
    tamper(run_copy)
    args = ("-o", tmp_path / "out") if command == "generate" else ()
    assert_clean_error(invoke(command, run_copy, *args), *fragments)


def test_vocabulary_of_the_wrong_type_is_refused_on_load(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    for i in range(8):
        (texts / f"t{i}.txt").write_text(f"line {i}: the quick brown fox jumps over the lazy dog\n" * 3)
    run = tmp_path / "run"
    result = invoke("train", texts, "--run-dir", run, "--max-steps", 1, *TINY, "--set", "train.samples=0",
                    "--set", "codec.window=32", "--backend", "seqvae")
    assert result.exit_code == 0, result.output
    state = json.loads((run / "codec.json").read_text())
    for bad in ({**state, "chars": list(range(len(state["chars"])))}, {**state, "chars": 5}):
        (run / "codec.json").write_text(json.dumps(bad))
        assert_clean_error(invoke("generate", run, "-o", tmp_path / "o"), "codec.json")


@pytest.mark.parametrize("pickled", ["torch.save", "raw pickle"])
@pytest.mark.parametrize("which", ["best", "last"])
def test_a_malicious_checkpoint_never_runs(run_copy, tmp_path, pickled, which):
    proof = tmp_path / "pwned"
    target = run_copy / f"{which}.pt"
    if pickled == "torch.save":
        torch.save({"model": Evil(proof)}, target)
    else:
        target.write_bytes(pickle.dumps({"model": Evil(proof)}))
    assert_clean_error(invoke("generate", run_copy, "--checkpoint", which, "-o", tmp_path / "o"), f"{which}.pt")
    assert_clean_error(invoke("evaluate", run_copy, "--checkpoint", which), f"{which}.pt")
    if which == "last":
        assert_clean_error(invoke("train", "--resume", "--run-dir", run_copy, "--max-steps", 20, "--quiet"),
                           "last.pt")
    assert not proof.exists()


def test_yaml_tags_in_config_never_run(run_copy, tmp_path):
    proof = tmp_path / "pwned"
    (run_copy / "config.yaml").write_text(f"domain: !!python/object/apply:os.system ['touch {proof}']\n")
    assert_clean_error(invoke("generate", run_copy, "-o", tmp_path / "o"), "config.yaml")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"train: !!python/object/apply:os.system ['touch {proof}']\n")
    assert_clean_error(invoke("train", run_copy, "--config", cfg), "cfg.yaml")
    assert not proof.exists()


def test_npz_object_arrays_never_run(tmp_path):
    import numpy as np

    proof = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = Evil(proof)
    np.savez(tmp_path / "evil.npz", train=evil)
    result = invoke("render", tmp_path / "evil.npz", "-o", tmp_path / "x.png")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert not proof.exists()


@pytest.mark.parametrize("what", ["not weights", "empty"])
def test_resume_from_a_damaged_last_checkpoint(run_copy, what):
    (run_copy / "last.pt").write_bytes(b"\x80\x04K\x01." if what == "not weights" else b"")
    before = sorted(p.name for p in run_copy.iterdir())
    assert_clean_error(invoke("train", "--resume", "--run-dir", run_copy, "--max-steps", 20, "--quiet"), "last.pt")
    assert sorted(p.name for p in run_copy.iterdir()) == before


def test_absurd_training_window_does_not_hang_generate(run_copy, tmp_path):
    _tamper_config(run_copy, lambda c: c["codec"].update(window_bars=10_000_000))
    _assert_clean_subprocess(_cli("generate", run_copy, "-n", 1, "-o", tmp_path / "o"), "--length", "10000")
    ok = _cli("generate", run_copy, "-n", 1, "--length", 8, "-o", tmp_path / "o")
    assert ok.returncode == 0, ok.stderr


def test_length_has_a_hard_cap(trained_run, tmp_path):
    assert_clean_error(invoke("generate", trained_run, "--length", 10_000_000, "-o", tmp_path / "o"), "--length",
                       "100000")


# -- 2. never write through a symbolic link -------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ["metrics.jsonl", "samples/sample-000.mid", "samples/sample-000.png", "samples"])
def test_resume_refuses_planted_links(run_copy, tmp_path, entry):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("precious\n")
    link = run_copy / entry
    if link.is_dir():
        shutil.rmtree(link)
    elif link.exists():
        link.unlink()
    link.symlink_to(outside if entry == "samples" else victim)
    result = invoke("train", "--resume", "--run-dir", run_copy, "--max-steps", 12, "--quiet")
    assert_clean_error(result, entry.split("/")[-1], "symbolic link")
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]


def test_generate_replaces_planted_links_never_their_targets(trained_run, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    # the names generate writes (a conditional run puts the conditions in them): from a first run, same seed
    assert invoke("generate", trained_run, "-n", 2, "-o", tmp_path / "first", "--seed", 0).exit_code == 0
    names = sorted(p.name for p in (tmp_path / "first").iterdir() if p.suffix in (".mid", ".png"))[:3]
    assert len(names) == 3
    for name in names:
        (outside / name).write_text("precious\n")
        (out / name).symlink_to(outside / name)
    result = invoke("generate", trained_run, "-n", 2, "-o", out, "--seed", 0)
    assert result.exit_code == 0, result.output
    for name in names:
        assert (outside / name).read_text() == "precious\n"
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0
    # no temporary file left; only the list of the set written (generate replaces it whole next time)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".seqstudio-samples"]


def test_atomic_write_never_follows_a_link(tmp_path):
    from seqstudio.atomic import atomic_write

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    dest = tmp_path / "run" / "last.pt"
    dest.parent.mkdir()
    dest.symlink_to(victim)
    (dest.parent / f".last.pt.{os.getpid()}.tmp").symlink_to(victim)  # where the temporary file used to go
    atomic_write(dest, lambda tmp: torch.save({"x": torch.ones(2)}, tmp))
    assert victim.read_text() == "precious\n"
    assert not dest.is_symlink() and torch.load(dest, weights_only=True)["x"].sum() == 2


# -- 3. full disks --------------------------------------------------------------------------------------------------
class FullDisk:
    """Make the file system holding ``folder`` look full, with the kernel's and torch's own errors."""

    def __init__(self, monkeypatch, folder: Path, python: bool = True, torch_save: bool = True):
        self.folder = Path(folder).resolve()
        real_open, real_save, real_statvfs = builtins.open, torch.save, os.statvfs

        def inside(path) -> bool:
            try:
                return Path(os.path.abspath(path)).is_relative_to(self.folder)
            except TypeError:
                return False

        def full_open(file, mode="r", *args, **kwargs):
            fh = real_open(file, mode, *args, **kwargs)
            if isinstance(file, (str, os.PathLike)) and inside(file) and any(c in mode for c in "wax+"):
                dev = os.open("/dev/full", os.O_WRONLY)
                os.dup2(dev, fh.fileno())  # the file exists, as on a real full disk; every write fails
                os.close(dev)
            return fh

        def full_save(obj, f, *args, **kwargs):
            if isinstance(f, (str, os.PathLike)) and inside(f):
                Path(f).touch()
                return real_save(obj, "/dev/full", *args, **kwargs)  # torch's own error for a full device
            return real_save(obj, f, *args, **kwargs)

        def full_statvfs(path):
            st = real_statvfs(path)
            if inside(path):
                return os.statvfs_result((st.f_bsize, st.f_frsize, st.f_blocks, 0, 0, st.f_files, st.f_ffree,
                                          st.f_favail, st.f_flag, st.f_namemax))
            return st

        if python:
            monkeypatch.setattr(builtins, "open", full_open)
            monkeypatch.setattr(io, "open", full_open)
        if torch_save:
            monkeypatch.setattr(torch, "save", full_save)
        monkeypatch.setattr(os, "statvfs", full_statvfs)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp"))


def test_the_simulated_full_disk_raises_what_a_real_one_does(monkeypatch, tmp_path):
    FullDisk(monkeypatch, tmp_path)
    with pytest.raises(OSError) as err:
        with open(tmp_path / "f", "wb") as fh:
            fh.write(b"x" * 100_000)
    assert err.value.errno == 28
    with pytest.raises(RuntimeError, match="inline_container.cc|iostream error"):
        torch.save({"x": torch.zeros(1000)}, tmp_path / "g.pt")


def test_full_disk_before_training(chorales, tmp_path, monkeypatch):
    run = tmp_path / "full" / "run"
    run.mkdir(parents=True)
    FullDisk(monkeypatch, tmp_path / "full")
    result = invoke("train", chorales, "--run-dir", run, "--max-steps", 2, *TINY)
    assert_clean_error(result, "no space left on", str(run))
    assert _leftovers(run) == []


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(run_copy, monkeypatch):
    last = (run_copy / "last.pt").read_bytes()
    best = (run_copy / "best.pt").read_bytes()
    FullDisk(monkeypatch, run_copy, python=False)
    for _ in range(2):  # and the resume after it says the same
        result = invoke("train", "--resume", "--run-dir", run_copy, "--max-steps", 9, "--quiet")
        assert_clean_error(result, "no space left on", str(run_copy))
        assert (run_copy / "last.pt").read_bytes() == last and (run_copy / "best.pt").read_bytes() == best
        assert _leftovers(run_copy) == []


def test_generate_onto_a_full_disk(trained_run, tmp_path, monkeypatch):
    out = tmp_path / "full" / "out"
    out.mkdir(parents=True)
    FullDisk(monkeypatch, tmp_path / "full")
    assert_clean_error(invoke("generate", trained_run, "-n", 2, "-o", out), "no space left on", str(out))
    assert list(out.iterdir()) == []


def test_full_cache_disk_is_a_warning_not_broken_data(chorales, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "full" / "cache"))
    (tmp_path / "full").mkdir()
    FullDisk(monkeypatch, tmp_path / "full")
    result = invoke("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 1, *TINY)
    assert result.exit_code == 0, result.output
    assert "no space left on" in result.stderr and "skipped" not in result.stderr


# -- 4. the encoding cache ------------------------------------------------------------------------------------------
def test_cache_pointing_at_a_file_is_named(chorales, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "cachefile"
    not_a_folder.write_text("")
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(not_a_folder))
    result = invoke("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 1, *TINY)
    assert result.exit_code == 0, result.output
    assert "not a folder" in result.stderr and str(not_a_folder) in result.stderr
    assert "skipped" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_cache_is_named(chorales, tmp_path, monkeypatch):
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(0o500)
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(cache))
    try:
        result = invoke("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 1, *TINY)
    finally:
        cache.chmod(0o700)
    assert result.exit_code == 0, result.output
    assert "Permission denied" in result.stderr and "skipped" not in result.stderr


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


SHARD_DAMAGE = {
    "truncated": (lambda j: j.with_suffix(".bin").write_bytes(j.with_suffix(".bin").read_bytes()[:-7]), "truncated"),
    "a flipped byte": (lambda j: _flip_a_byte(j.with_suffix(".bin")), "checksum"),
    "data file missing": (lambda j: j.with_suffix(".bin").unlink(), "missing"),
    "index garbage": (lambda j: j.write_text("{not json"), "unreadable"),
    "index of another version": (lambda j: j.write_text('{"version": 1, "files": []}'), "another"),
    "index pointing outside": (lambda j: j.write_text(j.read_text().replace('"length": [', '"length": [99999999, ')),
                               "malformed"),
}


@pytest.mark.parametrize("damage", list(SHARD_DAMAGE))
def test_a_damaged_cache_shard_is_detected_and_rebuilt_with_one_warning(chorales, tmp_path, monkeypatch, damage):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(cache))
    args = ("--max-steps", 1, *TINY, "--set", "train.samples=0")
    assert invoke("train", chorales, "--run-dir", tmp_path / "r1", *args).exit_code == 0
    (index,) = sorted(cache.rglob("shard-*.json"))
    before = json.loads(index.read_text())
    spoil, reason = SHARD_DAMAGE[damage]
    spoil(index)
    result = invoke("train", chorales, "--run-dir", tmp_path / "r2", *args)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "encoding cache shard" in line]
    assert len(warned) == 1 and reason in warned[0] and "encoded again" in warned[0], result.stderr
    (rebuilt,) = sorted(cache.rglob("shard-*.json"))  # the damaged shard is gone, a new one holds the files
    assert rebuilt != index and set(json.loads(rebuilt.read_text())["hashes"]) == set(before["hashes"])
    third = invoke("train", chorales, "--run-dir", tmp_path / "r3", *args)
    assert third.exit_code == 0 and "encoding cache" not in third.stderr


# -- 5. plugins -----------------------------------------------------------------------------------------------------
def test_plugin_calling_sys_exit_at_import_breaks_no_command(site, chorales, tmp_path):  # noqa: F811
    make_distribution(site, "exitplug", """
        [seqstudio.domains]
        quitter = exitplug:Domain
        [seqstudio.backends]
        quitter = exitplug:Backend
        [seqstudio.recipes]
        quitter = exitplug
        """, "import sys\nsys.exit(3)\n")
    listing = invoke("plugins")
    assert listing.exit_code == 0 and "BROKEN" in listing.output and "SystemExit" in listing.output
    assert invoke("data", "list").exit_code == 0
    run = tmp_path / "run"
    result = invoke("train", chorales, "--run-dir", run, "--max-steps", 1, *TINY)
    assert result.exit_code == 0, result.output
    assert invoke("generate", run, "-n", 1, "-o", tmp_path / "o").exit_code == 0
    assert invoke("render", next(chorales.glob("*.mid")), "-o", tmp_path / "x.png").exit_code == 0
    assert_clean_error(invoke("train", chorales, "--backend", "quitter"), "quitter", "SystemExit")


def test_keyboard_interrupt_in_a_plugin_still_interrupts(site):  # noqa: F811
    from seqstudio import registry

    make_distribution(site, "ctrlc", """
        [seqstudio.backends]
        ctrlc = ctrlc:Backend
        """, "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        registry.load_backend("ctrlc")


def test_a_plugin_registering_midi_is_refused_naming_both(site, chorales, tmp_path):  # noqa: F811
    make_distribution(site, "impostor", """
        [seqstudio.domains]
        midi = impostor:ToyDomain
        """, TOY_MODULE)
    result = invoke("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 1, *TINY)
    assert_clean_error(result, "'midi'", "seqstudio-midi", "impostor", "train")
    listing = invoke("plugins")
    assert listing.output.count("registered more than once") == 2


# -- 6. small ones --------------------------------------------------------------------------------------------------
def test_train_on_a_missing_folder_says_so(tmp_path):
    assert_clean_error(invoke("train", tmp_path / "nonexistent"), "does not exist")


FORGETFUL = TOY_MODULE.replace('''class TokenCodec(Codec):
    name = "tokens"
    Config = CodecConfig

    @property
    def spec(self):
        return FeatureSpec([Categorical(128)])

    def encode(self, sample):
        return torch.tensor(sample, dtype=torch.float32).unsqueeze(1)
''', '''class TokenCodec(Codec):
    name = "tokens"
    Config = CodecConfig
    NEEDS_FIT = None  # replaced below

    def __init__(self, config=None):
        super().__init__(config)
        self.vocab = []

    @property
    def spec(self):
        return FeatureSpec([Categorical(len(self.vocab) + 1)])

    def fit(self, samples):
        self.vocab = sorted({t for s in samples for t in s})

    def state_dict(self):
        return {"vocab": self.vocab}

    def load_state_dict(self, state):
        self.vocab = list(state["vocab"])

    def encode(self, sample):
        index = {t: i + 1 for i, t in enumerate(self.vocab)}
        return torch.tensor([index.get(t, 0) for t in sample], dtype=torch.float32).unsqueeze(1)
''')


@pytest.mark.parametrize("needs_fit", [False, True])
def test_codec_breaking_the_fit_contract_is_refused(site, tmp_path, needs_fit):  # noqa: F811
    # needs_fit False: fit is never called; True with a non-empty state_dict before fit: looks fitted already.
    module = FORGETFUL.replace("NEEDS_FIT = None  # replaced below", f"needs_fit = {needs_fit}")
    make_distribution(site, "forgetful", """
        [seqstudio.domains]
        toy = forgetful:ToyDomain
        """, module)
    data = tmp_path / "songs"
    data.mkdir()
    for i in range(8):
        (data / f"s{i}.toy").write_text(" ".join(str(60 + (i * 7 + j) % 12) for j in range(40)))
    result = invoke("train", data, "--run-dir", tmp_path / "run", "--max-steps", 2, *TINY,
                    "--set", "codec.window=16")
    assert_clean_error(result, "'tokens'", "Categorical(1)", "needs_fit", "fit contract")


def test_prime_and_config_must_be_regular_files(trained_run, chorales, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _assert_clean_subprocess(_cli("generate", trained_run, "--prime", fifo, "-o", tmp_path / "o"), "--prime",
                             "FIFO")
    _assert_clean_subprocess(_cli("train", chorales, "--config", fifo, "--run-dir", tmp_path / "r"), "--config",
                             "FIFO")


def test_devices_are_refused_as_prime_and_config(trained_run, chorales, tmp_path):
    assert_clean_error(invoke("generate", trained_run, "--prime", "/dev/zero", "-o", tmp_path / "o"), "--prime",
                       "character device")
    assert_clean_error(invoke("train", chorales, "--config", "/dev/zero"), "--config", "character device")
