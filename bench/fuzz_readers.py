"""Fuzz every reader: mutate seed files of each format and feed them to the domain readers in worker processes.

    OMP_NUM_THREADS=1 .venv/bin/python bench/fuzz_readers.py --seed 0 --count 300
    .venv/bin/python bench/fuzz_readers.py --formats abc-music,abc-convert,mxl --count 100 --keep /tmp/findings

Seeds are written by the script itself (MIDI, MusicXML, ABC, kern, SVG, IAM XML, InkML, ndjson, npz, text) or
taken from music21's corpus (a Bach chorale .mxl and its MusicXML, an O'Neill's ABC tune, a Palestrina kern
file) and the kanjivg package (two characters). Each input is 1-3 seeded mutations of a seed: byte flips,
insertions, deletions, truncation, a repeated slice, a number replaced by an extreme one (0, -1, 10^9, 1e300,
3.4e38, nan...), a format's own tokens spliced in (``M:``, ``V:``, ``<!ENTITY``, ``<measure>``...), and for
structured formats a mutation of the structure (MIDI ticks per beat, deltas and tempi; npz arrays; zip
members, recompressed).

Each input goes through what the loader does with a file of its format: ``Domain.read`` (or
``read_collection``) and the domain's default codec (fitted on it first when it must be), and, for
``abc-convert``, ``TextDomain.convert`` to MIDI. Workers run one input at a time with a data-memory cap (RLIMIT_DATA)
(``--mem-cap-mb``); the parent kills a worker that takes longer than ``--hang-seconds`` on one input (a hang),
and restarts one whose peak RSS passed ``--mem-limit-mb`` (a memory blow-up) or that died. Readers get
``SEQSTUDIO_READ_TIMEOUT=--read-timeout`` seconds, so a slow parse ends as a clean skip.

Totals: inputs tried, read fine, clean skips (``DataError``; those that hit the time limit counted apart),
clean errors (another ``SeqStudioError``), tracebacks (any other exception), hangs and memory blow-ups. With
``--keep DIR`` every input that was a traceback, hang or blow-up is saved there with a note of what happened.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from pathlib import Path

FORMATS = {  # name -> (file extension, domain, what is run)
    "midi": (".mid", "midi", "read"),
    "musicxml": (".musicxml", "midi", "read"),
    "mxl": (".mxl", "midi", "read"),
    "abc-music": (".abc", "midi", "read"),
    "abc-text": (".abc", "text", "read"),
    "abc-convert": (".abc", "text", "convert"),
    "kern": (".krn", "midi", "read"),
    "svg": (".svg", "strokes", "read"),
    "iam": (".xml", "strokes", "read"),
    "inkml": (".inkml", "strokes", "read"),
    "ndjson": (".ndjson", "strokes", "read"),
    "npz": (".npz", "strokes", "read"),
    "text": (".txt", "text", "read"),
}
EXTREME_NUMBERS = ["0", "-1", "1000000000", "4294967296", "1e300", "3.4e38", "-3.4e38", "nan", "inf", "65535",
                   "100000", "8316", "32767", "-32768", "0.0000001", "99999999999999999999"]
TOKENS = {
    "abc": ["M:", "L:", "V:", "K:", "X:", "Q:", "Z", "(9", ">>>", "[", "]", "|:", ":|", "::", "{", "}", "!trill!",
            '"', "z", "/", "\n", "%%", "[V:1]", "[M:7/8]", "&", "[1", "A,,,,,,", "^^^^", "T:"],
    "xml": ["<!ENTITY a 'aaaa'>", "<!DOCTYPE x [<!ENTITY a 'b'>]>", "&a;", "<measure>", "</measure>", "<note>",
            "<duration>", "<divisions>", "<", ">", "\"", "<!--", "-->", "<![CDATA[", "]]>", "\x00", "&#0;",
            "<backup><duration>100000000</duration></backup>", "<tie type=\"start\"/>"],
    "kern": ["**kern", "*M", "*>", "*>[A,A,A,A]", "*-", "=", "\t", ".", "[", "]", "_", "0", "00", "r", "*^", "*v"],
    "svg": ["M", "C", "c", "A", "a", "Z", "L", "Q", "T", "S", "transform=\"scale(1e300)\"", "e", ",", "-", ".",
            "<g transform=\"rotate(1e308)\">", "</g>"],
    "json": ["[", "]", "{", "}", ",", "\"drawing\"", "null", "1e400", "-", "\n", "[[[0]]]"],
    "text": ["\x00", "\xff", "\r", "\n", "X:", "K:"],
}


# -- seeds -----------------------------------------------------------------------------------------------------------
def _midi_seed() -> bytes:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    piano = pretty_midi.Instrument(program=0)
    for i in range(32):
        piano.notes.append(pretty_midi.Note(velocity=70 + i % 20, pitch=50 + (i * 5) % 30, start=i * 0.25,
                                            end=i * 0.25 + 0.4))
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes = [pretty_midi.Note(velocity=90, pitch=36, start=i * 0.5, end=i * 0.5 + 0.1) for i in range(16)]
    pm.instruments += [piano, drums]
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _corpus(*parts: str) -> Path | None:
    try:
        import music21

        path = Path(music21.__file__).parent / "corpus" / Path(*parts)
        return path if path.exists() else None
    except ImportError:
        return None


def _kanjivg(name: str) -> bytes | None:
    import importlib.metadata

    try:
        path = Path(importlib.metadata.distribution("kanjivg").locate_file("")) / "kanji" / name
        return path.read_bytes() if path.is_file() else None
    except importlib.metadata.PackageNotFoundError:
        return None


ABC_TUNE = ("X:1\nT:Scale\nM:6/8\nL:1/8\nQ:3/8=100\nK:D\n|:A|d2f a2f|(3gfe d B2A|dfa ~g2e|[1 d3 d2:|[2 d3 d2||\n"
            "V:2\nD,6|A,,6|\n")
KERN = "**kern\t**kern\n*M3/4\t*M3/4\n=1\t=1\n4c\t4e\n4d\t4f\n4e\t4g\n=2\t=2\n2.c\t2.e\n*-\t*-\n"
SVG = ('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><g transform="'
       'translate(5,5) scale(0.9)"><path d="M 10,10 C 20,0 40,0 50,10 S 80,20 90,10 M 10,50 Q 50,90 90,50 '
       'A 20 20 0 0 1 50 80 Z"/><polyline points="1,1 5,9 9,1"/><line x1="0" y1="0" x2="9" y2="9"/></g></svg>\n')
IAM = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<WhiteboardCaptureSession><Transcription><TextLine text="a b"/>'
       '</Transcription><StrokeSet>' + "".join(
           '<Stroke>' + "".join(f'<Point x="{100 + 7 * i + s * 40}" y="{200 + (i * 13) % 30}" time="{i}"/>'
                                for i in range(12)) + '</Stroke>' for s in range(3)) + '</StrokeSet>'
       '</WhiteboardCaptureSession>\n')
INKML = ('<ink xmlns="http://www.w3.org/2003/InkML"><annotation type="truth">x</annotation><traceFormat>'
         '<channel name="X"/><channel name="Y"/><channel name="T"/></traceFormat>'
         '<trace>10 10 0, 20 15 1, 30 12 2, 35 40 3</trace><traceGroup><trace>5 5 0, 6 9 1</trace></traceGroup>'
         '</ink>\n')
NDJSON = "".join(json.dumps({"word": "cat", "recognized": True,
                             "drawing": [[[i, i + 10, i + 20, i + 5], [0, 5 + i, 0, 9]], [[1, 2], [3, 4]]]}) + "\n"
                 for i in range(6))
TEXT = "The quick brown fox\njumps over the lazy dog.\n\nA second paragraph, with ünïcödé.\n"


def _npz_seed() -> bytes:
    import numpy as np

    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 6), ("valid", 2), ("test", 2)):
        array = np.empty(n, dtype=object)
        for i in range(n):
            d = np.zeros((20, 3), dtype=np.int16)
            d[:, :2] = rng.integers(-30, 30, size=(20, 2))
            d[[6, 13, 19], 2] = 1
            array[i] = d
        splits[split] = array
    buf = io.BytesIO()
    np.savez(buf, **splits)
    return buf.getvalue()


def seeds() -> dict[str, list[bytes]]:
    out = {"midi": [_midi_seed()], "abc-music": [ABC_TUNE.encode()], "kern": [KERN.encode()], "svg": [SVG.encode()],
           "iam": [IAM.encode("latin-1")], "inkml": [INKML.encode()], "ndjson": [NDJSON.encode()],
           "npz": [_npz_seed()], "text": [TEXT.encode()]}
    chorale = _corpus("bach", "bwv66.6.mxl")
    if chorale:
        out["mxl"] = [chorale.read_bytes()]
        with zipfile.ZipFile(chorale) as archive:
            member = next(n for n in archive.namelist() if not n.startswith("META-INF") and n.endswith("xml"))
            out["musicxml"] = [archive.read(member)]
    oneill = _corpus("oneills1850", "0626-0635.abc")
    if oneill:
        text = oneill.read_text(encoding="utf-8", errors="replace")
        tunes = re.split(r"(?m)^(?=X:)", text)
        out["abc-music"].append("".join(t for t in tunes[:3]).encode())
    krn = _corpus("palestrina", "Agnus_08.krn")
    if krn:
        out["kern"].append(krn.read_bytes())
    for name in ("04e00.svg", "05b57.svg"):
        svg = _kanjivg(name)
        if svg:
            out["svg"].append(svg)
    out["abc-text"] = out["abc-convert"] = out["abc-music"]
    return out


# -- mutations -------------------------------------------------------------------------------------------------------
def _family(fmt: str) -> str:
    return {"musicxml": "xml", "mxl": "xml", "iam": "xml", "inkml": "xml", "svg": "svg", "kern": "kern",
            "ndjson": "json", "text": "text"}.get(fmt, "abc" if fmt.startswith("abc") else "text")


def _bytes_mutation(rng: random.Random, data: bytes, fmt: str) -> bytes:
    data = bytearray(data)
    kind = rng.choice(["flip", "insert", "delete", "truncate", "repeat", "number", "number", "token", "token"])
    n = len(data)
    if kind == "flip" and n:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(n)] = rng.randrange(256)
    elif kind == "insert":
        at = rng.randint(0, n)
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "delete" and n:
        at = rng.randrange(n)
        del data[at: at + rng.randint(1, max(1, n // 10))]
    elif kind == "truncate" and n:
        data = data[: rng.randrange(n)]
    elif kind == "repeat" and n:
        at = rng.randrange(n)
        piece = data[at: at + rng.randint(1, 200)]
        times = rng.choice([2, 10, 100, 1000, 20_000])
        data[at:at] = bytes(piece) * min(times, (8 << 20) // max(len(piece), 1))
    elif kind == "number":
        numbers = [m.span() for m in re.finditer(rb"\d+(?:\.\d+)?", bytes(data))]
        if numbers:
            a, b = rng.choice(numbers)
            data[a:b] = rng.choice(EXTREME_NUMBERS).encode()
    else:
        token = rng.choice(TOKENS[_family(fmt)]).encode("latin-1")
        at = rng.randint(0, n)
        data[at:at] = token * rng.choice([1, 1, 2, 10, 1000])
    return bytes(data)


def _midi_mutation(rng: random.Random, data: bytes) -> bytes:
    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception:
        return _bytes_mutation(rng, data, "midi")
    kind = rng.choice(["tpb", "delta", "tempo", "notes", "pitch"])
    messages = [m for track in midi.tracks for m in track]
    if kind == "tpb":
        midi.ticks_per_beat = rng.choice([1, 2, 96, 480, 10080, 30000, 32767])
    elif kind == "delta" and messages:
        rng.choice(messages).time = rng.choice([10 ** 5, 10 ** 6, 9_999_000, 10 ** 7, 2 ** 27])
    elif kind == "tempo":
        for m in messages:
            if m.type == "set_tempo":
                m.tempo = rng.choice([1, 0xFFFFFF, 500000])
        midi.tracks[0].insert(0, mido.MetaMessage("set_tempo", tempo=rng.choice([1, 0xFFFFFF])))
    elif kind == "notes":
        track = midi.tracks[-1]
        for _ in range(rng.choice([100, 10_000])):
            track.insert(0, mido.Message("note_on", note=rng.randrange(128), velocity=64, time=0))
    else:
        for m in messages:
            if m.type in ("note_on", "note_off") and rng.random() < 0.3:
                m.note = rng.randrange(128)
    buf = io.BytesIO()
    try:
        midi.save(file=buf)
    except Exception:
        return _bytes_mutation(rng, data, "midi")
    return buf.getvalue()


def _zip_mutation(rng: random.Random, data: bytes, fmt: str) -> bytes:
    if rng.random() < 0.3:
        return _bytes_mutation(rng, data, fmt)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: archive.read(info) for info in archive.infolist()}
    except Exception:
        return _bytes_mutation(rng, data, fmt)
    name = rng.choice(list(members))
    if fmt == "npz" and name.endswith(".npy") and rng.random() < 0.6:
        members[name] = _npy_mutation(rng, members[name])
    elif rng.random() < 0.1:
        members[name] = b"\0" * (rng.choice([1, 64, 300]) << 20)  # a zip bomb
    else:
        members[name] = _bytes_mutation(rng, members[name], "xml" if fmt == "mxl" else "text")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return out.getvalue()


def _npy_mutation(rng: random.Random, data: bytes) -> bytes:
    import numpy as np

    from seqstudio_strokes.formats.npz import _load_npy  # numpy arrays only: never runs a fuzzed pickle

    try:
        array = _load_npy(io.BytesIO(data))
    except Exception:
        return _bytes_mutation(rng, data, "npz")
    items = list(array) if array.dtype == object else [array]
    i = rng.randrange(len(items)) if items else 0
    kind = rng.choice(["huge", "float32max", "int16", "nan", "shape", "long", "empty"])
    if items:
        d = np.asarray(items[i], dtype=np.float64).copy()
        if kind == "huge" and d.size:
            d.flat[rng.randrange(d.size)] = 1e300
        elif kind == "float32max":
            d[:, :2] = 3e38
        elif kind == "int16":
            d[:, :2] = rng.choice([32767.0, -32768.0])
        elif kind == "nan" and d.size:
            d.flat[rng.randrange(d.size)] = float("nan")
        elif kind == "shape":
            d = d.reshape(-1)[: max(1, d.size // 2)]
        elif kind == "long":
            d = np.tile(d, (rng.choice([100, 20_000]), 1))
        else:
            d = d[:0]
        items[i] = d
    out_array = np.empty(len(items), dtype=object)
    for j, item in enumerate(items):
        out_array[j] = item
    buf = io.BytesIO()
    np.save(buf, out_array, allow_pickle=True)
    return buf.getvalue()


def mutate(rng: random.Random, data: bytes, fmt: str) -> bytes:
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if fmt == "midi" and rng.random() < 0.6:
            data = _midi_mutation(rng, data)
        elif fmt in ("mxl", "npz"):
            data = _zip_mutation(rng, data, fmt)
        else:
            data = _bytes_mutation(rng, data, fmt)
    return data


# -- the worker -----------------------------------------------------------------------------------------------------
def _run_one(fmt: str, path: Path, scratch: Path) -> None:
    from seqstudio import data, registry

    _, domain_name, action = FORMATS[fmt]
    domain = registry.load_domain(domain_name)()
    if action == "convert":
        domain.convert(path, scratch / "out.mid")
        return
    codec = data.make_codec(domain, domain.default_codec)
    if domain.is_collection(path):
        samples = [s for split in domain.read_collection(path).values() for s in split]
    else:
        samples = [domain.read(path)]
    if codec.needs_fit:
        codec.fit(samples)
    for sample in samples[:50]:
        codec.encode(sample)


def _peak_mb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def worker(mem_cap_mb: int) -> None:
    import logging
    import resource
    import warnings

    resource.setrlimit(resource.RLIMIT_DATA, (mem_cap_mb << 20, mem_cap_mb << 20))  # not RLIMIT_AS: CUDA torch
    warnings.simplefilter("ignore")
    logging.getLogger("seqstudio").setLevel(logging.CRITICAL)
    from seqstudio.errors import DataError, SeqStudioError

    scratch = Path(tempfile.mkdtemp(prefix="fuzz-worker-"))
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        start = time.monotonic()
        try:
            _run_one(job["format"], Path(job["path"]), scratch)
            status, detail = "ok", ""
        except DataError as exc:
            status = "timeout" if "gave up after" in str(exc) else "skip"
            detail = str(exc)[:300]
        except SeqStudioError as exc:
            status, detail = "error", f"{type(exc).__name__}: {str(exc)[:300]}"
        except MemoryError:
            status, detail = "memory", "MemoryError"
        except BaseException as exc:  # noqa: BLE001 - a traceback is what we are looking for
            status = "traceback"
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:])[-1500:]
        print(json.dumps({"status": status, "detail": detail, "seconds": time.monotonic() - start,
                          "peak_mb": _peak_mb()}), flush=True)
    shutil.rmtree(scratch, ignore_errors=True)


# -- the parent -----------------------------------------------------------------------------------------------------
class Slot:
    """One worker process, restarted after a hang, a blow-up or a death."""

    def __init__(self, args):
        self.args = args
        self.proc = None

    def start(self):
        env = {**os.environ, "SEQSTUDIO_READ_TIMEOUT": str(self.args.read_timeout), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", "--mem-cap-mb", str(self.args.mem_cap_mb)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, text=True, start_new_session=True)
        ready = self._line(180)
        if not ready:
            raise RuntimeError("fuzz worker did not start")

    def _line(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
        if self.proc:
            self.proc.wait()
        self.proc = None

    def run(self, fmt, path):
        if self.proc is None:
            self.start()
        self.proc.stdin.write(json.dumps({"format": fmt, "path": str(path)}) + "\n")
        self.proc.stdin.flush()
        started = time.monotonic()
        result = self._line(self.args.hang_seconds)
        if result is None:
            died = self.proc.poll() is not None
            self.kill()
            if died:
                return {"status": "memory", "detail": "worker died (killed by the memory cap or a signal)",
                        "seconds": time.monotonic() - started, "peak_mb": -1}
            return {"status": "hang", "detail": f"no answer after {self.args.hang_seconds} s",
                    "seconds": time.monotonic() - started, "peak_mb": -1}
        if result["peak_mb"] > self.args.mem_limit_mb and result["status"] != "memory":
            result = {**result, "status": "memory",
                      "detail": f"peak RSS {result['peak_mb']} MB ({result['status']}: {result['detail'][:200]})"}
        if result["status"] == "memory":
            self.kill()  # start the next input with a fresh high-water mark
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=300, help="inputs in all, shared evenly by the formats")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, from: {', '.join(FORMATS)}")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--hang-seconds", type=float, default=120.0,
                        help="wall seconds on one input counted as a hang (past the readers' own wall backstop)")
    parser.add_argument("--read-timeout", type=float, default=20.0, help="SEQSTUDIO_READ_TIMEOUT (CPU seconds) for the readers")
    parser.add_argument("--mem-limit-mb", type=int, default=1500, help="peak RSS counted as a blow-up")
    parser.add_argument("--mem-cap-mb", type=int, default=3000, help="data-segment cap (RLIMIT_DATA) of a worker")
    parser.add_argument("--keep", type=Path, help="save tracebacks, hangs and blow-ups here")
    parser.add_argument("--verbose", action="store_true", help="print every input's outcome")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.mem_cap_mb)
        return 0
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        parser.error(f"unknown format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    pool = seeds()
    formats = [f for f in formats if pool.get(f)]
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="seqstudio-fuzz-"))
    jobs = []
    for i in range(args.count):
        fmt = formats[i % len(formats)]
        path = work / f"{i:05d}-{fmt}{FORMATS[fmt][0]}"
        path.write_bytes(mutate(rng, rng.choice(pool[fmt]), fmt))
        jobs.append((fmt, path))
    totals = {f: {} for f in formats}
    findings = []
    lock = threading.Lock()
    queue = list(reversed(jobs))
    started = time.monotonic()

    def drain():
        slot = Slot(args)
        while True:
            with lock:
                if not queue:
                    break
                fmt, path = queue.pop()
            result = slot.run(fmt, path)
            with lock:
                if args.verbose:
                    print(f"{path.name}: {result['status']} {result['seconds']:.1f}s {result['detail'][:160]!r}",
                          flush=True)
                counts = totals[fmt]
                counts[result["status"]] = counts.get(result["status"], 0) + 1
                if result["status"] in ("traceback", "hang", "memory"):
                    findings.append((fmt, path, result))
                    if args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        shutil.copy(path, args.keep / path.name)
                        (args.keep / f"{path.name}.txt").write_text(json.dumps(result, indent=1))
        slot.kill()

    threads = [threading.Thread(target=drain) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    columns = ["ok", "skip", "timeout", "error", "traceback", "hang", "memory"]
    names = {"ok": "read fine", "skip": "clean skips", "timeout": "(time limit)", "error": "clean errors",
             "traceback": "tracebacks", "hang": "hangs", "memory": "memory blow-ups"}
    print(f"seed {args.seed}, {len(jobs)} inputs, {time.monotonic() - started:.0f} s, {args.jobs} workers")
    print(f"{'format':<12}{'tried':>7}" + "".join(f"{names[c]:>16}" for c in columns))
    grand = {}
    for fmt in formats:
        counts = totals[fmt]
        for c, v in counts.items():
            grand[c] = grand.get(c, 0) + v
        print(f"{fmt:<12}{sum(counts.values()):>7}" + "".join(f"{counts.get(c, 0):>16}" for c in columns))
    print(f"{'total':<12}{sum(grand.values()):>7}" + "".join(f"{grand.get(c, 0):>16}" for c in columns))
    for fmt, path, result in findings:
        print(f"\n{result['status']}: {fmt} {path} ({result['seconds']:.1f} s, peak {result['peak_mb']} MB)\n"
              f"{result['detail']}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
