"""Data at scale (issue 17): memory-mapped shards equal the old padded windows, the symusic reader equals
pretty_midi's, concurrent runs share one cache, and the cache can be seen and cleared."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch
from click.testing import CliRunner

from seqstudio import data, encoding, registry
from seqstudio.data import encode
from seqstudio.cli import main
from seqstudio.shards import FloatPieces, PackedPieces, PackError, RowFormat
from seqstudio.spec import Binary, Categorical, FeatureSpec, Real

from conftest import TINY, invoke


def _padded(tensors: list[torch.Tensor], codec) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows as the loader built them before shards: every window padded into one float32 tensor."""
    windows = [w for x in tensors for w in codec.windows(x)]
    lengths = torch.tensor([w.shape[0] for w in windows])
    x = torch.zeros(len(windows), int(lengths.max()), codec.spec.storage_width)
    for i, w in enumerate(windows):
        x[i, : w.shape[0]] = w
    return x, lengths


def _write_multitrack(path: Path, seed: int, overlap: bool = False) -> None:
    """Piano, bass and drums at an unusual tempo; ``overlap``: two notes of one pitch overlap on one channel
    (pretty_midi and symusic pair their note-offs differently, so this file must take the pretty_midi path)."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(rng.choice([73.0, 100.0, 141.0])))
    piano, bass = pretty_midi.Instrument(program=0), pretty_midi.Instrument(program=33)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    t = 0.0
    for _ in range(40):
        d = float(rng.choice([0.125, 0.25, 0.5]))
        piano.notes.append(pretty_midi.Note(int(rng.integers(40, 110)), int(rng.integers(55, 80)), t, t + d))
        bass.notes.append(pretty_midi.Note(90, int(rng.integers(30, 50)), t, t + d))
        drums.notes.append(pretty_midi.Note(100, 36, t, t + 0.05))
        t += d
    if overlap:
        piano.notes += [pretty_midi.Note(80, 90, 0.0, 1.0), pretty_midi.Note(70, 90, 0.5, 1.5)]
    pm.instruments.extend([piano, bass, drums])
    pm.write(str(path))


@pytest.fixture(scope="module")
def corpus(chorales, tmp_path_factory) -> Path:
    """The chorales plus multitrack files written with pretty_midi (one with same-pitch overlaps)."""
    dest = tmp_path_factory.mktemp("scale") / "corpus"
    dest.mkdir()
    for f in chorales.glob("*.mid"):
        (dest / f.name).write_bytes(f.read_bytes())
    for i in range(5):
        _write_multitrack(dest / f"multi{i}.mid", i, overlap=i == 4)
    return dest


@pytest.mark.parametrize("codec_name,options", [("pianoroll", {}), ("events", {}),
                                                ("pianoroll", {"merge_tracks": False, "onsets": False})])
def test_symusic_and_pretty_midi_readers_encode_the_same(corpus, codec_name, options):
    from seqstudio_midi.fastread import NoteScore

    domain = registry.load_domain("midi")()
    codec = data.make_codec(domain, codec_name, options)
    fast = 0
    for f in sorted(corpus.glob("*.mid")):
        sample = domain.read_for_encoding(f)
        fast += isinstance(sample, NoteScore)
        assert torch.equal(codec.encode(domain.read(f)), codec.encode(sample)), f.name
    assert fast == len(list(corpus.glob("*.mid"))) - 1  # all but the file with overlapping notes


def test_both_readers_give_the_same_attributes(corpus):
    """The conditions' attributes (key from the meta events or music21's analysis, meter) are the same whichever
    reader the loader took: the chorales carry key signatures, the multitrack files (unusual tempos) do not."""
    from seqstudio_midi.fastread import NoteScore

    domain = registry.load_domain("midi")()
    sources = set()
    for f in sorted(corpus.glob("*.mid")):
        fast = domain.read_for_encoding(f)
        if isinstance(fast, NoteScore):
            slow = domain.attributes(domain.read(f), f)
            assert domain.attributes(fast, f) == slow, f.name
            # and the provenance stored beside them (the tempo and program decoding writes back)
            assert domain.provenance(fast, f) == domain.provenance(domain.read(f), f), f.name
            sources.add(slow["_key_source"])
    assert sources == {"meta", "analysis"}


def test_the_fast_key_analysis_is_music21s(corpus):
    """Files without a key signature get music21's key analysis (``analyze('key')``); it is computed with numpy
    (30x faster than building a music21 stream) and must give music21's answer, on both readers' samples."""
    from seqstudio_midi.attributes import estimate_key, estimate_key_music21

    domain = registry.load_domain("midi")()
    keys = set()
    for f in sorted(corpus.glob("*.mid")):
        for sample in (domain.read(f), domain.read_for_encoding(f)):
            fast = estimate_key(sample)
            assert fast == estimate_key_music21(sample), f.name
            keys.add(fast)
    assert len(keys) >= 3  # the corpus is not all in one key: the comparison can fail


@pytest.mark.parametrize("codec_name", ["pianoroll", "events"])
def test_memory_mapped_windows_equal_the_padded_windows(corpus, codec_name, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))
    domain = registry.load_domain("midi")()
    codec = data.make_codec(domain, codec_name)
    files = sorted(corpus.glob("*.mid"))
    old = [codec.encode(domain.read(f)) for f in files]  # the old reader, the old tensors
    for attempt in ("cold", "warm"):  # written to shards, then read back from them (and their window index)
        encoded = data.encode_files(files, "midi", codec, workers=1, progress=False)
        pieces = [encoded[f] for f in files]
        assert all(isinstance(p.source.array, np.memmap) for p in pieces), attempt
        windows = data.WindowSet.from_pieces(pieces, codec)
        x, lengths = _padded(old, codec)
        assert torch.equal(windows.lengths, lengths) and len(windows) == x.shape[0]
        assert torch.equal(windows.x, x)  # bit-exact after expansion
        for index in data.batch_indices(len(windows), 7, 0, 3):
            batch = data.make_batch(windows, index, torch.device("cpu"))
            t = int(lengths[index].max())
            assert torch.equal(batch["x"], x[index, :t]) and torch.equal(batch["lengths"], lengths[index])
    assert list((tmp_path / "cache").rglob("*.win-*.npz"))  # the windows are cut once, then read


@pytest.mark.parametrize("domain_name", ["strokes", "text"])
def test_other_domains_windows_equal_the_padded_windows(domain_name):
    """Codecs with Real parts (strokes) and windows they build themselves (text appends an end token)."""
    domain = registry.load_domain(domain_name)()
    for codec_name in domain.codecs:
        codec = data.make_codec(domain, codec_name, {"window": 8} if domain_name == "text" else {})
        samples = domain.example_samples()
        if codec.needs_fit:
            codec.fit(samples)
        tensors = [torch.from_numpy(encoding.encode_one(codec, s)) for s in samples]
        fmt = RowFormat(codec.spec)
        rows = [fmt.pack(t) for t in tensors]
        source = PackedPieces.from_rows(rows, fmt)
        windows = data.WindowSet.from_pieces([data.Piece(source, i) for i in range(len(rows))], codec)
        x, lengths = _padded(tensors, codec)
        assert torch.equal(windows.x, x) and torch.equal(windows.lengths, lengths), codec_name


def test_row_format_keeps_each_part_in_its_natural_type():
    spec = FeatureSpec([Binary(11), Categorical(300), Real(2), Categorical(3)])
    fmt = RowFormat(spec)
    assert fmt.row_bytes == 2 + 2 + 8 + 1  # 11 bits in 2 bytes, a uint16 index, two float32, a uint8 index
    x = torch.cat([torch.randint(0, 2, (50, 11)).float(), torch.randint(0, 300, (50, 1)).float(),
                   torch.randn(50, 2), torch.randint(0, 3, (50, 1)).float()], dim=1)
    assert np.array_equal(fmt.unpack(fmt.pack(x)), x.numpy())
    bad = x.clone()
    bad[3, 0] = 0.5
    with pytest.raises(PackError, match="Binary"):
        fmt.pack(bad)
    assert FloatPieces.from_tensors([x], spec.storage_width).all_finite()


CONCURRENT = """
import hashlib, sys
from pathlib import Path
from seqstudio import data, registry
domain = registry.load_domain("midi")()
codec = data.make_codec(domain, "pianoroll")
files = sorted(Path(sys.argv[1]).glob("*.mid"))
encoded = data.encode_files(files, "midi", codec, workers=1, progress=False)
h = hashlib.sha256()
for f in files:
    h.update(f.name.encode()); h.update(encoded[f].tensor().numpy().tobytes())
