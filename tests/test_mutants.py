"""The mutant corpus (tests/mutants/corpus.py): every realistic wrong implementation loses
exactly its cells, with the hint that names its bug or no hint at all, and its bug already
shows in the visible tests; every unusual but correct implementation gets full marks.

Two ways of grading, the same verdicts:

* directly: the instructor's test cells (hidden tests included) run on the mutant's answers,
  executed as a notebook would, inside a grading context (what the grader process does with
  its proxies), and the visible tests alone outside it (what a student sees with
  ``course check``);
* once through the real pipeline: ``course release``, ``collect``, ``autograde`` (sandboxed),
  ``feedback`` and ``export`` on a batch of mutants and correct variants from every
  assignment, on a throw-away copy of the course.

Run as a script, it prints the closing numbers: mutants, false passes, misleading hints and
generic-only hints.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import functools
import hashlib
import html
import io
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.config import notebook_name  # noqa: E402
from course.grading import grading_context  # noqa: E402

CORPUS = runpy.run_path(str(Path(__file__).parent / "mutants" / "corpus.py"))
MUTANTS: dict[str, dict] = CORPUS["MUTANTS"]
CORRECT: dict[str, dict] = CORPUS["CORRECT"]
ASSIGNMENT: dict[str, str] = CORPUS["ASSIGNMENT"]
#: The grading context's secret in the direct runs (the pipeline makes its own).
TEST_SECRET = bytes(range(100, 132))
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)
LIKELY = re.compile(r"Likely bug \(((?:[^()]|\([^()]*\))*)\)")


@functools.cache
def _solution(assignment: str) -> dict:
    path = ROOT / "solutions" / assignment / f"{notebook_name(assignment)}.ipynb"
    return json.loads(path.read_text(encoding="utf-8"))


def _meta(cell: dict) -> dict:
    return cell["metadata"].get("nbgrader", {})


def graded_test_cells(assignment: str) -> dict[str, tuple[float, str]]:
    """grade_id -> (points, source with hidden tests) of every autograded test cell."""
    return {
        _meta(c)["grade_id"]: (float(_meta(c)["points"]), "".join(c["source"]))
        for c in _solution(assignment)["cells"]
        if c["cell_type"] == "code" and _meta(c).get("grade")
    }


def answers(assignment: str, spec: dict | None) -> dict[str, str]:
    """grade_id -> the student's code: the solution cell (markers removed), edited or replaced."""
    out = {}
    spec = spec or {}
    for cell in _solution(assignment)["cells"]:
        meta = _meta(cell)
        if cell["cell_type"] != "code" or not meta.get("solution"):
            continue
        gid = meta["grade_id"]
        src = "".join(cell["source"])
        for old, new in spec.get("edits", {}).get(gid, []):
            assert old in src, f"{assignment}/{gid}: edit target not found: {old!r}"
            src = src.replace(old, new)
        src = spec.get("replace", {}).get(gid, src)
        lines = [ln for ln in src.split("\n") if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
        out[gid] = "\n".join(lines)
    unknown = (set(spec.get("edits", {})) | set(spec.get("replace", {}))) - set(out)
    assert not unknown, f"{assignment}: answers for unknown cells {unknown}"
    return out


def namespace(assignment: str, spec: dict | None) -> dict[str, Any]:
    """What the notebook defines after its given cells and the (edited) answers ran in order
    (the training cell is skipped: the tests train the network themselves)."""
    code = answers(assignment, spec)
    ns: dict[str, Any] = {"__name__": "submission"}
    for cell in _solution(assignment)["cells"]:
        gid = _meta(cell).get("grade_id", "")
        if cell["cell_type"] != "code" or gid == "training":
            continue
        if gid.startswith("given"):
            src = "".join(cell["source"])
        elif gid in code:
            src = code[gid]
        else:
            continue
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
            exec(compile(src, f"<{gid}>", "exec"), ns)  # noqa: S102 - the corpus's own code
    return ns


def run_tests(assignment: str, ns: dict[str, Any], hidden: bool, student: str = "mutant") -> dict[str, str]:
    """grade_id -> "" (passed) or the failure's message, for every test cell.

    ``hidden``: the full cells inside a grading context (what the grader runs); otherwise
    the visible part only, outside any context (what a student runs)."""
    results = {}
    for gid, (_, src) in graded_test_cells(assignment).items():
        code = src if hidden else HIDDEN.sub("", src)
        cell_ns = dict(ns)
        ctx = grading_context(TEST_SECRET, student, assignment) if hidden else contextlib.nullcontext()
        try:
            with ctx, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a mutant's own 0 / 0, log 0
                exec(compile(code, f"<{gid}>", "exec"), cell_ns)  # noqa: S102 - the course's test cells
            results[gid] = ""
        except Exception as err:  # noqa: BLE001 - a failing test cell
            results[gid] = f"{type(err).__name__}: {err}" or type(err).__name__
    return results


@functools.cache
def graded(name: str) -> tuple[dict[str, str], dict[str, str]]:
    """(hidden-included results, visible-only results) of a mutant or correct variant."""
    spec = MUTANTS.get(name) or CORRECT[name]
    assignment = ASSIGNMENT[spec["a"]]
    ns = namespace(assignment, spec)
    return run_tests(assignment, ns, hidden=True), run_tests(
        assignment, namespace(assignment, spec), hidden=False
    )


def hints_shown(results: dict[str, str]) -> list[str]:
    return [m for msg in results.values() for m in LIKELY.findall(msg)]


# ---------------------------------------------------------------------------------------
# Direct: every mutant and correct variant
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_loses_its_cells_with_the_right_hint(name: str) -> None:
    spec = MUTANTS[name]
    full, visible = graded(name)
    failed = sorted(g for g, msg in full.items() if msg)
    assert failed == sorted(spec["fails"]), {g: full[g][:300] for g in failed}
    text = "\n".join(full[g] for g in failed)
    shown = hints_shown(full)
    misleading = [h for h in shown if h not in spec["names"]]
    assert not misleading, text
    if spec["hint"] is None:
        assert not shown, text
    else:
        assert spec["hint"] in text, text
    # The bug already shows before grading: some visible test fails, with the same hint.
    visible_failed = [g for g, msg in visible.items() if msg]
    assert visible_failed, f"{name}: every visible test passes"
    assert set(visible_failed) <= set(spec["fails"]), visible_failed
    assert not [h for h in hints_shown(visible) if h not in spec["names"]], visible


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_variant_gets_full_marks(name: str) -> None:
    full, visible = graded(name)
    assert not any(full.values()), {g: m[:300] for g, m in full.items() if m}
    assert not any(visible.values()), {g: m[:300] for g, m in visible.items() if m}


def test_the_solutions_pass_every_test() -> None:
    for assignment in ASSIGNMENT.values():
        results = run_tests(assignment, namespace(assignment, None), hidden=True, student="instructor")
        assert not any(results.values()), {g: m[:300] for g, m in results.items() if m}


def test_the_corpus_covers_every_assignment_and_some_generic_only() -> None:
    assert {s["a"] for s in MUTANTS.values()} == set(ASSIGNMENT)
    assert {s["a"] for s in CORRECT.values()} == set(ASSIGNMENT)
    assert len(MUTANTS) >= 30
    assert any(s["hint"] is None for s in MUTANTS.values())


# ---------------------------------------------------------------------------------------
# The real pipeline, once, on a batch
# ---------------------------------------------------------------------------------------


def _course(*args: str, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, (
        f"course {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("mutants")
    root = base / "course"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    # A fixed instructor secret of this course copy (never the user's own), so that the hidden
    # cases, and so the cells a mutant loses, are the same on every run.
    secret = base / "instructor" / "course.secret"
    secret.parent.mkdir(mode=0o700)
    secret.write_text(hashlib.sha256(b"test_mutants").hexdigest() + "\n", encoding="ascii")
    secret.chmod(0o600)
    env = {"COURSE_SECRET_FILE": str(secret), "COURSE_EXCHANGE": str(base / "x")}
    _course("release", "--no-exchange", root=root, env=env)
    students = {n: MUTANTS[n] for n in CORPUS["PIPELINE"]} | {
        n: CORRECT[n] for n in CORPUS["PIPELINE_CORRECT"]
    }
    for name, spec in students.items():
        a = ASSIGNMENT[spec["a"]]
        released = json.loads(
            (root / "exercises" / a / f"{notebook_name(a)}.ipynb").read_text(encoding="utf-8")
        )
        nb = copy.deepcopy(released)
        code = answers(a, spec)
        for cell in nb["cells"]:
            if _meta(cell).get("solution") and cell["cell_type"] == "code":
                cell["source"] = code[_meta(cell)["grade_id"]]
        folder = base / "incoming" / name / a
        folder.mkdir(parents=True)
        (folder / f"{notebook_name(a)}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    _course("collect", str(base / "incoming"), root=root, env=env)
    _course("autograde", root=root, env=env)
    _course("feedback", root=root, env=env)
    _course("export", root=root, env=env)
    with (root / "grading" / "grades_cells.csv").open(encoding="utf-8") as fh:
        cells = {(r["student_id"], r["grade_id"]): float(r["score"]) for r in csv.DictReader(fh)}
    return {"root": root, "students": students, "cells": cells}


@pytest.mark.slow
def test_pipeline_scores_and_hints_match(pipeline: dict[str, Any]) -> None:
    for name, spec in pipeline["students"].items():
        a = ASSIGNMENT[spec["a"]]
        fails = set(spec.get("fails", []))
        for gid, (points, _) in graded_test_cells(a).items():
            assert pipeline["cells"][(name, gid)] == (0.0 if gid in fails else points), (name, gid)
        page = pipeline["root"] / "grading" / "feedback" / name / a / f"{notebook_name(a)}.html"
        text = html.unescape(page.read_text(encoding="utf-8"))
        if spec.get("hint"):
            assert spec["hint"] in text, name
        shown = LIKELY.findall(text)
        assert not [h for h in shown if h not in spec.get("names", [])], (name, shown)
        assert "np.float64(" not in text and "np.float32(" not in text, name  # numbers as numbers


def summary() -> str:
    """The closing numbers of issue 10."""
    false_passes = misleading = generic_only = 0
    for name, spec in MUTANTS.items():
        full, _ = graded(name)
        if not any(full.values()):
            false_passes += 1
        shown = hints_shown(full)
        misleading += sum(h not in spec["names"] for h in shown)
        named = spec["hint"] is not None and spec["hint"] in "\n".join(full.values())
        generic_only += not named
    lost = sum(1 for n in CORRECT if any(graded(n)[0].values()))
    return (
        f"{len(MUTANTS)} mutants: {false_passes} false passes, {misleading} misleading hints, "
        f"{generic_only} with the generic message only; {len(CORRECT)} correct variants, {lost} lost points"
    )


if __name__ == "__main__":
    print(summary())


# ---------------------------------------------------------------------------------------
# The student's path
# ---------------------------------------------------------------------------------------


def _released(assignment: str) -> dict:
    path = ROOT / "exercises" / assignment / f"{notebook_name(assignment)}.ipynb"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENT.values()))
def test_each_notebook_says_how_to_get_check_and_hand_in(assignment: str) -> None:
    intro = "".join(_released(assignment)["cells"][0]["source"])
    for words in (
        "*Get it*",
        'pip install "conv-lib[student] @ git+',
        f"python -m course check {notebook_name(assignment)}.ipynb",
        "*Hand it in*",
        f"nbgrader submit {assignment}",
        "score comes with the grading, not before",
    ):
        assert words in intro, words
    text = "\n".join(
        "".join(c["source"]) for c in _released(assignment)["cells"] if c["cell_type"] == "markdown"
    )
    assert text.count("*Conventions.*") >= 2


def test_assignment3_gives_no_forward_pass() -> None:
    """Assignment 2's answer (a conv2d forward) is not handed out in assignment 3."""
    for cell in _released(ASSIGNMENT["03"])["cells"]:
        if cell["cell_type"] == "code" and not _meta(cell).get("solution"):
            assert "def conv2d" not in "".join(cell["source"])


def test_course_check_names_tests_as_the_student_sees_them(tmp_path: Path) -> None:
    a = ASSIGNMENT["01"]
    nb = copy.deepcopy(_released(a))
    code = answers(a, MUTANTS["convolve_not_flipped"])
    for cell in nb["cells"]:
        if _meta(cell).get("solution") and cell["cell_type"] == "code":
            cell["source"] = code[_meta(cell)["grade_id"]]
    path = tmp_path / f"{notebook_name(a)}.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "course", "check", path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "FAIL  Part 4: convolution, and why the flip matters" in out
    assert 'check_convolve2d(convolve2d, modes=("valid",))' in out
    assert "PASS  Part 1: zero padding" in out
    assert "Likely bug (kernel not flipped): you computed cross-correlation" in out
    assert "5/8 visible tests passed. This is not your score" in out
    assert "points." not in out and "/20" not in out  # no score before grading
    for internal in ("test_convolve2d_valid", "np.float64(", "WARNING", "without encryption"):
        assert internal not in out, internal
