"""Piano rolls of a few samples from each of several MIDI runs, one row per run, so a reader sees how their
chords differ (BENCHMARKS.md, issue 12: the seq-VAE demo with the factorized against the NADE head).

    python bench/pianoroll_compare.py OUT.png factorized=RUN nade=RUN [-n 3] [--seed 0]

Each panel is one sample of ``generate -n N --seed S``; its title gives the notes sounding together on
average (over the steps where any does) and the distinct pitches used, the two numbers that say "loose chords".
"""

import argparse

import numpy as np

from seqstudio import api
from seqstudio.training import use_threads


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("runs", nargs="+", help="NAME=RUN_DIR")
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    use_threads(1)
    runs = [r.split("=", 1) for r in args.runs]
    fig, axes = plt.subplots(len(runs), args.n, figsize=(4 * args.n, 2.6 * len(runs)), squeeze=False)
    for row, (name, run_dir) in enumerate(runs):
        run = api.load(run_dir)
        for col, pm in enumerate(api.generate(run, n=args.n, seed=args.seed)):
            roll = pm.get_piano_roll(fs=8) > 0
            sounding = roll.sum(0)
            rows = np.flatnonzero(roll.any(1))
            low, high = (rows.min(), rows.max()) if rows.size else (48, 72)
            ax = axes[row, col]
            ax.imshow(roll[low : high + 1], origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                      extent=(0, roll.shape[1] / 8, low - 0.5, high + 0.5))
            poly = float(sounding[sounding > 0].mean()) if (sounding > 0).any() else 0.0
            ax.set_title(f"{name} #{col}: {poly:.1f} notes at once, {rows.size} pitches", fontsize=9)
            if col == 0:
                ax.set_ylabel("MIDI pitch")
            if row == len(runs) - 1:
                ax.set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(args.out)


if __name__ == "__main__":
    main()