print(len(encoded), h.hexdigest())
"""


def test_two_processes_filling_one_cache_both_succeed_and_agree(corpus, tmp_path):
    cache = tmp_path / "cache"
    env = {"SEQSTUDIO_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(corpus)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert "warning" not in "".join(err for _, err in outs).lower()
    assert outs[0][0] == outs[1][0] and outs[0][0].startswith(str(len(list(corpus.glob("*.mid")))))
    third = subprocess.run([sys.executable, "-c", CONCURRENT, str(corpus)], env=env, capture_output=True,
                           text=True, timeout=300)
    assert third.returncode == 0 and third.stdout == outs[0][0] and "encoding cache" not in third.stderr


def test_cache_info_and_clear_remove_only_the_cache(chorales, tmp_path, monkeypatch):
    cache = tmp_path / "home"  # SEQSTUDIO_CACHE pointed at a folder that also holds the user's files
    keep = [cache / "notes.txt", cache / "0123456789abcdef.pt", cache / "photos" / "shard-1.json"]
    for path in keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(cache))
    runner = CliRunner()
    assert runner.invoke(main, ["train", str(chorales), "--run-dir", str(tmp_path / "run"), "--max-steps", "1",
                                "--codec", "pianoroll", *TINY]).exit_code == 0
    report = json.loads(runner.invoke(main, ["cache", "info", "--json"]).output)
    (dataset,) = report["datasets"]
    assert dataset["domain"] == "midi" and dataset["codec"] == "pianoroll" and dataset["files"] >= 6
    assert dataset["bytes"] > 0 and str(chorales.resolve()) in dataset["sources"][0]
    assert "midi/pianoroll" in runner.invoke(main, ["cache", "info"]).output
    kept = runner.invoke(main, ["cache", "clear", "--older-than", "1d"])  # just used: kept
    assert kept.exit_code == 0 and "removed 0 shard(s)" in kept.output
    assert len(json.loads(runner.invoke(main, ["cache", "info", "--json"]).output)["datasets"]) == 1
    cleared = runner.invoke(main, ["cache", "clear"])
    assert cleared.exit_code == 0 and "removed 1 shard(s)" in cleared.output
    assert json.loads(runner.invoke(main, ["cache", "info", "--json"]).output)["datasets"] == []
    assert all(path.read_text() == "mine" for path in keep)
    assert sorted(p.name for p in cache.iterdir()) == ["0123456789abcdef.pt", "notes.txt", "photos"]
    bad = runner.invoke(main, ["cache", "clear", "--older-than", "soon"])
    assert bad.exit_code != 0 and "30d" in bad.output and "Traceback" not in bad.output


def test_a_warm_start_reads_no_file_and_cuts_no_window(chorales, tmp_path, monkeypatch):
    """From a warm cache only the index is read: no MIDI file is parsed and no codec cuts a window."""
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))
    domain = registry.load_domain("midi")()
    codec = data.make_codec(domain, "pianoroll")
    files = sorted(chorales.glob("*.mid"))
    first = data.WindowSet.from_pieces(list(data.encode_files(files, "midi", codec, workers=1,
                                                              progress=False).values()), codec)

    def refuse(*args, **kwargs):
        raise AssertionError("parsed or cut again")

    monkeypatch.setattr(encoding, "read_and_encode", refuse)
    monkeypatch.setattr(type(codec), "windows", refuse)
    again = data.encode_files(files, "midi", codec, workers=1, progress=False)
    second = data.WindowSet.from_pieces(list(again.values()), codec)
    assert torch.equal(first.x, second.x)
    digest = hashlib.sha256(second.x.numpy().tobytes()).hexdigest()
    assert digest == hashlib.sha256(first.x.numpy().tobytes()).hexdigest()


def test_the_training_log_gives_an_eta_for_the_budget(chorales, tmp_path):
    from conftest import read_metrics

    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(chorales), "--run-dir", str(run), "--max-steps", "6", *TINY])
    assert result.exit_code == 0, result.output
    records = [r for r in read_metrics(run) if r["split"] == "train"]
    assert [r["step"] for r in records] == [3, 6]
    assert records[0]["eta_s"] >= 0 and records[-1]["eta_s"] == 0  # nothing left at the last step


# -- warm start-up: what it skips must still be caught -----------------------------------------------------------
def _encode(files, codec):
    return data.encode_files(files, "midi", codec, workers=1, progress=False)


def test_a_verified_shard_is_trusted_until_its_data_file_changes(chorales, tmp_path, monkeypatch, caplog):
    """A warm start does not read the shard's rows to check their SHA-256 while the ``.bin`` is the one that was
    verified; a write to it, even one that puts its modification time back, makes the full check run again,
    and the damaged shard is rebuilt."""
    import seqstudio.shards as shards

    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))
    domain = registry.load_domain("midi")()
    codec = data.make_codec(domain, "pianoroll")
    files = sorted(chorales.glob("*.mid"))
    first = data.WindowSet.from_pieces(list(_encode(files, codec).values()), codec).x
    (index,) = sorted((tmp_path / "cache").rglob("shard-*.json"))
    assert index.with_suffix(".ok").is_file()  # written with the shard: its rows were hashed as they were written

    real_digest = hashlib.file_digest

    def refuse(*args, **kwargs):
        raise AssertionError("the shard was hashed again")

    monkeypatch.setattr(shards.hashlib, "file_digest", refuse)
    assert torch.equal(data.WindowSet.from_pieces(list(_encode(files, codec).values()), codec).x, first)

    bin_path = index.with_suffix(".bin")
    st = bin_path.stat()
    raw = bytearray(bin_path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bin_path.write_bytes(bytes(raw))
    os.utime(bin_path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same modification time
    calls = []
    monkeypatch.setattr(shards.hashlib, "file_digest", lambda *a, **k: calls.append(1) or real_digest(*a, **k))
    with caplog.at_level("WARNING", logger="seqstudio"):
        again = _encode(files, codec)
    assert calls, "a changed .bin was trusted without its checksum"
    assert any("checksum" in r.getMessage() and "encoded again" in r.getMessage() for r in caplog.records)
    assert not index.exists() and not index.with_suffix(".ok").exists()
    assert torch.equal(data.WindowSet.from_pieces(list(again.values()), codec).x, first)


def test_find_files_gives_sorted_paths_order(tmp_path):
    """The walk's own order equals ``sorted(paths)`` (pathlib compares parts) with files and folders whose names
    interleave."""
    domain = registry.load_domain("midi")()
    names = ["a.mid", "a/x.mid", "a/b/c.mid", "a b.mid", "a-1/z.mid", "B.mid", "b/a.mid", "b.mid", "ab/y.mid",
             "a/b.mid", "a/b c/d.mid", "z/a/a/a.mid", "z/a.mid", "notes.txt"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    found = data.find_files(tmp_path, domain)
    assert found == sorted(tmp_path / n for n in names if n.endswith(".mid"))


@pytest.mark.parametrize("count,valid,test", [(60, 0.2, 0.2), (2, 0.1, 0.1), (3, 0.0, 0.5), (1, 0.1, 0.1)])
def test_splits_are_the_content_hash_rule(tmp_path, count, valid, test):
    """Each file's split is its content hash's (the rule the splits had before the start-up work, re-derived
    here), each split in path order; the tiny-folder moves take the lowest-scored train file for valid and the
    highest-scored one for an empty train."""
    domain = registry.load_domain("midi")()
    files = []
    for i in range(count):
        path = tmp_path / f"d{i % 3}" / f"f{i:03d}.mid"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"content {i}".encode())
        files.append(path)
    score = {f: encoding.split_score(hashlib.sha256(f.read_bytes()).hexdigest()) for f in files}
    expected = {s: [] for s in data.SPLITS}
    for f in sorted(files, key=lambda f: (score[f], str(f))):
        expected[encoding.split_for(score[f], valid, test)].append(f)
    if not expected["valid"] and count >= 2 and valid > 0:
        pool = "train" if len(expected["train"]) > 1 else "test"
        if expected[pool]:
            expected["valid"].append(expected[pool].pop(0))
    if not expected["train"]:
        expected["train"].append(expected["test" if expected["test"] else "valid"].pop())
    got = data.split_files(tmp_path, domain, valid, test)
    assert {s: list(v) for s, v in got.items()} == {s: sorted(v) for s, v in expected.items()}


def test_a_changed_file_gets_a_new_hash_in_the_same_process(tmp_path, monkeypatch):
    """The hash memo is read once per process, but a file rewritten in between (same size, modification time
    put back) is hashed again: the memo's key holds its change time and inode."""
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))
    domain = registry.load_domain("midi")()
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(6):
        (folder / f"f{i}.mid").write_bytes(f"aaaa{i}".encode())
    target = folder / "f0.mid"
    data.split_files(folder, domain)
    assert (tmp_path / "cache" / "hashes").is_dir()
    st = target.stat()
    target.write_bytes(b"bbbb0")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    data.split_files(folder, domain)
    assert encoding.content_hash(target) == hashlib.sha256(b"bbbb0").hexdigest()


