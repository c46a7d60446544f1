"""Instructor commands: release, collect, autograde, feedback, export (nbgrader underneath).

Every function takes the course folder ``root`` and changes into it while nbgrader runs
(nbgrader reads ``nbgrader_config.py`` from the current directory only).

Autograding is split so that the execution of one submission is one function,
:func:`autograde_submission`; a sandboxed runner can replace it (see ``autograde``'s
``grade_one`` argument) without touching the loop, the progress bar or the report.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.config import GRADING, RELEASE, SOURCE, check_assignments, inside, notebook_name

#: Release-notebook metadata that must not reach students (jupytext's can point back to sources).
_PRIVATE_METADATA = ("jupytext", "widgets", "toc", "varInspector")


def load_config(root: Path) -> Any:
    """nbgrader's configuration from ``root/nbgrader_config.py``."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def nbgrader_api(root: Path) -> Any:
    """An in-process nbgrader API for the course at ``root`` (call inside :func:`inside`)."""
    import logging
    import warnings

    from nbgrader.apps import NbGraderAPI
    from sqlalchemy.exc import SAWarning

    # nbgrader 0.9 with SQLAlchemy 2 warns about its own session handling; not actionable here.
    warnings.filterwarnings("ignore", category=SAWarning)

    (Path(root) / GRADING).mkdir(exist_ok=True)
    # nbgrader runs the `alembic` script of its environment: make it findable when the
    # venv is not activated.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    api = NbGraderAPI(config=load_config(root))
    api.log.setLevel(logging.ERROR)
    return api


def _fail(what: str, result: dict[str, Any]) -> None:
    details = (result.get("error") or "") + "\n" + (result.get("log") or "")
    raise SystemExit(f"{what} failed:\n{details.strip()}")


# ---------------------------------------------------------------------------------------
# release
# ---------------------------------------------------------------------------------------


def release(root: Path, assignments: Sequence[str] | None = None) -> list[Path]:
    """Generate ``exercises/<a>/<notebook>.ipynb`` from ``solutions/<a>/`` for each assignment.

    Refuses a source folder holding anything but its notebook (nbgrader would copy it to
    students), strips private notebook metadata, and checks that no solution or hidden
    test survived. Also records the assignment in the gradebook (needed to autograde).
    """
    written = []
    with inside(root):
        api = nbgrader_api(root)
        for a in check_assignments(list(assignments or [])):
            src = root / SOURCE / a
            expected = f"{notebook_name(a)}.ipynb"
            extra = sorted(
                p.name for p in src.iterdir() if p.name != expected and p.name != ".ipynb_checkpoints"
            )
            if not (src / expected).is_file():
                raise SystemExit(f"{src} has no {expected}")
            if extra:
                raise SystemExit(
                    f"{src} must hold only {expected} (nbgrader would release {extra} to students)"
                )
            result = api.generate_assignment(a, force=True, create=True)
            if not result["success"]:
                _fail(f"generate_assignment {a}", result)
            out = root / RELEASE / a / expected
            _clean_release(out)
            written.append(out)
    return written


def _clean_release(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for key in _PRIVATE_METADATA:
        nb["metadata"].pop(key, None)
    text = json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "MARK SCHEME"):
        if marker in text:
            raise SystemExit(f"{path}: '{marker}' survived the release; fix the source notebook")
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------
# collect
# ---------------------------------------------------------------------------------------


