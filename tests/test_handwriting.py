"""Handwriting from text (issue 14): the text condition on the conditioning seam, Graves' window under rnn and
vrnn, generate --text / --style, plotter SVGs, and the iam-ondb recipe on files in IAM-OnDB's own format."""

from __future__ import annotations

import dataclasses
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import yaml

from conftest import invoke, read_metrics, tiny_backend_args
from test_errors import assert_clean_error

pytest.importorskip("seqstudio_strokes")
from seqstudio import api, registry, text_condition  # noqa: E402
from seqstudio.api import text_lines as text_generate  # noqa: E402
from seqstudio.backends.autoregressive import shift_right  # noqa: E402
from seqstudio.backends.base import SamplingOptions  # noqa: E402
from seqstudio_strokes import hershey  # noqa: E402
from seqstudio_strokes.domain import StrokesDomain  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
COMMON = ["--set", "train.workers=1", "--set", "train.threads=1", "--set", "train.valid_every=5",
          "--set", "train.samples=0", "--batch-size", "4", "--quiet"]
TEXT_BACKENDS = [n for n in registry.names("backend") if registry.load_backend(n).accepts_text]
OTHER_BACKENDS = [n for n in registry.names("backend") if not registry.load_backend(n).accepts_text]


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> Path:
    """Short Hershey lines (4-10 characters): 8 in all (--limit), 6 of them in train."""
    root = tmp_path_factory.mktemp("hw")
    recipe = yaml.safe_load((Path(hershey.__file__).parent / "data_recipes/hershey-script.yaml").read_text())
    recipe["name"] = "hershey-tiny"
    recipe["source"].update(min_chars=4, max_chars=10)
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = invoke("data", "build", path, root / "lines", "--limit", "8", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list((root / "lines").rglob("*.svg"))) == 8 and len(list((root / "lines/train").glob("*.svg"))) == 6
    return root / "lines"


def _train(data, run, backend="rnn", steps=3, *extra):
    return invoke("train", data, "--backend", backend, "--run-dir", run, "--max-steps", steps,
                  *tiny_backend_args(backend), *COMMON, *extra)


@pytest.fixture(scope="module")
def text_run(lines, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("hwrun") / "rnn"
    result = _train(lines, run, "rnn", 40, "--lr", "0.01")
    assert result.exit_code == 0, result.output
    return run


def _texts(data: Path, split: str) -> list[str]:
    domain = StrokesDomain()
    return [domain.read(p).label for p in sorted((data / split).glob("*.svg"))]


# -- the condition on the seam -----------------------------------------------------------------------------------------
def test_text_is_on_by_default_stored_in_the_run_and_listed_by_info(text_run, lines):
    state = json.loads((text_run / "codec.json").read_text())
    spec = text_condition.TextSpec.from_dict(state["_text"])
    assert spec.attribute == "text" and set("".join(_texts(lines, "train"))) == set(spec.alphabet)
    assert "_conditions" not in state  # a transcription is not a class
    info = json.loads(invoke("info", text_run, "--json").output)
    assert info["text"]["alphabet"] == spec.alphabet
    assert "text: text" in invoke("info", text_run).output
    assert all(math.isfinite(r["nll"]) for r in read_metrics(text_run))


def test_text_batches_are_whole_lines_and_longer_lines_are_left_out_with_a_warning(lines, tmp_path, caplog):
    spec = api.resolve_config(lines, "rnn", None, None, None, ["train.workers=1", "codec.window=10000"], {})
    from seqstudio import data

    train = data.prepare(spec, progress=False).windows["train"]
    assert train.texts is not None and len(train) == 6  # one window per line, each with its text
    batch = data.make_batch(train, torch.arange(3), torch.device("cpu"))
    assert batch["text"].shape == batch["text_mask"].shape and batch["text"].dtype == torch.long
    assert torch.equal(batch["text_mask"], batch["text"] > 0)
    assert batch["mask"].sum(1).tolist() == train.lengths[:3].tolist()  # whole lines, never cut
    limit = int(train.lengths.float().median())
    spec = api.resolve_config(lines, "rnn", None, None, None, ["train.workers=1", f"codec.window={limit}"], {})
    with caplog.at_level("WARNING", logger="seqstudio"):
        train = data.prepare(spec, progress=False).windows["train"]
    assert len(train) < 6 and (train.lengths <= limit).all()
    assert any("left out" in r.getMessage() and "line-length limit" in r.getMessage() for r in caplog.records)


def test_train_text_none_turns_it_off(lines, tmp_path):
    run = tmp_path / "off"
    assert _train(lines, run, "rnn", 2, "--set", "train.text=none").exit_code == 0
    assert "_text" not in json.loads((run / "codec.json").read_text())
    assert_clean_error(invoke("generate", run, "--text", "abc", "-o", tmp_path / "g"), "without a text condition")


# -- backends ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", TEXT_BACKENDS)
def test_every_text_backend_trains_on_text_conditioned_strokes_without_nan(backend, lines, tmp_path):
    run = tmp_path / backend
    result = _train(lines, run, backend, 3)
    assert result.exit_code == 0, result.output
    assert "_text" in json.loads((run / "codec.json").read_text())
    records = [r for r in read_metrics(run) if "nll" in r]
    assert records and all(math.isfinite(r["nll"]) for r in records)
    out = tmp_path / f"{backend}-gen"
    result = invoke("generate", run, "--text", "ab", "--length", 30, "--seed", 0, "-o", out)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("line-000_*.svg"))) == 1


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_backends_without_a_sequence_condition_refuse_it_clearly(backend, lines, tmp_path):
    assert_clean_error(_train(lines, tmp_path / "asked", backend, 1, "--set", "train.text=text"),
                       "cannot take a sequence condition", "train.text=none")
    run = tmp_path / "auto"  # under auto they train without it, as with the categorical conditions
    assert _train(lines, run, backend, 1).exit_code == 0
    assert "_text" not in json.loads((run / "codec.json").read_text())


