"""The sample judge from the command line (``seqstudio.judge``; issue 25): can a classifier tell generated excerpts
from real ones? Prints the verdict as the issue's table: judge accuracy (balanced, held out over 5 folds, with
its spread; 0.5 = indistinguishable), the domain's headline features for real and generated excerpts (MIDI:
notes a 16th long or shorter, time with exactly four notes sounding, dissonant pairs, notes per beat), and the
real-vs-real floor.

    # (a) a run's own samples: generate N (default 64) and judge them against the test split of the data it
    #     was trained on (or DATA), exactly as `seqstudio evaluate RUN --samples N` does
    python bench/judge.py --run RUN [--samples 64] [--temperature 1.0] [--data DATA] [--split test]

    # (b) a folder of sample files (e.g. `seqstudio generate`'s output, or MIDI from elsewhere) against the test
    #     split of a data folder, read as whole pieces (no codec: nothing is quantised)
    python bench/judge.py --files FOLDER --data DATA [--split test]
    #     ... or against a run's held-out windows (quantised by its codec, as its samples are)
    python bench/judge.py --files FOLDER --run RUN

    # (c) calibration on a data folder: half of the split against the other half (should be ~0.5) and against
    #     the domain's negative controls made from it (shuffled in time, random: should be ~1.0)
    python bench/judge.py --calibrate --data DATA [--split test]

Common options: ``--seed S`` (every draw; default 0), ``--folds K`` (default 5), ``--json`` (the whole verdict,
every feature, as one JSON object), ``--all`` (every feature's row, not only the headline ones), ``--domain D``
(for a data folder whose domain is not recorded). The split of a data folder is the one training uses (its
``train/valid/test`` subfolders, else the content hash with 10% valid and 10% test).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from seqstudio import api, data, judge, registry  # noqa: E402
from seqstudio.report import sample_files  # noqa: E402

# The wording for the MIDI headline features; shares print as percentages.
LABELS = {"short_notes": ("notes a 16th long or shorter", True),
          "texture_4": ("time with exactly four notes sounding", True),
          "dissonance": ("dissonant pairs among simultaneous notes (seconds, sevenths, tritone)", True),
          "notes_per_beat": ("notes per beat", False)}


def _value(name: str, value: float) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{100 * value:.0f}%" if LABELS.get(name, ("", False))[1] else f"{value:.3g}"


def _acc(v: dict) -> str:
    return f"{v['accuracy']:.3f} ± {v.get('accuracy_spread', v.get('spread', 0.0)):.3f}"


def table(verdict: dict, title: str = "generated", show_all: bool = False) -> str:
    """The verdict as the issue's markdown table."""
    if not verdict.get("available"):
        return f"no judge: {verdict.get('reason')}"
    floor = verdict["floor"]
    lines = [f"| {verdict['unit']} | real | {title} |", "|---|---|---|",
             f"| judge accuracy (balanced, {verdict['folds']} folds, {verdict['per_side']} per side; 0.5 = "
             f"indistinguishable; real vs real {_acc(floor)}) | – | **{_acc(verdict)}** |"]
    features = verdict["features"]
    names = list(features) if show_all or not verdict.get("highlights") else verdict["highlights"]
    for name in names:
        row = features[name]
        label = LABELS.get(name, (name, False))[0]
        lines.append(f"| {label} | {_value(name, row['reference_mean'])} | {_value(name, row['generated_mean'])} |")
    lines.append(f"| real-vs-real floor (two disjoint halves of the real excerpts, {floor['per_side']} per side) "
                 f"| {_acc(floor)} | |")
    lines.append(f"\n{verdict['generated_excerpts']} {title} and {verdict['real_excerpts']} real excerpts; mean "
                 f"feature overlap {verdict['mean_overlap']:.3f} (floor {verdict['floor_mean_overlap']:.3f})")
    if show_all:
        lines.append("\n| feature | overlap | floor overlap |\n|---|---:|---:|")
        lines += [f"| {n} | {r['overlap']:.3f} | {r['floor_overlap']:.3f} |" for n, r in features.items()]
    return "\n".join(lines)


def calibration_table(rows: dict) -> str:
    lines = ["| comparison | judge accuracy (± spread over folds) | per side | mean feature overlap |",
             "|---|---:|---:|---:|"]
    for name, v in rows.items():
        if not v.get("available"):
            lines.append(f"| {name} | no judge: {v.get('reason')} | | |")
            continue
        lines.append(f"| {name} | {_acc(v)} | {v['per_side']} | {v['mean_overlap']:.3f} |")
    return "\n".join(lines)


def _domain_of(folder: Path, name: str | None):
    name = name or data.folder_info(folder).get("domain") or registry.domain_for_path(folder)
    if not name:
        sys.exit(f"cannot tell the domain of {folder}; name it with --domain")
    return registry.load_domain(name)()


def _split_samples(folder: Path, domain, split: str) -> list:
    files = data.split_files(folder, domain)[split]
    if not files:
        sys.exit(f"the {split} split of {folder} is empty")
    return data.read_samples(sorted(files), domain, split)


def _file_samples(folder: Path, domain) -> list:
    files = sample_files(folder, domain)
    if not files:
        sys.exit(f"no {domain.name} files in {folder}")
    return data.read_samples(files, domain, "test")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", type=Path, help="a run directory: judge its samples (or --files) against its data")
    ap.add_argument("--files", type=Path, help="a folder of sample files to judge")
    ap.add_argument("--data", type=Path, help="a data folder (its --split is the real side)")
    ap.add_argument("--calibrate", action="store_true", help="real vs real and vs the domain's controls")
    ap.add_argument("--split", default="test", choices=data.SPLITS)
    ap.add_argument("--samples", type=int, default=64, help="samples to generate with --run (default 64)")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=judge.DEFAULT_FOLDS)
    ap.add_argument("--domain")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--all", action="store_true", help="every feature's row")
    args = ap.parse_args(argv)

    if args.calibrate:
        if args.data is None:
            ap.error("--calibrate needs --data")
        domain = _domain_of(args.data, args.domain)
        rows = judge.calibrate(domain, _split_samples(args.data, domain, args.split), args.folds, args.seed)
        print(json.dumps(rows) if args.json else calibration_table(rows))
        return
    if args.run is not None:
        run = api.load(args.run)
        domain = run.domain
        real, pieces = api.judge_reference(run, args.data, args.split, seed=args.seed, progress=False)
        if args.files is not None:
            samples, title = _file_samples(args.files, domain), str(args.files)
        else:
            samples = api.generate(run, n=args.samples, temperature=args.temperature, seed=args.seed,
                                   progress=False)
            title = f"{args.run} samples"
    elif args.files is not None and args.data is not None:
        domain = _domain_of(args.data, args.domain)
        real, pieces = _split_samples(args.data, domain, args.split), None  # whole pieces: each its own
        samples, title = _file_samples(args.files, domain), str(args.files)
    else:
        ap.error("give --run RUN, --files FOLDER --data DATA, --files FOLDER --run RUN, or --calibrate --data DATA")
    verdict = judge.judge(domain, samples, real, args.folds, args.seed, real_groups=pieces)
    print(json.dumps(verdict) if args.json else table(verdict, title, args.all))


if __name__ == "__main__":
    main()
