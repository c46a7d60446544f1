"""The real grading pipeline, end to end, on a throw-away copy of the course.

``python -m course`` release -> collect -> autograde -> feedback -> export, with:

* ``instructor``: the solution filled into the released notebooks: full marks everywhere
  (assignment 4's hand-graded answer is then given its 3 points, as an instructor would);
* ``blank``: the untouched released notebooks: zero on every autograded cell;
* for each assignment, the wrong submissions of ``tests/submissions/<assignment>.py``: each
  loses exactly the cells it lists, keeps the others, and its feedback shows the hint.

It also runs the student command ``python -m course check`` on a passing and a failing
notebook. Everything runs in one nbgrader process per step, so the whole file takes a
few minutes on two cores.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import html
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
sys.path.insert(0, str(ROOT))

from course.config import ASSIGNMENTS, notebook_name  # noqa: E402

pytestmark = pytest.mark.slow

MANUAL_ID = "disadvantage_answer"
TOTAL = 20  # every assignment is out of 20 points (stated at the top of each notebook)


def course(
    *args: str, root: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m course --root ROOT ARGS`` (``env``: extra environment variables, e.g.
    ``COURSE_SECRET_FILE``) and return the completed process."""
    proc = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"course {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def load_nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def graded_points(nb: dict) -> dict[str, float]:
    """grade_id -> points of every graded cell."""
    out = {}
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade"):
            out[meta["grade_id"]] = float(meta["points"])
    return out


def wrong_submissions(assignment: str) -> dict[str, dict]:
    return runpy.run_path(str(SUBMISSIONS / f"{assignment}.py"))["SUBMISSIONS"]


