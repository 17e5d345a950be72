"""Open a page in headless Chromium (Debian's ``chromium``, driven by the ``playwright`` package, which never
downloads a browser of its own here) and report what a reader would see broken: console errors, failed
requests, audio that does not load, images that do not load. Used by tests/test_report.py, and to take the
README's screenshot:

    .venv/bin/python tests/browser.py demo/report/index.html docs/report.png 1700
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"]


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    return found


def why_unavailable() -> str | None:
    """None when the check can run, else the reason it cannot."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if chromium_path() is None:
        return ("no Chromium at /usr/bin/chromium: install Debian's package (apt-get install -y chromium; "
                ".ci/run does this when it runs as root)")
    return None


# Runs in the page: every <audio> waits until its metadata is loaded (or fails), every <img> until it is decoded.
CHECK_JS = """
async () => {
  const audio = await Promise.all([...document.querySelectorAll('audio')].map(a => new Promise(resolve => {
    const done = () => resolve({src: a.currentSrc || a.src, duration: a.duration,
                                error: a.error ? a.error.code : null});
    if (a.readyState >= 1 || a.error) return done();
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', done, {once: true});
    a.load();
    setTimeout(done, 15000);
  })));
  const images = await Promise.all([...document.images].map(img =>
    (img.complete ? Promise.resolve() : img.decode().catch(() => null)).then(() =>
      ({src: img.currentSrc || img.src, width: img.naturalWidth}))));
  const svgs = document.querySelectorAll('svg').length;
  return {audio, images, svgs, title: document.title};
}
"""


def check_page(page_path: Path, screenshot: Path | None = None, height: int = 900) -> dict:
    """``{"console_errors", "failed_requests", "audio", "images", "svgs", "title"}`` of the page at
    ``page_path``; ``screenshot`` saves the top ``height`` pixels of the page as a PNG."""
    from playwright.sync_api import sync_playwright

    page_path = Path(page_path).resolve()
    errors: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="seqstudio-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium_path(), headless=True,
                                                       args=FLAGS, viewport={"width": 1280, "height": height})
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
            page.goto(page_path.as_uri(), wait_until="load")
            result = page.evaluate(CHECK_JS)
            if screenshot:
                page.screenshot(path=str(screenshot), full_page=False)
        finally:
            context.close()
    return {**result, "console_errors": errors, "failed_requests": failed}


if __name__ == "__main__":
    report = check_page(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None,
                        int(sys.argv[3]) if len(sys.argv) > 3 else 900)
    print({k: (v if not isinstance(v, list) else len(v)) for k, v in report.items()})
    print("console errors:", report["console_errors"], "failed:", report["failed_requests"])
