"""Reliability: one bad file never stalls, swamps or crashes a run, and nothing writes over an input.

Every case writes its own inputs into ``tmp_path`` (nothing is downloaded). Cases that hung or blew up memory
run the real CLI in a subprocess (``python -m seqstudio``) under a wrapper that caps its data memory, kills it
(and its workers) after a time limit and reports its peak memory from ``getrusage(RUSAGE_CHILDREN)``; the
assertions are exit code, one stderr line naming the file and the reason, no traceback, time and memory bounds,
and inputs unchanged (hashed before and after). Independent CLI runs go two at a time (two cores).
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import hashlib
import io
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
import torch

from seqstudio import api, data, encoding
from seqstudio.errors import ConfigError, DataError

from conftest import TINY

PEAK_MB = 2048  # no case may take more (the fixed code takes ~0.5-1 GB: torch and music21 imported)
# Data-segment cap (RLIMIT_DATA: private writable memory, i.e. heap and array allocations) of the CLI under test, so
# a regression fails the test, not the machine. Not an address-space cap (RLIMIT_AS): the default CUDA build of
# torch maps ~3 GB of shared libraries just to import, which RLIMIT_AS refuses ("failed to map segment from shared
# object"), while those read-only mappings do not count here (importing either build takes ~0.5-0.7 GB of data).
CAP_BYTES = int(2.5 * (1 << 30))
HDR = "X:1\nM:4/4\nL:1/4\nK:C\n"

_WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
timeout, cap, cmd = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
def setup():
    os.setsid()
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
start = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=setup)
try:
    out, err = p.communicate(timeout=timeout)
    rc, timed_out = p.returncode, False
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    out, err = p.communicate()
    rc, timed_out = None, True
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
json.dump({"rc": rc, "timed_out": timed_out, "seconds": time.monotonic() - start, "peak_mb": peak,
           "stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace")}, sys.stdout)
"""


@dataclasses.dataclass
class Run:
    rc: int | None
    timed_out: bool
    seconds: float
    peak_mb: int
    stdout: str
    stderr: str


def cli(*args, cwd: Path, timeout: float = 60, env: dict | None = None) -> Run:
    """The real CLI in a fresh process: capped, timed, its peak RSS measured (workers included)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    command = [sys.executable, "-c", _WRAPPER, str(timeout), str(CAP_BYTES), sys.executable, "-m", "seqstudio",
               *map(str, args)]
    done = subprocess.run(command, capture_output=True, cwd=cwd, env=environment, timeout=timeout + 60)
    return Run(**json.loads(done.stdout))


def many(calls: list[tuple]) -> list[Run]:
    """Run independent ``cli`` calls two at a time."""
    with futures.ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda c: cli(*c[0], **c[1]), calls))


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (outside ``skip``), without following links out of it."""
    out = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if skip is not None and (path == skip or skip in path.parents):
                continue
            if path.is_symlink() or not stat.S_ISREG(path.stat().st_mode):
                out[str(path)] = "special"
                continue
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_one_line_error(run: Run, *fragments: str, max_seconds: float = 45.0) -> None:
    """Exit 1 quickly, within the memory bound, no traceback, and one ``Error:`` line with each fragment."""
    summary = f"rc={run.rc} timed_out={run.timed_out} {run.seconds:.0f}s {run.peak_mb}MB\n{run.stderr[-1500:]}"
    assert not run.timed_out and run.seconds < max_seconds, summary
    assert run.rc == 1, summary
    assert "Traceback" not in run.stderr + run.stdout, summary
    assert run.peak_mb < PEAK_MB, summary
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), summary
    for fragment in fragments:
        assert fragment in lines[0], (fragment, summary)


