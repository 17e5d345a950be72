"""The hershey-script recipe: lines of text written in the Hershey script fonts, deterministic for a seed, each
file's label its text, a text in one split only, a handwritten (not typeset) look, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import invoke, tiny_backend_args
from test_errors import assert_clean_error

pytest.importorskip("seqstudio_strokes")
from seqstudio_strokes import hershey  # noqa: E402
from seqstudio_strokes.domain import StrokesDomain  # noqa: E402

SPLITS = ("train", "valid", "test")


def build(dest: Path, *args) -> Path:
    result = invoke("data", "build", "hershey-script", dest, "--quiet", *args)
    assert result.exit_code == 0, result.output
    return dest


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("hershey") / "lines", "--limit", "24")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.svg"))}


def test_the_recipe_is_deterministic_and_every_line_reads_back_with_its_text(lines, tmp_path):
    again = build(tmp_path / "again", "--limit", "24")
    assert _files(again) == _files(lines)  # the same seed writes the same bytes
    domain = StrokesDomain()
    texts = {split: [] for split in SPLITS}
    for split in SPLITS:
        files = sorted((lines / split).glob("*.svg"))
        assert len(files) >= 1
        for path in files:
            ink = domain.read(path)
            assert 12 <= len(ink.label) <= 32 and ink.num_points >= 2 * len(ink.label.replace(" ", ""))
            assert hershey.split_of(ink.label) == split  # a text is in one split only
            texts[split].append(ink.label)
    assert sum(map(len, texts.values())) == 24  # --limit counts files in all, not per split
    assert len(texts["train"]) > len(texts["valid"])  # shared as the whole set is (90/5/5)
    assert not set(texts["train"]) & (set(texts["valid"]) | set(texts["test"]))
    assert {p.name.split("-")[0] for p in lines.rglob("*.svg")} == set(hershey.FONTS)  # every font used
    assert yaml.safe_load((lines / "seqstudio.yaml").read_text())["domain"] == "strokes"


def test_another_seed_writes_other_lines(lines, tmp_path):
    recipe = yaml.safe_load((Path(hershey.__file__).parent / "data_recipes/hershey-script.yaml").read_text())
    recipe["source"]["seed"] = 1
    path = tmp_path / "seed1.yaml"
    path.write_text(yaml.safe_dump(recipe))
    other = tmp_path / "other"
    assert invoke("data", "build", path, other, "--limit", "8", "--quiet").exit_code == 0
    assert _files(other) != _files(lines)


def test_a_written_line_departs_from_the_typeset_font_and_zero_style_is_the_font():
    font = hershey.load_font("cursive")
    text = "Handwriting, please"
    typeset = np.concatenate([np.asarray(s, float) for s in font.strokes_for_text(text)])
    same = hershey.write_line(text, font, np.random.default_rng(0), hershey.TYPESET)
    np.testing.assert_allclose(np.concatenate(same.strokes), typeset, atol=1e-4)
    written = [hershey.write_line(text, font, np.random.default_rng(seed)) for seed in (0, 1)]
    for ink in written:
        points = np.concatenate(ink.strokes)
        assert points.shape == typeset.shape and ink.label == text
        assert np.abs(points - typeset).mean() > 0.5  # slanted, drifting, jittered
    assert not np.allclose(np.concatenate(written[0].strokes), np.concatenate(written[1].strokes))


def test_lines_are_cut_at_word_boundaries_from_plain_prose_only():
    prose = ["The quick brown fox jumps over the lazy dog. x_y = f(z) is code here.\n\nAnother short sentence."]
    # the code sentence is left out, and the tails shorter than 10 characters ("dog.", "sentence.")
    assert hershey.cut_lines(prose, 10, 20) == ["The quick brown fox", "jumps over the lazy", "Another short"]
    assert hershey.cut_lines(prose * 2, 10, 20) == hershey.cut_lines(prose, 10, 20)  # each line once


def test_a_text_folder_as_the_source(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("Write these words in a learned hand, please. " * 3
                                 + "Every line here is plain prose for the pen to follow.\n")
    dest = build(tmp_path / "mine", "--source", texts)
    labels = {StrokesDomain().read(p).label for p in dest.rglob("*.svg")}
    assert labels and all(label in (texts / "a.txt").read_text() for label in labels)


def test_characters_outside_the_alphabet_and_bad_options_are_clear_errors(tmp_path):
    font = hershey.load_font("scripts")
    with pytest.raises(hershey.DataError, match="'é'"):
        hershey.write_line("café au lait", font, np.random.default_rng(0))
    recipe = yaml.safe_load((Path(hershey.__file__).parent / "data_recipes/hershey-script.yaml").read_text())
    for change, message in ((("fonts", ["gothic"]), "unknown Hershey script font 'gothic'"),
                            (("style", {"wobble": 1}), "unknown hershey style option(s) wobble")):
        bad = dict(recipe, source={**recipe["source"], change[0]: change[1]})
        path = tmp_path / f"bad-{change[0]}.yaml"
        path.write_text(yaml.safe_dump(bad))
        assert_clean_error(invoke("data", "build", path, tmp_path / f"out-{change[0]}"), message)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(invoke("data", "build", "hershey-script", tmp_path / "none", "--source", empty), ".txt")


def test_the_written_lines_train(lines, tmp_path):
    # text-conditioned (issue 14): whole lines, up to the recipe's line-length limit (codec.window: 500)
    result = invoke("train", lines, "--backend", "rnn", *tiny_backend_args("rnn"), "--max-steps", 3,
                    "--batch-size", 4, "--run-dir", tmp_path / "run", "--quiet", "--set", "train.samples=1")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "best.pt").is_file()
    # a limit no line fits under is one clear line, not an empty training set
    result = invoke("train", lines, "--backend", "rnn", *tiny_backend_args("rnn"), "--max-steps", 3,
                    "--run-dir", tmp_path / "run2", "--quiet", "--set", "codec.window=20")
    assert_clean_error(result, "line-length limit", "train.text=none")
    result = invoke("train", lines, "--backend", "rnn", *tiny_backend_args("rnn"), "--max-steps", 3,
                    "--batch-size", 4, "--run-dir", tmp_path / "run3", "--quiet", "--set", "codec.window=100",
                    "--set", "train.text=none")  # without the text, long lines are cut into windows as before
    assert result.exit_code == 0, result.output


# -- the content score ----------------------------------------------------------------------------------------------
def test_dtw_is_zero_on_itself_symmetric_and_grows_with_distortion():
    from seqstudio_strokes.content import dtw

    rng = np.random.default_rng(0)
    a = np.cumsum(rng.normal(size=(40, 2)), axis=0)
    b = np.cumsum(rng.normal(size=(50, 2)), axis=0)
    assert dtw(a, a) == 0.0 and dtw(a, b) == pytest.approx(dtw(b, a))
    assert dtw(a, np.repeat(a, 2, axis=0)) == 0.0  # time warping is free
    assert 0 < dtw(a, a + rng.normal(0, 0.1, a.shape)) < dtw(a, a + rng.normal(0, 1.0, a.shape))


def test_written_lines_are_closer_to_their_own_text_than_to_others():
    from seqstudio_strokes.content import content_score

    fonts = [hershey.load_font(name) for name in hershey.FONTS]
    pool = hershey.cut_lines(hershey.python_docs_text(), 16, 20)[:60]
    asked = pool[:12]
    rng = np.random.default_rng(3)
    written = [hershey.write_line(text, fonts[i % 3], rng) for i, text in enumerate(asked)]
    score = content_score(written, asked, pool, fonts)
    assert score["lines"] == 12 and score["closer_to_own_text"] >= 0.8  # 0.875 here; chance is 0.5
    assert score["dtw_own"] < score["dtw_other"]
    shuffled = content_score(written, asked[1:] + asked[:1], pool, fonts)  # each line scored against another text
    assert shuffled["closer_to_own_text"] <= 0.65  # 0.44 here
