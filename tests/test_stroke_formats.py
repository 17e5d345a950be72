"""Pen-stroke file formats: every reader on small files in the real format, real KanjiVG files, writer ->
reader round trips, the RDP guarantee, and each format's broken files -> DataError naming the file."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqstudio.errors import DataError

if importlib.util.find_spec("seqstudio_strokes") is None:  # the plugin is not pip-installed everywhere yet
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "strokes"))

from seqstudio_strokes.formats import (READERS, read_iam_xml, read_inkml, read_inks, read_ndjson, read_npz,
                                       read_svg, simplify, simplify_ink, sniff_iam_xml, write_npz)
from seqstudio_strokes.ink import Ink, to_stroke3
from seqstudio_strokes.render import render_png, write_svg, write_svg_sheet


def _broken(path: Path, reader, *fragments: str) -> DataError:
    """Assert ``reader(path)`` raises DataError naming the file and containing each fragment."""
    with pytest.raises(DataError) as info:
        reader(path)
    message = str(info.value)
    assert path.name in message, message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def _random_ink(rng: np.random.Generator, integer: bool, label: str = "x") -> Ink:
    strokes = []
    for _ in range(rng.integers(1, 5)):
        points = rng.normal(0, 20, size=(int(rng.integers(1, 30)), 2)).cumsum(0)
        strokes.append(np.round(points) if integer else points)
    return Ink(strokes, label=label)


# ------------------------------------------------------------------------------------------------ npz


def _object_array(items: list[np.ndarray]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def test_read_npz_splits_labels_and_absolute_coordinates(tmp_path):
    a = np.array([[5, 5, 0], [10, 0, 1], [0, 10, 0], [-5, 0, 1]], dtype=np.int16)
    b = np.array([[1, 2, 0], [3, 4, 1]], dtype=np.int16)
    path = tmp_path / "cat.npz"
    np.savez(path, train=_object_array([a, b, a]), valid=_object_array([b]), test=_object_array([a, b]))
    splits = read_npz(path)
    assert list(splits) == ["train", "valid", "test"]
    assert [len(v) for v in splits.values()] == [3, 1, 2]
    first = splits["train"][0]
    assert first.label == "cat"
    assert len(first.strokes) == 2
    np.testing.assert_array_equal(first.strokes[0], [[5, 5], [15, 5]])
    np.testing.assert_array_equal(first.strokes[1], [[15, 15], [10, 15]])


def test_read_npz_plain_array_and_partial_splits(tmp_path):
    path = tmp_path / "same_length.npz"
    drawings = np.tile(np.array([[1, 1, 0], [2, 0, 1]], dtype=np.int16), (4, 1, 1))  # (4, 2, 3), not object
    np.savez(path, train=drawings)
    splits = read_npz(path)
    assert list(splits) == ["train"] and len(splits["train"]) == 4
    np.testing.assert_array_equal(splits["train"][3].strokes[0], [[1, 1], [3, 1]])


@pytest.mark.parametrize("integer", [True, False])
def test_npz_round_trip(tmp_path, integer):
    rng = np.random.default_rng(1)
    inks = {"train": [_random_ink(rng, integer) for _ in range(6)],
            "valid": [_random_ink(rng, integer) for _ in range(2)]}
    path = tmp_path / "x.npz"
    write_npz(inks, path)
    back = read_npz(path)
    assert list(back) == ["train", "valid"]
    for split in inks:
        for before, after in zip(inks[split], back[split], strict=True):
            assert len(before.strokes) == len(after.strokes)
            for s0, s1 in zip(before.strokes, after.strokes):
                if integer:
                    np.testing.assert_array_equal(s0, s1)
                else:
                    np.testing.assert_allclose(s0, s1, atol=1e-3)
    # the stored stroke-3 arrays are exactly what to_stroke3 gives: what sketch-rnn's loader reads
    raw = np.load(path, allow_pickle=True, encoding="latin1")
    np.testing.assert_array_equal(raw["train"][0], to_stroke3(inks["train"][0]))


def test_write_npz_list_goes_under_train(tmp_path):
    inks = [Ink([[[0, 0], [3, 4]]], label="a")] * 3
    write_npz(inks, tmp_path / "l.npz")
    assert list(np.load(tmp_path / "l.npz", allow_pickle=True)) == ["train"]
    assert len(read_npz(tmp_path / "l.npz")["train"]) == 3


_CALLED: list[str] = []


def _would_run_code():
    _CALLED.append("ran")
    return "pwned"


class _Payload:
    def __reduce__(self):
        return _would_run_code, ()


def test_npz_object_arrays_cannot_run_code(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, train=_object_array([np.zeros((2, 3)), _Payload()]))
    _broken(path, read_npz, "only numpy arrays")
    assert _CALLED == []


def test_npz_broken_files(tmp_path):
    missing = tmp_path / "missing_keys.npz"
    np.savez(missing, foo=np.zeros(3))
    _broken(missing, read_npz, "foo")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _broken(empty, read_npz, "empty")
    not_zip = tmp_path / "text.npz"
    not_zip.write_text("hello")
    _broken(not_zip, read_npz, "zip")
    shape = tmp_path / "shape.npz"
    np.savez(shape, train=_object_array([np.zeros((3, 2))]))
    _broken(shape, read_npz, "train[0]", "(3, 2)")
    no_drawings = tmp_path / "no_drawings.npz"
    np.savez(no_drawings, train=_object_array([np.zeros((0, 3))]))
    _broken(no_drawings, read_npz, "no drawings")
    truncated = tmp_path / "truncated.npz"
    write_npz([Ink([[[0, 0], [1, 1]]])] * 50, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    _broken(truncated, read_npz)
    _broken(tmp_path / "absent.npz", read_npz, "No such file")


# ------------------------------------------------------------------------------------------------ ndjson


def test_read_ndjson_skips_bad_lines_with_one_warning(tmp_path, caplog):
    lines = [
        '{"word": "cat", "recognized": true, "drawing": [[[0, 10, 20], [0, 5, 0]], [[5, 6], [7, 8]]]}',
        "",
        '{"word": "cat", "recognized": false, "drawing": [[[1, 2], [3, 4], [0, 16]]]}',  # raw: xs, ys, ts
        '{"word": "cat", "drawing": [[[1, 2], [3',  # truncated
        '{"word": "cat", "drawing": [[["a", "b"], [3, 4]]]}',
    ]
    path = tmp_path / "cat.ndjson"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="seqstudio"):
        inks = read_ndjson(path)
    assert len(inks) == 2  # the unrecognized drawing is kept
    assert [len(ink.strokes) for ink in inks] == [2, 1]
    assert inks[0].label == "cat"
    np.testing.assert_array_equal(inks[0].strokes[0], [[0, 0], [10, 5], [20, 0]])
    np.testing.assert_array_equal(inks[1].strokes[0], [[1, 3], [2, 4]])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "skipped 2" in warnings[0] and "line 4" in warnings[0], warnings


def test_ndjson_with_no_readable_drawing(tmp_path):
    bad = tmp_path / "bad.ndjson"
    bad.write_text('\n{"word": "x", "drawing": [[["a"], [1]]]}\nnot json\n')
    _broken(bad, read_ndjson, "line 2", "non-numeric")
    empty = tmp_path / "empty.ndjson"
    empty.write_text("\n\n")
    _broken(empty, read_ndjson, "empty")
    nothing = tmp_path / "nothing.ndjson"
    nothing.write_text('{"word": "x", "drawing": []}\n')
    _broken(nothing, read_ndjson, "empty drawing")


# ------------------------------------------------------------------------------------------------ IAM-OnDB

IAM_XML = """<?xml version="1.0" encoding="ISO-8859-1"?>
<WhiteboardCaptureSession>
  <WhiteboardDescription>
    <SensorLocation corner="top_left"/>
    <DiagonallyOppositeCoords x="6512" y="1376"/>
  </WhiteboardDescription>
  <StrokeSet>
    <Stroke colour="black" start_time="769.05" end_time="769.64">
      <Point x="1073" y="1058" time="769.05"/>
      <Point x="1072" y="1085" time="769.07"/>
      <Point x="1075" y="1120" time="769.10"/>
    </Stroke>
    <Stroke colour="black" start_time="770.00" end_time="770.20">
      <Point x="1200" y="1000" time="770.00"/>
      <Point x="1210" y="{y}" time="770.10"/>
    </Stroke>
  </StrokeSet>
