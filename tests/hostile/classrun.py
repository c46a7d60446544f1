"""The class run: every hostile case and every honest student, graded by ONE ``course autograde``.

Shared by tests/test_autograde_hostile.py (each case's exact scores and reasons) and
tests/test_class_run.py (honest students, exit status, nothing else touched), and computed
once per pytest process (:func:`class_run`). The steps, on a throw-away copy of the course:

1. ``release`` (it creates the instructor secret, here in a temporary file named by
   ``COURSE_SECRET_FILE``), build every submission, ``collect`` them;
2. grade two "early" students first, and take a snapshot of their grades and of the
   course's files;
3. THE class run: one ``course autograde`` over all the other submissions, all four
   assignments at once (the grader process limited to 8 GiB of address space, so that a
   regression cannot take the test machine down);
4. wait for a detached process to try its late write, regrade the random-answer student,
   write the feedback.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from hostile.build import assignment_of, build  # noqa: E402
from hostile.cases import A1, CASES, HONEST  # noqa: E402
from test_assignments_e2e import graded_points, load_nb  # noqa: E402

from course.config import ASSIGNMENTS, notebook_name  # noqa: E402
from course.secret import SECRET_ENV  # noqa: E402

#: Seconds per test cell (and for running a notebook's cells) in the class run.
TIMEOUT = "20"
#: Graded before the class run; the class run must leave them alone.
EARLY = {"early_bird_a1": {"a": "01"}, "early_bird_a2": {"a": "02"}}
#: Graded only by the machinery-failure test (tests/test_class_run.py).
MACHINERY = {"mf_0_victim": {"a": "01"}, "mf_1_next": {"a": "01"}, "mf_2_last": {"a": "01"}}
#: The grader's address-space limit in the class run (a safety net for the test machine).
GRADER_AS_LIMIT = 8 * 2**30

_CACHE: dict[str, dict] = {}


def run_course(
    *args: str, root: Path, env: dict[str, str] | None = None, limit_memory: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python -m course --root ROOT ARGS`` (not checked: the caller looks at the status)."""

    def limit() -> None:
        if limit_memory:
            resource.setrlimit(resource.RLIMIT_AS, (GRADER_AS_LIMIT, GRADER_AS_LIMIT))

    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "course", "--root", str(root), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, **(env or {})},
        preexec_fn=limit,  # noqa: PLW1509
    )