# -- bad inputs -------------------------------------------------------------------------------------------------
def midi_bytes(notes: list[tuple[int, int, int]], tpb: int = 480) -> bytes:
    """A one-track MIDI file of (pitch, start tick, end tick) notes."""
    events = sorted([(s, "note_on", p) for p, s, _ in notes] + [(e, "note_off", p) for p, _, e in notes])
    track, now = mido.MidiTrack(), 0
    for tick, kind, pitch in events:
        track.append(mido.Message(kind, note=pitch, velocity=80 if kind == "note_on" else 0, time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=tpb)
    midi.tracks.append(track)
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


def good_midi(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return midi_bytes([(int(rng.integers(55, 75)), 240 * i, 240 * i + 220) for i in range(64)])


def musicxml(measures: int, notes_per_measure: int) -> str:
    note = "<note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type></note>"
    body = "".join(f'<measure number="{m + 1}">'
                   + ("<attributes><divisions>1</divisions></attributes>" if m == 0 else "")
                   + note * notes_per_measure + "</measure>" for m in range(measures))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1"><part-list><score-part id="P1">'
            f'<part-name>P</part-name></score-part></part-list><part id="P1">{body}</part></score-partwise>\n')


def zip_bomb(path: Path, gigabytes: float = 1.0) -> Path:
    """A MusicXML ``.mxl`` whose score is ``gigabytes`` of zeros (about 1 MB compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", '<?xml version="1.0"?><container><rootfiles>'
                         '<rootfile full-path="score.xml"/></rootfiles></container>')
        with archive.open("score.xml", "w", force_zip64=True) as member:
            member.write(b'<?xml version="1.0"?><score-partwise>')
            zeros = b"\0" * (1 << 20)
            for _ in range(int(gigabytes * 1024)):
                member.write(zeros)
    return path


def kern(notes: int) -> str:
    return "**kern\n*M4/4\n" + "".join("4c\n" + ("=\n" if i % 4 == 3 else "") for i in range(notes)) + "*-\n"


BAD_MUSIC = {  # name -> (bytes or a writer, what the one-line reason says)
    "bars.abc": (HDR + "CDEF|" * 100_000 + "\n", "notes, more than"),
    "metre.abc": ("X:1\nM:100000000/4\nL:1/4\nK:C\nCDEF|\n", "metre"),
    "measures.xml": (musicxml(20_000, 1), "<measure>"),
    "notes.musicxml": (musicxml(1, 50_000), "<note>"),
    "bomb.mxl": (zip_bomb, "zip bomb"),
    "long480.mid": (midi_bytes([(60, 0, 9_999_000)], tpb=480), "quarter notes"),
    "long1.mid": (midi_bytes([(60, 0, 9_999_000)], tpb=1), "quarter notes"),
    "long.krn": (kern(100_000), "notes, more than"),
}


def write_bad_music(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (content, _) in BAD_MUSIC.items():
        if callable(content):
            content(folder / name)
        else:
            (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return {name: reason for name, (_, reason) in BAD_MUSIC.items()}


# -- hangs and memory: train, render, convert ------------------------------------------------------------------------
def test_train_skips_every_huge_or_special_music_file_quickly(tmp_path):
    data_dir = tmp_path / "data"
    reasons = write_bad_music(data_dir / "train")
    for i in range(2):
        (data_dir / "train" / f"good{i}.mid").write_bytes(good_midi(i))
    (data_dir / "valid").mkdir()
    (data_dir / "valid" / "good.mid").write_bytes(good_midi(9))
    os.mkfifo(data_dir / "train" / "pipe.xml")
    (data_dir / "train" / "zero.abc").symlink_to("/dev/zero")
    before = snapshot(data_dir)
    run = cli("train", data_dir, "--run-dir", tmp_path / "run", "--max-steps", 1, *TINY, cwd=tmp_path, timeout=110,
              env={"SEQSTUDIO_CACHE": str(tmp_path / "cache")})
    summary = f"rc={run.rc} timed_out={run.timed_out} {run.seconds:.0f}s {run.peak_mb}MB\n{run.stderr[-3000:]}"
    assert not run.timed_out and run.rc == 0, summary
    assert "Traceback" not in run.stderr, summary
    assert run.peak_mb < PEAK_MB, summary
    lines = run.stderr.splitlines()
    for name, reason in {**reasons, "pipe.xml": "FIFO", "zero.abc": "/dev/zero"}.items():
        mentions = [line for line in lines if name in line]
        assert len(mentions) == 1 and reason in mentions[0], (name, reason, summary)
    assert snapshot(data_dir) == before


def test_render_refuses_huge_scores_and_midi_quickly(tmp_path):
    reasons = write_bad_music(tmp_path / "in")
    names = ["bars.abc", "bomb.mxl", "long480.mid", "long1.mid", "notes.musicxml"]
    before = snapshot(tmp_path / "in")
    # --domain midi: .abc is read by the text domain too, and a tie is never guessed
    runs = many([(("render", tmp_path / "in" / n, "-o", tmp_path / "out" / f"{n}.png", "--domain", "midi"),
                  {"cwd": tmp_path}) for n in names])
    for name, run in zip(names, runs):
        assert_one_line_error(run, name, reasons[name])
    assert snapshot(tmp_path / "in") == before


CONVERT_CASES = {  # name -> (content, reason fragment)
    "bars.abc": (HDR + "CDEF|" * 100_000 + "\n", "notes, more than"),
    "metre.abc": ("X:1\nM:100000000/4\nL:1/4\nK:C\nCDEF|\n", "metre"),
    "length9.abc": (HDR + "C1000000000|\n", "length out of bounds"),
    "length8316.abc": (HDR + "C8316|\n", "length out of bounds"),
    "voices.abc": (HDR + "".join(f"V:{i}\nCDEF|\n" for i in range(3000)), "voices"),
    "generated.abc": ("X:1\nM:3/4\nL:1/8\nK:Am\nM/C:54'K(3_ g5b]bMG-X:7~X\nc(G.E}^38G_0)-<g8316:DX8AF.'~K{<A-4^|.)"
                      "~Ef9z|Xc\n", "out of bounds"),
}


def test_convert_refuses_malformed_tunes_fifos_and_devices_quickly(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name, (content, _) in CONVERT_CASES.items():
        (src / name).write_text(content)
    special = {"pipe.abc": "FIFO", "pipe.xml": "FIFO", "pipe.txt": "FIFO", "zero.abc": "character device"}
    for name in ("pipe.abc", "pipe.xml", "pipe.txt"):
        os.mkfifo(src / name)
    (src / "zero.abc").symlink_to("/dev/zero")
    cases = {name: reason for name, (_, reason) in CONVERT_CASES.items()} | special
    before = snapshot(src)
    runs = many([(("convert", src / name, tmp_path / "out" / f"{name}.mid"), {"cwd": tmp_path}) for name in cases])
    for (name, reason), run in zip(cases.items(), runs):
        assert_one_line_error(run, name, reason)
    assert snapshot(src) == before and not (tmp_path / "out").exists()


def test_a_fifo_given_as_the_data_folder_is_refused(tmp_path):
    os.mkfifo(tmp_path / "p.xml")
    run = cli("train", tmp_path / "p.xml", "--max-steps", 1, *TINY, cwd=tmp_path, timeout=40)
    assert_one_line_error(run, "p.xml", "FIFO")


def test_stroke_files_with_huge_drawings_are_refused_quickly(tmp_path):
    """An SVG of 50k cubic curves, a 1M-point polyline and a 1M-point QuickDraw stroke: refused in seconds
    (they used to take minutes), in a subprocess with a time limit and a memory cap."""
    curves = " ".join(f"c 1,2 3,4 5,{i % 7}" for i in range(50_000))
    (tmp_path / "curves.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg"><path d="M 0,0 {curves}"/></svg>')
    points = " ".join(f"{i % 1000},{(i * 7) % 1000}" for i in range(1_000_000))
    (tmp_path / "line.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg"><polyline points="{points}"/></svg>')
    xs = list(range(1_000_000))
    (tmp_path / "long.ndjson").write_text(json.dumps({"drawing": [[[x % 1000 for x in xs],
                                                                  [(x * 7) % 1000 for x in xs]]]}) + "\n")
    script = (
        "import json, sys, time\nfrom pathlib import Path\nfrom seqstudio.errors import DataError\n"
        "from seqstudio_strokes.domain import StrokesDomain\nd = StrokesDomain()\nout = {}\n"
        "for name in ('curves.svg', 'line.svg', 'long.ndjson'):\n"
        "    p, t = Path(sys.argv[1]) / name, time.monotonic()\n"
        "    try:\n"
        "        r = d.read_collection(p) if d.is_collection(p) else d.read(p)\n"
        "        out[name] = ['read', time.monotonic() - t]\n"
        "    except DataError as e:\n"
        "        out[name] = [str(e), time.monotonic() - t]\n"
        "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", _WRAPPER, "100", str(CAP_BYTES), sys.executable, "-c", script,
                           str(tmp_path)], capture_output=True, timeout=160, env={**os.environ, "OMP_NUM_THREADS": "1"})
    run = Run(**json.loads(done.stdout))
    assert not run.timed_out and run.rc == 0 and run.peak_mb < PEAK_MB, run
    results = json.loads(run.stdout)
    assert "more than 200,000 points" in results["curves.svg"][0], results
    assert "more than the 200,000" in results["line.svg"][0], results
    assert "no QuickDraw drawings" in results["long.ndjson"][0] and "200,000" in results["long.ndjson"][0]
    assert all(seconds < 20 for _, seconds in results.values()), results


# -- tracebacks where a one-line error belongs ------------------------------------------------------------------------
def test_convert_of_a_long_tune_writes_midi_every_reader_takes(tmp_path):
    """300 bars of 4/4 is 12M ticks at music21's 10,080 per quarter: past pretty_midi's 10M limit, which used
    to end `convert` in a traceback."""
    from seqstudio.cli import main
    from click.testing import CliRunner

    tune = tmp_path / "long.abc"
    tune.write_text("X:1\nM:4/4\nL:1/4\nK:C\n" + "CDEF|GABc|" * 150 + "\n")
    result = CliRunner().invoke(main, ["convert", str(tune), str(tmp_path / "long.mid")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "long.mid"))
    assert sum(len(i.notes) for i in pm.instruments) == 1200
    assert pm.get_end_time() == pytest.approx(600.0, rel=0.01)  # 1200 quarters at 120 bpm


def test_long_scores_read_with_rescaled_ticks():
    """A MIDI file past pretty_midi's 10M ticks (a long score at music21's 10,080 per quarter) reads, with its
    notes where they were."""
    from seqstudio_midi.fastread import checked_pretty_midi

    tpq = 10_080
    notes = [(60 + i % 12, i * tpq, i * tpq + tpq // 2) for i in range(1500)]  # 1500 quarters: 15M ticks
    pm = checked_pretty_midi(midi_bytes(notes, tpb=tpq), Path("long.mid"))
    assert pm.resolution == tpq // 2
    got = [(n.pitch, pm.time_to_tick(n.start) * 2, pm.time_to_tick(n.end) * 2) for n in pm.instruments[0].notes]
    assert got == notes


@pytest.mark.slow
@pytest.mark.parametrize("work", ["opus132", "opus133", "opus18no3", "opus18no4", "opus18no5", "opus74"])
def test_beethoven_quartets_encode_without_being_called_corrupt(work):
    """music21's own corpus: long quartets were skipped as "likely corrupt" after minutes of parsing."""
    from music21 import corpus

    from seqstudio_midi.domain import MidiDomain
    from seqstudio_midi.pianoroll import PianoRollCodec

    path = next(p for p in corpus.getComposer("beethoven") if p.name == f"{work}.mxl")
    pm = MidiDomain().read(Path(path))
    x = PianoRollCodec().encode(pm)
    assert x.shape[0] > 248 * 16  # well past the 248 bars of 4/4 that used to be the limit (4 steps a quarter)