def test_domain_detection_sees_the_files_rglob_saw(tmp_path):
    """Guessing the domain walks the folder from the directory listing: the same files as ``rglob`` +
    ``is_file`` (hidden files and links to files count, a linked folder is not entered)."""
    root, outside = tmp_path / "data", tmp_path / "outside"
    for path in [root / "a.mid", root / "sub" / ".hidden.mid", root / "sub" / "deep" / "b.txt", outside / "o.mid"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "file-link.mid").symlink_to(outside / "o.mid")
    assert sorted(registry._files_below(root)) == sorted(str(p) for p in root.rglob("*") if p.is_file())
    assert registry.domain_for_path(root) == "midi"


def test_domain_counts_by_extension_equal_asking_every_file(tmp_path):
    """The guess counts most files by their extension (``Domain.sniffed_extensions`` says which ones a domain
    must look into): the counts equal asking each installed domain's ``accepts`` about every file."""
    root = tmp_path / "mixed"
    root.mkdir()
    musicxml = ('<?xml version="1.0"?><score-partwise version="3.1"><part-list/></score-partwise>')
    iam = '<?xml version="1.0"?><WhiteboardCaptureSession><StrokeSet></StrokeSet></WhiteboardCaptureSession>'
    files = {"a.mid": b"x", "B.MID": b"x", "c.midi": b"x", "d.xml": musicxml.encode(), "e.xml": iam.encode(),
             "f.abc": b"X:1", "g.txt": b"hi", "h.npz": b"x", ".mid": b"x", "i.": b"x", "j.svg": b"<svg/>",
             "sub/k.musicxml": musicxml.encode(), "sub/l.XML": musicxml.encode()}
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    paths = [p for p in root.rglob("*") if p.is_file()]
    expected = {}
    for name in registry.names("domain"):
        count = sum(1 for p in paths if registry.load_domain(name)().accepts(p))
        if count:
            expected[name] = count
    assert registry._domain_counts(root) == expected
    assert set(expected) >= {"midi", "strokes", "text"}


