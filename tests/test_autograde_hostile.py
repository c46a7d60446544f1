"""Hostile and broken submissions through the trusted autograder (``course autograde``).

Every case of ``tests/hostile/cases.py`` is graded in one parallel ``course autograde`` call
(sandbox on). For each: the exact score of every test cell and the reason shown in the
feedback. Around it: the course's files and the other students' grades are unchanged,
the gradebook is private, and no process of a sandbox uid is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import runpy
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_assignments_e2e import course, graded_points, load_nb, solution_sources, student_notebook  # noqa: E402

from course.sandbox import UID_BASE, UID_SLOTS, sandbox_available  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox_available()[0], reason="the grading sandbox (bubblewrap) is unavailable"),
]

A = "01_convolution_by_hand"
NB = "convolution_by_hand.ipynb"
CASES = runpy.run_path(str(ROOT / "tests" / "hostile" / "cases.py"))["CASES"]
CONTROLS = {
    "honest": ({}, []),
    "wrong_ref": (
        {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]},
        ["test_convolve2d_valid", "test_convolve2d_same_full", "test_same_under_flip"],
    ),
}


def tree_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" in p.parts:
                continue
            h.update(str(p).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def grades(root: Path, students: list[str] | None = None) -> dict[tuple[str, str], tuple]:
    """(student, grade_id) -> (auto_score, manual_score, needs_manual_grade), read with nbgrader's API."""
    import warnings

    from nbgrader.api import Gradebook

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(f"sqlite:///{root / 'grading' / 'gradebook.db'}") as gb:
            for sub in gb.find_assignment(A).submissions:
                if students is not None and sub.student.id not in students:
                    continue
                for nb in sub.notebooks:
                    for g in nb.grades:
                        out[(sub.student.id, g.name)] = (g.auto_score, g.manual_score, g.needs_manual_grade)
    return out


def build(case: dict, released: dict, root: Path, student: str) -> tuple[str, bytes]:
    answers = solution_sources(A, case.get("edits"))
    for where in ("prepend", "append"):
        for gid, code in case.get(where, {}).items():
            answers[gid] = code + answers[gid] if where == "prepend" else answers[gid] + code
    nb = student_notebook(released, answers)
    kind = case.get("notebook")
    tests = [
        c
        for c in nb["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade")
        and c["cell_type"] == "code"
        and not c["metadata"]["nbgrader"].get("solution")
    ]
    if kind == "weaken_tests":
        for c in tests:
            c["source"] = "pass"
    elif kind == "delete_tests":
        nb["cells"] = [c for c in nb["cells"] if c not in tests]
    elif kind == "metadata":
        for c in nb["cells"]:
            m = c["metadata"].get("nbgrader")
            if m:
                m.update(grade=False, points=1000, locked=False)
    elif kind == "delete_solution":
        nb["cells"] = [
            c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != "output_size"
        ]
    text = json.dumps(nb)
    subs = {
        "{GRADEBOOK}": str(root / "grading" / "gradebook.db"),
        "{ROOT}": str(root),
        "{AUTOGRADED}": str(root / "grading" / "autograded" / student / A / NB),
    }
    for k, v in subs.items():
        text = text.replace(k, v)
    return case.get("rename", NB), case.get("raw", text.encode())


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("hostile")
    root = base / "course"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    course("release", A, root=root)
    released = load_nb(root / "exercises" / A / NB)
    points = graded_points(released)
    incoming = base / "incoming"
    expected = {}
    all_cases = {**{k: {"edits": e, "fails": f, "reason": ""} for k, (e, f) in CONTROLS.items()}, **CASES}
    for student, case in all_cases.items():
        name, data = build(case, released, root, student)
        folder = incoming / student / A
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)
        expected[student] = {g: (0.0 if g in case["fails"] else p) for g, p in points.items()}
    course("collect", str(incoming), root=root)
    course("autograde", A, "--timeout", "8", *sum((["--student", s] for s in CONTROLS), []), root=root)
    before_controls = grades(root, list(CONTROLS))
    protected = [
        root / "solutions",
        root / "exercises",
        root / "nbgrader_config.py",
        ROOT / "conv_lib",
        ROOT / "course",
    ]
    snapshot = tree_hash(*protected)
    site = Path(json.__file__).parent
    start = time.monotonic()
    out = course("autograde", A, "--timeout", "8", *sum((["--student", s] for s in CASES), []), root=root)
    seconds = time.monotonic() - start
    after_grading = grades(root)
    autograded = {s: (root / "grading" / "autograded" / s / A / NB).read_bytes() for s in all_cases}
    time.sleep(6)  # give a detached process the time to try rewriting a grade
    course("feedback", A, root=root)
    return {
        "root": root,
        "expected": expected,
        "before_controls": before_controls,
        "snapshot": snapshot,
        "protected": protected,
        "site": site,
        "after_grading": after_grading,
        "autograded": autograded,
        "output": out,
        "seconds": seconds,
    }


@pytest.mark.parametrize("student", sorted(CASES))
def test_exact_score_and_reason(graded: dict, student: str) -> None:
    got = {g: r[0] for (s, g), r in graded["after_grading"].items() if s == student}
    assert got == graded["expected"][student]
    flags = {g: r[2] for (s, g), r in graded["after_grading"].items() if s == student}
    assert not any(flags.values()), "no cell may need manual grading by accident"
    reason = CASES[student]["reason"]
    page = graded["root"] / "grading" / "feedback" / student / A / NB.replace(".ipynb", ".html")
    assert reason in html.unescape(page.read_text(encoding="utf-8"))


def test_other_students_untouched(graded: dict) -> None:
    assert grades(graded["root"], list(CONTROLS)) == graded["before_controls"]
    assert graded["before_controls"][("honest", "test_output_size")][0] == 4.0


def test_nothing_changed_after_grading(graded: dict) -> None:
    root = graded["root"]
    assert grades(root) == graded["after_grading"]  # the detached process never wrote
    for s, data in graded["autograded"].items():
        assert (root / "grading" / "autograded" / s / A / NB).read_bytes() == data
    assert tree_hash(*graded["protected"]) == graded["snapshot"]
    assert not (root / "scipy.py").exists()
    assert not (graded["site"] / "scipy.py").exists() and not (graded["site"].parent / "scipy.py").exists()
    assert (root / "grading" / "gradebook.db").stat().st_mode & 0o777 == 0o600


def test_no_process_left_behind(graded: dict) -> None:
    """No process of a sandbox uid outside a live sandbox, and none from this test's grading.

    (Other graders on the machine may be running sandboxes of their own right now: a
    process inside a bubblewrap that is not ours is theirs.)
    """
    import os

    import psutil

    uids = range(UID_BASE, UID_BASE + UID_SLOTS)
    left = []
    for p in psutil.process_iter(["pid", "uids", "cmdline"]):
        if not p.info["uids"] or p.info["uids"].real not in uids:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            chain = p.parents()
            in_bwrap = any(q.name() == "bwrap" for q in chain)
            ours = any(q.pid == os.getpid() for q in chain)
            if ours or not in_bwrap:
                left.append(p.info)
    assert left == []


def test_corpus_is_large_and_quick(graded: dict) -> None:
    assert len(CASES) >= 25
    assert "autograding failed" not in graded["output"].stdout
    assert graded["seconds"] < 180