def _stepwise(model, x, options):
    state, pending = model.start(x.shape[0], None, options, None)
    params = []
    for t in range(x.shape[1]):
        p, state = model.step(state, pending, options, None)
        params.append(p)
        pending = model.spec.to_features(x[:, t])
    return torch.stack(params, dim=1)


SPEC_TEXT = text_condition.TextSpec("text", "abc ", (4, 3, 2, 1), mixtures=3, chars_per_step=0.3)


def test_text_rnn_sampling_step_is_its_training_transition():
    from test_backends import SPEC, _sequences

    cls = registry.load_backend("rnn")
    torch.manual_seed(0)
    model = cls(SPEC, cls.tiny_config(), text=SPEC_TEXT).eval()
    x = _sequences()
    text = SPEC_TEXT.tensor(["abc", "a b", "cc"])
    with torch.no_grad():
        trained = model.teacher_forced(x, None, text)
        stepped = _stepwise(model, x, SamplingOptions(text=text))
    torch.testing.assert_close(stepped, trained, atol=1e-5, rtol=1e-5)


def test_text_vrnn_sampling_step_is_its_training_transition(monkeypatch):
    """Given the posterior's z_t, the VRNN's sampling step (window, recurrence, prior input, decoder) gives the
    training pass's head parameters: the prior, posterior and decoder all see the window."""
    from test_backends import SPEC, _sequences

    cls = registry.load_backend("vrnn")
    torch.manual_seed(0)
    model = cls(SPEC, cls.tiny_config(), text=SPEC_TEXT).eval()
    x = _sequences()
    text = SPEC_TEXT.tensor(["abc", "a b", "cc"])
    with torch.no_grad():
        eps = torch.randn(x.shape[1], x.shape[0], model.config.latent_size)
        _, _, (out, _, _), trained = model._terms(x, torch.ones(x.shape[:2]), eps=eps, text=text)
        posterior = list(out["z"].unbind(1))
        monkeypatch.setattr(model, "draw_latent", lambda h, options, generator: posterior.pop(0))
        stepped = _stepwise(model, x, SamplingOptions(text=text))
    torch.testing.assert_close(stepped, trained, atol=1e-5, rtol=1e-5)


