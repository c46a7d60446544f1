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
import re
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


def nbgrader_api(root: Path, exchange: Path | str | None = None) -> Any:
    """An in-process nbgrader API for the course at ``root`` (call inside :func:`inside`).

    ``exchange``: the exchange folder to use instead of ``c.Exchange.root`` of the course's
    configuration (``python -m course --exchange PATH``).
    """
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
    config = load_config(root)
    if exchange:
        config.Exchange.root = str(Path(exchange).resolve())
    api = NbGraderAPI(config=config)
    api.log.setLevel(logging.ERROR)
    return api


def _fail(what: str, result: dict[str, Any]) -> None:
    details = (result.get("error") or "") + "\n" + (result.get("log") or "")
    raise SystemExit(f"{what} failed:\n{details.strip()}")


# ---------------------------------------------------------------------------------------
# release
# ---------------------------------------------------------------------------------------


def release(
    root: Path,
    assignments: Sequence[str] | None = None,
    *,
    publish: bool = False,
    exchange: Path | str | None = None,
) -> list[Path]:
    """Generate ``exercises/<a>/<notebook>.ipynb`` from ``solutions/<a>/`` for each assignment.

    Refuses a source folder holding anything but its notebook (nbgrader would copy it to
    students), strips private notebook metadata, and checks that no solution or hidden
    test survived. Also records the assignment in the gradebook (needed to autograde), and
    creates the instructor secret of the hidden tests when it is missing (:mod:`course.secret`).

    ``publish``: also publish each release to nbgrader's exchange (``nbgrader
    release_assignment``, replacing an earlier release) for students to fetch; ``exchange``
    names the exchange folder instead of the configuration's (see :func:`nbgrader_api`).
    """
    from course.secret import SecretError, ensure_secret

    try:
        ensure_secret()
    except SecretError as err:
        raise SystemExit(f"course release: {err}") from err
    exchange = Path(exchange).resolve() if exchange else None  # before changing folders
    written = []
    with inside(root):
        api = nbgrader_api(root, exchange)
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
            if publish:
                _publish(api, a)
    return written


def _publish(api: Any, assignment: str) -> None:
    """``nbgrader release_assignment`` of ``exercises/<assignment>/``, replacing an earlier release."""
    from nbgrader.utils import capture_log, temp_attrs

    with temp_attrs(api.coursedir, assignment_id=assignment):
        app = api.exchange.ReleaseAssignment(
            coursedir=api.coursedir, authenticator=api.authenticator, parent=api
        )
        app.force = True
        result = capture_log(app)
    if not result["success"]:
        _fail(f"nbgrader release_assignment {assignment} to the exchange {app.root}", result)


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