def checked(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if proc.returncode != 0:
        raise AssertionError(f"{proc.args[3:]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def grades(root: Path, students: list[str] | None = None) -> dict[tuple[str, str, str], tuple]:
    """(assignment, student, grade_id) -> (auto_score, manual_score, needs_manual_grade)."""
    from nbgrader.api import Gradebook

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(f"sqlite:///{root / 'grading' / 'gradebook.db'}") as gb:
            for assignment in gb.assignments:
                for sub in assignment.submissions:
                    if students is not None and sub.student.id not in students:
                        continue
                    for nb in sub.notebooks:
                        for g in nb.grades:
                            out[(assignment.name, sub.student.id, g.name)] = (
                                g.auto_score,
                                g.manual_score,
                                g.needs_manual_grade,
                            )
    return out


def tree_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" in p.parts:
                continue
            h.update(str(p).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def tmp_leftovers() -> set[str]:
    """Names in /tmp that the grader's sandboxes create (course-*, sandbox-*)."""
    return {p.name for p in Path("/tmp").iterdir() if p.name.startswith(("course-", "sandbox-"))}


def expected_scores(case: dict, points: dict[str, float]) -> dict[str, float] | None:
    """grade_id -> expected auto score of every autograded test cell (None: decided by regrade)."""
    fails = case.get("fails", [])
    if fails == "RANDOM":
        return None
    tests = {g: p for g, p in points.items() if g != "disadvantage_answer"}
    if fails == "ALL":
        return dict.fromkeys(tests, 0.0)
    unknown = set(fails) - set(tests)
    assert not unknown, f"unknown test cells {unknown}"
    return {g: (0.0 if g in fails else p) for g, p in tests.items()}


def feedback_page(root: Path, student: str, assignment: str) -> Path:
    return root / "grading" / "feedback" / student / assignment / f"{notebook_name(assignment)}.html"


def autograded_nb(root: Path, student: str, assignment: str) -> Path:
    return root / "grading" / "autograded" / student / assignment / f"{notebook_name(assignment)}.ipynb"


def class_run(base_factory: Any) -> dict:
    """The class run's results (computed once per process; ``base_factory`` is pytest's
    ``tmp_path_factory``)."""
    if "run" not in _CACHE:
        _CACHE["run"] = _run(base_factory.mktemp("classrun"))
    return _CACHE["run"]


def _run(base: Path) -> dict:
    root = base / "course"
    root.mkdir()
    shutil.copy2(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "solutions", root / "solutions")
    secret_file = base / "instructor" / "course.secret"
    env = {SECRET_ENV: str(secret_file)}
    checked(run_course("release", root=root, env=env))
    from course.secret import load_secret

    secret = load_secret(secret_file)
    released = {a: load_nb(root / "exercises" / a / f"{notebook_name(a)}.ipynb") for a in ASSIGNMENTS}
    points = {a: graded_points(nb) for a, nb in released.items()}

    everyone = {**CASES, **HONEST, **EARLY, **MACHINERY}
    incoming = base / "incoming"
    expected: dict[str, dict[str, float] | None] = {}
    for student, case in everyone.items():
        a = assignment_of(case)
        name, data = build(case, released[a], root, student, secret, str(secret_file))
        folder = incoming / student / a
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)
        expected[student] = expected_scores({"fails": [], **case}, points[a])
    # what collect must refuse: an id that would inject CSV rows, a notebook that is a link
    # to the instructor's solution, a student folder that is a link to another student's
    unsafe_id = "mallory,20\nmallory"
    (incoming / unsafe_id / A1).mkdir(parents=True)
    (incoming / unsafe_id / A1 / f"{notebook_name(A1)}.ipynb").write_bytes(
        (incoming / "honest_a1_solution_0" / A1 / f"{notebook_name(A1)}.ipynb").read_bytes()
    )
    (incoming / "linked_notebook" / A1).mkdir(parents=True)
    (incoming / "linked_notebook" / A1 / f"{notebook_name(A1)}.ipynb").symlink_to(
        root / "solutions" / A1 / f"{notebook_name(A1)}.ipynb"
    )
    (incoming / "linked_folder").symlink_to(incoming / "honest_a1_solution_1")
    refused = {unsafe_id, "linked_notebook", "linked_folder"}
    collect = checked(run_course("collect", str(incoming), root=root, env=env))

    def students_args(names: list[str]) -> list[str]:
        return [arg for s in names for arg in ("--student", s)]

    checked(run_course("autograde", "--timeout", TIMEOUT, *students_args(list(EARLY)), root=root, env=env))
    early_grades = grades(root, list(EARLY))
    early_files = {s: autograded_nb(root, s, assignment_of(c)).read_bytes() for s, c in EARLY.items()}
    # the course copy, and the one folder of the repository bound into the sandboxes (read-only);
    # the rest of the repository is not there at all (a canary case tries to write to it)
    protected = [root / "solutions", root / "exercises", root / "nbgrader_config.py", REPO / "coursekit"]
    snapshot = tree_hash(*protected)
    tmp_before = tmp_leftovers()

    class_students = sorted({**CASES, **HONEST})
    start = time.monotonic()
    proc = run_course(
        "autograde",
        "--timeout",
        TIMEOUT,
        *students_args(class_students),
        root=root,
        env=env,
        limit_memory=True,
    )
    seconds = time.monotonic() - start
    after = grades(root)
    autograded = {s: autograded_nb(root, s, assignment_of(everyone[s])).read_bytes() for s in class_students}
    time.sleep(6)  # a detached process of a submission would try its late write now
    late = grades(root)
    late_autograded = {
        s: autograded_nb(root, s, assignment_of(everyone[s])).read_bytes() for s in class_students
    }
    regraded_students = [s for s, c in {**CASES, **HONEST}.items() if c.get("regrade")]
    regrade = checked(
        run_course(
            "autograde",
            "--regrade",
            "--timeout",
            TIMEOUT,
            *students_args(regraded_students),
            root=root,
            env=env,
        )
    )
    regraded = grades(root, regraded_students)
    checked(run_course("feedback", root=root, env=env))
    checked(run_course("export", root=root, env=env))
    pages = {}
    for s in class_students:
        page = feedback_page(root, s, assignment_of(everyone[s]))
        pages[s] = page.read_text(encoding="utf-8") if page.exists() else ""
    return {
        "base": base,
        "root": root,
        "secret": secret,
        "env": env,
        "points": points,
        "expected": expected,
        "everyone": everyone,
        "class_students": class_students,
        "proc": proc,
        "seconds": seconds,
        "after": after,
        "late": late,
        "autograded": autograded,
        "late_autograded": late_autograded,
        "regrade": regrade,
        "regraded": regraded,
        "early_grades": early_grades,
        "early_files": early_files,
        "protected": protected,
        "snapshot": snapshot,
        "tmp_before": tmp_before,
        "pages": pages,
        "pages_text": {s: html.unescape(p) for s, p in pages.items()},
        "collect": collect,
        "refused": refused,
    }


def cell_outputs_text(root: Path, student: str, assignment: str) -> str:
    """Every output text of the autograded notebook (what the feedback shows), one string."""
    nb = json.loads(autograded_nb(root, student, assignment).read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        parts.append(cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"]))
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")) + str(out.get("evalue", "")))
    return "\n".join(parts)
