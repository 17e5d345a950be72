"""Piano rolls of a few samples from each of several MIDI runs or folders, one row per source, so a reader sees
how their chords and note lengths differ (BENCHMARKS.md, issue 12: the seq-VAE demo with the factorized against
the NADE head; issue 25: the demo's samples beside real chorales).

    python bench/pianoroll_compare.py OUT.png factorized=RUN nade=RUN [-n 3] [--seed 0] [--beats 16]
    python bench/pianoroll_compare.py docs/demo-vs-real.png demo=demo/run real=demo/data -n 6 --temperature 0.9

A source is a run directory (``generate -n N --seed S``) or a folder of MIDI files (N files drawn with the seed,
each shown from its first beat: real excerpts). Every panel shows the first ``--beats`` quarter-note beats, in
beats (so a generated sample at the training pieces' median tempo and a real piece at its own tempo line up);
its title gives the notes sounding together on average (over the time where any does), the distinct pitches
used, and the share of notes a 16th long or shorter, the numbers that say "loose chords" and "blips".
"""

import argparse
from pathlib import Path

import numpy as np
import pretty_midi

from seqstudio import api
from seqstudio.training import use_threads

PER_BEAT = 12  # picture columns per beat: 16ths and triplets fall on it


def beat_roll(pm: pretty_midi.PrettyMIDI, beats: int) -> tuple[np.ndarray, float]:
    """``[128, beats * PER_BEAT]`` bits of the first ``beats`` beats (through the tempo map), and the share of
    notes starting there that last a 16th or less."""
    times, tempi = pm.get_tempo_changes()
    if len(times) == 0:
        times, tempi = np.array([0.0]), np.array([120.0])
    at_change = np.concatenate([[0.0], np.cumsum(np.diff(times) * tempi[:-1] / 60.0)])

    def to_beats(t: float) -> float:
        i = max(int(np.searchsorted(times, t, side="right")) - 1, 0)
        return at_change[i] + (t - times[i]) * tempi[i] / 60.0

    width = beats * PER_BEAT
    roll = np.zeros((128, width), dtype=bool)
    short = total = 0
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for note in inst.notes:
            a, b = to_beats(note.start), to_beats(note.end)
            if a >= beats:
                continue
            total += 1
            short += (b - a) <= 0.25 + 1e-6
            first = int(round(a * PER_BEAT))
            roll[note.pitch, first: max(int(round(b * PER_BEAT)), first + 1)] = True
    return roll[:, :width], short / max(total, 1)


def samples_of(source: str, n: int, seed: int, top_p: float = 1.0,
               temperature: float = 1.0) -> list[pretty_midi.PrettyMIDI]:
    path = Path(source)
    if (path / "config.yaml").is_file():
        return api.generate(api.load(path), n=n, seed=seed, top_p=top_p, temperature=temperature)
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if len(files) < n:
        raise SystemExit(f"{source}: {len(files)} MIDI files, need {n}")
    chosen = np.random.default_rng(seed).choice(len(files), n, replace=False)
    return [pretty_midi.PrettyMIDI(str(files[i])) for i in chosen]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("sources", nargs="+", help="NAME=RUN_DIR or NAME=MIDI_FOLDER")
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beats", type=int, default=16)
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling for the runs (1 = off)")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for the runs")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use_threads(1)
    sources = [s.split("=", 1) for s in args.sources]
    fig, axes = plt.subplots(len(sources), args.n, figsize=(3.2 * args.n, 2.6 * len(sources)), squeeze=False)
    for row, (name, source) in enumerate(sources):
        for col, pm in enumerate(samples_of(source, args.n, args.seed, args.top_p, args.temperature)):
            roll, short = beat_roll(pm, args.beats)
            sounding = roll.sum(0)
            rows = np.flatnonzero(roll.any(1))
            low, high = (rows.min(), rows.max()) if rows.size else (48, 72)
            ax = axes[row, col]
            ax.imshow(roll[low: high + 1], origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                      extent=(0, args.beats, low - 0.5, high + 0.5))
            poly = float(sounding[sounding > 0].mean()) if (sounding > 0).any() else 0.0
            ax.set_title(f"{name} #{col}: {poly:.1f} at once, {100 * short:.0f}% 16ths", fontsize=8)
            ax.set_xticks(range(0, args.beats + 1, 4))
            if col == 0:
                ax.set_ylabel("MIDI pitch")
            if row == len(sources) - 1:
                ax.set_xlabel("beats")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(args.out)


if __name__ == "__main__":
    main()
