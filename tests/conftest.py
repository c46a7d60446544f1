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
