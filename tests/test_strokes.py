"""The pen-strokes domain end to end: KanjiVG files through the recipe, the stroke-5 codec, every backend, the
files generate writes, `seqstudio render`, and clear errors for files the domain cannot read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from seqstudio import registry
from seqstudio.data import make_codec

from conftest import invoke, tiny_backend_args

strokes = pytest.importorskip("seqstudio_strokes")
from seqstudio_strokes import Ink, formats  # noqa: E402
from seqstudio_strokes.codec import END, PEN_UP  # noqa: E402

def tiny(backend: str) -> list[str]:
    """The backend at its own tiny_config, short windows: fast, full code paths."""
    return ["--backend", backend, *tiny_backend_args(backend), "--batch-size", "8", "--quiet",
            "--set", "codec.window=80", "--set", "train.valid_every=3", "--set", "train.samples=2"]


@pytest.fixture(scope="session")
def kanji(tmp_path_factory) -> Path:
    """Twelve KanjiVG characters as SVG files, built through the real recipe from the installed package."""
    dest = tmp_path_factory.mktemp("kanji") / "kanji"
    result = invoke("data", "build", "kanjivg", dest, "--limit", "12", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list(dest.glob("*.svg"))) == 12
    return dest


def _codec(samples, **config):
    codec = make_codec(registry.load_domain("strokes")(), "stroke5", config)
    codec.fit(samples)
    return codec


def _max_distance_to_polyline(points: np.ndarray, line: np.ndarray) -> float:
    """Largest distance from any of ``points`` to the polyline ``line``."""
    worst = 0.0
    for p in points:
        if len(line) == 1:
            worst = max(worst, float(np.hypot(*(p - line[0]))))
            continue
        a, b = line[:-1], line[1:]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
        nearest = a + t[:, None] * ab
        worst = max(worst, float(np.hypot(*(p - nearest).T).min()))
    return worst


def test_recipe_writes_svgs_the_domain_claims(kanji):
    assert registry.domain_for_path(kanji) == "strokes"
    assert json.loads(json.dumps(__import__("yaml").safe_load((kanji / "seqstudio.yaml").read_text())))["domain"] \
        == "strokes"
    ink = registry.load_domain("strokes")().read(sorted(kanji.glob("*.svg"))[0])
    assert ink.strokes and ink.num_points > 10


@pytest.mark.parametrize("tolerance", [0.0, 1.0, 3.0])
def test_codec_round_trip_keeps_points_within_the_simplification_tolerance(kanji, tolerance):
    domain = registry.load_domain("strokes")()
    inks = [domain.read(f) for f in sorted(kanji.glob("*.svg"))]
    codec = _codec(inks, simplify=tolerance)
    for ink in inks:
        x = codec.encode(ink)
        assert x.shape[1] == 3 and int(x[-1, 2]) == END
        assert int((x[:, 2] == PEN_UP).sum()) == len(ink.strokes) - 1
        back = codec.decode(x)
        assert len(back.strokes) == len(ink.strokes)
        for original, decoded in zip(ink.strokes, back.strokes):
            assert np.allclose(decoded[0], original[0], atol=1e-3) and np.allclose(decoded[-1], original[-1], atol=1e-3)
            assert _max_distance_to_polyline(original, decoded) <= tolerance + 1e-3
        if tolerance:
            assert x.shape[0] < ink.num_points  # simplification did something


def test_codec_state_survives_a_json_round_trip_and_decode_stops_at_the_end_token(kanji):
    inks = [registry.load_domain("strokes")().read(f) for f in sorted(kanji.glob("*.svg"))]
    codec = _codec(inks)
    again = make_codec(registry.load_domain("strokes")(), "stroke5")
    again.load_state_dict(json.loads(json.dumps(codec.state_dict())))
    x = codec.encode(inks[0])
    assert torch.equal(again.encode(inks[0]), x)
    padded = torch.cat([x, torch.ones(5, 3)], 0)  # steps after the end token are ignored
    assert again.decode(padded).num_points == again.decode(x).num_points


def test_a_prime_ends_in_a_pen_lift_so_generate_prime_keeps_its_continuation(kanji, tmp_path):
    """The encoding's end-of-drawing mark is for training; a prime must not carry it, or the model starts from
    a state it never saw followed and ``decode`` stops at the mark, dropping everything generated after it."""
    domain = registry.load_domain("strokes")()
    files = sorted(kanji.glob("*.svg"))
    codec = _codec([domain.read(f) for f in files])
    x = codec.encode(domain.read(files[0]))
    primed = codec.without_end(x)
    assert int(x[-1, 2]) == END and int(primed[-1, 2]) == PEN_UP
    assert torch.equal(primed[:-1], x[:-1]) and torch.equal(primed[-1, :2], x[-1, :2])
    assert torch.equal(codec.without_end(primed), primed)
    run = tmp_path / "run"
    assert invoke("train", kanji, "--run-dir", run, "--max-steps", "2", "--seed", "0", *tiny("rnn")).exit_code == 0
    out = tmp_path / "out"
    result = invoke("generate", run, "-n", "2", "-o", out, "--seed", "1", "--length", "30", "--prime", files[0])
    assert result.exit_code == 0, result.output
    prime_points = codec.decode(x).num_points
    svgs = sorted(out.glob("primed-[0-9]*.svg"))
    assert len(svgs) == 2, sorted(p.name for p in out.iterdir())
    for svg in svgs:
        assert domain.read(svg).num_points > prime_points  # the prime and at least one generated point


def test_long_drawings_are_cut_at_pen_lifts_without_losing_points(kanji):
    inks = [registry.load_domain("strokes")().read(f) for f in sorted(kanji.glob("*.svg"))]
    codec = _codec(inks, window=10, simplify=0.5)
    x = codec.encode(max(inks, key=lambda ink: ink.num_points))
    pieces = codec.windows(x)
    assert len(pieces) > 1 and all(p.shape[0] <= 10 for p in pieces)
    assert sum(p.shape[0] for p in pieces) == x.shape[0]
    assert all(int(p[-1, 2]) >= PEN_UP for p in pieces[:-1] if p.shape[0] < 10)


def test_augmentation_drops_only_interior_points_and_keeps_the_strokes(kanji):
    inks = [registry.load_domain("strokes")().read(f) for f in sorted(kanji.glob("*.svg"))]
    codec = _codec(inks, drop_points=0.5, scale_jitter=0.0)
    x = codec.encode(inks[0])
    y = codec.augment(x, torch.Generator().manual_seed(0))
    assert y.shape[0] < x.shape[0]
    assert torch.equal(y[:, 2][y[:, 2] > 0], x[:, 2][x[:, 2] > 0])  # every pen lift and the end survive
    # Points that were kept are exactly where they were.
    assert torch.allclose(torch.cumsum(y[:, :2], 0)[-1], torch.cumsum(x[:, :2], 0)[-1], atol=1e-4)


def test_transpose_is_not_a_stroke_codec_option(kanji, tmp_path):
    from test_errors import assert_clean_error

    assert_clean_error(invoke("train", kanji, "--run-dir", tmp_path / "run", "--set", "codec.transpose=5"),
                       "unknown codec option 'transpose'", "valid options", "scale_jitter")


@pytest.mark.parametrize("backend", registry.names("backend"))
def test_every_backend_trains_on_kanji_and_writes_drawings(kanji, backend, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", kanji, "--run-dir", run, "--max-steps", "4", "--seed", "0", *tiny(backend))
    assert result.exit_code == 0, result.output
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(v) for m in metrics for v in m.values() if isinstance(v, float))
    out = tmp_path / "out"
    result = invoke("generate", run, "-n", "3", "-o", out, "--seed", "1", "--bias", "1.0", "--length", "40")
    assert result.exit_code == 0, result.output
    svgs = sorted(out.glob("sample-[0-9]*.svg"))
    assert len(svgs) == 3 and len(list(out.glob("sample-[0-9]*.png"))) == 3
    assert (out / "sample-sheet.svg").is_file() and (out / "sample-sheet.png").is_file()
    assert len(formats.read_npz(out / "sample-sheet.npz")["train"]) == 3  # every sample, as sketch-rnn stroke-3
    for svg in svgs:  # what we write, we can read back
        registry.load_domain("strokes")().read(svg)


def test_vrnn_evaluate_reports_likelihood_per_point(kanji, tmp_path):
    run = tmp_path / "run"
    assert invoke("train", kanji, "--run-dir", run, "--max-steps", "3", *tiny("vrnn")).exit_code == 0
    result = invoke("evaluate", run, "--split", "train", "--json", "--iw-samples", "3")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert np.isfinite(report["nll"]) and report["iwae"] >= report["elbo"] - 1e-3


def test_render_draws_a_file_and_a_sheet_of_a_many_drawing_file(kanji, tmp_path):
    svg = sorted(kanji.glob("*.svg"))[0]
    result = invoke("render", svg, "-o", tmp_path / "one.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "one.png").stat().st_size > 1000
    inks = [Ink([np.cumsum(np.random.default_rng(i).normal(size=(20, 2)), 0)]) for i in range(5)]
    formats.write_npz({"train": inks[:3], "valid": inks[3:4], "test": inks[4:]}, tmp_path / "cat.npz")
    result = invoke("render", tmp_path / "cat.npz", "-o", tmp_path / "cat.png", "--limit", "4")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cat.png").is_file() and (tmp_path / "cat.svg").is_file()


def test_a_quickdraw_npz_folder_trains_on_its_own_split(tmp_path):
    rng = np.random.default_rng(0)

    def drawing(n):
        return Ink([np.cumsum(rng.normal(size=(n, 2)) * 5, 0), np.cumsum(rng.normal(size=(n, 2)) * 5, 0) + 40])

    data = tmp_path / "qd"
    data.mkdir()
    formats.write_npz({"train": [drawing(12) for _ in range(10)], "valid": [drawing(12) for _ in range(3)],
                       "test": [drawing(12) for _ in range(2)]}, data / "cat.npz")
    run = tmp_path / "run"
    result = invoke("train", data, "--run-dir", run, "--max-steps", "2", *tiny("vrnn"))
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", run, "--split", "test", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["windows"] == 2  # exactly the file's own test array


def test_iam_xml_goes_to_strokes_and_musicxml_to_midi(tmp_path):
    iam = tmp_path / "a01-000u-01.xml"
    iam.write_text('<?xml version="1.0"?><WhiteboardCaptureSession><StrokeSet>'
                   '<Stroke start_time="0" end_time="1"><Point x="10" y="20" time="0"/><Point x="15" y="22" time="0.1"/>'
                   '<Point x="20" y="25" time="0.2"/></Stroke></StrokeSet></WhiteboardCaptureSession>')
    assert registry.domain_for_path(iam) == "strokes"
    assert not registry.load_domain("midi")().accepts(iam)
    score = tmp_path / "score.xml"
    score.write_text('<?xml version="1.0"?><!DOCTYPE score-partwise><score-partwise version="3.1"></score-partwise>')
    assert registry.domain_for_path(score) == "midi"
    assert not registry.load_domain("strokes")().accepts(score)


def test_broken_stroke_files_are_skipped_with_a_warning_and_all_broken_is_one_error(kanji, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(kanji, data)
    (data / "broken.svg").write_text("<svg><path d='M 1 2 L")
    (data / "empty.inkml").write_text("")
    result = invoke("train", data, "--run-dir", tmp_path / "run", "--max-steps", "1", "--set",
                    "train.test_fraction=0", *[a for a in tiny("seqvae") if a != "--quiet"])
    assert result.exit_code == 0, result.output
    assert "broken.svg" in result.output and "empty.inkml" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.svg").write_text("not xml at all")
    (bad / "b.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    result = invoke("train", bad, "--run-dir", tmp_path / "run2", "--max-steps", "1", "--quiet")
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1].startswith("Error:") and "Traceback" not in result.output
    result = invoke("render", bad / "a.svg", "-o", tmp_path / "x.png")
    assert result.exit_code != 0 and "a.svg" in result.output and "Traceback" not in result.output
