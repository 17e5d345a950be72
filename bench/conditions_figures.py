"""Figures of BENCHMARKS.md's conditional rows.

    python bench/conditions_figures.py pianoroll RUN OUT.png   # same seed, mode=major vs mode=minor
    python bench/conditions_figures.py sheet RUN OUT.png [PER_ROW]   # one row per class label
"""

import sys

import numpy as np

from seqstudio import api
from seqstudio.training import use_threads


def pianoroll(run_dir, out, seed=0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from seqstudio_midi.attributes import estimate_key

    run = api.load(run_dir)
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for ax, mode in zip(axes, ("major", "minor")):
        (pm,) = api.generate(run, n=1, seed=seed, conditions=[f"mode={mode}"])
        roll = pm.get_piano_roll(fs=8)
        rows = np.flatnonzero(roll.any(1))
        low, high = (rows.min(), rows.max()) if rows.size else (48, 72)
        ax.imshow(roll[low : high + 1] > 0, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                  extent=(0, roll.shape[1] / 8, low - 0.5, high + 0.5))
        ax.set_title(f"--condition mode={mode} --seed {seed}   (music21 analysis: {estimate_key(pm)})")
        ax.set_ylabel("MIDI pitch")
    axes[-1].set_xlabel("seconds (120 bpm)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def sheet(run_dir, out, per_row=8):
    from seqstudio_strokes.render import render_png

    run = api.load(run_dir)
    cs = run.fitted.conditions
    inks = []
    for value in cs.attributes[0].values:
        samples = api.generate(run, n=per_row, seed=0, temperature=0.6, bias=0.5,
                               conditions=[f"{cs.attributes[0].name}={value}"])
        for ink in samples:
            ink.label = value
            inks.append(ink)
    render_png(inks, out, columns=per_row, cell_inches=1.2)


if __name__ == "__main__":
    use_threads(1)
    kind, run_dir, out = sys.argv[1:4]
    pianoroll(run_dir, out) if kind == "pianoroll" else sheet(run_dir, out, *(int(a) for a in sys.argv[4:5]))