# -- the window on a trained model -------------------------------------------------------------------------------------
def test_window_positions_are_monotone_and_reach_the_end_on_a_tiny_trained_model(text_run, lines):
    run = api.load(text_run)
    domain = StrokesDomain()
    for path in sorted((lines / "train").glob("*.svg"))[:3]:
        ink = domain.read(path)
        kappa, phi = text_generate.window_trace(run, run.codec.encode(ink), ink.label)
        assert (kappa[1:] >= kappa[:-1]).all()  # positions only move forward
        assert kappa.shape[1] == run.backend.text_spec.mixtures and phi.shape[1] == len(ink.label) + 1
    # generation: every line's window passes its last character before the length limit (Graves' rule)
    spec = run.backend.text_spec
    texts = ["abc", spec.examples[0]]
    texts[0] = "".join(c for c in "the one" if c in spec.alphabet) or spec.alphabet[:3]
    limit = text_generate.default_length(spec, texts)
    options = SamplingOptions(length=limit, text=spec.tensor(texts))
    x, lengths = run.backend.sample_lines(2, options, torch.Generator().manual_seed(0))
    assert (lengths < limit).all(), (lengths, limit)
    assert x.shape[1] == int(lengths.max()) or x.shape[1] <= limit
    # with the pen: the same draws (same seed) go on to the first pen lift after the window's pass, or the cap
    wait = text_generate.default_wait(spec)
    x2, ended = run.backend.sample_lines(2, options, torch.Generator().manual_seed(0),
                                         segment_ends=run.codec.segment_ends, wait=wait)
    for i in range(2):
        g, e = int(lengths[i]), int(ended[i])
        assert torch.equal(x2[i, :g], x[i, :g]) and e >= g
        lifted = run.codec.segment_ends(x2[i, g - 1 : e])
        assert not lifted[:-1].any()  # no lift between the window's pass and the end of the line
        assert bool(lifted[-1]) or e == g + wait or e == limit, (g, e, lifted)


def test_sampling_waits_for_the_pen_to_lift_after_the_window_has_passed_the_end(monkeypatch):
    """The window is forced past the end from the first step; the pen stays down until a forced lift. Graves'
    rule alone stops mid-stroke at once (the bug: lines cut short); with the pen it stops at the lift, or at
    the wait cap for a pen that never lifts."""
    from seqstudio_strokes.codec import PEN_DOWN, PEN_UP, Stroke5Codec

    codec = Stroke5Codec()
    cls = registry.load_backend("rnn")
    torch.manual_seed(0)
    model = cls(codec.spec, cls.tiny_config(), text=SPEC_TEXT).eval()
    monkeypatch.setattr(model, "window_finished", lambda state: torch.ones(2, dtype=torch.bool))
    step = [0]

    def pen(params, temperature, generator, bias):  # row 0 lifts the pen after its 6th point, row 1 never
        x = torch.zeros(2, 3)
        x[:, 0] = 0.5
        x[:, 2] = PEN_DOWN
        if step[0] == 5:
            x[0, 2] = PEN_UP
        step[0] += 1
        return x

    monkeypatch.setattr(model.head, "sample", pen)
    options = SamplingOptions(length=40, text=SPEC_TEXT.tensor(["abc", "ab"]))
    _, graves = model.sample_lines(2, options)
    assert graves.tolist() == [1, 1]
    step[0] = 0
    x, lengths = model.sample_lines(2, options, segment_ends=codec.segment_ends, wait=12)
    assert lengths.tolist() == [6, 13]
    assert x[0, 5, 2] == PEN_UP and (x[1, :13, 2] == PEN_DOWN).all()
    step[0] = 0
    _, capped = model.sample_lines(2, dataclasses.replace(options, length=9), segment_ends=codec.segment_ends,
                                   wait=12)
    assert capped.tolist() == [6, 9]  # the line-length limit still holds


def test_an_end_mark_drawn_mid_line_does_not_cut_the_line(monkeypatch):
    """A trained model draws stroke-5's end-of-drawing state mid-line now and then; the window decides where a
    text line ends, so with the codec's ``without_end`` that draw is a pen lift: the line goes on to its end,
    and decoding keeps every point (without it, decoding stopped at the mark)."""
    from seqstudio_strokes.codec import END, PEN_DOWN, PEN_UP, Stroke5Codec

    codec = Stroke5Codec()
    codec.scale = 1.0
    cls = registry.load_backend("rnn")
    torch.manual_seed(0)
    model = cls(codec.spec, cls.tiny_config(), text=SPEC_TEXT).eval()
    step = [0]

    def pen(params, temperature, generator, bias):  # the end mark at the 3rd point, then the pen stays down
        x = torch.zeros(1, 3)
        x[:, 0] = 0.5
        x[:, 2] = END if step[0] == 2 else PEN_DOWN
        step[0] += 1
        return x

    monkeypatch.setattr(model.head, "sample", pen)
    options = SamplingOptions(length=12, text=SPEC_TEXT.tensor(["abc"]))
    x, lengths = model.sample_lines(1, options, segment_ends=codec.segment_ends, wait=30)
    assert codec.decode(x[0, : int(lengths[0])]).num_points == 3  # cut at the mark
    step[0] = 0
    x, lengths = model.sample_lines(1, options, segment_ends=codec.segment_ends, wait=30,
                                    without_end=codec.without_end)
    assert x[0, 2, 2] == PEN_UP and int(lengths[0]) == 12
    assert codec.decode(x[0, : int(lengths[0])]).num_points == 12


