"""`seqstudio report`, `plot`, `generate --report`, the TensorBoard writer and `--quiet`, through the real CLI;
the pages are opened in headless Chromium (marked `browser`: deselect with -m "not browser")."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from browser import check_page, why_unavailable
from conftest import TINY, invoke, read_metrics
from seqstudio import registry
from seqstudio.cli import main
from seqstudio.report import write_gallery


class _Sources(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def page_sources(page: Path) -> list[tuple[str, str]]:
    parser = _Sources()
    parser.feed(page.read_text(encoding="utf-8"))
    return [(tag, a.get("src") or a.get("href")) for tag, a in parser.tags if a.get("src") or a.get("href")]


def assert_self_contained(page: Path) -> None:
    """Every file the page uses is beside it, and nothing points at the network."""
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", text), "the page refers to the network"
    for tag, src in page_sources(page):
        assert not src.startswith(("http:", "https:", "//", "/")), src
        assert (page.parent / src).is_file(), f"{tag} {src} is missing"


@pytest.fixture(scope="module")
def evaluated_run(trained_run, tmp_path_factory) -> Path:
    """The shared tiny run, copied, with `evaluate` run on it (its JSON lands in the run directory)."""
    run = tmp_path_factory.mktemp("evaluated") / "run"
    shutil.copytree(trained_run, run)
    result = invoke("evaluate", run, "--split", "valid", "--samples", 4, "--quiet")
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture(scope="module")
def run_report(evaluated_run, tmp_path_factory) -> Path:
    samples = tmp_path_factory.mktemp("generated") / "out"
    assert invoke("generate", evaluated_run, "-n", 2, "-o", samples, "--seed", 0, "--audio", "-q").exit_code == 0
    out = tmp_path_factory.mktemp("report") / "page"
    result = invoke("report", evaluated_run, "--samples", samples, "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {out / 'index.html'}"
    return out / "index.html"


def test_evaluate_stores_its_figures_in_the_run_directory(evaluated_run):
    stored = json.loads((evaluated_run / "evaluation-valid.json").read_text())
    assert stored["split"] == "valid" and "elbo" in stored and "mean_overlap" in stored


def test_run_report_shows_config_data_curves_evaluation_and_every_sample(run_report, evaluated_run):
    text = run_report.read_text(encoding="utf-8")
    assert_self_contained(run_report)
    for section in ("Run", "Training", "Evaluation", "Samples", "Configuration"):
        assert f"<h2>{section}" in text
    assert "backend:" in text and "seqvae" in text  # the resolved config.yaml
    assert "train files" in text  # data.json, written by train
    for panel in ("nll", "kl", "elbo", "lr"):
        assert f'aria-label="{panel}"' in text  # one inline SVG chart per curve
    assert "overlap with held-out data" in text  # evaluate --samples's figure
    assert any("eta_s" in r for r in read_metrics(evaluated_run))
    assert 'aria-label="eta_s"' not in text  # a forecast of the time left is not a curve of the model
    seconds = [r["elapsed_s"] for r in read_metrics(evaluated_run) if r["split"] == "valid"][-1]
    assert re.search(r"training time \(validation excluded\)</th><td>\d+\.\d s</td>", text), seconds
    n_run = len(list((evaluated_run / "samples").glob("*.mid")))
    assert text.count("<audio") == n_run + 2 and text.count("<img") == n_run + 2


def test_generate_report_writes_the_gallery_of_its_output_folder(trained_run, tmp_path):
    out = tmp_path / "gen"
    result = invoke("generate", trained_run, "-n", 2, "-o", out, "--seed", 0, "--report", "--quiet")
    assert result.exit_code == 0, result.output
    page = out / "report" / "index.html"
    assert result.output.strip() == f"report: {page}"
    assert_self_contained(page)
    assert page.read_text().count("<audio") == 2  # rendered for the page although --audio was not given
    assert not list(out.glob("*.wav"))


def test_report_replaces_its_own_page_but_never_another_folder(evaluated_run, tmp_path):
    out = tmp_path / "page"
    for _ in range(2):
        assert invoke("report", evaluated_run, "-o", out, "-q").exit_code == 0
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["report", str(evaluated_run), "-o", str(other)])
    assert result.exit_code == 1 and "not a seqstudio report" in result.output
    assert (other / "notes.txt").read_text() == "keep me"
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "not a seqstudio run directory" in result.output


def test_plot_writes_png_and_svg_curves(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    assert invoke("plot", trained_run, "-o", tmp_path / "c.png").exit_code == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert invoke("plot", trained_run, "-o", tmp_path / "c.svg").exit_code == 0
    assert (tmp_path / "c.svg").read_text().count("<polyline") >= 4
    result = CliRunner().invoke(main, ["plot", str(trained_run), "-o", str(tmp_path / "c.pdf")])
    assert result.exit_code == 1 and ".png or .svg" in result.output


def test_plot_without_matplotlib_says_so_in_one_line(trained_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(main, ["plot", str(trained_run), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 1 and "matplotlib" in result.output and "Traceback" not in result.output


def _train_tiny(chorales, run_dir, *extra):
    return CliRunner().invoke(main, ["train", str(chorales), "--run-dir", str(run_dir), "--max-steps", "3",
                                     "--set", "train.samples=0", *TINY, *extra])


def test_a_run_with_its_report_and_evaluation_inside_still_resumes(chorales, tmp_path):
    run = tmp_path / "run"
    assert _train_tiny(chorales, run).exit_code == 0
    assert invoke("evaluate", run, "--split", "valid", "-q").exit_code == 0
    assert invoke("report", run, "-q").exit_code == 0  # default folder: RUN/report
    result = CliRunner().invoke(main, ["train", "--resume", "--run-dir", str(run), "--max-steps", "6", "--quiet"])
    assert result.exit_code == 0, result.output
    assert invoke("report", run, "-q").exit_code == 0  # and its page is rewritten in place
    assert (run / "report" / "index.html").is_file()


def test_tensorboard_writer_mirrors_the_metrics(chorales, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = _train_tiny(chorales, tmp_path / "run", "--set", "train.tensorboard=true")
    assert result.exit_code == 0, result.output
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/nll" in tags and "valid/elbo" in tags and "train/lr" in tags


def test_tensorboard_missing_is_one_warning_and_training_goes_on(chorales, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    result = _train_tiny(chorales, tmp_path / "run", "--set", "train.tensorboard=true")
    assert result.exit_code == 0, result.output
    assert "tensorboard package is not installed" in result.output
    assert (tmp_path / "run" / "best.pt").exists()


def test_quiet_silences_generate_and_evaluate_progress(trained_run, tmp_path):
    result = invoke("generate", trained_run, "-n", 70, "-o", tmp_path / "many", "--seed", 0, "--quiet",
                    "--no-pictures")
    assert result.exit_code == 0 and result.output == ""
    loud = invoke("generate", trained_run, "-n", 70, "-o", tmp_path / "many2", "--seed", 0, "--no-pictures")
    assert "generating" in loud.output  # more than one batch: a bar
    result = invoke("evaluate", trained_run, "--split", "valid", "--quiet")
    assert "%|" not in result.output


def domain_gallery(name: str, folder: Path) -> Path:
    """Each domain's example samples written as files, and their gallery page."""
    domain = registry.load_domain(name)()
    folder.mkdir()
    for i, sample in enumerate(domain.example_samples()):
        domain.write(sample, folder / f"example-{i}{domain.output_extension_for(sample)}")
    return write_gallery(domain, folder, progress=False)