def collect(root: Path, folder: Path | None = None, assignments: Sequence[str] | None = None) -> list[Path]:
    """Copy submissions into ``grading/submitted/<student>/<assignment>/``.

    ``folder`` is laid out as ``<folder>/<student>/<assignment>/<notebook>.ipynb``; only
    the expected notebook of known assignments is taken (anything else is reported and
    skipped). Without ``folder``, nbgrader's exchange is used (``nbgrader collect``).
    """
    wanted = check_assignments(list(assignments or []))
    copied: list[Path] = []
    if folder is None:
        with inside(root):
            api = nbgrader_api(root)
            for a in wanted:
                result = api.collect(a)
                if not result["success"]:
                    _fail(f"nbgrader collect {a}", result)
        return copied
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder")
    for student_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for a in wanted:
            nb = student_dir / a / f"{notebook_name(a)}.ipynb"
            if not nb.is_file():
                others = sorted((student_dir / a).glob("*.ipynb")) if (student_dir / a).is_dir() else []
                if len(others) != 1:
                    continue
                print(f"{student_dir.name}/{a}: took {others[0].name} (expected {nb.name})", file=sys.stderr)
                nb = others[0]
            dest = root / GRADING / "submitted" / student_dir.name / a
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            shutil.copy2(nb, dest / nb.name)
            copied.append(dest / nb.name)
        for other in sorted(p.name for p in student_dir.iterdir() if p.is_dir() and p.name not in wanted):
            print(f"skipped {student_dir.name}/{other}: not one of the assignments", file=sys.stderr)
    return copied


# ---------------------------------------------------------------------------------------
# autograde
# ---------------------------------------------------------------------------------------


@dataclass
class GradeResult:
    """The outcome of autograding one submission."""

    assignment: str
    student: str
    success: bool
    message: str = ""


def autograde_submission(root: Path, api: Any, assignment: str, student: str) -> GradeResult:
    """Autograde one submission with nbgrader (executes the student's notebook).

    This is the unit a sandboxed runner replaces: it must leave the autograded notebook
    in ``grading/autograded/<student>/<assignment>/`` and the scores in the gradebook.
    """
    result = api.autograde(assignment, student, force=True, create=True)
    message = "" if result["success"] else (result.get("error") or result.get("log") or "").strip()
    return GradeResult(assignment, student, bool(result["success"]), message)


def submissions(
    root: Path, assignments: Sequence[str], students: Sequence[str] | None = None, any_notebook: bool = False
) -> list[tuple[str, str]]:
    """(assignment, student) of every submitted notebook, sorted.

    ``any_notebook``: also an assignment folder holding no notebook of the expected name
    (a renamed notebook, or none: the trusted grader scores it and says why).
    """
    base = root / GRADING / "submitted"
    found = []
    if base.is_dir():
        for student_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            if students and student_dir.name not in students:
                continue
            for a in assignments:
                if (student_dir / a / f"{notebook_name(a)}.ipynb").is_file() or (
                    any_notebook and (student_dir / a).is_dir()
                ):
                    found.append((a, student_dir.name))
    return sorted(found)


def progress(done: int, total: int, label: str, width: int = 30) -> None:
    """A one-line textual progress bar on stderr: ``[#####.....] 3/7 label``."""
    filled = width * done // max(total, 1)
    end = "\n" if done == total or not sys.stderr.isatty() else ""
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<50.50}{end}")
    sys.stderr.flush()