def solution_sources(
    assignment: str, edits: dict[str, list[tuple[str, str]]] | None = None
) -> dict[str, str]:
    """grade_id -> the student's answer: the solution cell, markers removed, edits applied."""
    nb = load_nb(ROOT / "solutions" / assignment / f"{notebook_name(assignment)}.ipynb")
    answers = {}
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if not meta.get("solution"):
            continue
        src = "".join(cell["source"])
        for old, new in (edits or {}).get(meta["grade_id"], []):
            assert old in src, f"{assignment}/{meta['grade_id']}: edit target not found: {old!r}"
            src = src.replace(old, new)
        lines = [ln for ln in src.split("\n") if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
        answers[meta["grade_id"]] = "\n".join(lines)
    unknown = set(edits or {}) - set(answers)
    assert not unknown, f"{assignment}: edits for unknown solution cells {unknown}"
    return answers


def student_notebook(released: dict, answers: dict[str, str] | None) -> dict:
    """The released notebook with its solution cells answered (None: left untouched)."""
    nb = copy.deepcopy(released)
    if answers is None:
        return nb
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = answers[meta["grade_id"]]
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the whole pipeline once; return what the tests look at."""
    return run_pipeline(tmp_path_factory.mktemp("e2e"))


def run_pipeline(base: Path) -> dict:
    """Copy the course into ``base``, grade every submission, read back the grades."""
    root = base / "course"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    # The instructor secret of this course copy, never the user's own; a fixed one, so that the
    # hidden cases (drawn from it) and hence the cells a wrong submission loses are the same on
    # every run (tests/test_class_run.py grades with a fresh random secret).
    secret_file = base / "instructor" / "course.secret"
    secret_file.parent.mkdir(mode=0o700)
    secret_file.write_text(hashlib.sha256(b"test_assignments_e2e").hexdigest() + "\n", encoding="ascii")
    secret_file.chmod(0o600)
    env = {"COURSE_SECRET_FILE": str(secret_file)}
    course("release", root=root, env=env)

    incoming = base / "incoming"
    expected: dict[tuple[str, str], dict] = {}
    for a in ASSIGNMENTS:
        released = load_nb(root / "exercises" / a / f"{notebook_name(a)}.ipynb")
        points = graded_points(released)
        cases = {"instructor": (solution_sources(a), [], None), "blank": (None, list(points), None)}
        for name, sub in wrong_submissions(a).items():
            cases[f"{a[:2]}_{name}"] = (solution_sources(a, sub["edits"]), sub["fails"], sub["hint"])
        for student, (answers, fails, hint) in cases.items():
            unknown = set(fails) - set(points)
            assert not unknown, f"{a}/{student}: unknown graded cells {unknown}"
            folder = incoming / student / a
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{notebook_name(a)}.ipynb"
            path.write_text(json.dumps(student_notebook(released, answers), indent=1), encoding="utf-8")
            expected[(a, student)] = {"points": points, "fails": set(fails), "hint": hint}

    course("collect", str(incoming), root=root, env=env)
    auto = course("autograde", root=root, env=env)
    # The instructor grades assignment 4's written answer of the solution by hand: 3 points.
    _give_manual_grade(root, "04_applications", "instructor", MANUAL_ID, 3.0)
    course("feedback", root=root, env=env)
    course("export", root=root, env=env)
    with (root / "grading" / "grades_cells.csv").open(encoding="utf-8") as fh:
        cells = {(r["assignment"], r["student_id"], r["grade_id"]): r for r in csv.DictReader(fh)}
    with (root / "grading" / "grades.csv").open(encoding="utf-8") as fh:
        totals = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(fh)}
    return {"root": root, "expected": expected, "cells": cells, "totals": totals, "autograde_output": auto}


def _give_manual_grade(root: Path, assignment: str, student: str, grade_id: str, score: float) -> None:
    code = (
        "import sys; from nbgrader.api import Gradebook\n"
        "with Gradebook(sys.argv[1]) as gb:\n"
        "    g = gb.find_grade(sys.argv[5], sys.argv[4], sys.argv[2], sys.argv[3])\n"
        "    g.manual_score = float(sys.argv[6]); gb.db.commit()\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            f"sqlite:///{root / 'grading' / 'gradebook.db'}",
            assignment,
            student,
            notebook_name(assignment),
            grade_id,
            str(score),
        ],
        check=True,
        cwd=root,
    )


def test_every_submission_was_autograded(graded: dict) -> None:
    out = graded["autograde_output"]
    assert set(graded["expected"]) <= set(graded["totals"])
    assert "NOT GRADED" not in out.stdout
    assert f"{len(graded['expected'])}/{len(graded['expected'])}" in out.stderr  # the progress bar's end


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_instructor_solution_gets_full_marks(graded: dict, assignment: str) -> None:
    row = graded["totals"][(assignment, "instructor")]
    assert float(row["max_score"]) == TOTAL
    assert float(row["score"]) == TOTAL
    for grade_id, pts in graded["expected"][(assignment, "instructor")]["points"].items():
        assert float(graded["cells"][(assignment, "instructor", grade_id)]["score"]) == pts, grade_id


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_scores_zero(graded: dict, assignment: str) -> None:
    row = graded["totals"][(assignment, "blank")]
    assert float(row["score"]) == 0.0
    assert float(row["max_score"]) == TOTAL
    for grade_id in graded["expected"][(assignment, "blank")]["points"]:
        cell = graded["cells"][(assignment, "blank", grade_id)]
        assert float(cell["score"]) == 0.0, grade_id


def _wrong(assignment: str) -> list[str]:
    return [f"{assignment[:2]}_{name}" for name in wrong_submissions(assignment)]


@pytest.mark.parametrize(("assignment", "student"), [(a, s) for a in ASSIGNMENTS for s in _wrong(a)])
def test_wrong_submission_loses_exactly_its_cells(graded: dict, assignment: str, student: str) -> None:
    exp = graded["expected"][(assignment, student)]
    scores = {gid: float(graded["cells"][(assignment, student, gid)]["score"]) for gid in exp["points"]}
    want = {
        gid: (0.0 if gid in exp["fails"] or gid == MANUAL_ID else pts) for gid, pts in exp["points"].items()
    }
    assert scores == want
    total = sum(want.values())
    assert float(graded["totals"][(assignment, student)]["score"]) == total
    assert total < TOTAL


@pytest.mark.parametrize(("assignment", "student"), [(a, s) for a in ASSIGNMENTS for s in _wrong(a)])
def test_feedback_shows_the_hint(graded: dict, assignment: str, student: str) -> None:
    exp = graded["expected"][(assignment, student)]
    page = (
        graded["root"] / "grading" / "feedback" / student / assignment / f"{notebook_name(assignment)}.html"
    )
    text = html.unescape(page.read_text(encoding="utf-8"))
    assert exp["hint"] in text


def test_manual_answer_waits_for_the_instructor(graded: dict) -> None:
    cell = graded["cells"][("04_applications", "04_gx_only", MANUAL_ID)]
    assert cell["needs_manual_grade"] == "True"
    assert float(cell["score"]) == 0.0


def test_student_check_command(graded: dict, tmp_path: Path) -> None:
    a = ASSIGNMENTS[0]
    incoming = graded["root"].parent / "incoming"  # run_pipeline's layout
    good = course(
        "check",
        str(incoming / "instructor" / a / f"{notebook_name(a)}.ipynb"),
        root=graded["root"],
        check=False,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "8/8 visible tests passed. This is not your score" in good.stdout
    bad = course(
        "check",
        str(incoming / f"{a[:2]}_not_flipped" / a / f"{notebook_name(a)}.ipynb"),
        root=graded["root"],
        check=False,
    )
    assert bad.returncode == 1
    assert "FAIL  Part 4: convolution, and why the flip matters (5 points): check_convolve2d" in bad.stdout
    assert "you computed cross-correlation" in bad.stdout
    assert "5/8 visible tests passed." in bad.stdout  # the flip question too
