"""LSTM-GAN vs seq-VAE vs a trivial baseline on the Bach chorales, judged by music metrics (MGEval overlap).

    python bench/music_metrics.py --data data/bach --out bench-runs --minutes 12 --samples 200

1. builds the data if --data does not exist (`seqstudio data build bach-chorales DATA`),
2. trains the seq-VAE and the LSTM-GAN with the same wall-time budget (`seqstudio train --max-minutes`; a run
   directory that already holds a checkpoint is reused, so the script can be re-run for the evaluation only),
3. evaluates every model with `seqstudio evaluate RUN DATA --samples N --json` (same N, seed and test split)
   at temperature 1 and at the temperature (of --temperatures) that gave the best mean overlap on the *valid*
   split; the GAN also from its last checkpoint (best.pt is picked by the data-space gap during training),
4. scores two yardsticks against the same held-out windows:
   * "random notes": a trivial baseline, notes drawn at random from the *training* windows' pitch histogram,
     with the training windows' note counts and durations, at uniformly random onsets (put through the
     codec's grid like every other sample);
   * "training windows": N real training windows — the overlap real music reaches with N samples (a ceiling),
5. prints a Markdown table (and writes it, with the raw numbers, to OUT/music_metrics.{md,json}).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi

# A lighter generator and smaller batches than the defaults, and a longer MLE pretraining (cheap: one LSTM call
# per step): the generator's free-running step loop is what a CPU pays for in the adversarial phase. With these,
# 12 minutes on one thread gave ~2500 MLE steps (~3 min) and ~2700 adversarial steps.
GAN_ARGS = "--batch-size 32 --set backend.generator_size=128 --set backend.pretrain_steps=2500"


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def run(cmd: list[str]) -> str:
    print("$", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return out


def train(data: Path, run_dir: Path, backend: str, minutes: float, seed: int, extra: list[str]) -> None:
    if (run_dir / "last.pt").exists():
        print(f"reusing {run_dir}", flush=True)
        return
    run([_bin("seqstudio"), "train", str(data), "--backend", backend, "--run-dir", str(run_dir),
         "--max-minutes", str(minutes), "--seed", str(seed), "--set", "train.patience=0",
         "--set", "train.workers=1", "-q", *extra])


def evaluate(run_dir: Path, data: Path, n: int, seed: int, split: str = "test", temperature: float = 1.0,
             checkpoint: str = "best") -> dict:
    return json.loads(run([_bin("seqstudio"), "evaluate", str(run_dir), str(data), "--split", split,
                           "--samples", str(n), "--seed", str(seed), "--temperature", str(temperature),
                           "--checkpoint", checkpoint, "--json"]))


def random_notes(train_windows: list[pretty_midi.PrettyMIDI], n: int, window_steps: int, steps_per_quarter: int,
                 tempo: float, seed: int) -> list[pretty_midi.PrettyMIDI]:
    """The trivial baseline: random notes with the training data's pitch histogram, note counts and durations."""
    rng = np.random.default_rng(seed)
    step = 60.0 / (tempo * steps_per_quarter)
    counts, pitches, durations = [], [], []
    for pm in train_windows:
        notes = [x for inst in pm.instruments for x in inst.notes]
        counts.append(len(notes))
        pitches.extend(x.pitch for x in notes)
        durations.extend(max(1, round((x.end - x.start) / step)) for x in notes)
    out = []
    for _ in range(n):
        pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
        inst = pretty_midi.Instrument(program=0, name="Piano")
        for _ in range(int(rng.choice(counts))):
            start = int(rng.integers(0, window_steps))
            end = min(start + int(rng.choice(durations)), window_steps)
            inst.notes.append(pretty_midi.Note(80, int(rng.choice(pitches)), start * step, end * step))
        pm.instruments.append(inst)
        out.append(pm)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/bach"))
    ap.add_argument("--out", type=Path, default=Path("bench-runs/music-metrics"))
    ap.add_argument("--minutes", type=float, default=12.0, help="training budget per model (wall time)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gan-args", default=GAN_ARGS,
                    help=f"extra `seqstudio train` options for the LSTM-GAN (default: {GAN_ARGS!r})")
    ap.add_argument("--vae-args", default="", help="extra `seqstudio train` options for the seq-VAE")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for training and evaluation")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.75, 0.5],
                    help="sampling temperatures tried on the valid split (the best is then reported on test)")
    args = ap.parse_args()

    os.environ.setdefault("SEQSTUDIO_CACHE", str(args.out / "cache"))
    # One intra-op thread per training: on a CPU shared with other jobs, more threads than free cores make
    # every small LSTM op wait for a descheduled thread (we measured the GAN 10-20x slower that way).
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not args.data.exists():
        run([_bin("seqstudio"), "data", "build", "bach-chorales", str(args.data), "-q"])
    models = {"seqvae": shlex.split(args.vae_args), "lstmgan": shlex.split(args.gan_args)}
    for backend, extra in models.items():
        train(args.data, args.out / backend, backend, args.minutes, args.seed, extra)
    # Every model at temperature 1, and at the temperature that scored best on the *valid* split.
    entries = [("seqvae", "best"), ("lstmgan", "best"), ("lstmgan", "last")]
    results, chosen = {}, {}
    for backend, checkpoint in entries:
        label = backend if checkpoint == "best" else f"{backend} ({checkpoint}.pt)"
        valid = {t: evaluate(args.out / backend, args.data, args.samples, args.seed, "valid", t, checkpoint)
                 ["mean_overlap"] for t in args.temperatures}
        best_t = max(valid, key=valid.get)
        chosen[label] = {"valid": valid, "temperature": best_t}
        print(f"{label}: valid mean overlap by temperature {valid}", flush=True)
        results[f"{label}, T=1"] = evaluate(args.out / backend, args.data, args.samples, args.seed, "test", 1.0,
                                            checkpoint)
        if best_t != 1.0:
            results[f"{label}, T={best_t:g}"] = evaluate(args.out / backend, args.data, args.samples, args.seed,
                                                         "test", best_t, checkpoint)

    # Yardsticks, against exactly the reference windows `evaluate` used (same split, seed and limit).
    from seqstudio import api

    ref_run = api.load(args.out / "seqvae")
    reference = api.reference_samples(ref_run, args.data, "test", seed=args.seed, progress=False)
    train_windows = api.reference_samples(ref_run, args.data, "train", limit=0, progress=False)
    codec = ref_run.codec
    baseline = random_notes(train_windows, args.samples, codec.window_length, codec.config.steps_per_quarter,
                            codec.config.tempo, args.seed)
    baseline = [codec.decode(codec.encode(pm)) for pm in baseline]  # onto the codec's grid, like the samples
    rng = np.random.default_rng(args.seed)
    real = [train_windows[i] for i in rng.choice(len(train_windows), args.samples, replace=False)]
    from seqstudio.metrics import compare

    domain = ref_run.domain
    reference_metrics = [domain.metrics(pm) for pm in reference]
    for name, samples in (("random notes", baseline), ("training windows", real)):
        out = compare([domain.metrics(pm) for pm in samples], reference_metrics)
        results[name] = {"mean_overlap": out["mean_overlap"], "sample_metrics": out["metrics"]}

    names = list(results["random notes"]["sample_metrics"])
    columns = list(results)
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{results[c]['sample_metrics'][name]['overlap']:.3f}"
                                                  for c in columns) + " |")
    lines.append("| **mean overlap** | " + " | ".join(f"**{results[c]['mean_overlap']:.3f}**" for c in columns) + " |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "music_metrics.md").write_text(table + "\n")
    (args.out / "music_metrics.json").write_text(json.dumps({"test": results, "temperatures": chosen}, indent=1))


if __name__ == "__main__":
    main()