def _ensure_in_gradebook(root: Path, api: Any, assignments: Sequence[str]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(api.coursedir.db_url) as gb:
        missing = []
        for a in assignments:
            try:
                gb.find_assignment(a)
            except MissingEntry:
                missing.append(a)
    if missing:
        print(f"recording {missing} in the gradebook first (course release)", file=sys.stderr)
        release(root, missing)


def autograde(
    root: Path,
    assignments: Sequence[str] | None = None,
    students: Sequence[str] | None = None,
    grade_one: Callable[[Path, Any, str, str], GradeResult] | None = None,
    *,
    stock: bool = False,
    allow_unsandboxed: bool = False,
    jobs: int | None = None,
    timeout: float | None = None,
) -> list[GradeResult]:
    """Autograde every submission (or those of ``students``), with a progress bar.

    By default the trusted path grades (:mod:`course.trusted`: the submission's answers in
    the instructor's notebook, recorded in a sandbox, the instructor's tests replayed
    outside), ``jobs`` submissions at a time. ``stock=True`` runs stock ``nbgrader
    autograde`` instead (it executes student code with the grader's rights: for comparison
    only), as does passing ``grade_one``.
    """
    wanted = check_assignments(list(assignments or []))
    results: list[GradeResult] = []
    with inside(root):
        todo = submissions(root, wanted, students, any_notebook=not stock and grade_one is None)
        if not todo:
            print("nothing to autograde: no submissions in grading/submitted/", file=sys.stderr)
            return results
        if not stock and grade_one is None:
            from course.trusted import skip_iri_grammars

            skip_iri_grammars()
        api = nbgrader_api(root)
        _ensure_in_gradebook(root, api, sorted({a for a, _ in todo}))
        if not stock and grade_one is None:
            from course.trusted import autograde_trusted

            if timeout is None:
                timeout = float(load_config(root).ExecutePreprocessor.get("timeout", 120))
            progress(0, len(todo), "recording in sandboxes")
            done = autograde_trusted(
                root,
                todo,
                db_url=api.coursedir.db_url,
                jobs=jobs,
                timeout=timeout,
                allow_unsandboxed=allow_unsandboxed,
                progress=progress,
            )
            return [GradeResult(a, s, ok, msg) for a, s, ok, msg in done]
        grade_one = grade_one or autograde_submission
        for k, (a, student) in enumerate(todo):
            progress(k, len(todo), f"{student}/{a}")
            results.append(grade_one(root, api, a, student))
        progress(len(todo), len(todo), "done")
    for r in results:
        if not r.success:
            print(f"FAILED {r.student}/{r.assignment}: {r.message}", file=sys.stderr)
    return results


# ---------------------------------------------------------------------------------------
# feedback
# ---------------------------------------------------------------------------------------


def feedback(
    root: Path, assignments: Sequence[str] | None = None, students: Sequence[str] | None = None
) -> list[Path]:
    """HTML feedback ``grading/feedback/<student>/<assignment>/<notebook>.html`` per autograded submission."""
    wanted = check_assignments(list(assignments or []))
    written = []
    with inside(root):
        api = nbgrader_api(root)
        base = root / GRADING / "autograded"
        todo = [
            (a, s)
            for a, s in submissions(root, wanted, students, any_notebook=True)
            if (base / s / a).is_dir()
        ]
        for k, (a, student) in enumerate(todo):
            progress(k, len(todo), f"{student}/{a}")
            result = api.generate_feedback(a, student, force=True)
            if not result["success"]:
                _fail(f"generate_feedback {student}/{a}", result)
            written.append(root / GRADING / "feedback" / student / a / f"{notebook_name(a)}.html")
        if todo:
            progress(len(todo), len(todo), "done")
    return written


# ---------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------

CELL_COLUMNS = (
    "assignment",
    "student_id",
    "notebook",
    "grade_id",
    "score",
    "max_score",
    "needs_manual_grade",
)


def export(root: Path, to: Path | None = None, cells: Path | None = None) -> tuple[Path, Path]:
    """Write the grades: nbgrader's CSV (one row per student and assignment) to ``to``
    (default ``grading/grades.csv``) and one row per graded cell to ``cells``
    (default ``grading/grades_cells.csv``)."""
    from nbgrader.api import Gradebook

    with inside(root):
        to = Path(to or root / GRADING / "grades.csv").resolve()
        cells = Path(cells or root / GRADING / "grades_cells.csv").resolve()
        to.parent.mkdir(parents=True, exist_ok=True)
        cells.parent.mkdir(parents=True, exist_ok=True)
        api = nbgrader_api(root)
        with Gradebook(api.coursedir.db_url) as gb:
            _nbgrader_csv(gb, to)
            rows = []
            for assignment in gb.assignments:
                for submission in assignment.submissions:
                    for nb in submission.notebooks:
                        for grade in nb.grades:
                            rows.append(
                                {
                                    "assignment": assignment.name,
                                    "student_id": submission.student.id,
                                    "notebook": nb.name,
                                    "grade_id": grade.name,
                                    "score": _num(grade.score),
                                    "max_score": _num(grade.max_score),
                                    "needs_manual_grade": grade.needs_manual_grade,
                                }
                            )
        rows.sort(key=lambda r: (r["assignment"], r["student_id"], r["notebook"], r["grade_id"]))
        with cells.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CELL_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return to, cells


def _nbgrader_csv(gb: Any, to: Path) -> None:
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin()
    plugin.to = str(to)
    plugin.export(gb)


def _num(value: Any) -> float | int:
    value = float(value or 0.0)
    return int(value) if value.is_integer() else value