def _utf16_musicxml() -> bytes:
    text = musicxml(4, 4).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    return text.encode("utf-16")


def test_utf16_and_long_prolog_musicxml_and_iam_are_read(tmp_path):
    from seqstudio_midi.domain import MidiDomain
    from seqstudio_strokes.domain import StrokesDomain

    midi, strokes = MidiDomain(), StrokesDomain()
    (tmp_path / "u16.xml").write_bytes(_utf16_musicxml())
    (tmp_path / "prolog.xml").write_text(musicxml(4, 4).replace("<score-partwise", "<!--" + "x" * 8000
                                                                  + "-->\n<score-partwise", 1))
    for name in ("u16.xml", "prolog.xml"):
        assert midi.accepts(tmp_path / name) and not strokes.accepts(tmp_path / name), name
        assert sum(len(i.notes) for i in midi.read(tmp_path / name).instruments) == 16
    iam = ('<?xml version="1.0" encoding="UTF-16"?>\n<WhiteboardCaptureSession><StrokeSet><Stroke>'
           '<Point x="1" y="2" time="0"/><Point x="3" y="5" time="1"/></Stroke></StrokeSet>'
           '</WhiteboardCaptureSession>\n')
    (tmp_path / "iam16.xml").write_bytes(iam.encode("utf-16"))
    (tmp_path / "iamlong.xml").write_text(iam.replace("UTF-16", "UTF-8").replace("<Whiteboard", "<!--" + "y" * 8000
                                                                                 + "-->\n<Whiteboard", 1))
    for name in ("iam16.xml", "iamlong.xml"):
        assert strokes.accepts(tmp_path / name) and not midi.accepts(tmp_path / name), name
        assert strokes.read(tmp_path / name).num_points == 2


