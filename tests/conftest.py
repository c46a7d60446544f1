"""Shared pytest fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def instructor_secret(tmp_path_factory: pytest.TempPathFactory):
    """Tests never touch the real instructor secret (~/.config/conv-course/...): every
    command they run (`course release` creates it) uses a file of this session."""
    if "COURSE_SECRET_FILE" in os.environ:
        yield os.environ["COURSE_SECRET_FILE"]
        return
    path = tmp_path_factory.mktemp("secret") / "course.secret"
    os.environ["COURSE_SECRET_FILE"] = str(path)
    yield str(path)
    os.environ.pop("COURSE_SECRET_FILE", None)


@pytest.fixture(scope="session", autouse=True)
def private_exchange(tmp_path_factory: pytest.TempPathFactory):
    """`course release` publishes to nbgrader's exchange when it exists: tests use one of
    their own session, never a real /srv/nbgrader/exchange."""
    if "COURSE_EXCHANGE" in os.environ:
        yield os.environ["COURSE_EXCHANGE"]
        return
    path = tmp_path_factory.mktemp("exchange")
    path.chmod(0o1777)
    os.environ["COURSE_EXCHANGE"] = str(path)
    yield str(path)
    os.environ.pop("COURSE_EXCHANGE", None)


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built website's HTML folder.

    ``make test`` builds the book from a clean cache into ``_build/html`` before pytest
    runs; that build is used. Run alone, pytest builds the book itself into a temporary
    folder (also from an empty cache). ``BOOK_HTML`` points at another build.
    """
    if "BOOK_HTML" in os.environ:
        return Path(os.environ["BOOK_HTML"])
    built = ROOT / "_build" / "html"
    if (built / "index.html").exists():
        return built
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    subprocess.run(
        [str(jb), "build", "-n", "-W", "--keep-going", "--path-output", str(out), str(ROOT)],
        check=True,
    )
    return out / "_build" / "html"


# --- the browser tests' shared fixtures (tests/site_browser.py) ---------------------------


@pytest.fixture(scope="session")
def base_url(site_dir: Path):
    """The built site served on 127.0.0.1 (a free port) by a background thread."""
    import functools
    import http.server
    import threading

    from site_browser import QuietHandler

    if not (site_dir / "index.html").exists():
        pytest.fail(f"no built site in {site_dir}: run `make book` first")
    handler = functools.partial(QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    from site_browser import AXE_JS, CHROMIUM, CHROMIUM_ARGS

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: run `make setup-test`")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no browser at {CHROMIUM}: run `make browser` (apt-get install chromium)")
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `make web` (npm ci in web/)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def new_context(browser):
    """A factory of offline browser contexts, closed at the end of the session."""
    from site_browser import Offline

    made = []

    def make(**options):
        ctx = browser.new_context(**options)
        ctx.offline_guard = Offline()
        ctx.route("**/*", ctx.offline_guard)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()
