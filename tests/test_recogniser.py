"""Reading handwriting back (issue 27): the character error rate, the strokes plugin's CTC recogniser, and
`train-recogniser` / `evaluate --samples` on a text-conditioned run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import invoke, tiny_backend_args
from test_errors import assert_clean_error

pytest.importorskip("seqstudio_strokes")
from seqstudio.cer import character_error_rate, edit_distance  # noqa: E402
from seqstudio_strokes import hershey  # noqa: E402
from seqstudio_strokes.recogniser import (  # noqa: E402
    InkRecogniser, RecogniserConfig, line_features, line_frame, training_pieces, word_strokes)

COMMON = ["--set", "train.workers=1", "--set", "train.threads=1", "--set", "train.valid_every=5",
          "--set", "train.samples=0", "--batch-size", "4", "--quiet"]


# -- the error rate, by hand ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, distance", [
    ("kitten", "sitting", 3), ("", "abc", 3), ("abc", "", 3), ("same", "same", 0), ("ab", "ba", 2),
    ("flaw", "lawn", 2)])
def test_edit_distance_on_hand_computed_cases(a, b, distance):
    assert edit_distance(a, b) == distance == edit_distance(b, a)


def test_character_error_rate_sums_edits_over_asked_characters():
    assert character_error_rate(["abd"], ["abc"]) == pytest.approx(1 / 3)
    assert character_error_rate(["", "ab"], ["abc", "ab"]) == pytest.approx(3 / 5)  # the long line weighs more
    assert character_error_rate(["abcdef"], ["a"]) == pytest.approx(5.0)  # insertions can take it past 1
    assert character_error_rate(["hello world"], ["hello world"]) == 0.0
    assert math.isnan(character_error_rate([""], [""]))
    with pytest.raises(ValueError):
        character_error_rate(["a"], ["a", "b"])


# -- the recogniser -----------------------------------------------------------------------------------------------------
TEXTS = ["ace", "bed", "cab", "dab", "fad", "bead"]


def _typeset(texts):
    font = hershey.load_font("cursive")
    rng = np.random.default_rng(0)
    return [(hershey.write_line(t, font, rng, hershey.TYPESET), t) for t in texts]


def test_features_do_not_depend_on_point_density_or_size():
    ink, _ = _typeset(["bead"])[0]
    denser = type(ink)([np.repeat(s, 3, axis=0) * 7.5 for s in ink.strokes])  # every point thrice, 7.5x larger
    a, b = line_features(ink), line_features(denser)
    assert abs(len(a) - len(b)) <= len(ink.strokes)
    assert a[:, 2].sum() == b[:, 2].sum() == len(ink.strokes)  # one pen lift per stroke


def test_a_line_is_cut_into_its_words_and_pieces_keep_the_line_s_letter_size():
    ink, text = _typeset(["a bad cab faded"])[0]
    words = word_strokes(ink, text)
    assert [w for _, w in words] == ["a", "bad", "cab", "faded"]
    rights = [max(s[:, 0].max() for s in strokes) for strokes, _ in words]
    lefts = [min(s[:, 0].min() for s in strokes) for strokes, _ in words]
    assert all(r < l for r, l in zip(rights, lefts[1:]))  # each word lies wholly left of the next
    assert sum(len(strokes) for strokes, _ in words) == len(ink.strokes)
    assert word_strokes(*_typeset(["single"])[0]) is None
    assert word_strokes(ink, " ".join(["x"] * (len(ink.strokes) + 1))) is None  # more words than strokes
    pieces = training_pieces([(ink, text)], np.random.default_rng(0))
    assert pieces[0][1] == text and len(pieces) >= 2
    assert " ".join(t for _, t, _ in pieces[1:]) == text  # the runs of words cover the line once, in order
    piece, _, frame = pieces[1]
    assert frame == line_frame(ink)
    whole, cut = line_features(ink, frame=frame), line_features(piece, frame=frame)
    assert np.allclose(np.abs(cut[:, :2]).mean(), np.abs(whole[:, :2]).mean(), rtol=0.5)  # same letter size


@pytest.fixture(scope="module")
def fitted():
    pairs = _typeset(TEXTS)
    model = InkRecogniser("abcdef", RecogniserConfig(conv_channels=32, hidden_size=48, layers=1, dropout=0.0))
    model.fit(pairs, pairs, max_steps=150, valid_every=50, lr=1e-2, batch_size=6)
    return model, pairs


def test_the_recogniser_reads_its_own_training_lines_after_a_short_fit(fitted):
    model, pairs = fitted
    assert model.cer(pairs) <= 0.2, model.read([ink for ink, _ in pairs])


def test_the_recogniser_is_near_chance_against_shuffled_texts(fitted):
    model, pairs = fitted
    shuffled = [(ink, pairs[(i + 1) % len(pairs)][1]) for i, (ink, _) in enumerate(pairs)]
    assert model.cer(shuffled) >= 0.6 > model.cer(pairs) + 0.3


def test_the_recogniser_round_trips_through_its_folder_and_refuses_a_damaged_one(fitted, tmp_path):
    model, pairs = fitted
    model.save(tmp_path / "r")
    again = InkRecogniser.load(tmp_path / "r")
    assert again.read([ink for ink, _ in pairs]) == model.read([ink for ink, _ in pairs])
    (tmp_path / "r" / "recogniser.json").write_text("{not json")
    from seqstudio.errors import RunDirError

    with pytest.raises(RunDirError, match="cannot be loaded"):
        InkRecogniser.load(tmp_path / "r")


# -- through the CLI --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rec")
    recipe = yaml.safe_load((Path(hershey.__file__).parent / "data_recipes/hershey-script.yaml").read_text())
    recipe["name"] = "hershey-tiny"
    recipe["source"].update(min_chars=4, max_chars=10)
    (root / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    result = invoke("data", "build", root / "tiny.yaml", root / "lines", "--limit", "18", "--quiet")  # 18 in all, over the splits
    assert result.exit_code == 0, result.output
    run = root / "run"
    result = invoke("train", root / "lines", "--backend", "rnn", "--run-dir", run, "--max-steps", 3,
                    *tiny_backend_args("rnn"), *COMMON)
    assert result.exit_code == 0, result.output
    return run


def test_train_recogniser_stores_it_with_the_run_and_evaluate_reports_the_error_rates(text_run):
    result = invoke("train-recogniser", text_run, "--max-steps", 4, "--quiet")
    assert result.exit_code == 0, result.output
    assert "test CER" in result.output
    assert (text_run / "recogniser" / "recogniser.pt").is_file()
    card = json.loads((text_run / "recogniser" / "recogniser.json").read_text())
    assert card["figures"]["steps"] == 4 and card["alphabet"]

    result = invoke("evaluate", text_run, "--samples", 2, "--json")
    assert result.exit_code == 0, result.output
    text = json.loads(result.output.strip().splitlines()[-1])["text"]
    assert text["lines"] == 2 and text["real_cer"] >= 0
    for key in ("bias_0", "bias_2"):
        assert {"cer", "cer_other_text", "dtw_closer_to_own_text"} <= set(text[key]), text[key]
    assert text["style_primed"]["cer"] >= 0  # the style-primed line's CER is reported
    stored = json.loads((text_run / "evaluation-test.json").read_text())
    assert stored["text"]["real_cer"] == text["real_cer"]

    words = invoke("evaluate", text_run, "--samples", 2)
    assert words.exit_code == 0, words.output
    assert "character error rate" in words.output and "style-primed" in words.output

    page = invoke("report", text_run, "-o", text_run.parent / "report", "--quiet")
    assert page.exit_code == 0, page.output
    html = (text_run.parent / "report" / "index.html").read_text()
    assert "Character error rate" in html and "style-primed" in html


def test_evaluate_without_a_recogniser_gives_the_other_figures_and_says_how_to_train_one(text_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(text_run, copy, ignore=shutil.ignore_patterns("recogniser"))
    result = invoke("evaluate", copy, "--samples", 2)  # the other figures are given; the text part says what to do
    assert result.exit_code == 0, result.output
    assert "not read back" in result.output and "train-recogniser" in result.output
    assert "mean_overlap" in result.output
    stored = json.loads((copy / "evaluation-test.json").read_text())
    assert "train-recogniser" in stored["text"]["skipped"]


def test_train_recogniser_on_a_run_without_text_is_one_clear_line(trained_run):
    assert_clean_error(invoke("train-recogniser", trained_run, "--max-steps", 2), "not conditioned on text")


def test_a_linked_recogniser_is_refused(text_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(text_run, copy, ignore=shutil.ignore_patterns("recogniser", ".seqstudio-lock"))
    (copy / "recogniser").mkdir()
    (tmp_path / "secret.json").write_text("{}")
    (copy / "recogniser" / "recogniser.json").symlink_to(tmp_path / "secret.json")
    assert_clean_error(invoke("evaluate", copy, "--samples", 2), "symbolic link")


def test_generate_text_writes_at_the_neater_bias_unless_told(text_run, tmp_path, monkeypatch):
    from seqstudio.api import text_lines as text_generate

    seen, real = [], text_generate.generate_lines
    monkeypatch.setattr(text_generate, "generate_lines", lambda *a, **k: seen.append(k["bias"]) or real(*a, **k))
    for extra, bias in (((), 2.0), (("--bias", "0"), 0.0)):
        result = invoke("generate", text_run, "--text", "e", "-o", tmp_path / f"out{bias:g}", "--length", 20,
                        "--quiet", *extra)
        assert result.exit_code == 0, result.output
        assert seen[-1] == bias