# -- data loss and leaks ---------------------------------------------------------------------------------------------
def _inks(rng, n, scale=20.0, label=""):
    from seqstudio_strokes.ink import Ink

    return [Ink([np.cumsum(rng.normal(size=(12, 2)) * scale, 0)], label=label) for _ in range(n)]


def test_render_of_a_many_drawing_file_never_rewrites_it(tmp_path):
    from seqstudio_strokes.formats import write_npz

    rng = np.random.default_rng(0)
    write_npz({"train": _inks(rng, 10), "valid": _inks(rng, 3), "test": _inks(rng, 3)}, tmp_path / "q.npz")
    (tmp_path / "other.svg").write_text("<svg/>")
    before = snapshot(tmp_path)
    run = cli("render", "q.npz", "-o", "q.png", "--limit", 4, cwd=tmp_path, timeout=60)
    assert run.rc == 0 and "Traceback" not in run.stderr, run
    after = snapshot(tmp_path)
    assert after[str(tmp_path / "q.npz")] == before[str(tmp_path / "q.npz")]  # 16 drawings, not 4
    assert {Path(p).name for p in set(after) - set(before)} == {"q.png", "q.svg"}
    assert "q.npz" in run.stderr and "being drawn" in run.stderr
    # the API refuses an output path equal to the input
    with pytest.raises(ConfigError, match="input file itself"):
        api.render_file(tmp_path / "q.png", out=tmp_path / "q.png", domain="strokes")
    assert snapshot(tmp_path) == after


