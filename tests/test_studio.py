"""The studio (issue 30): ``seqstudio studio RUN ...`` started as a real process on a free port, its page driven in
headless Chromium (marked ``browser``), its JSON API hit with bad requests, and two requests at once."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from browser import FLAGS, chromium_path, why_unavailable
from conftest import invoke, tiny_backend_args

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("seqstudio_strokes")
from seqstudio_strokes import hershey  # noqa: E402


# -- tiny runs and the server ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hand_run(tmp_path_factory) -> Path:
    """A tiny handwriting-from-text run on 8 short Hershey lines."""
    root = tmp_path_factory.mktemp("studio-hw")
    recipe = yaml.safe_load((Path(hershey.__file__).parent / "data_recipes/hershey-script.yaml").read_text())
    recipe["name"] = "hershey-tiny"
    recipe["source"].update(min_chars=4, max_chars=10)
    (root / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    assert invoke("data", "build", root / "tiny.yaml", root / "lines", "--limit", "8", "--quiet").exit_code == 0
    run = root / "hand"
    result = invoke("train", root / "lines", "--backend", "rnn", "--run-dir", run, "--max-steps", 10,
                    *tiny_backend_args("rnn"), "--set", "train.workers=1", "--set", "train.valid_every=5",
                    "--set", "train.samples=0", "--batch-size", "4", "--quiet")
    assert result.exit_code == 0, result.output
    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio(trained_run, hand_run, tmp_path_factory):
    """The real command, ``seqstudio studio MIDI_RUN HAND_RUN --port P``, as a process; yields its base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("studio-log") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "seqstudio", "studio", str(trained_run), str(hand_run),
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(url + "/api/runs")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        yield url
        assert proc.poll() is None, "the server died: " + log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _call(url: str, body=None, raw: bytes | None = None, headers=None, method=None) -> tuple[int, dict]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"error": text.decode()}


