"""Data at scale: a synthetic MIDI corpus, encoding throughput, memory and start-up of ``seqstudio train``.

    python bench/data_scale.py corpus /tmp/scale --base /tmp/bach --sizes 1000 10000 50000
    python bench/data_scale.py encode /tmp/scale/c1000 --workers 2          # files/s (no cache)
    python bench/data_scale.py train /tmp/scale/c1000 --steps 200 --cache /tmp/cache   # peak RSS, start-up
    python bench/data_scale.py loader /tmp/scale/c1000 --cache /tmp/cache  # the loader's own tokens/s
    python bench/data_scale.py loader /tmp/scale/c1000 --cache /tmp/cache --batches 1 --profile start.prof

Run the same commands with ``PYTHONPATH`` pointing at a checkout of the old code (``git worktree add``) for
the before numbers; ``train`` takes ``--max-as BYTES`` to run under an address-space cap (``prlimit --as``).

The corpus (no network): base pieces are MIDI files of music21 corpus chorales (``seqstudio data build
bach-chorales BASE``) plus multitrack pieces written here with pretty_midi (piano, bass, strings, drums; seeded
random but musical: a chord progression with a melody); variant ``i`` of a base is transposed by one of 13
intervals and has its velocities shifted (symusic), so every file has distinct content. Sizes share files by
hard links (``c1000`` is the first 1,000 files of ``c50000``), 1,000 files per sub-folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

N_MULTITRACK = 140


def write_multitrack(path: Path, seed: int) -> None:
    """A 16-bar, 4-track song with pretty_midi: chords (piano), a bass line, a melody (strings) and drums."""
    import pretty_midi

    rng = random.Random(seed)
    tempo = rng.choice([84, 96, 108, 120, 132, 144])
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    beat = 60.0 / tempo
    piano = pretty_midi.Instrument(program=rng.choice([0, 4, 5]), name="piano")
    bass = pretty_midi.Instrument(program=rng.choice([32, 33, 34]), name="bass")
    lead = pretty_midi.Instrument(program=rng.choice([40, 48, 56, 73]), name="lead")
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    key = rng.randrange(48, 60)
    progression = rng.choice([[0, 5, 7, 0], [0, 9, 5, 7], [0, 7, 9, 5], [0, 3, 5, 7]])
    for bar in range(16):
        root = key + progression[bar % 4]
        start = bar * 4 * beat
        for p in (root, root + 4 if bar % 2 == 0 else root + 3, root + 7):
            piano.notes.append(pretty_midi.Note(rng.randrange(60, 90), p, start, start + 4 * beat - 0.01))
        for b in range(4):
            bass.notes.append(pretty_midi.Note(90, root - 12 + (7 if b == 2 else 0), start + b * beat,
                                               start + (b + 0.9) * beat))
            drums.notes.append(pretty_midi.Note(100, 36 if b % 2 == 0 else 38, start + b * beat,
                                                start + b * beat + 0.1))
        t = start
        while t < start + 4 * beat - 1e-6:
            d = rng.choice([0.5, 0.5, 1.0, 0.25]) * beat
            lead.notes.append(pretty_midi.Note(rng.randrange(70, 110), root + 12 + rng.choice([0, 2, 4, 5, 7, 9]),
                                               t, min(t + d, start + 4 * beat) - 0.005))
            t += d
    pm.instruments.extend([piano, bass, lead, drums])
    pm.write(str(path))


def cmd_corpus(args) -> None:
    import symusic

    out = Path(args.out)
    bases_dir = out / "bases"
    bases_dir.mkdir(parents=True, exist_ok=True)
    for i in range(N_MULTITRACK):
        path = bases_dir / f"multi{i:03d}.mid"
        if not path.exists():
            write_multitrack(path, i)
    bases = sorted(Path(args.base).rglob("*.mid")) + sorted(bases_dir.glob("multi*.mid"))
    scores = [symusic.Score(str(p)) for p in bases]
    biggest = max(args.sizes)
    full = out / f"c{biggest}"
    t0 = time.perf_counter()
    names = []
    for i in range(biggest):
        b, rest = i % len(bases), i // len(bases)
        shift, vel = rest % 13 - 6, (rest // 13) % 40 - 20
        path = full / f"d{i // 1000:03d}" / f"{bases[b].stem}_t{shift:+d}_v{vel:+d}.mid"
        names.append(path)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        s = scores[b].shift_pitch(shift).shift_velocity(vel)
        s.dump_midi(str(path))
    print(f"{biggest} files in {full} ({time.perf_counter() - t0:.1f} s; {len(bases)} bases)")
    for size in sorted(args.sizes):
        if size == biggest:
            continue
        dest = out / f"c{size}"
        for src in names[:size]:
            link = dest / src.relative_to(full)
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                os.link(src, link)
        print(f"{size} files in {dest} (hard links)")


def cmd_encode(args) -> None:
    """Encoding throughput: every file of the folder (or the first ``--limit``), no cache, ``--workers``."""
    from seqstudio import data, registry

    domain = registry.load_domain("midi")()
    codec = data.make_codec(domain, args.codec)
    files = data.find_files(Path(args.folder), domain)[: args.limit or None]
    t0 = time.perf_counter()
    encoded = data.encode_files(files, "midi", codec, workers=args.workers, progress=False, use_cache=False)
    seconds = time.perf_counter() - t0
    print(json.dumps({"files": len(files), "encoded": len(encoded), "seconds": round(seconds, 2),
                      "files_per_s": round(len(files) / seconds, 1), "workers": args.workers, "codec": args.codec}))


def _parse_all(paths: list[str]) -> int:
    import symusic

    for path in paths:
        symusic.Score(path)
    return len(paths)


def cmd_floor(args) -> None:
    """symusic's floor: each file only parsed by ``symusic.Score`` (no notes extracted, nothing encoded), in
    ``--workers`` spawned processes (started before the clock, so their start-up is not counted) taking chunks
    of 32 files: what no MIDI encoder built on symusic can beat."""
    import concurrent.futures as futures
    import multiprocessing

    files = sorted(str(p) for p in Path(args.folder).rglob("*.mid"))[: args.limit or None]
    chunks = [files[i : i + 32] for i in range(0, len(files), 32)]
    with futures.ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_parse_all, [[]] * args.workers))  # workers started and symusic imported
        t0 = time.perf_counter()
        done = sum(pool.map(_parse_all, chunks))
        seconds = time.perf_counter() - t0
    print(json.dumps({"files": done, "seconds": round(seconds, 2), "files_per_s": round(done / seconds, 1),
                      "workers": args.workers, "what": "symusic parse only"}))


TRAIN_SETTINGS = ["--backend", "seqvae", "--lr", "3e-3", "--set", "codec.transpose=3",
                  "--set", "backend.encoder_size=128", "--set", "backend.decoder_size=128",
                  "--set", "backend.kl_warmup_steps=300", "--set", "train.valid_fraction=0.002",
                  "--set", "train.test_fraction=0.002", "--set", "train.valid_every=100000",
                  "--set", "train.samples=0", "--threads", "1", "--quiet"]


def cmd_train(args) -> None:
    """``seqstudio train`` for ``--steps`` steps: wall time and peak RSS of the train process (``ru_maxrss`` of
    the child; encoding workers are separate processes and not counted)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQSTUDIO_CACHE": args.cache}
    run_dir = Path(args.run_dir or f"/tmp/data_scale_run_{os.getpid()}")
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    cmd = [sys.executable, "-m", "seqstudio", "train", args.folder, "--run-dir", str(run_dir),
           "--max-steps", str(args.steps), "--set", f"train.workers={args.workers}", *TRAIN_SETTINGS]
    if args.max_as:
        cmd = ["prlimit", f"--as={args.max_as}", "--"] + cmd
    t0 = time.perf_counter()
    # From a neutral folder: ``python -m`` puts the working directory first on sys.path, and a checkout there
    # would shadow the code PYTHONPATH names (the old code, for the before numbers).
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout, cwd="/")
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB, the largest child
    tail = (proc.stderr or "").strip().splitlines()[-3:]
    print(json.dumps({"folder": args.folder, "steps": args.steps, "rc": proc.returncode,
                      "seconds": round(seconds, 1), "peak_rss_mib": round(rss), "stderr_tail": tail}))