def test_text_folder_links_to_passwd_and_proc_are_never_read(tmp_path, caplog):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(6):
        (folder / f"doc{i}.txt").write_text(("abc def ghi\n" * (i + 3)))
    (folder / "inside.txt").symlink_to(folder / "doc0.txt")  # a link that stays inside is fine
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "environ.txt").symlink_to("/proc/self/environ")
    cfg = api.resolve_config(folder, domain="text", overrides=["train.workers=1"])
    with caplog.at_level(logging.WARNING, logger="seqstudio"):
        prepared = data.prepare(cfg, progress=False)
    codec, files = prepared.codec, prepared.files
    listed = {p.name for s in data.SPLITS for p in files[s]}
    assert "passwd.txt" not in listed and "environ.txt" not in listed and "inside.txt" in listed
    warnings = [r.getMessage() for r in caplog.records if "passwd.txt" in r.getMessage()]
    assert len(warnings) == 1 and "environ.txt" in warnings[0] and "outside the data folder" in warnings[0]
    assert set(codec.chars) <= set("abcdefghi \n")  # nothing of /etc/passwd or the environment was learned


def _hash(x: torch.Tensor) -> str:
    return hashlib.sha256(x.numpy().tobytes()).hexdigest()


def _window_hashes(sets) -> dict[str, set[str]]:
    return {split: {_hash(windows.x[i, : int(windows.lengths[i])]) for i in range(len(windows))}
            for split, windows in sets.items()}


def test_folder_splits_never_mix_inside_many_drawing_files(tmp_path):
    """Each window's source (file and split array) is known by its hash; a split given by folders only ever
    holds windows of that folder's files, and of a many-drawing file only its own split's array."""
    from seqstudio_strokes.codec import Stroke5Codec
    from seqstudio_strokes.formats import read_ndjson, read_npz, write_npz

    rng = np.random.default_rng(1)
    root = tmp_path / "qd"
    sources = {}  # (folder, file, array) -> drawings
    for folder in data.SPLITS:
        (root / folder).mkdir(parents=True)
        arrays = {s: _inks(rng, 4, label=f"{folder}-{s}") for s in data.SPLITS}
        write_npz(arrays, root / folder / "cat.npz")
        sources.update({(folder, "cat.npz", s): inks for s, inks in arrays.items()})
    loose = _inks(rng, 6)  # an ndjson in valid/: all of it is validation data
    (root / "valid" / "dog.ndjson").write_text("".join(
        json.dumps({"drawing": [[[float(v) for v in ink.strokes[0][:, 0]], [float(v) for v in ink.strokes[0][:, 1]]]]})
        + "\n" for ink in loose))
    sources[("valid", "dog.ndjson", "")] = loose
    cfg = api.resolve_config(root, domain="strokes", overrides=["train.workers=1", "codec.simplify=0"])
    prepared = data.prepare(cfg, progress=False, splits=data.SPLITS)
    codec, files, sets = prepared.codec, prepared.files, prepared.windows
    reference = Stroke5Codec(codec.config)
    reference.load_state_dict(codec.state_dict())
    origin = {}  # window hash -> (folder, file, array), from the drawings as the readers return them
    for folder in data.SPLITS:
        for array, inks in read_npz(root / folder / "cat.npz").items():
            origin.update({_hash(reference.encode(ink)): (folder, "cat.npz", array) for ink in inks})
    origin.update({_hash(reference.encode(ink)): ("valid", "dog.ndjson", "")
                   for ink in read_ndjson(root / "valid" / "dog.ndjson")})
    assert len(origin) == 3 * 12 + 6
    for split, hashes in _window_hashes(sets).items():
        assert hashes, split
        keys = {origin[h] for h in hashes}
        assert keys == {(split, "cat.npz", split)} | ({("valid", "dog.ndjson", "")} if split == "valid" else set()), \
            (split, keys)
    # the stroke scale was fitted on training data only
    fitted = Stroke5Codec(codec.config)
    fitted.fit(sources[("train", "cat.npz", "train")])
    assert codec.scale == pytest.approx(fitted.scale)


