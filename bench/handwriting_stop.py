"""Where a generated line ends: Graves' rule alone (``wait=0``, the rule before the pen-lift fix) against the
window-passed-then-pen-lift rule (``text_generate.default_wait``), on a text-conditioned run's test texts.

    python bench/handwriting_stop.py RUN DATA          # DATA: the run's data folder (its test/ split is read)

Per rule and sampling bias (0 and 2, seed 0): mean steps per line, the share of lines whose last point lifts the
pen (the rest were cut mid-stroke), how many lines got longer and by how many steps on average, and the content
score of ``seqstudio_strokes.content`` (share of lines closer to their own text, chance 0.5). All texts go in
one batch, so both rules see the same draws and each line's prefix is the same.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from seqstudio import api
from seqstudio.api import text_lines as text_generate
from seqstudio_strokes import hershey
from seqstudio_strokes.content import content_score
from seqstudio_strokes.domain import StrokesDomain


def lines_with_ends(run, texts, bias, wait):
    """``generate_lines`` plus each raw line's length in steps and whether its last point ends a stroke."""
    ends, lengths, sample_lines = [], [], run.backend.sample_lines

    def recording(*args, **kwargs):
        x, n = sample_lines(*args, **kwargs)
        for i in range(x.shape[0]):
            lengths.append(int(n[i]))
            ends.append(bool(run.codec.segment_ends(x[i, int(n[i]) - 1])))
        return x, n

    run.backend.sample_lines = recording
    try:
        lines = text_generate.generate_lines(run, texts, seed=0, bias=bias, wait=wait, batch_size=len(texts))
    finally:
        del run.backend.sample_lines
    return lines, lengths, ends


def main():
    run_dir, data = Path(sys.argv[1]), Path(sys.argv[2])
    domain = StrokesDomain()
    test = [domain.read(p) for p in sorted((data / "test").glob("*.svg"))]
    asked = [ink.label for ink in test]
    fonts = [hershey.load_font(n) for n in hershey.FONTS]
    run = api.load(run_dir)
    spec = run.backend.text_spec
    real = [run.codec.encode(ink).shape[0] for ink in test]
    out = {"lines": len(asked), "wait_cap_steps": text_generate.default_wait(spec),
           "real_mean_steps": round(sum(real) / len(real), 1)}
    for bias in (0.0, 2.0):
        graves_lengths = None
        for name, wait in (("graves", 0), ("pen_lift", None)):
            t0 = time.time()
            lines, lengths, ends = lines_with_ends(run, asked, bias, wait)
            row = {"mean_steps": round(sum(lengths) / len(lengths), 1),
                   "ends_on_pen_lift": round(sum(ends) / len(ends), 3)}
            if graves_lengths is None:
                graves_lengths = lengths
            else:
                d = [b - a for a, b in zip(graves_lengths, lengths)]
                row.update(longer_than_graves=round(sum(v > 0 for v in d) / len(d), 3),
                           mean_extra_steps=round(sum(d) / len(d), 1), shorter=sum(v < 0 for v in d))
            score = content_score(lines, asked, asked, fonts)
            row.update({k: round(v, 3) if isinstance(v, float) else v for k, v in score.items()},
                       seconds=round(time.time() - t0, 1))
            out[f"bias={bias:g} {name}"] = row
            print(json.dumps({f"bias={bias:g} {name}": row}), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