#: A student id: what nbgrader, the file system, CSV files and the feedback pages can all
#: carry without quoting: letters, digits, ``.``, ``_``, ``@``, ``-`` (first a letter or digit).
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def check_student_id(name: str) -> str:
    if not STUDENT_ID.fullmatch(name):
        raise ValueError(
            f"student id: got {name!r}; expected 1 to 64 letters, digits, '.', '_', '@' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def collect(
    root: Path,
    folder: Path | None = None,
    assignments: Sequence[str] | None = None,
    *,
    exchange: Path | str | None = None,
) -> list[Path]:
    """Copy submissions into ``grading/submitted/<student>/<assignment>/``; return the
    notebooks taken (new or changed submissions; an unchanged one is reported and left alone).

    ``folder`` is laid out as ``<folder>/<student>/<assignment>/<notebook>.ipynb`` (plus,
    optionally, nbgrader's ``timestamp.txt`` and ``submission_secret.txt``); only the expected
    notebook of known assignments is taken (anything else is reported and skipped). Without
    ``folder``, the latest submission of each student is taken from nbgrader's exchange
    (``exchange``, else ``c.Exchange.root``; see :mod:`course.exchange`).

    Symbolic links (at any level), special files (FIFOs, devices), notebooks over 20 MiB and
    unsafe student ids (see :data:`STUDENT_ID`) are refused with a message; the copy is a new
    regular file of the grader's. ``timestamp.txt`` is kept if it holds a time (else dropped
    with a message), as is a plain ``submission_secret.txt`` (needed to release feedback).
    A collected submission replaces the student's earlier one as a whole.
    """
    wanted = check_assignments(list(assignments or []))
    copied: list[Path] = []

    def refuse(what: str, why: str) -> None:
        print(f"refused {what}: {why}", file=sys.stderr)

    if folder is None:
        from course.exchange import clock_warning, course_id, exchange_root, latest_inbound

        where = exchange_root(root, exchange)
        cid = course_id(root)
        for a in wanted:
            for sub in latest_inbound(where, cid, a, refuse):
                taken = _collect_one(root, sub.student, a, sub.folder, refuse, sub.timestamp)
                if taken is not None:
                    copied.append(taken)
                    claimed = _kept_time(taken.parent)
                    warning = clock_warning(sub.folder, claimed) if claimed else ""
                    if warning:
                        print(f"warning: {sub.student}/{a}: {warning}", file=sys.stderr)
        return copied
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder")

    for student_dir in sorted(folder.iterdir()):
        name = student_dir.name
        if name.startswith("."):
            continue
        if student_dir.is_symlink() or not student_dir.is_dir():
            refuse(repr(name), "a symbolic link or not a folder")
            continue
        try:
            check_student_id(name)
        except ValueError as err:
            refuse(repr(name), str(err))
            continue
        for a in wanted:
            adir = student_dir / a
            if adir.is_symlink():
                refuse(f"{name}/{a}", "a symbolic link")
                continue
            if not adir.is_dir():
                continue
            taken = _collect_one(root, name, a, adir, refuse)
            if taken is not None:
                copied.append(taken)
        for other in sorted(p.name for p in student_dir.iterdir() if p.is_dir() and p.name not in wanted):
            print(f"skipped {name}/{other}: not one of the assignments", file=sys.stderr)
    return copied


def _kept_time(folder: Path) -> Any:
    from course.exchange import parse_timestamp

    try:
        return parse_timestamp((folder / "timestamp.txt").read_bytes())
    except (OSError, ValueError):
        return None