@pytest.mark.parametrize("name", ["midi", "strokes", "text"])
def test_every_domain_gives_gallery_items_through_the_seam(name, tmp_path):
    page = domain_gallery(name, tmp_path / "samples")
    assert_self_contained(page)
    text = page.read_text()
    n = len(list((tmp_path / "samples").glob("example-*")))
    if name == "midi":
        assert text.count("<img") == n and text.count("<audio") == n
    elif name == "strokes":
        assert text.count("<img") == n and "<audio" not in text
    else:  # texts as text, the one ABC tune with its audio
        assert text.count("<pre>") == n and text.count("<audio") == 1


# -- in a real browser ----------------------------------------------------------------------------------------------
def _assert_page_works(page: Path) -> dict:
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    seen = check_page(page)
    assert seen["console_errors"] == [], seen["console_errors"]
    assert seen["failed_requests"] == [], seen["failed_requests"]
    for a in seen["audio"]:
        assert a["error"] is None and a["duration"] > 0, a
    for img in seen["images"]:
        assert img["width"] > 0, img
    return seen


@pytest.mark.browser
def test_run_report_opens_in_chromium_with_every_player_and_picture_loaded(run_report):
    seen = _assert_page_works(run_report)
    assert len(seen["audio"]) >= 2 and len(seen["images"]) >= 2 and seen["svgs"] >= 4


@pytest.mark.browser
@pytest.mark.parametrize("name", ["strokes", "text"])
def test_domain_galleries_open_in_chromium(name, tmp_path):
    seen = _assert_page_works(domain_gallery(name, tmp_path / "samples"))
    assert seen["images"] or seen["audio"]
