"""Build the class-conditional stroke set of BENCHMARKS.md from the embedded KanjiVG package: one sketch-rnn
``.npz`` per class (so ``seqstudio train FOLDER`` trains class-conditionally with no extra flag), each class a
band of stroke counts, ``PER_CLASS`` characters each, split 80/10/10 by position.

    python bench/conditions_data.py DEST [PER_CLASS]
"""

import importlib.metadata
import sys
from pathlib import Path

from seqstudio_strokes.domain import StrokesDomain
from seqstudio_strokes.formats.npz import write_npz

CLASSES = {"strokes-2-3": (2, 3), "strokes-5-6": (5, 6), "strokes-9-10": (9, 10)}


def main(dest: Path, per_class: int) -> None:
    root = Path(importlib.metadata.distribution("kanjivg").locate_file(""))
    files = sorted(root.glob("kanji/0[4-9][0-9a-f][0-9a-f][0-9a-f].svg"))
    domain = StrokesDomain()
    groups = {name: [] for name in CLASSES}
    for f in files:
        if all(len(v) >= per_class for v in groups.values()):
            break
        try:
            ink = domain.read(f)
        except Exception:
            continue
        for name, (low, high) in CLASSES.items():
            if low <= len(ink.strokes) <= high and len(groups[name]) < per_class:
                groups[name].append(ink)
    dest.mkdir(parents=True, exist_ok=True)
    for name, inks in groups.items():
        a, b = int(0.8 * len(inks)), int(0.9 * len(inks))
        write_npz({"train": inks[:a], "valid": inks[a:b], "test": inks[b:]}, dest / f"{name}.npz")
        print(name, len(inks))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 90)
