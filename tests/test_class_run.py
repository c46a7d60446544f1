"""The class run: 60+ honest and hostile submissions of all four assignments graded by ONE
``python -m course autograde`` (tests/hostile/classrun.py), and a grader that fails.

Asserted around the class run: the command exits 0 and reports every submission as
graded; every honest student (the instructor's solution, vectorised and loop variants,
each with hidden cases of their own) gets full marks; every hostile one its exact score
(per cell: tests/test_autograde_hostile.py); the course's files, the students graded
before and the gradebook's privacy are unchanged; no process of a sandbox uid and no
``/tmp/course-*`` folder is left behind.

The machinery-failure test makes a grader worker die on one student (the test hook
``COURSE_TEST_KILL_WORKER_FOR`` of course/grader.py): that submission is reported as NOT
GRADED with no score stored, the command exits 1 and says how to rerun it, and the other
submissions are graded.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hostile import classrun  # noqa: E402
from hostile.build import assignment_of  # noqa: E402
from hostile.cases import CASES, HONEST  # noqa: E402

from course.config import ASSIGNMENTS  # noqa: E402
from course.sandbox import UID_BASE, UID_SLOTS, sandbox_available  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox_available()[0], reason="the grading sandbox (bubblewrap) is unavailable"),
]

TOTAL = 20.0
MANUAL_ID = "disadvantage_answer"
MANUAL_POINTS = {"04_applications": 3.0}  # the written answer, graded by hand


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return classrun.class_run(tmp_path_factory)


def score_lines(stdout: str) -> dict[str, str]:
    """student -> the score the command printed ("17/20", "NOT GRADED: ...")."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+)\s+(\d\d_\S+)\s+(.*)$", line)
        if m:
            out[m.group(1)] = m.group(3).strip()
    return out


def test_one_command_grades_the_whole_class(run: dict) -> None:
    proc = run["proc"]
    students = run["class_students"]
    assert len(students) >= 60
    assert {assignment_of(run["everyone"][s]) for s in students} == set(ASSIGNMENTS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    printed = score_lines(proc.stdout)
    assert sorted(printed) == sorted(students)
    assert not [s for s, line in printed.items() if "NOT GRADED" in line]
    print(f"class run: {len(students)} submissions in {run['seconds']:.0f} s")


def test_every_honest_student_gets_full_marks(run: dict) -> None:
    honest = [*HONEST, *(s for s, c in CASES.items() if c.get("fails") == [])]
    assert len(HONEST) >= 12
    printed = score_lines(run["proc"].stdout)
    for s in honest:
        a = assignment_of(run["everyone"][s])
        auto = sum(v[0] for (aa, st, g), v in run["after"].items() if st == s and aa == a and g != MANUAL_ID)
        assert auto == TOTAL - MANUAL_POINTS.get(a, 0.0), s
        assert printed[s].startswith(f"{TOTAL - MANUAL_POINTS.get(a, 0.0):g}/{TOTAL:g}"), (s, printed[s])


def test_every_hostile_student_gets_its_exact_total(run: dict) -> None:
    printed = score_lines(run["proc"].stdout)
    for s in CASES:
        expected = run["expected"][s]
        if expected is None:
            continue
        assert printed[s].startswith(f"{sum(expected.values()):g}/{TOTAL:g}"), (s, printed[s])


def test_the_course_and_the_students_graded_before_are_unchanged(run: dict) -> None:
    assert classrun.tree_hash(*run["protected"]) == run["snapshot"]
    root = run["root"]
    assert classrun.grades(root, list(classrun.EARLY)) == run["early_grades"]
    for s, data in run["early_files"].items():
        assert classrun.autograded_nb(root, s, assignment_of(classrun.EARLY[s])).read_bytes() == data
    assert run["early_grades"][("01_convolution_by_hand", "early_bird_a1", "test_output_size")][0] == 4.0


def test_nothing_changes_after_the_run(run: dict) -> None:
    """A detached process of a submission had 6 s to rewrite a grade or a notebook: nothing changed."""
    assert run["late"] == run["after"]
    assert run["late_autograded"] == run["autograded"]
    assert (run["root"] / "grading" / "gradebook.db").stat().st_mode & 0o777 == 0o600


def test_no_sandbox_process_and_no_temporary_folder_left(run: dict) -> None:
    """No process of a sandbox uid outside a live sandbox (another grader on this machine may
    be running its own right now: a process inside a bubblewrap that is not ours is theirs),
    none from this test's runs, and no /tmp/course-* folder made by them."""
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
    new = {n for n in classrun.tmp_leftovers() - run["tmp_before"] if n.startswith("course-")}
    assert new == set()


def test_a_dead_grader_worker_is_reported_not_graded(run: dict) -> None:
    """A grader worker dies on one submission (twice: first in the shared pool, then alone):
    it is NOT GRADED, nothing is stored for it, the command exits 1 and prints how to rerun
    it, and the two submissions queued behind it are graded."""
    root, victim = run["root"], "mf_0_victim"
    others = [s for s in classrun.MACHINERY if s != victim]
    proc = classrun.run_course(
        "autograde",
        "--jobs",
        "1",
        "--timeout",
        classrun.TIMEOUT,
        *[arg for s in classrun.MACHINERY for arg in ("--student", s)],
        root=root,
        env={**run["env"], "COURSE_TEST_KILL_WORKER_FOR": victim},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    printed = score_lines(proc.stdout)
    assert printed[victim].startswith("NOT GRADED: a grading worker process died"), printed
    assert "python -m course autograde 01_convolution_by_hand --student mf_0_victim" in proc.stderr
    assert classrun.grades(root, [victim]) == {}
    assert not classrun.autograded_nb(root, victim, "01_convolution_by_hand").exists()
    for s in others:
        assert printed[s] == "20/20", printed
    # the rerun the message asks for, with the grader healthy again, grades it
    again = classrun.run_course("autograde", "--student", victim, root=root, env=run["env"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert score_lines(again.stdout)[victim] == "20/20"


def test_collect_refused_links_and_unsafe_ids_and_export_is_one_row_each(run: dict) -> None:
    """The incoming folder also held a student id with a comma and a newline, a notebook that
    is a link to the instructor's solution and a student folder that is a link to another
    student's: collect refused each with a message, none was graded, and the CSV export has
    exactly one row per graded submission (no injected row)."""
    import csv

    root = run["root"]
    lines = [ln for ln in run["collect"].stderr.splitlines() if ln.startswith("refused ")]
    for name in run["refused"]:
        assert [ln for ln in lines if repr(name) in ln or (name + "/") in ln], (name, lines)
        assert not (root / "grading" / "submitted" / name).exists()
    submitted = {p.name for p in (root / "grading" / "submitted").iterdir()}
    assert submitted == set(run["everyone"])
    with (root / "grading" / "grades.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    graded = {s for (_, s, _) in run["late"]} | {s for (_, s, _) in run["early_grades"]}
    assert {r["student_id"] for r in rows} == graded  # nbgrader: a row per student and assignment
    keys = [(r["assignment"], r["student_id"]) for r in rows]
    assert len(keys) == len(set(keys))
