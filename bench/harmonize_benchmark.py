"""Issue 29's measurements: harmonising held-out chorales' soprano lines and filling 2 of 8 bars, with a run that
can fill in (``--backend coconet --codec voices``), against baselines that do not see what they should.

    python bench/harmonize_benchmark.py --run RUN --data DATA [--pieces 40] [--seed 0] [--json OUT.json]
        [--figure docs/harmonize.png]

DATA is the folder the run was trained on; its test split (as training splits it) is held out. Printed:

1. Harmonisation of each held-out chorale's soprano (the whole piece): per written voice (alto, tenor, bass) the
   share of grid steps (16ths) whose pitch or rest equals Bach's (frame-level note accuracy, as Coconet reports
   it); the sample judge (``seqstudio.judge``, 16-beat excerpts) on the harmonisations against the real chorales
   (the same pieces through the same codec); the same for the **baseline that ignores the melody**: the model's
   own four voices drawn with nothing given, then its soprano replaced by Bach's.
2. The infilling NLL: ``-log p(alto, tenor, bass | soprano)`` in nats per 16th step (pitch and onset parts of
   the three voices), exact for one random order of the positions (``Coconet.infill_nll``), on each held-out
   piece's first 4 bars.
3. Filling bars 5-6 of each held-out piece's first 8 bars: given bars 1-4 and 7-8 (infilling), against given
   bars 1-4 only (continuation: the same model with the future hidden; its bars 5-6 are then put before Bach's
   bars 7-8). The judge on bars 4-7 (16 beats spanning both seams) against Bach's bars 4-7 of the same pieces;
   note accuracy of the filled bars; NLL of bars 5-6 per step given both sides / the left side only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from seqstudio import api, data, filling, judge  # noqa: E402
from seqstudio.backends.base import SamplingOptions  # noqa: E402
from seqstudio.training import use_threads  # noqa: E402


def held_out(run, folder: Path, limit: int, min_bars: int = 0) -> list[tuple[str, torch.Tensor, dict]]:
    """``(name, encoded piece, provenance)`` of the test split's pieces, first ``limit`` by name."""
    files = sorted(data.split_files(folder, run.domain)["test"])
    out = []
    for path in files:
        sample = run.domain.read(path)
        x = run.codec.encode(sample)
        if x.shape[0] >= min_bars * run.codec.steps_per_bar:
            out.append((path.name, x, run.domain.provenance(sample, path)))
        if len(out) == limit:
            break
    return out


def voice_known(codec, length: int, voices: list[str]) -> torch.Tensor:
    known = torch.zeros(length, len(codec.spec.parts), dtype=torch.bool)
    for voice in voices:
        known[:, codec.voice_parts(voice)] = True
    return known


def accuracy(codec, y: torch.Tensor, x: torch.Tensor, steps: slice = slice(None)) -> dict[str, float]:
    """Per voice, the share of steps whose pitch (or rest) is Bach's."""
    return {name: float((y[steps, 2 * v] == x[steps, 2 * v]).float().mean()) for v, name in enumerate(codec.voices)}


def verdict(run, generated: list, real: list, seed: int) -> dict:
    """The judge's accuracy (± spread over folds), its real-vs-real floor, and the headline features' means."""
    v = judge.judge(run.domain, generated, real, seed=seed)
    f = v["features"]
    return {"accuracy": round(v["accuracy"], 3), "spread": round(v["accuracy_spread"], 3),
            "floor": round(v["floor"]["accuracy"], 3), "excerpts": [v["generated_excerpts"], v["real_excerpts"]],
            "features": {name: [round(f[name]["generated_mean"], 3), round(f[name]["reference_mean"], 3)]
                         for name in run.domain.judge_highlights if name in f}}


def harmonisations(run, pieces, seed: int, temperature: float) -> dict:
    codec = run.codec
    top = codec.voices[0]
    rows, ours, ignoring, real, tensors = [], [], [], [], []
    for i, (name, x, provenance) in enumerate(pieces):
        known = voice_known(codec, x.shape[0], [top])
        y = filling.fill(run, x, known, 1, seed + i, temperature)[0]
        z = filling.fill(run, x, torch.zeros_like(known), 1, seed + i, temperature)[0]  # ignoring the melody ...
        z[:, known[0]] = x[:, known[0]]  # ... then Bach's melody on top
        tensors.append(y)
        rows.append({"piece": name, "ours": accuracy(codec, y, x), "ignoring": accuracy(codec, z, x)})
        ours.append(codec.decode_piece(y, provenance))
        ignoring.append(codec.decode_piece(z, provenance))
        real.append(codec.decode_piece(x, provenance))
    mean = {side: {v: sum(r[side][v] for r in rows) / len(rows) for v in codec.voices[1:]}
            for side in ("ours", "ignoring")}
    return {"pieces": len(rows), "accuracy": mean,
            "judge": {"ours": verdict(run, ours, real, seed), "ignoring": verdict(run, ignoring, real, seed)},
            "samples": tensors}


def crop_batch(pieces, steps: int) -> torch.Tensor:
    return torch.stack([x[:steps] for _, x, _ in pieces if x.shape[0] >= steps])


def infill_nll(run, pieces, seed: int) -> dict:
    codec = run.codec
    steps = 4 * codec.steps_per_bar
    x = crop_batch(pieces, steps)
    known = voice_known(codec, steps, [codec.voices[0]]).expand(x.shape[0], -1, -1)
    g = torch.Generator().manual_seed(seed)
    nll = run.backend.infill_nll(x, known, generator=g)
    return {"excerpts": int(x.shape[0]), "steps": steps, "nll_per_step": float(nll.mean() / steps)}