</WhiteboardCaptureSession>
"""

IAM_ASCII = """OCR:

A MOVE to stop Mr. Gaitskell
from nominating any more

CSR:

A MOVE to stop Mr. Gaitskell from
nominating any more Labour life Peers
is to be made at a meeting
"""


def _iam_tree(root: Path, with_ascii: bool = True) -> Path:
    xml = root / "lineStrokes" / "a01" / "a01-000" / "a01-000u-02.xml"
    xml.parent.mkdir(parents=True)
    xml.write_text(IAM_XML.format(y=990))
    if with_ascii:
        txt = root / "ascii" / "a01" / "a01-000" / "a01-000u.txt"
        txt.parent.mkdir(parents=True)
        txt.write_text(IAM_ASCII)
    return xml


def test_read_iam_xml_with_ascii_transcription(tmp_path):
    ink = read_iam_xml(_iam_tree(tmp_path))
    assert ink.label == "nominating any more Labour life Peers"  # CSR line 2, not OCR line 2
    assert [len(s) for s in ink.strokes] == [3, 2]
    np.testing.assert_array_equal(ink.strokes[0][0], [1073, 1058])
    np.testing.assert_array_equal(ink.strokes[1][1], [1210, 990])


def test_read_iam_xml_without_transcription(tmp_path):
    assert read_iam_xml(_iam_tree(tmp_path, with_ascii=False)).label == ""


def test_read_iam_xml_inline_transcription(tmp_path):
    path = tmp_path / "form.xml"
    path.write_text(IAM_XML.format(y=1).replace(
        "<StrokeSet>", '<Transcription><TextLine id="a01-000u-01" text="Hello there"/></Transcription>\n<StrokeSet>'))
    assert read_iam_xml(path).label == "Hello there"


def test_sniff_iam_xml(tmp_path):
    iam = _iam_tree(tmp_path)
    music = tmp_path / "score.xml"
    music.write_text('<?xml version="1.0"?>\n<score-partwise version="3.1"><part-list/></score-partwise>\n')
    assert sniff_iam_xml(iam)
    assert not sniff_iam_xml(music)
    assert not sniff_iam_xml(tmp_path / "absent.xml")
    _broken(music, read_inks, "not an IAM-OnDB")


def test_iam_broken_files(tmp_path):
    truncated = tmp_path / "truncated.xml"
    truncated.write_text(IAM_XML.format(y=1)[:300])
    _broken(truncated, read_iam_xml, "not well-formed XML", "line")
    wrong_root = tmp_path / "score.xml"
    wrong_root.write_text("<score-partwise><part/></score-partwise>")
    _broken(wrong_root, read_iam_xml, "<score-partwise>")
    empty = tmp_path / "empty.xml"
    empty.write_text("")
    _broken(empty, read_iam_xml, "empty")
    non_numeric = tmp_path / "nan.xml"
    non_numeric.write_text(IAM_XML.format(y="abc"))
    _broken(non_numeric, read_iam_xml, "stroke 2", "non-numeric")
    no_points = tmp_path / "nopoints.xml"
    no_points.write_text("<WhiteboardCaptureSession><StrokeSet><Stroke/></StrokeSet></WhiteboardCaptureSession>")
    _broken(no_points, read_iam_xml, "no points")


# ------------------------------------------------------------------------------------------------ SVG


def _svg(body: str) -> str:
    return f'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">{body}</svg>\n'


def test_read_svg_curves_subpaths_and_other_elements(tmp_path):
    path = tmp_path / "shapes.svg"
    path.write_text(_svg(
        '<defs><path d="M 0 0 L 999 999"/></defs>'
        '<g transform="translate(1, 2)">'
        '<path d="M10,10 C 20,0 40,0 50,10 Q 60,20 70,10 A 10 10 0 0 1 90 10 M 0 50 L 100 50"/>'
        "</g>"
        '<polyline points="0,0 10,0 10,10"/><line x1="1" y1="2" x2="3" y2="4"/>'
        '<text x="5" y="5">1</text>'))
    ink = read_svg(path, step=1.0)
    assert ink.label == ""
    assert [len(s) for s in ink.strokes][1:] == [2, 3, 2]
    curve, straight = ink.strokes[0], ink.strokes[1]
    np.testing.assert_allclose(curve[0], [11, 12])  # translated
    np.testing.assert_allclose(curve[-1], [91, 12], atol=1e-4)
    np.testing.assert_allclose(straight, [[1, 52], [101, 52]])
    # the cubic's midpoint (t=0.5: (30, 2.5)) is among the samples, and sampling is about one per unit
    assert np.min(np.linalg.norm(curve - [31, 4.5], axis=1)) < 1.0
    gaps = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    assert gaps.max() < 1.5 and 60 < len(curve) < 120
    coarse = read_svg(path, step=5.0)
    assert len(coarse.strokes[0]) < len(curve) / 3


KANJI = {"05b57.svg": ("字", 6), "04e00.svg": ("一", 1), "06c34.svg": ("水", 4), "0611b.svg": ("愛", 13),
         "04e14-Kaisho.svg": ("且", 5)}


@pytest.mark.parametrize("name", sorted(KANJI))
def test_read_svg_real_kanjivg(name):
    folder = Path(importlib.metadata.distribution("kanjivg").locate_file("kanji"))
    path = folder / name
    if not path.exists():
        pytest.skip(f"{name} not in this kanjivg release")
    ink = read_svg(path)
    label, strokes = KANJI[name]
    assert ink.label == label
    assert len(ink.strokes) == strokes
    x0, y0, x1, y1 = ink.bounds()
    assert 0 <= x0 < x1 <= 109 and 0 <= y0 < y1 <= 109
    if name == "05b57.svg":
        np.testing.assert_allclose(ink.strokes[0][0], [52.73, 9.5], atol=1e-4)  # stroke 1 starts at its M
        np.testing.assert_allclose(ink.strokes[-1][-1], [96.88, 59.72], atol=1e-3)  # sum of the c offsets


def test_svg_label_needs_kanjivg_ids(tmp_path):
    path = tmp_path / "00041.svg"  # a numbered export, not KanjiVG's "A"
    path.write_text(_svg('<path d="M 0 0 L 5 5"/>'))
    assert read_svg(path).label == ""


def test_svg_broken_files(tmp_path):
    cases = {
        "nopaths.svg": (_svg('<text x="1" y="1">1</text><g/>'), "no strokes"),
        "truncated.svg": (_svg('<path d="M 0 0 L 5 5"/>')[:60], "not well-formed"),
        "root.svg": ('<html><path d="M 0 0 L 1 1"/></html>', "<html>"),
        "empty.svg": ("  \n", "empty"),
        "baddata.svg": (_svg('<path id="s1" d="M 0 0 L x y"/>'), "s1"),
        "badpoints.svg": (_svg('<polyline points="0,0 1,one"/>'), "polyline"),
        "bomb.svg": ('<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>\n'
                     '<svg xmlns="http://www.w3.org/2000/svg"><title>&b;</title></svg>', "entity"),
    }
    for name, (text, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        _broken(path, read_svg, fragment)


def test_svg_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    ink = _random_ink(rng, integer=False, label="hello <&> 字")
    ink.strokes.append(np.array([[3.25, -7.5]], dtype=np.float32))  # a one-point stroke (a dot)
    path = tmp_path / "out" / "one.svg"
    write_svg(ink, path)
    back = read_svg(path)
    assert back.label == ink.label
    assert [len(s) for s in back.strokes] == [len(s) for s in ink.strokes]
    for s0, s1 in zip(ink.strokes, back.strokes):
        np.testing.assert_allclose(s0, s1, atol=0.01)


# ------------------------------------------------------------------------------------------------ InkML

INKML_NS = """<?xml version="1.0" encoding="UTF-8"?>
<ink xmlns="http://www.w3.org/2003/InkML">
  <annotation type="truth">$a+b$</annotation>
  <annotation type="writer">w1</annotation>
  <trace id="0">10 0, 9 14, 8 28</trace>
  <traceGroup><trace id="1">
    1.5 2.5,
    3.5 4.5
  </trace></traceGroup>
