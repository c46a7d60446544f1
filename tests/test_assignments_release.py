"""The released student notebooks: no drift from the sources, nothing secret leaks.

* ``exercises/`` must be exactly what ``python -m course release`` generates today from
  ``solutions/`` (regenerated into a temporary copy of the course and compared as
  normalised notebook JSON: every cell's type, id, source and metadata, and the notebook
  metadata).
* Neither ``exercises/`` nor the built website may contain solution code, hidden tests or
  any file that is not a student notebook.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.config import ASSIGNMENTS, notebook_name  # noqa: E402

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "MARK SCHEME")
_REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def normalise(nb: dict) -> dict:
    """Everything that matters of a notebook, in a canonical form (sources as one string)."""
    cells = [{**{k: v for k, v in c.items() if k != "source"}, "source": _source(c)} for c in nb["cells"]]
    return {
        "nbformat": nb["nbformat"],
        "nbformat_minor": nb["nbformat_minor"],
        "metadata": nb["metadata"],
        "cells": cells,
    }


def secret_lines() -> dict[str, set[str]]:
    """Per assignment, the lines that only the instructor may see.

    Lines of solution regions, hidden-test regions and hand-graded model answers that are
    long enough to be telling and occur in no released notebook (a line that a released
    notebook shows, e.g. assignment 3's given forward pass, is public by design).
    """
    public: set[str] = set()
    for a in ASSIGNMENTS:
        for cell in _load(ROOT / "exercises" / a / f"{notebook_name(a)}.ipynb")["cells"]:
            public |= {ln.strip() for ln in _source(cell).splitlines()}
    out = {}
    for a in ASSIGNMENTS:
        src = _load(ROOT / "solutions" / a / f"{notebook_name(a)}.ipynb")
        lines: set[str] = set()
        for cell in src["cells"]:
            text = _source(cell)
            meta = cell["metadata"].get("nbgrader", {})
            chunks = [m.group(2) for m in _REGION.finditer(text)]
            if cell["cell_type"] == "markdown" and meta.get("solution"):
                chunks.append(text)
            for chunk in chunks:
                lines |= {ln.strip() for ln in chunk.splitlines() if len(ln.strip()) >= 24}
        out[a] = lines - public
        assert len(out[a]) >= 10, f"{a}: too few secret lines found; the check would be vacuous"
    return out


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("release") / "course"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    proc = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), "release"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root / "exercises"


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_sources_hold_only_their_notebook() -> None:
    assert sorted(p.name for p in (ROOT / "solutions").iterdir()) == sorted(ASSIGNMENTS)
    for a in ASSIGNMENTS:
        assert _files(ROOT / "solutions" / a) == [f"{notebook_name(a)}.ipynb"]


def test_exercises_hold_only_student_notebooks() -> None:
    expected = sorted(f"{a}/{notebook_name(a)}.ipynb" for a in ASSIGNMENTS)
    assert _files(ROOT / "exercises") == expected


def test_regenerated_files_are_the_committed_ones(regenerated: Path) -> None:
    assert _files(regenerated) == _files(ROOT / "exercises")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_drift(regenerated: Path, assignment: str) -> None:
    name = f"{notebook_name(assignment)}.ipynb"
    fresh = normalise(_load(regenerated / assignment / name))
    committed = normalise(_load(ROOT / "exercises" / assignment / name))
    assert committed["metadata"] == fresh["metadata"]
    assert len(committed["cells"]) == len(fresh["cells"])
    for mine, new in zip(committed["cells"], fresh["cells"], strict=True):
        assert mine == new, f"{assignment}: cell {new.get('id')} differs: run `python -m course release`"
    assert committed == fresh


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_secrets(assignment: str) -> None:
    path = ROOT / "exercises" / assignment / f"{notebook_name(assignment)}.ipynb"
    text = path.read_text(encoding="utf-8")
    nb = _load(path)
    for marker in MARKERS:
        assert marker not in text
    assert "jupytext" not in nb["metadata"]
    assert "hidden=True" not in text
    body = "\n".join(_source(c) for c in nb["cells"])
    leaked = [ln for ln in secret_lines()[assignment] if ln in body]
    assert leaked == []
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        assert "outputs" not in cell or cell["outputs"] == []
        if meta.get("solution") and cell["cell_type"] == "code":
            assert "raise NotImplementedError()" in _source(cell)
        if meta.get("solution") and cell["cell_type"] == "markdown":
            assert _source(cell) == "YOUR ANSWER HERE"


def test_points_are_stated_and_add_up() -> None:
    for a in ASSIGNMENTS:
        nb = _load(ROOT / "exercises" / a / f"{notebook_name(a)}.ipynb")
        total = sum(
            c["metadata"]["nbgrader"]["points"]
            for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")
        )
        assert total == 20
        assert "**Total: 20 points" in _source(nb["cells"][0])


@pytest.mark.slow
def test_website_has_no_secrets(site_dir: Path) -> None:
    secrets = set().union(*secret_lines().values())
    pages = [
        p
        for p in site_dir.rglob("*")
        if p.is_file() and p.suffix in {".html", ".ipynb", ".txt", ".js", ".md"}
    ]
    assert any(p.name == "convolution_by_hand.html" for p in pages)
    leaks = []
    for page in pages:
        text = page.read_text(encoding="utf-8", errors="replace")
        if any(marker in text for marker in MARKERS[:4]) or "hidden=True" in text:
            leaks.append(f"{page}: nbgrader marker")
        for line in secrets:
            if line in text:
                leaks.append(f"{page}: {line}")
    assert leaks == []


@pytest.mark.slow
def test_website_offers_the_student_notebooks(site_dir: Path) -> None:
    downloads = {p.name: p for p in (site_dir / "_downloads").rglob("*.ipynb")}
    for a in ASSIGNMENTS:
        name = f"{notebook_name(a)}.ipynb"
        assert name in downloads
        assert normalise(_load(downloads[name])) == normalise(_load(ROOT / "exercises" / a / name))
    assert not (site_dir / "solutions").exists()
