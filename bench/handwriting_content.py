"""Content score of text-conditioned runs on the test split's texts (issue 14 benchmark)."""
import json, sys
from pathlib import Path
import torch
from seqstudio import api
from seqstudio.api import text_lines as text_generate
from seqstudio_strokes import hershey
from seqstudio_strokes.content import content_score
from seqstudio_strokes.domain import StrokesDomain

data = Path(sys.argv[1]); runs = sys.argv[2:]
domain = StrokesDomain()
test = [domain.read(p) for p in sorted((data / "test").glob("*.svg"))]
asked = [ink.label for ink in test]
fonts = [hershey.load_font(n) for n in hershey.FONTS]
out = {"lines": len(asked)}
out["real_test_lines"] = content_score(test, asked, asked, fonts)
out["real_test_lines_shuffled_texts"] = content_score(test, asked[1:] + asked[:1], asked, fonts)
for r in runs:
    run = api.load(r)
    if run.backend.text_spec is None:  # unconditional: its samples scored against the test texts (chance)
        n = len(asked)
        import statistics
        length = int(statistics.median(run.codec.encode(i).shape[0] for i in test))
        samples = api.generate(run, n=n, seed=0, length=length)
        out[Path(r).name] = content_score(list(samples), asked, asked, fonts)
        continue
    for bias in (0.0, 2.0):
        lines = text_generate.generate_lines(run, asked, seed=0, bias=bias)
        out[f"{Path(r).name} bias={bias:g}"] = content_score(lines, asked, asked, fonts)
    print(json.dumps(out), flush=True)
print(json.dumps(out, indent=1))