def cmd_loader(args) -> None:
    """The loader alone: prepare the train split (from a warm cache: the start-up; wall and CPU seconds, the
    second less sensitive to other jobs on the machine), then gather + expand + augment batches of 64 windows
    (no model): tokens (window steps) per second."""
    os.environ["SEQSTUDIO_CACHE"] = args.cache
    import torch

    from seqstudio import api, data

    profile = None
    if args.profile:  # cProfile around the start-up alone (imports of torch and seqstudio excluded)
        import cProfile

        profile = cProfile.Profile()
    t0, c0 = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    spec = api.resolve_config(Path(args.folder), "seqvae", None, None, None,
                              ["train.valid_fraction=0.002", "train.test_fraction=0.002", "codec.transpose=3"],
                              {}, None)
    if hasattr(data, "prepare"):  # the data package's front door
        prepared = data.prepare(spec, progress=False, splits=("train",))
        codec, sets = prepared.codec, prepared.windows
    else:  # older code (A/B runs against an earlier commit): api.prepare_data
        _, codec, _, sets = api.prepare_data(spec, progress=False, splits=("train",))
    if profile:
        profile.disable()
        profile.dump_stats(args.profile)
    startup, startup_cpu = time.perf_counter() - t0, time.process_time() - c0
    windows = sets["train"]
    batches = data.batch_indices(len(windows), 64, 0, 0)[: args.batches]
    gen = torch.Generator()
    t0 = time.perf_counter()
    tokens = 0
    for i, index in enumerate(batches):
        gen.manual_seed(i)
        batch = data.make_batch(windows, index, torch.device("cpu"), codec, gen)
        tokens += int(batch["lengths"].sum())
    seconds = time.perf_counter() - t0
    print(json.dumps({"folder": args.folder, "windows": len(windows), "startup_s": round(startup, 2),
                      "startup_cpu_s": round(startup_cpu, 2),
                      "batches": len(batches), "loader_tokens_per_s": round(tokens / seconds),
                      "ms_per_batch": round(1000 * seconds / max(1, len(batches)), 2)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("out")
    c.add_argument("--base", required=True, help="a folder of chorale MIDI files (seqstudio data build bach-chorales)")
    c.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    e = sub.add_parser("encode")
    e.add_argument("folder")
    e.add_argument("--workers", type=int, default=2)
    e.add_argument("--limit", type=int, default=0)
    e.add_argument("--codec", default="pianoroll")
    fl = sub.add_parser("floor")
    fl.add_argument("folder")
    fl.add_argument("--workers", type=int, default=2)
    fl.add_argument("--limit", type=int, default=0)
    t = sub.add_parser("train")
    t.add_argument("folder")
    t.add_argument("--steps", type=int, default=200)
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--cache", required=True)
    t.add_argument("--run-dir")
    t.add_argument("--max-as", type=int, default=0, help="address-space cap in bytes (prlimit --as)")
    t.add_argument("--timeout", type=float, default=1800)
    lo = sub.add_parser("loader")
    lo.add_argument("folder")
    lo.add_argument("--cache", required=True)
    lo.add_argument("--batches", type=int, default=200)
    lo.add_argument("--profile", help="write a cProfile of the start-up to this file (pstats)")
    args = p.parse_args()
    {"corpus": cmd_corpus, "encode": cmd_encode, "floor": cmd_floor, "train": cmd_train,
     "loader": cmd_loader}[args.cmd](args)


if __name__ == "__main__":
    main()