def test_text_runs_evaluate_with_the_importance_weighted_bound(lines, tmp_path):
    for backend in TEXT_BACKENDS:
        run = tmp_path / backend
        assert _train(lines, run, backend, 3).exit_code == 0
        result = invoke("evaluate", run, "--iw-samples", 3, "--json")
        assert result.exit_code == 0, result.output
        figures = json.loads(result.output)
        assert figures["text_conditioned"] == "text" and math.isfinite(figures["iwae"])
        if backend == "rnn":  # no latent: the bound is the exact likelihood
            assert figures["iwae"] == pytest.approx(figures["elbo"], abs=1e-4)
        else:
            assert figures["iwae"] >= figures["elbo_k"] - 1e-6


# -- generate --text ---------------------------------------------------------------------------------------------------
def test_characters_outside_the_alphabet_are_one_clear_error_listing_them(text_run, tmp_path):
    alphabet = text_condition.TextSpec.from_dict(json.loads((text_run / "codec.json").read_text())["_text"]).alphabet
    odd = "".join(c for c in "@~é" if c not in alphabet)
    result = invoke("generate", text_run, "--text", f"a{odd}", "-o", tmp_path / "g")
    assert_clean_error(result, "training alphabet", *[repr(c) for c in odd])
    assert not (tmp_path / "g").exists()
    assert_clean_error(invoke("generate", text_run, "--text", "a", "--style-text", "a", "-o", tmp_path / "g"),
                       "--style")


def test_the_svg_of_a_line_is_strict_xml_with_stroke_only_paths_in_mm(text_run, tmp_path):
    out = tmp_path / "g"
    word = text_condition.TextSpec.from_dict(json.loads((text_run / "codec.json").read_text())["_text"]).examples[0]
    result = invoke("generate", text_run, "--text", word, "--text", word[:3], "--seed", 1, "--height-mm", 12,
                    "-o", out)
    assert result.exit_code == 0, result.output
    svgs = sorted(out.glob("line-*.svg"))
    assert len(svgs) == 2 and len(list(out.glob("line-*.png"))) == 2
    assert {"lines.npz", "lines-sheet.svg", "lines-sheet.png"} <= {p.name for p in out.iterdir()}
    for svg in svgs + [out / "lines-sheet.svg"]:
        root = ET.parse(svg).getroot()  # a strict XML parser
        assert root.tag == f"{SVG}svg" and root.get("width").endswith("mm") and root.get("height").endswith("mm")
        paths = list(root.iter(f"{SVG}path"))
        assert paths and all(p.get("fill") == "none" and p.get("stroke") for p in paths)
        assert {e.tag for e in root.iter()} <= {f"{SVG}svg", f"{SVG}path", f"{SVG}title"}
    root = ET.parse(svgs[0]).getroot()
    assert abs(float(root.get("height")[:-2]) - 14.0) < 0.01  # 12 mm of writing + 1 mm margins
    assert root.find(f"{SVG}title").text == word
    ink = StrokesDomain().read(svgs[0])
    assert len(list(root.iter(f"{SVG}path"))) == len(ink.strokes)  # one path per pen stroke


def test_style_priming_changes_the_output_and_keeps_the_asked_text(text_run, lines, tmp_path):
    run = api.load(text_run)
    style = sorted((lines / "train").glob("*.svg"))[0]
    style_text = StrokesDomain().read(style).label
    text = run.backend.text_spec.examples[1]
    plain = text_generate.generate_lines(run, [text], seed=3)[0]
    primed = text_generate.generate_lines(run, [text], style=style, style_text=style_text, seed=3)[0]
    flat = lambda ink: torch.tensor([p for s in ink.strokes for p in s.tolist()])  # noqa: E731
    a, b = flat(plain), flat(primed)
    assert a.shape != b.shape or not torch.allclose(a, b)  # the prime changed the state
    out = tmp_path / "styled"
    result = invoke("generate", text_run, "--text", text, "--style", style, "--style-text", style_text,
                    "--seed", 3, "-o", out)
    assert result.exit_code == 0, result.output
    svg = next(out.glob("line-000_*.svg"))
    assert ET.parse(svg).getroot().find(f"{SVG}title").text == text  # the asked text, not the style's
    prime_points = sum(len(s) for s in StrokesDomain().read(style).strokes)
    assert StrokesDomain().read(svg).num_points != prime_points  # the new line only, without the prime
    # the same line as sketch-rnn stroke-3 (.npz, a many-drawing file): the same prime
    from seqstudio_strokes.formats import write_npz

    write_npz([StrokesDomain().read(style)], tmp_path / "style.npz")
    from_npz = text_generate.generate_lines(run, [text], style=tmp_path / "style.npz", style_text=style_text,
                                            seed=3)[0]
    assert from_npz.num_points > 0


