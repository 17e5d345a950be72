"""The content score of text-conditioned runs over several sampling seeds, with standard errors (issue 14).

    python bench/handwriting_content_seeds.py DATA RUN [RUN ...] [--seeds 0 1 2] [--biases 0 2]

``bench/handwriting_content.py`` scores one line per test text (seed 0): with 99 texts its share moves by
several points from one draw to the next. Here each test text is written once per seed; each line's score is
its share of wins against the 4 same-length other texts (``seqstudio_strokes.content.content_score`` on that
line alone, comparison texts drawn with the line's index as seed, so every run and seed is compared with the
same texts), averaged over the seeds; the standard error is that of the mean over the texts (so the seeds'
lines of one text are not counted as independent). One JSON line per run and bias.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from seqstudio import api
from seqstudio.api import text_lines as text_generate
from seqstudio_strokes import hershey
from seqstudio_strokes.content import content_score
from seqstudio_strokes.domain import StrokesDomain


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--biases", type=float, nargs="+", default=[0.0, 2.0])
    args = ap.parse_args()
    domain = StrokesDomain()
    test = [domain.read(p) for p in sorted((Path(args.data) / "test").glob("*.svg"))]
    asked = [ink.label for ink in test]
    fonts = [hershey.load_font(n) for n in hershey.FONTS]
    for r in args.runs:
        run = api.load(r)
        for bias in args.biases:
            wins = [[] for _ in asked]
            own, other = [], []
            for seed in args.seeds:
                lines = text_generate.generate_lines(run, asked, seed=seed, bias=bias)
                for i, (line, text) in enumerate(zip(lines, asked)):
                    s = content_score([line], [text], asked, fonts, seed=i)
                    if s["lines"]:
                        wins[i].append(s["closer_to_own_text"])
                        own.append(s["dtw_own"])
                        other.append(s["dtw_other"])
            per_text = [statistics.mean(w) for w in wins if w]
            share = statistics.mean(per_text)
            se = statistics.stdev(per_text) / len(per_text) ** 0.5
            print(json.dumps({"run": Path(r).name, "bias": bias, "seeds": args.seeds, "texts": len(per_text),
                              "closer_to_own_text": round(share, 4), "se": round(se, 4),
                              "dtw_own": round(statistics.mean(own), 4),
                              "dtw_other": round(statistics.mean(other), 4)}), flush=True)


if __name__ == "__main__":
    main()
