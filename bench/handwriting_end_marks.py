"""How often a text-conditioned run draws the end-of-drawing mark mid-line, and what reading that mark as a pen
lift (``Codec.without_end`` in ``generate --text``) gives back (issue 14).

    python bench/handwriting_end_marks.py RUN DATA     # DATA: the run's data folder (its test/ split is read)

For sampling bias 0 and 2 (seed 0, all test texts in one batch) and two variants, "cut" (the end mark kept as
drawn, so decoding stops there: the behaviour before) and "lift" (the mark made a pen lift, now): the share of
lines whose decoded points stop before the line's last generated step, the mean points per line, and the content
score (``seqstudio_strokes.content``: share of lines closer to their own text than to other texts of their
length, chance 0.5). Then the style-primed line of ``bench/handwriting_figure.py`` for seeds 1-6, both variants:
points of the new line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from seqstudio import api
from seqstudio.api import text_lines as text_generate
from seqstudio_strokes import hershey
from seqstudio_strokes.content import content_score
from seqstudio_strokes.domain import StrokesDomain


def generate(run, variant, texts, **kwargs):
    """``generate_lines`` with the end mark kept as drawn ("cut") or read as a pen lift ("lift"), with each
    line's generated steps (before decoding)."""
    steps, sample_lines, without_end = [], run.backend.sample_lines, run.codec.without_end

    def recording(*args, **kw):
        if variant == "cut":
            kw["without_end"] = None
        x, n = sample_lines(*args, **kw)
        prime = args[1].prime
        steps.extend(int(v) - (prime.shape[1] if prime is not None else 0) for v in n)
        return x, n

    run.backend.sample_lines = recording
    if variant == "cut":
        run.codec.without_end = lambda x: x  # the prime too, as before
    try:
        return text_generate.generate_lines(run, texts, **kwargs), steps
    finally:
        del run.backend.sample_lines
        run.codec.without_end = without_end


def main():
    torch.set_num_threads(1)
    run_dir, data = Path(sys.argv[1]), Path(sys.argv[2])
    domain = StrokesDomain()
    tests = sorted((data / "test").glob("*.svg"))
    asked = [domain.read(p).label for p in tests]
    fonts = [hershey.load_font(n) for n in hershey.FONTS]
    run = api.load(run_dir)
    for bias in (0.0, 2.0):
        for variant in ("cut", "lift"):
            lines, steps = generate(run, variant, asked, seed=0, bias=bias, batch_size=len(asked))
            points = [ink.num_points for ink in lines]
            cut = sum(p < s for p, s in zip(points, steps))
            score = content_score(lines, asked, asked, fonts)
            print(json.dumps({"bias": bias, "variant": variant, "lines": len(lines),
                              "cut_before_their_end": round(cut / len(lines), 3),
                              "mean_points": round(sum(points) / len(points), 1),
                              "mean_steps": round(sum(steps) / len(steps), 1),
                              **{k: round(v, 3) if isinstance(v, float) else v for k, v in score.items()}}), flush=True)
    style, style_text = tests[5], asked[5]
    for variant in ("cut", "lift"):
        points = [generate(run, variant, [asked[3]], style=style, style_text=style_text, seed=seed,
                           bias=2.0)[0][0].num_points for seed in range(1, 7)]
        print(json.dumps({"style_primed": f"{style_text!r} -> {asked[3]!r}", "variant": variant, "bias": 2.0,
                          "points_per_seed_1_to_6": points}), flush=True)


if __name__ == "__main__":
    main()