# -- the iam-ondb recipe, on files in IAM-OnDB's real layout -----------------------------------------------------------
IAM_LINE = """<?xml version="1.0" encoding="ISO-8859-1"?>
<WhiteboardCaptureSession>
  <WhiteboardDescription>
    <SensorLocation corner="top_left"/>
    <DiagonallyOppositeCoords x="6512" y="1376"/>
    <VerticallyOppositeCoords x="966" y="1376"/>
    <HorizontallyOppositeCoords x="6512" y="787"/>
  </WhiteboardDescription>
  <StrokeSet>
{strokes}
  </StrokeSet>
</WhiteboardCaptureSession>
"""


def _iam_copy(root: Path, texts: list[str]) -> Path:
    """``lineStrokes/a01/a01-000/a01-000u-NN.xml`` + ``ascii/a01/a01-000/a01-000u.txt`` (OCR and CSR parts)."""
    g = torch.Generator().manual_seed(0)
    folder = root / "lineStrokes" / "a01" / "a01-000"
    folder.mkdir(parents=True)
    for i, text in enumerate(texts, 1):
        strokes, x, t = [], 1000.0, 100.0
        for _ in text.split():
            points = []
            for _ in range(12):
                x += 9 + float(torch.rand(1, generator=g)) * 4
                y = 1000 + 40 * math.sin(x / 30.0)
                points.append(f'      <Point x="{int(x)}" y="{int(y)}" time="{t:.2f}"/>')
                t += 0.01
            strokes.append(f'    <Stroke colour="black" start_time="{t:.2f}" end_time="{t + 0.1:.2f}">\n'
                           + "\n".join(points) + "\n    </Stroke>")
            x += 40
        (folder / f"a01-000u-{i:02d}.xml").write_text(IAM_LINE.format(strokes="\n".join(strokes)),
                                                       encoding="iso-8859-1")
    ascii_dir = root / "ascii" / "a01" / "a01-000"
    ascii_dir.mkdir(parents=True)
    (ascii_dir / "a01-000u.txt").write_text("OCR:\n\n" + "\n".join(t.upper() for t in texts) + "\n\nCSR:\n\n"
                                            + "\n".join(texts) + "\n")
    return root


def test_iam_ondb_recipe_keeps_transcriptions_and_trains_text_conditioned(tmp_path):
    texts = ["A MOVE to stop", "Mr. Gaitskell from", "nominating any more", "Labour life Peers",
             "is to be made", "at a meeting", "of Labour MPs", "tomorrow", "Mr. Michael Foot",
             "has put down", "a resolution on", "the subject"]
    source = _iam_copy(tmp_path / "IAM-OnDB", texts)
    dest = tmp_path / "iam"
    result = invoke("data", "build", "iam-ondb", dest, "--source", source, "--quiet")
    assert result.exit_code == 0, result.output
    domain = StrokesDomain()
    written = sorted(dest.rglob("*.svg"))
    assert sorted(domain.read(p).label for p in written) == sorted(texts)  # every line with its transcription
    recorded = yaml.safe_load((dest / "seqstudio.yaml").read_text())
    assert recorded["codec"]["window"] == 1200  # Graves' line length limit travels with the data
    run = tmp_path / "run"
    result = _train(dest, run, "rnn", 2, "--set", "train.valid_fraction=0.2", "--set", "train.test_fraction=0.2")
    assert result.exit_code == 0, result.output
    spec = text_condition.TextSpec.from_dict(json.loads((run / "codec.json").read_text())["_text"])
    assert set(spec.alphabet) <= set("".join(texts)) and "." in "".join(texts)
