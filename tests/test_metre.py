"""The metre judge (``seqstudio_midi.metre``) and the Essen recipe's metre, key and collection (issue 13).

The judge is fitted on MIDI files the tests write, 3/4 and 4/4 melodies with time signatures and bar rhythms
that accent the downbeat, each starting at a random point of its bar; it must tell the held-out ones apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import yaml

from conftest import invoke

# Bar rhythms in sixteenths: the long values on the strong beats, as real tunes have them.
RHYTHMS = {(3, 4): [(8, 4), (4, 4, 4), (6, 2, 4), (12,), (8, 2, 2), (4, 2, 2, 4)],
           (4, 4): [(8, 4, 4), (4, 4, 4, 4), (6, 2, 8), (16,), (8, 8), (4, 4, 8), (6, 2, 4, 4)]}


def _tune(path: Path, meter: tuple[int, int], rng: np.random.Generator, bars: int = 12) -> Path:
    """A one-voice tune of ``bars`` bars in ``meter`` (120 bpm), cut to start somewhere inside its first bar
    (a training window or a generated piece starts at any beat), with a time-signature meta event."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    pm.time_signature_changes = [pretty_midi.TimeSignature(meter[0], meter[1], 0.0)]
    inst = pretty_midi.Instrument(program=0)
    t, pitch = 0, 67
    for _ in range(bars):
        for d in RHYTHMS[meter][rng.integers(len(RHYTHMS[meter]))]:
            pitch = int(np.clip(pitch + rng.integers(-3, 4), 55, 84))
            inst.notes.append(pretty_midi.Note(80, pitch, t * 0.125, (t + d) * 0.125))  # a sixteenth = 0.125 s
            t += d
    skip = rng.integers(0, 4 * meter[0]) * 0.125
    inst.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start - skip, n.end - skip)
                  for n in inst.notes if n.start >= skip]
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


@pytest.fixture(scope="module")
def tunes(tmp_path_factory):
    """40 + 20 tunes per metre: ``{"train": [(path, "3/4"), ...], "test": [...]}``."""
    folder = tmp_path_factory.mktemp("metre")
    rng = np.random.default_rng(0)
    out = {"train": [], "test": []}
    for split, n in (("train", 40), ("test", 20)):
        for meter in RHYTHMS:
            for i in range(n):
                path = _tune(folder / f"{split}-{meter[0]}{meter[1]}-{i}.mid", meter, rng)
                out[split].append((path, f"{meter[0]}/{meter[1]}"))
    return out


def test_the_metre_judge_tells_three_four_from_four_four_on_held_out_tunes(tunes):
    from seqstudio_midi.domain import MidiDomain

    domain = MidiDomain()
    read = {split: [(domain.read(p), m) for p, m in pairs] for split, pairs in tunes.items()}
    assert all(domain.attributes(s, p)["meter"] == m for (p, m), (s, _) in zip(tunes["train"], read["train"]))
    judges = domain.condition_judges(["key", "meter"], lambda: [(s, {"meter": m}) for s, m in read["train"]])
    assert set(judges) == {"key", "meter"}
    right = [judges["meter"](s) == m for s, m in read["test"]]
    assert sum(right) / len(right) >= 0.8, f"{sum(right)} of {len(right)} held-out tunes"
    # the same judge on what the fast loader reads (a NoteScore), and on a piece without notes
    fast = [domain.read_for_encoding(p) for p, _ in tunes["test"][:6]]
    assert [judges["meter"](s) for s in fast] == [judges["meter"](s) for s, _ in read["test"][:6]]
    assert judges["meter"](pretty_midi.PrettyMIDI()) is None


def test_the_metre_features_do_not_depend_on_where_the_piece_starts():
    from seqstudio_midi.metre import N_FEATURES, features

    rng = np.random.default_rng(1)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=0)
    starts = np.cumsum([0] + [int(rng.choice([2, 4, 6])) for _ in range(40)])
    inst.notes = [pretty_midi.Note(80, 60 + i % 7, s * 0.125, s * 0.125 + 0.25) for i, s in enumerate(starts)]
    pm.instruments.append(inst)
    shifted = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    moved = pretty_midi.Instrument(program=0)
    moved.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start + 0.375, n.end + 0.375) for n in inst.notes]
    shifted.instruments.append(moved)
    f = features(pm)
    assert f.shape == (N_FEATURES,) and np.isfinite(f).all() and f.any()
    assert np.allclose(f, features(shifted))