</ink>
"""

INKML_FORMAT = """<ink>
  <definitions><context><traceFormat>
    <channel name="T" type="integer"/><channel name="Y" type="decimal"/><channel name="X" type="decimal"/>
    <intermittentChannels><channel name="F" type="boolean"/></intermittentChannels>
  </traceFormat></context></definitions>
  <trace>100 1 2 T, 110 3 4 F, 120 5 6</trace>
</ink>
"""


def test_read_inkml_with_namespace(tmp_path):
    path = tmp_path / "expr.inkml"
    path.write_text(INKML_NS)
    ink = read_inkml(path)
    assert ink.label == "$a+b$"
    assert [len(s) for s in ink.strokes] == [3, 2]
    np.testing.assert_array_equal(ink.strokes[0], [[10, 0], [9, 14], [8, 28]])
    np.testing.assert_allclose(ink.strokes[1], [[1.5, 2.5], [3.5, 4.5]])


def test_read_inkml_trace_format_without_namespace(tmp_path):
    path = tmp_path / "fmt.inkml"
    path.write_text(INKML_FORMAT)
    ink = read_inkml(path)
    assert ink.label == ""
    np.testing.assert_array_equal(ink.strokes[0], [[2, 1], [4, 3], [6, 5]])  # X is the third channel


def test_inkml_broken_files(tmp_path):
    cases = {
        "delta.inkml": ("<ink><trace>1125 18432'23'43</trace></ink>", "difference-encoded"),
        "words.inkml": ("<ink><trace>1 2, three 4</trace></ink>", "point 2"),
        "short.inkml": ("<ink><trace>1 2, 3</trace></ink>", "point 2"),
        "root.inkml": ("<svg><trace>1 2</trace></svg>", "<svg>"),
        "notraces.inkml": ('<ink><annotation type="truth">x</annotation><trace> </trace></ink>', "no points"),
        "truncated.inkml": (INKML_NS[:120], "not well-formed"),
        "empty.inkml": ("", "empty"),
    }
    for name, (text, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        _broken(path, read_inkml, fragment)


# ------------------------------------------------------------------------------------------------ pictures


def test_svg_sheet_and_png(tmp_path):
    import matplotlib.image
    from xml.etree import ElementTree as ET

    rng = np.random.default_rng(3)
    inks = [_random_ink(rng, integer=False, label=f"d{i}") for i in range(5)] + [Ink([], label="empty")]
    sheet = tmp_path / "sheet.svg"
    write_svg_sheet(inks, sheet, columns=4)
    root = ET.parse(sheet).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f".//{ns}path")) == sum(len(ink.strokes) for ink in inks)
    assert [t.text for t in root.iter(f"{ns}text")] == [f"d{i}" for i in range(5)] + ["empty"]
    assert root.get("width") == "512"
    png = tmp_path / "sheet.png"
    render_png(inks, png, columns=3)
    image = matplotlib.image.imread(png)
    assert image.shape[1] == 600 and image.shape[0] > 400  # 3 columns x 2 rows of 2-inch cells at 100 dpi
    assert (image[..., :3] < 0.5).any()  # strokes were drawn
    render_png(inks[0], tmp_path / "one.png")
    assert (tmp_path / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------ RDP


def _distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    a, b = line[:-1][None], line[1:][None]
    p = points[:, None]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-300), 0, 1)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1).min(axis=1)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("epsilon", [0.0, 0.5, 2.0, 10.0])
def test_simplify_keeps_every_point_within_epsilon(seed, epsilon):
    rng = np.random.default_rng(seed)
    walk = rng.normal(size=(400, 2)).cumsum(0)
    simple = simplify(walk, epsilon)
    assert np.array_equal(simple[0], walk[0]) and np.array_equal(simple[-1], walk[-1])
    index = [int(np.flatnonzero((walk == p).all(1))[0]) for p in simple]
    assert index == sorted(index)  # a subsequence of the original points
    assert _distance_to_polyline(walk, simple).max() <= epsilon + 1e-9
    if epsilon >= 2.0:
        assert len(simple) < len(walk) / 2


def _textbook_rdp(points, epsilon):
    """Recursive Ramer-Douglas-Peucker as usually written: the reference the bounded version must equal."""
    if len(points) <= 2:
        return list(range(len(points)))
    distances = _distance_to_polyline(points[1:-1], points[[0, -1]])
    farthest = int(np.argmax(distances)) + 1
    if distances[farthest - 1] <= epsilon:
        return [0, len(points) - 1]
    left = _textbook_rdp(points[: farthest + 1], epsilon)
    right = _textbook_rdp(points[farthest:], epsilon)
    return left[:-1] + [farthest + i for i in right]


@pytest.mark.parametrize("seed", range(20))
def test_simplify_equals_textbook_rdp_on_ordinary_strokes(seed):
    rng = np.random.default_rng(seed)
    walk = rng.normal(size=(int(rng.integers(3, 300)), 2)).cumsum(0)
    if seed % 2:
        walk = np.round(walk)  # ties between equally far points: the first one wins, as in np.argmax
    epsilon = [0.0, 0.3, 1.0, 3.0][seed % 4]
    assert np.array_equal(simplify(walk, epsilon), walk[_textbook_rdp(walk, epsilon)])


def test_simplify_is_not_quadratic_on_an_adversarial_stroke():
    """A zigzag of growing amplitude puts the farthest point next to an end at every split: textbook RDP does
    n rounds over n points (minutes for 80k points). The bounded version must finish 200k points at once and
    still keep every point within epsilon. Run in a subprocess so a regression fails by timeout, not a hang."""
    code = ("import numpy as np\n"
            "from seqstudio_strokes.formats import simplify\n"
            "i = np.arange(200_000, dtype=float)\n"
            "zigzag = np.stack([i, (-1.0) ** i * i], axis=1)\n"
            "print(len(simplify(zigzag, 1.0)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == 200_000  # every point of this zigzag is needed
    i = np.arange(3000, dtype=float)
    zigzag = np.stack([i, (-1.0) ** i * i], axis=1)
    zigzag[::2, 1] *= 0.0001
    simple = simplify(zigzag, 1.0)
    assert _distance_to_polyline(zigzag, simple).max() <= 1.0 + 1e-9


def test_simplify_edge_cases():
    line = np.stack([np.arange(50.0), 2 * np.arange(50.0)], axis=1)
    assert len(simplify(line, 1e-9)) == 2  # collinear points go (0.0 would hinge on rounding)
    zigzag = np.array([[i, i % 2] for i in range(20)], dtype=float)
    assert len(simplify(zigzag, 0.4)) == 20 and len(simplify(zigzag, 1.0)) == 2
    back_and_forth = np.array([[0, 0], [10, 0], [5, 0]], dtype=float)  # doubles back past its end
    assert len(simplify(back_and_forth, 1.0)) == 3
    assert len(simplify(np.zeros((1, 2)), 1.0)) == 1
    long_walk = np.random.default_rng(0).normal(size=(100_000, 2)).cumsum(0)
    assert len(simplify(long_walk, 0.5)) > 1000  # no recursion limit on long strokes
    with pytest.raises(ValueError):
        simplify(line, -1.0)


def test_simplify_ink_keeps_label_and_strokes():
    ink = Ink([np.stack([np.arange(10.0), np.zeros(10)], 1), [[0, 0], [1, 5], [2, 0]]], label="k")
    simple = simplify_ink(ink, 0.1)
    assert simple.label == "k"
    assert [len(s) for s in simple.strokes] == [2, 3]


def test_readers_dispatch(tmp_path):
    assert set(READERS) == {".npz", ".ndjson", ".xml", ".svg", ".inkml"}
    path = tmp_path / "e.inkml"
    path.write_text(INKML_NS)
    assert len(read_inks(path)) == 1
    write_npz({"train": [Ink([[[0, 0], [1, 1]]])], "test": [Ink([[[0, 0], [2, 2]]])] * 2}, tmp_path / "n.npz")
    assert len(read_inks(tmp_path / "n.npz")) == 3
    _broken(tmp_path / "drawing.png", read_inks, "not a pen-strokes file")