def _content_with_score(make, low: float, high: float) -> bytes:
    for i in range(10_000):
        content = make(i)
        if low <= encoding.split_score(hashlib.sha256(content).hexdigest()) < high:
            return content
    raise AssertionError("no content found")


@pytest.mark.parametrize("domain", ["text", "midi"])
def test_a_tiny_folder_always_trains_on_its_readable_file(tmp_path, caplog, domain):
    """Two files, the only good one hashed into valid: train still gets it (text fits its codec on train first;
    MIDI is rescued after encoding), and the empty valid split is reported."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if domain == "text":
        good = _content_with_score(lambda i: f"a good little text number {i}\n".encode(), 0.0, 0.1)
        bad = _content_with_score(lambda i: b"\x00binary" + bytes([i % 256, i // 256]), 0.2, 1.0)
        (folder / "good.txt").write_bytes(good)
        (folder / "bad.txt").write_bytes(bad)
    else:
        good = _content_with_score(good_midi, 0.0, 0.1)
        bad = _content_with_score(lambda i: b"MThd garbage " + str(i).encode(), 0.2, 1.0)
        (folder / "good.mid").write_bytes(good)
        (folder / "bad.mid").write_bytes(bad)
    cfg = api.resolve_config(folder, domain=domain, overrides=["train.workers=1"])
    with caplog.at_level(logging.WARNING, logger="seqstudio"):
        prepared = data.prepare(cfg, progress=False)
        files, sets = prepared.files, prepared.windows
    assert f"good.{'txt' if domain == 'text' else 'mid'}" in [f.name for f in files["train"]]
    assert len(sets["train"]) > 0
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "training on" in messages and "empty" in messages


def test_extreme_stroke_values_are_skipped_and_the_scale_fit_is_robust(tmp_path, caplog):
    from seqstudio_strokes.codec import Stroke5Codec
    from seqstudio_strokes.formats import read_ndjson, read_npz, read_svg
    from seqstudio_strokes.ink import Ink

    rng = np.random.default_rng(2)
    normal = [np.concatenate([rng.normal(0, 18.8, (40, 2)), np.zeros((40, 1))], 1) for _ in range(15)]
    for d in normal:
        d[-1, 2] = 1
    huge64 = normal[0].copy()
    huge64[3, :2] = 1e300  # finite in float64, inf in float32
    huge32 = normal[0].copy()
    huge32[:, :2] = 3e38  # finite in float32; its running sums overflow
    array = np.empty(17, dtype=object)
    for i, d in enumerate([*normal, huge64, huge32]):
        array[i] = d
    np.savez(tmp_path / "x.npz", train=array)
    with caplog.at_level(logging.WARNING, logger="seqstudio"):
        inks = read_npz(tmp_path / "x.npz")["train"]
    assert len(inks) == 15
    assert any("x.npz" in r.getMessage() and "skipped 2" in r.getMessage() for r in caplog.records)
    (tmp_path / "big.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><polyline points="0,0 1e300,1"/></svg>')
    with pytest.raises(DataError, match="big.svg.*not all finite"):
        read_svg(tmp_path / "big.svg")
    (tmp_path / "big.ndjson").write_text('{"drawing": [[[0, 1e300], [0, 1]]]}\n')
    with pytest.raises(DataError, match="big.ndjson.*not all finite"):
        read_ndjson(tmp_path / "big.ndjson")
    # the scale: plain standard deviation on ordinary data, unmoved by one drawing of int16 extremes
    codec = Stroke5Codec(Stroke5Codec.Config(simplify=0))
    codec.fit(inks)
    plain = codec.scale
    assert plain == pytest.approx(float(np.std(np.concatenate([d[:, :2] for d in normal]))), rel=1e-4)
    extreme = np.concatenate([rng.choice([-32768.0, 32767.0], (40, 2)), np.zeros((40, 1))], 1)
    codec.fit([*inks, Ink([np.cumsum(extreme[:, :2], 0)])])
    assert codec.scale == pytest.approx(plain, rel=0.05)
    codec.fit([*inks, Ink([np.full((5, 2), 3e38, dtype=np.float32)])])
    assert np.isfinite(codec.scale) and codec.scale == pytest.approx(plain, rel=0.05)


# -- the bounded-reading helpers ---------------------------------------------------------------------------------------
def _spin(seconds: float, finaliser: bool = False) -> str:
    """Work under a limit until stopped; with ``finaliser``, the limit falls due inside a ``__del__`` first."""
    from seqstudio import safe_io

    try:
        with safe_io.time_limit(seconds, "spin"):
            if finaliser:
                _SlowFinaliser()  # dropped at once: its __del__ runs here, and the limit falls due inside it
            start = time.process_time()
            while time.process_time() - start < 5:
                sum(range(1000))
    except DataError as exc:
        return str(exc)
    return "not stopped"


def _spin_many(times: int) -> list[str]:
    """Many short limits in a row: the CPU timer and the wall-clock backstop now and then fire together (under
    load), which once let a second ``_Expired`` escape from the context managers' exit code."""
    return [_spin(0.01) for _ in range(times)]


