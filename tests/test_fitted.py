"""``data.Fitted``: what a run learned from its data, one value, exactly what ``codec.json`` holds. The layout is
the one run directories have always had (the codec's own keys, ``_conditions``, ``_text`` and ``_decoding`` beside
them), so a run written before the value existed loads, and writes back the same bytes."""

import json

import pytest

from seqstudio import api, data
from seqstudio.conditions import ConditionSpec
from seqstudio.errors import ConfigError, RunDirError
from seqstudio.text_condition import TextSpec

# codec.json of a MIDI run written before ``Fitted`` (notes codec: no state of its own; conditions; decoding)
OLD_MIDI = json.loads("{\"_conditions\": {\"attributes\": [{\"name\": \"meter\", \"values\": [\"4/4\", \"3/4\", \"12/8\", \"3/2\"], \"counts\": [294, 37, 1, 1]}, {\"name\": \"mode\", \"values\": [\"major\", \"minor\"], \"counts\": [186, 147]}], \"dropout\": 0.1, \"size\": 16, \"mode\": \"embedding\", \"combos\": [[[1, 1], 158], [[1, 2], 136], [[2, 1], 27], [[2, 2], 10], [[3, 1], 1], [[4, 2], 1]], \"notes\": {\"_key_source\": {\"meta\": 333}, \"_program\": {\"0\": 331, \"52\": 1, \"6\": 1}, \"_tempo\": {\"100\": 1, \"104\": 1, \"108\": 1, \"120\": 281, \"126\": 1, \"80\": 2, \"86\": 2, \"88\": 6, \"90\": 3, \"92\": 3, \"96\": 23, \"98\": 3, \"6 other values\": 6}}}, \"_decoding\": {\"tempo\": 120.0, \"program\": 0}}")
# codec.json of a handwriting run written before ``Fitted`` (a stroke scale and the text condition), alphabet cut short
OLD_STROKES = json.loads("{\"scale\": 5.821051828582196, \"_text\": {\"attribute\": \"text\", \"alphabet\": \" etanisorlch\", \"counts\": [14387, 12321, 8992, 7050, 6873, 6574, 6512, 6017, 5451, 3752, 3544, 3418], \"mixtures\": 10, \"chars_per_step\": 0.104621371174818, \"max_chars\": 32, \"examples\": [\"debugger is:\", \"The \\\"finally\\\" clause is\"]}}")


@pytest.mark.parametrize("state", [OLD_MIDI, OLD_STROKES], ids=["midi", "strokes"])
def test_an_old_layout_codec_json_is_one_fitted_value_and_writes_back_the_same_bytes(state):
    fitted = data.Fitted.from_state(state)
    own = {k: v for k, v in state.items() if not k.startswith("_")}
    assert fitted.codec_state == own
    assert (fitted.conditions is not None) == ("_conditions" in state)
    assert (fitted.text is not None) == ("_text" in state)
    assert fitted.decoding == state.get("_decoding", {})
    assert json.dumps(fitted.to_state()) == json.dumps(state)  # the same file, key order included


def test_the_fitted_parts_are_the_run_state_types():
    midi, strokes = data.Fitted.from_state(OLD_MIDI), data.Fitted.from_state(OLD_STROKES)
    assert isinstance(midi.conditions, ConditionSpec) and midi.conditions.names == ["meter", "mode"]
    assert midi.decoding == {"tempo": 120.0, "program": 0} and midi.text is None
    assert isinstance(strokes.text, TextSpec) and strokes.text.attribute == "text" and strokes.conditions is None


def test_a_damaged_condition_description_is_a_config_error():
    with pytest.raises(ConfigError, match="conditions"):
        data.Fitted.from_state({**OLD_MIDI, "_conditions": {"attributes": "no"}})


def test_a_trained_run_keeps_its_fitted_value_in_codec_json(trained_run):
    run = api.load(trained_run)
    assert run.fitted.to_state() == json.loads((trained_run / "codec.json").read_text())
    assert api.conditions_of(run) is run.fitted.conditions


def test_a_codec_json_the_codec_cannot_take_is_one_line_naming_the_file(trained_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    (copy / "codec.json").write_text(json.dumps({**OLD_MIDI, "_conditions": {"attributes": []}}))
    with pytest.raises(RunDirError, match="codec.json"):
        api.load(copy)


def test_each_piece_gets_its_own_files_attributes_even_when_two_files_share_one_encoding():
    """Two files with the same content share one cached encoding (one ``Piece`` object); the attributes their
    paths give them (a folder's ``attributes:`` rule) differ, and each piece keeps its own: attributes are looked
    up by the piece's key (its file; a many-sample file's split and position), never by object identity."""
    import torch
    from pathlib import Path

    from seqstudio.data import EncodedFiles, Piece, SplitFiles, pieces_for_split
    from seqstudio.shards import FloatPieces

    source = FloatPieces.from_tensors([torch.zeros(3, 2), torch.ones(4, 2), torch.full((5, 2), 2.0)], 2)
    shared = Piece(source, 0)
    a, b, book = Path("/d/a.mid"), Path("/d/b.mid"), Path("/d/book.npz")
    encoded = EncodedFiles({a: shared, b: shared,
                            book: {"train": [Piece(source, 1), Piece(source, 2)], "valid": [], "test": [], "own": {}}})
    encoded.attributes = {a: {"label": "a"}, b: {"label": "b"},
                          book: {"train": [{"label": "first"}, {"label": "second"}], "valid": [], "test": []}}
    files = SplitFiles({"train": [a, b, book], "valid": [], "test": []})
    pieces, attrs = pieces_for_split(encoded, files, "train")
    assert pieces == [shared, shared, encoded[book]["train"][0], encoded[book]["train"][1]]
    assert attrs == [{"label": "a"}, {"label": "b"}, {"label": "first"}, {"label": "second"}]