def _wait(url: str, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = _get(f"{url}/api/jobs/{job_id}")
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


# -- the API ----------------------------------------------------------------------------------------------------------
def test_runs_are_listed_by_index_with_their_menus_and_no_paths(studio, trained_run, hand_run):
    runs = _get(studio + "/api/runs")
    assert [r["name"] for r in runs] == [trained_run.name, hand_run.name]
    assert runs[0]["mode"] == "samples" and runs[0]["conditions"] and runs[0]["audio"]
    assert runs[1]["mode"] == "hand" and runs[1]["alphabet"]
    assert str(trained_run.parent) not in json.dumps(runs)


def test_a_line_from_text_samples_at_the_clis_bias_unless_asked_otherwise(trained_run, hand_run):
    from seqstudio.config import TEXT_BIAS
    from seqstudio.studio.models import StudioModel

    hand, plain = StudioModel(1, hand_run), StudioModel(0, trained_run)
    assert TEXT_BIAS > 0 and hand.describe()["defaults"]["bias"] == TEXT_BIAS
    assert hand.parse({"kind": "hand", "text": "ab"}).bias == TEXT_BIAS
    assert hand.parse({"kind": "hand", "text": "ab", "bias": 0}).bias == 0
    assert plain.describe()["defaults"]["bias"] == 0 and plain.parse({"kind": "samples"}).bias == 0


def test_two_requests_at_once_both_finish_one_after_the_other(studio):
    answers = []

    def ask():
        answers.append(_call(f"{studio}/api/runs/0/jobs", {"kind": "samples", "n": 2, "length": 24}))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [code for code, _ in answers] == [200, 200], answers
    done = [_wait(studio, job["id"]) for _, job in answers]
    assert [d["state"] for d in done] == ["done", "done"], done
    for d in done:
        items = d["result"]["items"]
        assert len(items) == 2 and all(i["image"] is not None and i["audio"] is not None for i in items)
        with urllib.request.urlopen(f"{studio}/api/jobs/{d['id']}/files/{items[0]['audio']}") as r:
            assert r.headers["Content-Type"] == "audio/wav" and r.read(4) == b"RIFF"


def test_a_cancelled_job_stops_and_the_model_goes_on_with_the_next(studio):
    _, long = _call(f"{studio}/api/runs/0/jobs", {"kind": "samples", "n": 8, "length": 2000})
    _, short = _call(f"{studio}/api/runs/0/jobs", {"kind": "samples", "n": 1, "length": 16})
    code, _ = _call(f"{studio}/api/jobs/{long['id']}/cancel", {})
    assert code == 200
    assert _wait(studio, long["id"])["state"] == "cancelled"
    assert _wait(studio, short["id"])["state"] == "done"


@pytest.mark.parametrize("path", ["/api/jobs/../../etc/passwd", "/api/jobs/..%2F..%2Fetc%2Fpasswd/files/0",
                                  "/static/..%2F..%2Fapp.py", "/static/../models.py", "/api/runs/7/jobs",
                                  "/api/jobs/0123456789abcdef/files/0", "/../../etc/passwd"])
def test_paths_from_a_request_never_reach_the_file_system(studio, path):
    request = urllib.request.Request(studio + path)
    request.selector = path  # as sent: urllib would otherwise leave the dots to the server anyway
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError(f"{path} was served")
    except urllib.error.HTTPError as exc:
        assert exc.code in (404, 405)
        if exc.code == 404:
            assert json.loads(exc.read())["error"].startswith("no such") or "no run number" in str(exc)


@pytest.mark.parametrize("body, raw, headers, code, words", [
    (None, b"x" * (5 << 20), {}, 413, "too large"),
    (None, b"{not json", {}, 400, "not valid JSON"),
    ({"kind": "samples"}, None, {"Content-Type": "text/plain"}, 415, "JSON"),
    ({"kind": "samples", "n": 500}, None, {}, 400, "samples must be between 1 and 8"),
    ({"kind": "samples", "length": 10 ** 6}, None, {}, 400, "length must be between"),
    ({"kind": "samples", "temperature": "hot"}, None, {}, 400, "not a number"),
    ({"kind": "samples", "conditions": {"key": "Q:minor"}}, None, {}, 400, "not one of the values"),
    ({"kind": "samples", "prime": {"name": "notes.txt", "data": "aGVsbG8="}}, None, {}, 400,
     "not a file this run reads"),
    ({"kind": "hand", "text": "x"}, None, {}, 400, "takes sample requests"),
])
def test_bad_requests_are_one_clear_line(studio, body, raw, headers, code, words):
    got, answer = _call(f"{studio}/api/runs/0/jobs", body, raw, headers)
    assert got == code and words in answer["error"], answer


def test_a_foreign_host_name_is_refused(studio):
    code, answer = _call(studio + "/api/runs", headers={"Host": "attacker.example"}, method="GET")
    assert code == 400 and "host" in answer["error"].lower()


def test_an_unreadable_upload_fails_its_job_naming_the_users_file_not_the_servers_folder(studio):
    data = base64.b64encode(b"MThd this is not a MIDI file").decode()
    _, job = _call(f"{studio}/api/runs/0/jobs", {"kind": "samples", "prime": {"name": "song.mid", "data": data}})
    status = _wait(studio, job["id"])
    assert status["state"] == "failed" and "song.mid" in status["error"], status
    assert "seqstudio-studio-" not in status["error"] and "/tmp" not in status["error"], status


# -- the command --------------------------------------------------------------------------------------------------
def test_without_starlette_the_command_says_how_to_install_it(trained_run, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "starlette" else real(name, *a))
    result = invoke("studio", trained_run)
    assert result.exit_code == 1 and "needs starlette" in result.output and "[studio]" in result.output


def test_a_port_in_use_is_one_clear_line(trained_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = invoke("studio", trained_run, "--port", taken.getsockname()[1])
    assert result.exit_code == 1 and "cannot listen on 127.0.0.1" in result.output and "--port" in result.output


def test_importing_the_cli_imports_no_web_stack():
    code = "import sys, seqstudio.cli; print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_line_drawn_in_pixels_is_brought_to_the_runs_units(hand_run):
    from seqstudio import api
    from seqstudio_strokes.ink import Ink

    run = api.load(hand_run)
    t = np.linspace(0, 6 * np.pi, 200)
    ink = Ink([np.stack([40 * t, 300 + 80 * np.sin(t)], 1)])  # a wavy pixel line, far larger than the run's units
    fitted = run.domain.fit_style(ink, run.codec)
    probe = type(run.codec)(run.codec.config)
    probe.fit([fitted])
    assert probe.scale == pytest.approx(run.codec.scale, rel=0.05)
    probe.fit([ink])
    assert abs(probe.scale / run.codec.scale - 1) > 0.5  # it was not in the run's units before


# -- the page in Chromium --------------------------------------------------------------------------------------------
@pytest.fixture
def page(studio):
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    import tempfile

    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="seqstudio-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium_path(), headless=True,
                                                       args=FLAGS, viewport={"width": 1280, "height": 1000})
        try:
            tab = context.new_page()
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
            tab.goto(studio + "/", wait_until="load")
            tab.wait_for_selector("body[data-ready='1']")
            tab.console_errors = errors
            yield tab
        finally:
            context.close()


LOADED_JS = """
async () => {
  const audio = await Promise.all([...document.querySelectorAll('#results audio')].map(a => new Promise(resolve => {
    const done = () => resolve({duration: a.duration, error: a.error ? a.error.code : null});
    if (a.readyState >= 1 || a.error) return done();
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', done, {once: true});
    setTimeout(done, 15000);
  })));
  const images = await Promise.all([...document.querySelectorAll('#results img')].map(img =>
    (img.complete ? Promise.resolve() : img.decode().catch(() => null)).then(() => img.naturalWidth)));
  return {audio, images};
}
"""


def _draw_a_line(tab) -> None:
    """A few letter-like loops drawn with the mouse: pointerdown / pointermove / pointerup on the pad."""
    box = tab.locator("#pad").bounding_box()
    x0, y0 = box["x"] + 40, box["y"] + box["height"] * 0.55
    for stroke in range(3):
        tab.mouse.move(x0 + stroke * 120, y0)
        tab.mouse.down()
        for k in range(1, 30):
            tab.mouse.move(x0 + stroke * 120 + 3 * k, y0 - 30 * np.sin(k / 4.0))
        tab.mouse.up()


@pytest.mark.browser
def test_the_page_generates_plays_and_writes_in_your_hand(page, studio, tmp_path):
    tab = page
    tab.select_option("#run", "0")
    tab.fill("#n", "2")
    tab.fill("#length", "32")
    tab.click("#generate")
    tab.wait_for_selector("#results .card audio", timeout=120_000)
    assert tab.locator("#results .card").count() == 2
    seen = tab.evaluate(LOADED_JS)
    assert len(seen["audio"]) == 2 and all(a["error"] is None and a["duration"] > 0 for a in seen["audio"]), seen
    assert len(seen["images"]) == 2 and all(w > 0 for w in seen["images"]), seen
    assert tab.locator("#results a", has_text="Download MIDI").count() == 2
    first = tab.locator("#results .card img").first.get_attribute("src")
    tab.locator("#results .card .regenerate").first.click()  # regenerate one: a new sample in its place
    tab.wait_for_function("(old) => { const img = document.querySelector('#results .card img'); "
                          "return img && img.getAttribute('src') !== old && img.complete && img.naturalWidth > 0; }",
                          arg=first, timeout=120_000)
    assert tab.locator("#results .card").count() == 2

    tab.select_option("#run", "1")
    assert tab.locator("#hand-panel").is_visible() and not tab.locator("#samples-panel").is_visible()
    assert float(tab.input_value("#bias")) == runs_bias(studio, 1)
    _draw_a_line(tab)
    strokes = tab.evaluate("strokes.length")
    assert strokes == 3
    tab.fill("#style-text", "do")
    tab.fill("#text", "a lot")
    tab.click("#write")
    tab.wait_for_selector("#results .card.hand img", timeout=120_000)
    hand = tab.locator("#results .card.hand").first
    assert "continued from your line" in hand.inner_text()
    seen = tab.evaluate(LOADED_JS)
    assert all(w > 0 for w in seen["images"]), seen
    with tab.expect_download() as info:
        hand.locator("a", has_text="Download SVG").click()
    svg = Path(info.value.path()).read_text()
    assert "<svg" in svg and 'fill="none"' in svg and "<path" in svg and "mm" in svg
    assert tab.console_errors == [], tab.console_errors


@pytest.mark.browser
def runs_bias(studio, index: int) -> float:
    return _get(studio + "/api/runs")[index]["defaults"]["bias"]


def test_bad_input_in_the_page_is_a_clear_message_and_the_server_stays_up(page, studio):
    tab = page
    message = tab.locator("#message")

    def upload(name: str, data: bytes, expected: str) -> str:
        tab.set_input_files("#prime", files=[{"name": name, "mimeType": "audio/midi", "buffer": data}])
        tab.click("#continue")
        tab.wait_for_function("(w) => document.getElementById('message').textContent.includes(w)", arg=expected,
                              timeout=60_000)
        return message.text_content()

    tab.select_option("#run", "0")
    assert "too large" in upload("big.mid", b"\0" * (5 << 20), "too large")
    assert "not a file this run reads" in upload("notes.txt", b"hello", "not a file this run reads")
    crafted = '<img src=x onerror="window.pwned=1">.mid'
    shown = upload(crafted, b"MThd not a MIDI file at all", "onerror")
    assert crafted in shown  # shown as text, the very characters
    assert tab.evaluate("window.pwned") is None and tab.locator("#message img").count() == 0
    assert tab.locator("#samples-panel .note", has_text="issue 29").is_visible()  # harmonise/infill: said, not faked

    tab.select_option("#run", "1")
    tab.fill("#text", "a lot!")
    tab.click("#write")
    tab.wait_for_function("() => document.getElementById('message').textContent.includes('alphabet')")
    assert "'!'" in message.text_content()
    assert len(_get(studio + "/api/runs")) == 2  # still up
    # the server's own answers to the bad requests are not page errors; anything else is
    assert [e for e in tab.console_errors if "status of 4" not in e] == [], tab.console_errors