def _collect_one(
    root: Path, student: str, a: str, adir: Path, refuse: Callable[[str, str], None], named_time: Any = None
) -> Path | None:
    """Take one submission folder ``adir`` of ``student`` for assignment ``a`` into
    ``grading/submitted/<student>/<a>/`` (atomically, as a whole); None if refused or unchanged.

    ``named_time``: the time in the name of an exchange folder, written as ``timestamp.txt``
    when the submission holds no valid one.
    """
    from course.exchange import read_extras, read_regular

    nb = adir / f"{notebook_name(a)}.ipynb"
    if not (nb.exists() or nb.is_symlink()):
        others = sorted(adir.glob("*.ipynb"))
        if len(others) != 1:
            print(f"skipped {student}/{a}: no {nb.name} in the submission", file=sys.stderr)
            return None
        print(f"{student}/{a}: took {others[0].name} (expected {nb.name})", file=sys.stderr)
        nb = others[0]
    try:
        data = read_regular(nb, 20 * 2**20)
    except (OSError, ValueError) as err:
        why = "a symbolic link" if nb.is_symlink() else str(err)
        refuse(f"{student}/{a}/{nb.name}", why)
        return None
    safe_name = re.fullmatch(r"[A-Za-z0-9._ -]{1,100}\.ipynb", nb.name)
    kept = nb.name if safe_name else f"{notebook_name(a)}.ipynb"
    files = {kept: data}

    def drop(what: str, why: str) -> None:
        print(f"dropped {student}/{a}/{Path(what).name}: {why}", file=sys.stderr)

    files.update(read_extras(adir, drop))
    if "timestamp.txt" not in files and named_time is not None:
        stamp = named_time.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        files["timestamp.txt"] = stamp.encode()
        print(f"{student}/{a}: timestamp.txt from the submission folder's name ({stamp})", file=sys.stderr)
    dest = root / GRADING / "submitted" / student / a
    if dest.is_dir() and _holds_exactly(dest, files):
        print(f"unchanged {student}/{a}: already collected", file=sys.stderr)
        return None
    tmp = dest.with_name(f".{a}.collecting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for fname, content in files.items():
        (tmp / fname).write_bytes(content)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest / kept


def _holds_exactly(folder: Path, files: dict[str, bytes]) -> bool:
    """True if ``folder`` holds exactly ``files`` (name -> bytes), as regular files."""
    try:
        names = {p.name for p in folder.iterdir()}
        return names == set(files) and all(
            not (folder / n).is_symlink() and (folder / n).read_bytes() == data for n, data in files.items()
        )
    except OSError:
        return False


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
    regrade: bool = False,
    cluster: str | None = None,
) -> list[GradeResult]:
    """Autograde every submission (or those of ``students``), with a progress bar.

    By default the trusted path grades (:mod:`course.grader`: the submission's answers in
    the instructor's notebook, run in a sandboxed answer server, the instructor's tests run
    here against it), ``jobs`` submissions at a time. ``stock=True`` runs stock ``nbgrader
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
            from course.grader import autograde_trusted, skip_iri_grammars
            from course.secret import SecretError, load_secret

            skip_iri_grammars()
            config = load_config(root)
            if timeout is None:
                timeout = float(config.ExecutePreprocessor.get("timeout", 120))
            try:
                secret = load_secret()
            except SecretError as err:
                raise SystemExit(str(err)) from None
            api = nbgrader_api(root)
            _ensure_in_gradebook(root, api, sorted({a for a, _ in todo}))
            graded = autograde_trusted(
                root,
                todo,
                db_url=api.coursedir.db_url,
                secret=secret,
                jobs=jobs,
                timeout=timeout,
                allow_unsandboxed=allow_unsandboxed,
                regrade=regrade,
                config=config,
                cluster=cluster or config.get("CourseAutograde", {}).get("cluster") or None,
            )
            return [GradeResult(g.assignment, g.student, g.graded, g.reason) for g in graded]
        api = nbgrader_api(root)
        if stock:  # benchmarks only: lift the guard that keeps formgrader from stock autograding
            from nbgrader.converters.autograde import Autograde

            defaults = Autograde.class_traits()["sanitize_preprocessors"].default()
            api.config.Autograde.sanitize_preprocessors = defaults
        _ensure_in_gradebook(root, api, sorted({a for a, _ in todo}))
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
    root: Path,
    assignments: Sequence[str] | None = None,
    students: Sequence[str] | None = None,
    *,
    publish: bool = False,
    exchange: Path | str | None = None,
) -> list[Path]:
    """HTML feedback ``grading/feedback/<student>/<assignment>/<notebook>.html`` per autograded submission.

    Each feedback folder also gets the submission's ``timestamp.txt`` and
    ``submission_secret.txt`` (:func:`course.exchange.autograded_extras`). ``publish``: also
    release the feedback to nbgrader's exchange (``nbgrader release_feedback``), where only
    the student who submitted can find it (its name is a hash of the submission's secret);
    a submission that came without a secret (collected from a folder) is reported and skipped.
    """
    from course.exchange import autograded_extras

    wanted = check_assignments(list(assignments or []))
    exchange = Path(exchange).resolve() if exchange else None  # before changing folders
    written = []
    with inside(root):
        api = nbgrader_api(root, exchange)
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
            out = root / GRADING / "feedback" / student / a
            for name, data in autograded_extras(root, a, student).items():
                (out / name).write_bytes(data)
            written.append(out / f"{notebook_name(a)}.html")
        if todo:
            progress(len(todo), len(todo), "done")
        if publish:
            _release_feedback(root, api, todo)
    return written


def _release_feedback(root: Path, api: Any, todo: list[tuple[str, str]]) -> None:
    """``nbgrader release_feedback`` of each submission in ``todo`` that has a secret."""
    released: dict[str, list[str]] = {}
    for a, student in todo:
        folder = root / GRADING / "feedback" / student / a
        missing = [n for n in ("timestamp.txt", "submission_secret.txt") if not (folder / n).is_file()]
        if missing:
            print(
                f"feedback of {student}/{a} not released to the exchange: the submission has no "
                f"{' or '.join(missing)} (collected from a folder, not from the exchange)",
                file=sys.stderr,
            )
            continue
        result = api.release_feedback(a, student)
        if not result["success"]:
            _fail(f"nbgrader release_feedback {a} --student {student}", result)
        released.setdefault(a, []).append(student)
    for a, names in released.items():
        print(f"released the feedback of {a} to the exchange for {len(names)} student(s): {', '.join(names)}")


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
            writer = csv.DictWriter(fh, fieldnames=CELL_COLUMNS, quoting=csv.QUOTE_ALL)
            writer.writeheader()
            writer.writerows(rows)
    return to, cells


NBGRADER_COLUMNS = (
    "assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
    "raw_score", "late_submission_penalty", "score", "max_score",
)  # fmt: skip


def _nbgrader_csv(gb: Any, to: Path) -> None:
    """nbgrader's grades CSV (the columns and rows of its ``CsvExportPlugin``), but written
    with the csv module and every field quoted: a comma, quote or newline in a name or id
    cannot add or shift a column or a row."""
    from nbgrader.api import MissingEntry

    with to.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerow(NBGRADER_COLUMNS)
        for assignment in gb.assignments:
            for student in gb.students:
                try:
                    sub = gb.find_submission(assignment.name, student.id)
                except MissingEntry:
                    timestamp, raw, penalty = None, 0.0, 0.0
                else:
                    timestamp, raw, penalty = sub.timestamp, sub.score, sub.late_submission_penalty
                row = [
                    assignment.name, assignment.duedate, timestamp, student.id, student.last_name,
                    student.first_name, student.email, raw, penalty, max(0.0, raw - (penalty or 0.0)),
                    assignment.max_score,
                ]  # fmt: skip
                writer.writerow(["" if v is None else str(v) for v in row])


def _num(value: Any) -> float | int:
    value = float(value or 0.0)
    return int(value) if value.is_integer() else value


# ---------------------------------------------------------------------------------------
# due dates and hand grading
# ---------------------------------------------------------------------------------------


def set_duedate(root: Path, assignment: str, when: str | None) -> Any:
    """Set (or, with ``when=None``, remove) an assignment's due date in the gradebook.

    ``when`` is any time nbgrader parses (``2026-12-10 17:00:00 Europe/Paris``, ISO 8601 with
    an offset, ...; without a zone: UTC). Late penalties follow nbgrader's late-submission
    plugin (``c.LateSubmissionPlugin.penalty_method`` or ``c.AssignLatePenalties.plugin_class``
    in nbgrader_config.py) and are applied by ``course autograde`` (``--regrade`` after a change).
    """
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    check_assignments([assignment])
    try:
        due = parse_utc(when) if when else None
    except (ValueError, OverflowError) as err:
        raise SystemExit(
            f"due date: got {when!r}; expected a date and time such as '2026-12-10 17:00 UTC'"
        ) from err
    with inside(root):
        api = nbgrader_api(root)
        _ensure_in_gradebook(root, api, [assignment])
        with Gradebook(api.coursedir.db_url) as gb:
            gb.update_or_create_assignment(assignment, duedate=due)
    return due


def set_manual_score(
    root: Path, assignment: str, student: str, grade_id: str, score: float, comment: str | None = None
) -> tuple[float, float]:
    """Give the hand-graded answer ``grade_id`` of a submission its score (and a comment).

    Returns ``(score, max_score)``. Refuses a score outside ``[0, max_score]``, an unknown
    submission or cell, and a cell the autograder grades.
    """
    from nbgrader.api import Gradebook, MissingEntry

    check_assignments([assignment])
    with inside(root):
        api = nbgrader_api(root)
        with Gradebook(api.coursedir.db_url) as gb:
            stem = notebook_name(assignment)
            try:
                grade = gb.find_grade(grade_id, stem, assignment, student)
            except MissingEntry as err:
                raise SystemExit(
                    f"no graded cell {grade_id!r} in {student}'s {assignment}: autograde the submission "
                    "first, and check the names"
                ) from err
            if grade.cell.cell_type != "markdown" and grade.auto_score is not None:
                raise SystemExit(
                    f"{grade_id} is autograded ({grade.auto_score:g} points); it takes no hand score"
                )
            if not 0 <= score <= grade.max_score:
                raise SystemExit(f"score: got {score:g}; expected a number from 0 to {grade.max_score:g}")
            grade.manual_score = float(score)
            grade.needs_manual_grade = False
            if comment is not None:
                try:
                    gb.find_comment(grade_id, stem, assignment, student).manual_comment = comment
                except MissingEntry:
                    pass
            gb.db.commit()
            return float(score), float(grade.max_score)