def bars_fill(run, pieces, seed: int, temperature: float) -> dict:
    codec = run.codec
    bar = codec.steps_per_bar
    x = crop_batch(pieces, 8 * bar)
    n = x.shape[0]
    parts = len(codec.spec.parts)
    hole = torch.zeros(8 * bar, parts, dtype=torch.bool)
    hole[4 * bar : 6 * bar] = True
    g = torch.Generator().manual_seed(seed)
    options = SamplingOptions(temperature=temperature)
    both = run.backend.infill(x, (~hole).expand(n, -1, -1), options, generator=g).cpu()
    left_known = torch.zeros(8 * bar, parts, dtype=torch.bool)
    left_known[: 4 * bar] = True
    left = run.backend.infill(x, left_known.expand(n, -1, -1), options, generator=g).cpu()
    left[:, 6 * bar :] = x[:, 6 * bar :]  # Bach's bars 7-8 after the continuation
    seam = slice(3 * bar, 7 * bar)
    decode = codec.decode  # excerpts only: one tempo for all (the judge counts beats)
    real = [decode(x[i, seam]) for i in range(n)]
    out = {"excerpts": n}
    filled = slice(4 * bar, 6 * bar)
    for side, y in (("infill", both), ("continuation", left)):
        out[side] = {"judge": verdict(run, [decode(y[i, seam]) for i in range(n)], real, seed),
                     "accuracy": {v: sum(accuracy(codec, y[i], x[i], filled)[v] for i in range(n)) / n
                                  for v in codec.voices}}
    g = torch.Generator().manual_seed(seed)
    out["infill"]["nll_per_step"] = float(run.backend.infill_nll(x, (~hole).expand(n, -1, -1), g).mean()
                                          / (2 * bar))
    g = torch.Generator().manual_seed(seed)
    cut = x[:, : 6 * bar]
    out["continuation"]["nll_per_step"] = float(run.backend.infill_nll(cut, (~hole[: 6 * bar]).expand(n, -1, -1),
                                                                       g).mean() / (2 * bar))
    return out


def figure(path: Path, codec, melody: torch.Tensor, ours: torch.Tensor, bach: torch.Tensor, beats: int, title: str):
    """Three piano rolls, one colour per voice: the melody alone, the harmonisation, Bach's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["#c0392b", "#2874a6", "#239b56", "#7d3c98"]
    steps = beats * codec.config.steps_per_quarter
    fig, axes = plt.subplots(3, 1, figsize=(12, 7.5), sharex=True, sharey=True)
    for ax, (label, x) in zip(axes, (("melody (given)", melody), ("harmonised by coconet", ours),
                                     ("Bach", bach))):
        for v, notes in enumerate(codec.voice_notes(x[:steps])):
            for n in notes:
                ax.add_patch(plt.Rectangle((n.start / codec.config.steps_per_quarter, n.pitch - 0.4),
                                           (n.end - n.start) / codec.config.steps_per_quarter - 0.06, 0.8,
                                           color=colours[v % 4], label=codec.voices[v] if n is notes[0] else None))
        ax.set_title(label, loc="left", fontsize=10)
        ax.set_ylabel("MIDI pitch")
        for b in range(0, beats + 1, 4):
            ax.axvline(b, color="#bbbbbb", linewidth=0.6, zorder=0)
    axes[0].set_xlim(0, beats)
    axes[0].set_ylim(codec.config.pitch_low, codec.config.pitch_high)
    handles, labels = axes[2].get_legend_handles_labels()
    axes[2].legend(handles, labels, loc="lower right", fontsize=8, ncol=4)
    axes[2].set_xlabel("beats (quarter notes; a grey line every bar)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--pieces", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    p.add_argument("--figure", type=Path)
    p.add_argument("--gibbs-steps", type=int, help="blocked Gibbs rounds (default: the run's backend.gibbs_steps)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--sampler", choices=("gibbs", "ancestral"), help="default: the run's backend.sampler")
    args = p.parse_args(argv)
    run = api.load(args.run)
    if args.gibbs_steps is not None:
        run.backend.config.gibbs_steps = args.gibbs_steps
    if args.sampler:
        run.backend.config.sampler = args.sampler
    use_threads(1)
    if not run.codec.voices:
        sys.exit("the run's codec has no voices: train with --codec voices")
    pieces = held_out(run, args.data, args.pieces)
    started = time.process_time()
    result = {"run": str(args.run), "pieces": len(pieces), "gibbs_steps": run.backend.config.gibbs_steps,
              "sampler": run.backend.config.sampler,
              "temperature": args.temperature}
    h = harmonisations(run, pieces, args.seed, args.temperature)
    ours = h.pop("samples")
    result["harmonize"] = h
    result["infill_nll"] = infill_nll(run, pieces, args.seed)
    result["bars_5_6"] = bars_fill(run, held_out(run, args.data, args.pieces, min_bars=8), args.seed,
                                   args.temperature)
    result["cpu_s"] = round(time.process_time() - started, 1)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.figure:
        name, x, _ = pieces[0]
        codec = run.codec
        melody = x.clone()
        melody[:, 2:] = 0
        figure(args.figure, codec, melody, ours[0], x, 32, f"{name} (held out): its soprano, "
               f"harmonised by the coconet run, and Bach's own; first 8 bars")


if __name__ == "__main__":
    main()
