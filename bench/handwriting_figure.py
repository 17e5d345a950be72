"""docs/handwriting-lines.png: five lines written by a text-conditioned run (issue 14), each titled with what the
run's recogniser reads in it and that line's character error rate (issue 27) when the run has one."""
import sys
from pathlib import Path
from seqstudio import api
from seqstudio.api import text_lines as text_generate
from seqstudio.api import text_reading as recognition
from seqstudio.cer import character_error_rate
from seqstudio.errors import RunDirError
from seqstudio_strokes.domain import StrokesDomain
from seqstudio_strokes.ink import Ink
from seqstudio_strokes.plotter import write_lines_sheet

run_dir, data, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
run = api.load(run_dir)
domain = StrokesDomain()
train_texts = {domain.read(p).label for p in (data / "train").glob("*.svg")}
tests = sorted((data / "test").glob("*.svg"))
test_texts = [domain.read(p).label for p in tests]
novel = "a novel line"  # not from the recipe's text source
assert novel not in train_texts and novel not in test_texts
asked = test_texts[:3] + [novel]
lines = text_generate.generate_lines(run, asked, seed=1, bias=2.0)
style = tests[5]
style_text = domain.read(style).label
primed = text_generate.generate_lines(run, [test_texts[3]], style=style, style_text=style_text, seed=1, bias=2.0)
titles = [f"test text: {t}" for t in asked[:3]] + [f"never in the recipe: {novel}",
          f"style-primed with '{style_text}': {test_texts[3]}"]
try:
    recogniser = recognition.load(run)
except RunDirError:
    recogniser = None
if recogniser is not None:
    written = lines + primed
    read = recogniser.read(written)
    titles = [f"{title}   (read: {r!r}, CER {character_error_rate([r], [t]):.2f})"
              for title, r, t in zip(titles, read, asked + [test_texts[3]])]
inks = [Ink(i.strokes, label=t) for i, t in zip(lines + primed, titles)]
print(write_lines_sheet(inks, out, titles))