def test_time_limit_works_in_threads_and_spawned_workers():
    import multiprocessing

    assert "gave up" in _spin(0.2)
    box = []
    thread = threading.Thread(target=lambda: box.append(_spin(0.2)))
    thread.start()
    thread.join(10)
    assert box and "gave up" in box[0]
    with futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert "gave up" in pool.submit(_spin, 0.2).result(timeout=60)
        results = pool.submit(_spin_many, 100).result(timeout=120)
        assert len(results) == 100 and all("gave up" in r for r in results), set(results)
    time.sleep(0.3)  # no stray alarm afterwards


def test_safe_io_refuses_special_files_and_oversized_reads(tmp_path):
    from seqstudio import safe_io

    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "big").write_bytes(b"x" * 2000)
    for name, fragment in (("pipe", "FIFO"), ("zero", "character device"), ("big", "more than")):
        with pytest.raises(DataError, match=fragment):
            safe_io.read_bytes_limited(tmp_path / name, 1000)
    assert "special file" in safe_io.special_file_reason("/proc/self/environ")
    assert safe_io.read_bytes_limited(tmp_path / "big", 2000) == b"x" * 2000


def test_score_limits_pass_real_tunes():
    from seqstudio import score_limits

    tune = "X:1\nT:t\nM:6/8\nL:1/8\nQ:3/8=120\nK:D\n|:A|d2f a2f|(3gfe d B2A|[1 dfa ~g2e:|[2 d3 d2||\n"
    assert score_limits.check_abc(tune, "t") > 10
    with pytest.raises(DataError, match="voices"):
        score_limits.check_abc(HDR + "".join(f"[V:{i}] C|" for i in range(40)), "t")


class _SlowFinaliser:
    """An object whose ``__del__`` takes CPU time: a limit due inside it raises where Python swallows exceptions."""

    def __del__(self):
        start = time.process_time()
        while time.process_time() - start < 0.5:
            sum(range(1000))


def test_time_limit_still_stops_a_block_after_a_finaliser_swallowed_its_first_signal():
    # CI once saw music21 parse a long tune to the end: the limit's exception had been raised inside a weakref
    # callback, which Python reports as "Exception ignored" and drops.
    assert "gave up" in _spin(0.2, finaliser=True)
    box = []
    thread = threading.Thread(target=lambda: box.append(_spin(0.2, finaliser=True)))
    thread.start()
    thread.join(20)
    assert box and "gave up" in box[0]