def test_a_domain_that_sniffs_undeclared_extensions_is_asked_about_every_file(tmp_path, monkeypatch):
    """A plugin's own ``accepts`` that does not declare ``sniffed_extensions`` is asked about each file."""
    from seqstudio_midi.domain import MidiDomain

    for name in ["a.mid", "b.mid", "c.mid"]:
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setattr(MidiDomain, "sniffed_extensions", None)
    monkeypatch.setattr(MidiDomain, "accepts", lambda self, path: path.name != "b.mid")
    assert registry._domain_counts(tmp_path)["midi"] == 2


def test_train_never_pads_every_window(chorales, tmp_path, monkeypatch):
    """``train`` gathers batches from the shards; padding every window at once (``WindowSet.x``) asked for
    27 GiB at 50,000 files, when only ``data.json``'s "steps per window" was wanted from it."""
    def refuse(self):
        raise AssertionError("every window was padded into one tensor")

    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data.WindowSet, "x", property(refuse))
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(chorales), "--run-dir", str(run), "--max-steps", "1", *TINY])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "data.json").read_text())["steps per window"] > 1


def test_a_small_folder_is_encoded_in_process_without_starting_workers(chorales, tmp_path, monkeypatch):
    def no_workers(workers):
        raise AssertionError("worker processes were started for a small folder")

    monkeypatch.setattr(encode, "worker_pool", no_workers)
    monkeypatch.setenv("SEQSTUDIO_CACHE", str(tmp_path / "cache"))  # nothing encoded before: every file is new
    result = invoke("train", chorales, "--run-dir", tmp_path / "run", "--max-steps", 1, *TINY,
                    "--set", "train.workers=2")
    assert result.exit_code == 0, result.output


def test_what_is_left_after_the_in_process_seconds_goes_to_the_workers(chorales, tmp_path, monkeypatch):
    started = []
    real_pool = encode.worker_pool
    monkeypatch.setattr(encode, "IN_PROCESS_SECONDS", 0.0)
    monkeypatch.setattr(encode, "worker_pool", lambda workers: started.append(workers) or real_pool(workers))
    domain = registry.load_domain("midi")()
    codec = data.make_codec(domain, "pianoroll")
    files = sorted(chorales.glob("*.mid"))
    encoded = data.encode_files(files, "midi", codec, workers=2, progress=False, use_cache=False)
    assert started == [2] and len(encoded) == len(files) == 8