def test_a_metre_judge_needs_two_metres_in_training():
    from seqstudio_midi.domain import MidiDomain

    one = [(s, {"meter": "4/4"}) for s in MidiDomain().example_samples()]
    assert "meter" not in MidiDomain().condition_judges(["meter"], lambda: one)


# -- the essen-folk recipe: metre, key, collection -----------------------------------------------------------------
def test_essen_tunes_without_a_metre_are_left_out(tmp_path):
    from seqstudio_midi.recipe_sources import music21_corpus_dir, split_abc_book

    book = music21_corpus_dir() / "essenFolksong" / "ballad10.abc"
    (tmp_path / "all").mkdir()
    (tmp_path / "metred").mkdir()
    every = split_abc_book(book, tmp_path / "all")
    metred = split_abc_book(book, tmp_path / "metred", skip_free_meter=True)
    free = [p.name for p in every if "M: none" in p.read_text()]
    assert free and "ballad10-1.abc" in free  # the book's first tune says M: none
    assert sorted(p.name for p in metred) == sorted(p.name for p in every if p.name not in free)


def test_essen_recipe_records_metre_key_and_collection(tmp_path):
    from seqstudio_midi.domain import MidiDomain

    dest = tmp_path / "essen"
    result = invoke("data", "build", "essen-folk", dest, "--limit", 6, "--quiet", "--workers", 1)
    assert result.exit_code == 0, result.output
    info = yaml.safe_load((dest / "seqstudio.yaml").read_text())
    assert "collection" in info["attributes"]
    domain = MidiDomain()
    built = sorted(dest.glob("*.mid"))
    assert len(built) == 5  # --limit 6, less the one tune music21 cannot read (altdeu10-5)
    for path in built:
        pm = pretty_midi.PrettyMIDI(str(path))
        assert pm.time_signature_changes and pm.key_signature_changes  # meta events: attributes() finds them
        attrs = domain.attributes(pm, path)
        assert attrs["_key_source"] == "meta" and attrs["meter"] and attrs["key"]


def test_a_folder_declares_attributes_of_its_file_names_and_a_run_conditions_on_them(tmp_path):
    """``seqstudio.yaml`` ``attributes: {name: regex}``: any domain's folder; here MIDI files named by style."""
    folder = tmp_path / "styles"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(8):
        _tune(folder / f"waltz{i % 2 + 1}-{i}.mid", (3, 4), rng)
        _tune(folder / f"march{i % 2 + 1}-{i}.mid", (4, 4), rng)
    (folder / "seqstudio.yaml").write_text("domain: midi\nattributes:\n  style: '^([a-z]+)\\d*-\\d+\\.mid$'\n")
    run = tmp_path / "run"
    result = invoke("train", folder, "--backend", "rnn", "--run-dir", run, "--max-steps", 2, "--batch-size", 4,
                    "--set", "train.conditions=style", "--set", "train.workers=1", "--set", "train.samples=0",
                    "--set", "backend.hidden_size=8", "--quiet")
    assert result.exit_code == 0, result.output
    info = invoke("info", run)
    assert info.exit_code == 0 and "style" in info.output and "waltz" in info.output and "march" in info.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "recipe.yaml").write_text("domain: midi\nsource: {type: music21-corpus, glob: 'bach/bwv1.6.mxl'}\n"
                                     "attributes: {style: 'no group'}\n")
    result = invoke("data", "build", bad / "recipe.yaml", tmp_path / "out", "--quiet")
    assert result.exit_code != 0 and "needs a group" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # refused before anything was built
    (folder / "seqstudio.yaml").write_text("domain: midi\nattributes:\n  style: '(unclosed'\n")
    result = invoke("train", folder, "--backend", "rnn", "--run-dir", tmp_path / "run2", "--max-steps", 1,
                    "--set", "train.workers=1", "--quiet")
    assert result.exit_code != 0 and "seqstudio.yaml" in result.output and "not a regular expression" in result.output
    assert "Traceback" not in result.output
