"""The text domain plugin: codecs, ABC cleaning and conversion, training every backend, and bad input."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import pretty_midi
import pytest
import torch

import seqstudio
from seqstudio import registry
from seqstudio.data import make_codec
from seqstudio.errors import ConfigError, DataError

from conftest import invoke, read_metrics, tiny_backend_args
from test_errors import assert_clean_error

pytest.importorskip("seqstudio_text")

from seqstudio_text.abc import check_abc, clean_abc  # noqa: E402
from seqstudio_text.bpe import BPECodec  # noqa: E402
from seqstudio_text.char import UNK_TEXT, CharCodec  # noqa: E402
from seqstudio_text.codec import EOS  # noqa: E402
from seqstudio_text.document import Document  # noqa: E402
from seqstudio_text.domain import TextDomain  # noqa: E402

TUNE = "X:1\nT:Scale\nM:4/4\nL:1/4\nK:C\nCDEF | GABc |]\n"  # a known tune: the C major scale in quarters
CORPUS = [
    "The quick brown fox\njumps over the lazy dog.\n\nA second paragraph, with commas; and more.\n",
    "Lines of text\nwith  double spaces\tand tabs\n",
    "Ünïcödé is text too: café, naïve, 音楽.\n",
]
FAST = ["--set", "train.workers=1", "--set", "train.valid_every=2", "--set", "train.samples=2", "--batch-size", "4",
        "--quiet"]


@pytest.fixture(scope="session")
def text_folder(tmp_path_factory):
    """Twelve small UTF-8 text files with lines and paragraphs."""
    folder = tmp_path_factory.mktemp("texts") / "texts"
    folder.mkdir()
    for i in range(12):
        lines = [f"line {j} of file {i}: {'abcdefghij'[j % 10] * (j % 7 + 1)} {CORPUS[j % 3].split()[0]}"
                 for j in range(6 + i % 4)]
        (folder / f"doc{i:02d}.txt").write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")
    return folder


@pytest.fixture(scope="session")
def essen_abc(tmp_path_factory):
    """Twenty Essen tunes built by the real essen-folk-abc recipe."""
    dest = tmp_path_factory.mktemp("essen") / "essen"
    result = invoke("data", "build", "essen-folk-abc", dest, "--limit", 20, "--quiet", "--workers", 1)
    assert result.exit_code == 0, result.output
    return dest


@pytest.fixture(scope="session")
def abc_run(essen_abc, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("textruns") / "vrnn"
    result = invoke("train", essen_abc, "--backend", "vrnn", "--run-dir", run_dir, "--max-steps", 3, "--seed", 0,
                    *tiny_backend_args("vrnn"), *FAST)
    assert result.exit_code == 0, result.output
    return run_dir


# -- codecs ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec_cls", [CharCodec, BPECodec], ids=["char", "bpe"])
def test_tokenizer_round_trip_is_exact(codec_cls):
    codec = codec_cls()
    codec.fit([Document(t) for t in CORPUS])
    for text in [*CORPUS, "".join(CORPUS), "", "\n\n\n", "  leading and trailing  \n"]:
        x = codec.encode(text)
        assert x.shape == (len(codec.encode_text(text)), 1)
        assert EOS not in x[:, 0].tolist()  # <eos> only ever ends a training window
        assert codec.decode(x) == text
    assert codec.decode(torch.cat([codec.encode("fox"), torch.zeros(1, 1), codec.encode("dog")])) == "fox"


def test_char_codec_maps_unknown_characters_to_unk():
    codec = CharCodec()
    codec.fit([Document(t) for t in CORPUS])
    assert "Z" not in codec.chars and "€" not in codec.chars
    assert codec.decode(codec.encode("Zebra fox€")) == f"{UNK_TEXT}ebra fox{UNK_TEXT}"


def test_char_codec_min_count_and_unfitted_errors():
    codec = make_codec(TextDomain(), "char", {"min_count": 2})
    with pytest.raises(ConfigError, match="no vocabulary"):
        _ = codec.spec
    codec.fit([Document("aab")])
    assert codec.chars == ["a"] and codec.decode(codec.encode("ab")) == "a" + UNK_TEXT


def test_bpe_encodes_unseen_characters_and_state_survives_json():
    codec = make_codec(TextDomain(), "bpe", {"vocab_size": 300})
    codec.fit([Document(t * 5) for t in CORPUS])
    text = "Never seen: ∮ 🎵 Ωmega\n"
    assert codec.decode(codec.encode(text)) == text  # byte-level: no unknown token at all
    assert codec.vocab_size <= 301 and len(codec.encode(CORPUS[0])) < len(CORPUS[0])  # merges learned
    restored = make_codec(TextDomain(), "bpe", {"vocab_size": 300})
    restored.load_state_dict(json.loads(json.dumps(codec.state_dict())))
    assert restored.vocab_size == codec.vocab_size
    assert torch.equal(restored.encode("".join(CORPUS)), codec.encode("".join(CORPUS)))
    assert restored.decode(codec.encode(text)) == text


def test_windows_start_on_line_and_paragraph_boundaries():
    codec = make_codec(TextDomain(), "char", {"window": 60, "min_length": 1})
    text = "".join(f"line number {i}\n" + ("\n" if i % 3 == 2 else "") for i in range(12))
    codec.fit([Document(text)])
    windows = codec.windows(codec.encode(text))
    assert all(w.shape[0] <= 60 for w in windows) and len(windows) > 3
    pieces = [codec.decode_ids([int(v) for v in w[:, 0]]) for w in windows]
    assert [int(w[-1, 0]) for w in windows].count(EOS) == 1 and int(windows[-1][-1, 0]) == EOS
    assert "".join(pieces) == text  # nothing lost, nothing repeated
    assert all(p.startswith("line number") for p in pieces)  # every window starts a line
    # paragraph starts win over later line starts that would still fit (line 4 and line 7 would)
    assert pieces[1].startswith("line number 3") and pieces[2].startswith("line number 6")
    whole = make_codec(TextDomain(), "char", {"window": 0})
    whole.fit([Document(text)])
    assert [w.shape[0] for w in whole.windows(whole.encode(text))] == [len(text) + 1]


def test_abc_windows_carry_the_tune_header():
    header = "X:1\nM:4/4\nL:1/8\nK:G\n"
    tune = header + "".join(f"abcd efg {i} |\n" for i in range(10))
    codec = make_codec(TextDomain(), "char", {"window": 60, "min_length": 1})
    codec.fit([Document(tune, "abc")])
    windows = codec.windows(codec.encode(tune))
    assert len(windows) > 2 and all(w.shape[0] <= 60 for w in windows)
    texts = [codec.decode_ids(w[:, 0].long().tolist()) for w in windows]
    assert all(t.startswith(header) for t in texts)  # a piece of the body still starts like a tune
    assert texts[0] + "".join(t[len(header):] for t in texts[1:]) == tune
    plain = make_codec(TextDomain(), "char", {"window": 60, "min_length": 1})
    plain.fit([Document(tune, "text")])  # the same text, not as ABC: nothing carried
    assert "".join(plain.decode_ids(w[:, 0].long().tolist()) for w in plain.windows(plain.encode(tune))) == tune


# -- ABC ----------------------------------------------------------------------------------------------------------
def test_cutting_a_big_abc_book_is_linear():
    """16,000 tunes in one document: finding each tune's header used to scan every later line per tune
    (about 100 s); now one pass. Run in a subprocess so a regression fails by timeout instead of hanging."""
    code = ("from seqstudio_text.windows import plan_windows\n"
            "tunes = [f'X:{i}\\nM:4/4\\nL:1/8\\nK:G\\n' + 'abcd efga | bcde fgab |\\n' * (2 + i % 9)"
            " for i in range(16000)]\n"
            "spans = plan_windows(list('\\n'.join(tunes)), 128, abc=True)\n"
            "print(len(spans), sum(1 for s in spans if s[2] is not None))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    spans, with_header = map(int, out.stdout.split())
    assert spans > 16000 and with_header > 0  # the long tunes are cut, and their pieces carry the header


def test_clean_abc_keeps_header_fields_and_body_only():
    book = ("% a book header\nZ:someone\n\nX:7\nT:Title\nN:note\nO:Europe\nM: 3/4\nL:1/8\nR:waltz\nK:G\n"
            "ABc | d2 % a comment\nw: some lyrics\nM:2/4\nAB |]\n\n%%directive\nX:8\nT:no key, so no tune\nABC\n")
    assert clean_abc(book) == "X:1\nM:3/4\nL:1/8\nK:G\nABc | d2\nM:2/4\nAB |]\n"
    assert clean_abc("hello\nworld\n") == ""


def test_abc_validity_and_metrics():
    domain = TextDomain()
    good = domain.metrics(Document(clean_abc(TUNE), "abc"))
    assert good["abc_valid"] == 1.0 and good["abc_notes"] == 8 and good["abc_pitch_range"] == 12
    bad = domain.metrics(Document("X:1\nM:4/4\nL:1/0\nK:C\nCDEF\n", "abc"))
    assert bad["abc_valid"] == 0.0 and math.isnan(bad["abc_notes"])
    assert check_abc("X:1\nM:4/4\nL:1/4\nK:C\n[[[\n").valid is False
    assert "abc_valid" not in domain.metrics(Document("plain text\n"))


def test_abc_check_gives_up_on_input_music21_would_grind_on():
    # A generator can write a note thousands of units long; music21 then spends minutes re-barring the tune.
    slow = "X:1\nM:3/4\nL:1/8\nK:Am\nM/C:54'K(3_ g5b]bMG-X:7~X\nc(G.E}^38G_0)-<g8316:DX8AF.'~K{<A-4^|.)~Ef9z|Xc\n"
    check = check_abc(slow, timeout=0.5)
    assert not check.valid and "out of bounds" in check.reason  # refused before music21 sees it
    long = "X:1\nM:4/4\nL:1/8\nK:C\n" + "CDEF GABc|" * 1000 + "\n"  # within bounds, but slow
    check = check_abc(long, timeout=0.5)
    assert not check.valid and "did not finish" in check.reason
    assert check_abc(clean_abc(TUNE), timeout=0.5).valid


def test_convert_abc_to_midi_on_a_known_tune(tmp_path):
    src = tmp_path / "scale.abc"
    src.write_text(TUNE)
    result = invoke("convert", src, tmp_path / "out" / "scale.mid")
    assert result.exit_code == 0, result.output
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "out" / "scale.mid"))
    notes = sorted((n for i in pm.instruments for n in i.notes), key=lambda n: n.start)
    assert [n.pitch for n in notes] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert notes[1].start - notes[0].start == pytest.approx(notes[2].start - notes[1].start)


def test_convert_a_corpus_tune_and_refusals(tmp_path):
    from seqstudio_midi.recipe_sources import music21_corpus_dir, split_abc_book

    tunes = split_abc_book(music21_corpus_dir() / "essenFolksong" / "han1.abc", tmp_path)
    result = invoke("convert", tunes[0], tmp_path / "han.mid")  # .abc is read by midi too: text converts it
    assert result.exit_code == 0, result.output
    assert sum(len(i.notes) for i in pretty_midi.PrettyMIDI(str(tmp_path / "han.mid")).instruments) > 10
    assert_clean_error(invoke("convert", tunes[0], tmp_path / "han.wav"), "no installed domain converts .abc",
                       "midi", "text")
    broken = tmp_path / "broken.abc"
    broken.write_text("X:1\nM:4/4\nL:1/0\nK:C\nCDEF\n")
    assert_clean_error(invoke("convert", broken, tmp_path / "b.mid", "--domain", "text"), "broken.abc",
                       "not valid ABC")
    assert_clean_error(invoke("convert", broken, tmp_path / "b.mid", "--domain", "midi"), "cannot convert")


def test_transpose_is_not_a_text_codec_option(text_folder, tmp_path):
    assert_clean_error(invoke("train", text_folder, "--run-dir", tmp_path / "run", "--set", "codec.transpose=5"),
                       "unknown codec option 'transpose'", "valid options", "window", "min_count")


# -- training, generation, evaluation ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", registry.names("backend"))
def test_every_backend_trains_on_a_text_folder(backend, text_folder, tmp_path):
    run_dir = tmp_path / "run"
    result = invoke("train", text_folder, "--backend", backend, "--run-dir", run_dir, "--max-steps", 4,
                    *tiny_backend_args(backend), *FAST)
    assert result.exit_code == 0, result.output
    records = read_metrics(run_dir)
    assert records and all(math.isfinite(v) for r in records for k, v in r.items() if isinstance(v, float))
    spec = seqstudio.load(run_dir).spec
    assert spec.domain == "text" and spec.codec_name == "char"
    samples = sorted((run_dir / "samples").glob("sample-*.txt"))
    assert len(samples) == 2 and all(isinstance(p.read_text(encoding="utf-8"), str) for p in samples)


def test_bpe_run_directory_is_self_contained(text_folder, tmp_path):
    run_dir = tmp_path / "bpe"
    result = invoke("train", text_folder, "--codec", "bpe", "--set", "codec.vocab_size=280", "--backend", "rnn",
                    "--run-dir", run_dir, "--max-steps", 2, *tiny_backend_args("rnn"), *FAST)
    assert result.exit_code == 0, result.output
    assert "tokenizer" in json.loads((run_dir / "codec.json").read_text())
    run = seqstudio.load(run_dir)
    text = (text_folder / "doc03.txt").read_text()
    assert run.codec.decode(seqstudio.encode_file(run, text_folder / "doc03.txt")) == text
    assert run.codec.spec.parts[0].size == run.codec.vocab_size


def test_essen_recipe_trains_text_without_domain_flag(essen_abc, abc_run, tmp_path):
    assert len(list(essen_abc.glob("*.abc"))) == 20
    tune = sorted(essen_abc.glob("*.abc"))[0].read_text()
    assert tune.startswith("X:1\nM:") and "T:" not in tune and "\nK:" in tune
    run = seqstudio.load(abc_run)
    assert run.spec.domain == "text" and run.codec.format == "abc"
    # the training-time samples too: each tune's header drawn from the training tunes, said in conditions.json
    assert sorted(p.name for p in (abc_run / "samples").iterdir() if p.suffix != ".abc") == ["conditions.json"]
    assert sorted(p.suffix for p in (abc_run / "samples").iterdir() if p.suffix != ".json") == [".abc", ".abc"]
    samples = seqstudio.generate(run, n=3, seed=0, length=20)
    assert all(isinstance(s, Document) and s.format == "abc" for s in samples)
    result = invoke("evaluate", abc_run, "--samples", 4)
    assert result.exit_code == 0, result.output
    assert "abc_valid" in result.output


def test_generate_continues_a_prime(abc_run, essen_abc, tmp_path):
    prime = tmp_path / "prime.abc"
    prime.write_text("X:1\nT:to be dropped\nM:2/4\nL:1/8\nK:G\nGABc |")
    result = invoke("generate", abc_run, "-n", 2, "--length", 15, "--prime", prime, "-o", tmp_path / "out",
                    "--seed", 1)
    assert result.exit_code == 0, result.output
    outputs = sorted((tmp_path / "out").glob("primed-*"))
    assert [p.suffix for p in outputs] == [".abc", ".abc"]  # a run trained on tunes writes tunes
    for path in outputs:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("X:1\nM:2/4\nL:1/8\nK:G\nGABc |\n")  # the cleaned prime, then the continuation
        assert len(text) <= len("X:1\nM:2/4\nL:1/8\nK:G\nGABc |\n") + 15


# -- bad input ----------------------------------------------------------------------------------------------------
def test_read_refuses_binary_non_utf8_and_empty_files(tmp_path):
    domain = TextDomain()
    cases = {"binary.txt": (b"PK\x03\x04\x00\x00binary", "binary file"),
             "latin1.txt": ("café".encode("latin-1"), "not UTF-8"),
             "blank.txt": (b"  \n\n", "empty"),
             "notune.abc": (b"just words\n", "no ABC tune")}
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=message) as info:
            domain.read(tmp_path / name)
        assert name in str(info.value)
    (tmp_path / "crlf.txt").write_bytes("\ufeffone\r\ntwo\r\n".encode("utf-8"))
    assert domain.read(tmp_path / "crlf.txt") == "one\ntwo\n"


def test_bad_files_are_skipped_with_a_warning(text_folder, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(text_folder, data)
    (data / "binary.txt").write_bytes(bytes(range(256)))
    (data / "latin1.txt").write_bytes("naïve".encode("latin-1") * 20)
    result = invoke("train", data, "--backend", "vrnn", "--run-dir", tmp_path / "run", "--max-steps", 1,
                    "--set", "train.valid_fraction=0", "--set", "train.test_fraction=0",
                    *tiny_backend_args("vrnn"), *FAST)
    assert result.exit_code == 0, result.output
    assert "binary.txt" in result.stderr and "latin1.txt" in result.stderr and "warning" in result.stderr


def test_unusable_or_empty_folders_give_one_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(invoke("train", empty, "--domain", "text"), "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.txt").write_bytes(b"\x00\x01\x02")
    (bad / "b.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    assert_clean_error(invoke("train", bad, "--max-steps", 1, *FAST), "could be read")
    assert_clean_error(invoke("convert", bad / "a.txt", tmp_path / "a.mid"), "a.txt", "binary")


def test_abc_validity_bench_script(abc_run, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "abc_validity.py"
    spec = importlib.util.spec_from_file_location("abc_validity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.abc_validity(abc_run, n=3, length=30, out=tmp_path / "tunes")
    assert report["tunes"] == 3 and 0.0 <= report["share_valid"] <= 1.0
    assert len(list((tmp_path / "tunes").glob("*.abc"))) == 3
    assert len(list((tmp_path / "tunes").glob("*.mid"))) == report["valid"]


def test_text_midi_bytes_of_a_valid_tune_read_back():
    from seqstudio_text.abc import abc_to_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(abc_to_midi(clean_abc(TUNE))))
    assert len(pm.instruments[0].notes) == 8
