"""The built docs, read as a reader would: served on loopback, loaded in headless Chromium.

Run after ``sphinx-build`` (the ``docs`` tox environment does both). Each
page must render its title, the navigation and its code blocks, with no error
box and nothing written to the browser's console; every asset it asks for must
exist, and a screenshot is saved under ``artifacts/docs/`` (which git ignores)
for a human to look at.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "docs"
BUILT = SOURCE / "_build" / "html"
SCREENSHOTS = ROOT / "artifacts" / "docs"
#: Every page of the guide, by its source file (``.inc`` files are parts of pages).
PAGES = sorted(
    str(source.relative_to(SOURCE).with_suffix("")) for source in SOURCE.rglob("*.rst") if "_build" not in source.parts
)
# Flags from the machine notes: without the background-networking ones,
# Chromium keeps trying hosts the closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[tuple[str, int]]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.requests.append((self.path.split("?")[0], int(code)))


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """``directory`` served on loopback: its base URL, and the requests made of it (path, status)."""
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (RecordingHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, list[tuple[str, int]]]]:
    if not (BUILT / "index.html").is_file():
        pytest.fail(f"no built docs in {BUILT}: run sphinx-build first (tox -e docs does)")
    with serving(BUILT) as served:
        yield served


@pytest.fixture
def chromium() -> Iterator[list[str]]:
    """The command line, with a new, empty profile: nothing comes from a cache."""
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.fail("headless Chromium is needed: install Debian's chromium (.ci/run does), or set CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        yield [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]


def expected_title(page: str) -> str:
    return (SOURCE / f"{page}.rst").read_text().splitlines()[0].strip()


def expected_code_blocks(page: str) -> int:
    return len(re.findall(r"^\s*\.\. (?:literalinclude|code-block)::", (SOURCE / f"{page}.rst").read_text(), re.M))


def load(chromium: list[str], url: str, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """The page's DOM, and what it wrote to the browser's console: Chromium logs every
    console message (any level, uncaught errors included) on stderr. Given a path, a
    screenshot too, from the same load (one browser started per page, not two)."""
    shoot = ["--window-size=1280,1600", f"--screenshot={screenshot}"] if screenshot else []
    loaded = subprocess.run(
        [*chromium, "--enable-logging=stderr", "--v=0", *shoot, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return loaded.stdout, [line for line in loaded.stderr.splitlines() if ":CONSOLE" in line]


def test_the_console_check_sees_an_error(tmp_path: Path, chromium: list[str]) -> None:
    """A page that throws is caught: the check below can fail."""
    (tmp_path / "broken.html").write_text("<title>x</title><script>undefinedFunction();</script>")
    with serving(tmp_path) as (base, _):
        _, console = load(chromium, f"{base}/broken.html")
    assert any("undefinedFunction is not defined" in line for line in console), console


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_a_browser(page: str, site: tuple[str, list[tuple[str, int]]], chromium: list[str]) -> None:
    base, requests = site
    url = f"{base}/{page}.html"
    requests.clear()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"{page.replace('/', '--')}.png"
    screenshot.unlink(missing_ok=True)  # the size checked below is this load's
    # One load, with an empty profile, so it fetches every asset: the ones checked below.
    dom, console = load(chromium, url, screenshot)

    title = expected_title(page)
    assert re.search(rf"<title>{re.escape(title)}", dom.replace("&amp;", "&")), f"{page}: no title {title!r}"
    heading = re.search(r"<h1>(.*?)<a", dom, re.S)
    assert heading is not None and title in heading.group(1).replace("&amp;", "&"), f"{page}: h1 is not {title!r}"
    assert 'class="sidebar-tree"' in dom, f"{page}: no navigation sidebar"
    assert len(re.findall(r'<a class="reference internal"', dom)) >= 10, f"{page}: the navigation has few links"
    assert dom.count('<div class="highlight') >= expected_code_blocks(page), f"{page}: code blocks are missing"
    # Every asset the page asked for was there; browsers ask for a favicon unprompted.
    missing = sorted({path for path, status in requests if status >= 400 and path != "/favicon.ico"})
    assert missing == [], f"{page}: missing assets {missing}"
    assert any(path.endswith(".css") for path, _ in requests), f"{page}: no stylesheet was loaded"
    assert screenshot.stat().st_size > 10_000, f"{page}: the screenshot is (nearly) blank"
    # Nothing the page shows as an error: docutils' messages (a broken reference, a bad
    # directive), and furo's red box over a `contents` directive (its theme draws the
    # page's own table of contents; the box is CSS on that class, unless escaped).
    assert console == [], f"{page}: the page wrote to the browser's console: {console}"
    assert 'class="system-message"' not in dom, f"{page}: a docutils error is on the page"
    assert 'class="problematic"' not in dom, f"{page}: a docutils error is on the page"
    classes = [attribute.split() for attribute in re.findall(r'class="([^"]*)"', dom)]
    boxed = [names for names in classes if "contents" in names and not any("this-will-duplicate" in n for n in names)]
    assert boxed == [], f"{page}: furo's error box over a contents directive"
