"""The trusted autograder: the grader owns every test; the sandbox only answers calls.

Stock nbgrader executes the student's notebook, tests included, and believes what that
kernel reports. Here, for each submission:

1. **Reconstruct** (:func:`reconstruct`). The instructor's release notebook is copied and
   only the *source* of its answer cells (matched by ``grade_id``) is taken from the
   submission. Test cells, points and hidden tests come from the instructor's ``solutions/``.
   Markdown answers are shown as plain text (never as HTML) in every notebook and page made
   from the submission.
2. **Answer server** (:class:`course.student_process.StudentProcess`). The release's given
   cells and the student's answers run in a sandbox that holds only the standard library,
   the packages the assignment allows (:data:`course.config.SANDBOX_PACKAGES`, NumPy by
   default) and the student kit: no ``conv_lib``, SciPy, torch, ``course``, test code or
   solutions exist there. The process then only answers the grader's calls.
3. **Tests, here** (:func:`run_tests`). Each instructor test cell runs in the grader's
   process, with a :class:`~course.student_process.Proxy` for each student function: the
   test decides which calls are made and with which arguments (hidden cases are drawn from
   the instructor's secret and the student id, :mod:`course.grading.context`), and judges
   the answers against references computed here. A cell passes iff it raises nothing.
4. **Score** with nbgrader's own code (``SaveAutoGrades``) into the gradebook, which only
   the coordinating process opens, one transaction per submission.

Failures are confined: anything a submission does costs that submission's tests (with a
reason in its feedback). A failure of the grading machinery (a worker process that dies,
the sandbox that cannot start) is never stored as a score: the submission is reported as
not graded and the command exits non-zero.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import io
import json
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course.config import GRADING, RELEASE, SANDBOX_PACKAGES, SOURCE, notebook_name

#: Largest submitted notebook read (bytes); a bigger file is graded as unreadable.
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
#: Characters of a cell's output kept in the autograded notebook.
MAX_CELL_OUTPUT = 20_000


class GradingMachineryError(RuntimeError):
    """The grader itself failed on a submission: it is reported as not graded, never scored."""


# ------------------------------------------------------------------------------ spec


@dataclass
class Spec:
    """What the instructor's copies say about one assignment (never from a submission)."""

    assignment: str
    notebook: str  # file stem
    release: dict  # the release notebook (JSON)
    tests: dict[str, str]  # grade_id -> instructor test source (hidden tests included)
    solution_ids: list[str]  # grade_ids of answer cells (instructor metadata)
    solution_types: dict[str, str]
    interface: list[str]  # names the answer cells define and the tests use
    functions: set[str]  # ... of which the instructor's answers define with ``def``
    packages: tuple[str, ...]  # what student code may import in the sandbox


def _nbmeta(cell: dict) -> dict:
    meta = cell.get("metadata", {})
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def _strip_magics(source: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.split("\n"))


def _bound_names(source: str) -> tuple[set[str], set[str]]:
    """Top-level names a cell binds, and those of them bound by ``def``."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return set(), set()
    names: set[str] = set()
    defs: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
            defs.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names, defs


def _loaded_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(s for s in src if isinstance(s, str)) if isinstance(src, list) else str(src)


def load_spec(root: Path, assignment: str) -> Spec:
    stem = notebook_name(assignment)
    release = json.loads((root / RELEASE / assignment / f"{stem}.ipynb").read_text(encoding="utf-8"))
    source = json.loads((root / SOURCE / assignment / f"{stem}.ipynb").read_text(encoding="utf-8"))
    tests: dict[str, str] = {}
    defined: set[str] = set()
    defs: set[str] = set()
    for cell in source["cells"]:
        m = _nbmeta(cell)
        if m.get("grade") and not m.get("solution") and cell["cell_type"] == "code":
            tests[m["grade_id"]] = _source(cell)
        elif m.get("solution") and cell["cell_type"] == "code":
            names, fns = _bound_names(_source(cell))
            defined |= names
            defs |= fns
    solution_ids, types_ = [], {}
    for cell in release["cells"]:
        m = _nbmeta(cell)
        if m.get("solution"):
            solution_ids.append(m["grade_id"])
            types_[m["grade_id"]] = cell["cell_type"]
        if m.get("grade") and not m.get("solution") and m.get("grade_id") not in tests:
            raise SystemExit(f"{assignment}: test cell {m.get('grade_id')} is not in {SOURCE}/")
    used: set[str] = set()
    for src in tests.values():
        used |= _loaded_names(src)
    interface = sorted(n for n in defined & used if not hasattr(builtins, n))
    packages = tuple(SANDBOX_PACKAGES.get(assignment, ("numpy",)))
    return Spec(
        assignment, stem, release, tests, solution_ids, types_, interface, defs & set(interface), packages
    )


# ------------------------------------------------------------------------------ reconstruct


@dataclass
class Reconstructed:
    nb: dict
    answers: dict[str, str]  # answer grade_id -> the student's source
    notes: list[str] = field(default_factory=list)  # general notes for the feedback
    graded_file: str = ""


def find_submission(folder: Path, stem: str) -> tuple[Path | None, str]:
    """The notebook to grade in ``folder``: the expected name, else the only ``.ipynb`` there."""
    expected = folder / f"{stem}.ipynb"
    if expected.is_file() and not expected.is_symlink():
        return expected, ""
    others = sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    if len(others) == 1:
        return others[
            0
        ], f"Your notebook was named `{others[0].name}`, not `{expected.name}`; it was graded anyway."
    if others:
        return (
            None,
            f"No `{expected.name}` was submitted (found {len(others)} other notebooks); nothing was graded.",
        )
    return None, f"No `{expected.name}` was submitted; nothing was graded."


def clean(text: str) -> str:
    """Text from a submission, safe to store: lone surrogates and NULs replaced."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def plain_text_markdown(text: str) -> str:
    """A student's markdown answer as a fenced code block: shown as typed, never as HTML
    (no ``<script>``, no ``javascript:`` links, no images that load)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def reconstruct(spec: Spec, path: Path | None, note: str = "") -> Reconstructed:
    """The release notebook with the submission's answer sources; test cells from the instructor."""
    notes = [note] if note else []
    student_cells: list[dict] = []
    if path is not None:
        try:
            with open(path, "rb") as fh:  # the collected copy: a regular file of the grader's
                data = fh.read(MAX_NOTEBOOK_BYTES + 1)
            if len(data) > MAX_NOTEBOOK_BYTES:
                raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB")
            parsed = json.loads(data.decode("utf-8"))
            cells = parsed.get("cells") if isinstance(parsed, dict) else None
            if not isinstance(cells, list):
                raise ValueError("it has no list of cells")
            student_cells = [c for c in cells if isinstance(c, dict)]
        except (ValueError, OSError, UnicodeDecodeError, RecursionError) as err:
            notes.append(
                "Your notebook could not be read as a notebook "
                f"({type(err).__name__}: {clean(str(err))[:200]}); every answer counts as empty."
            )
    by_id: dict[str, dict] = {}
    for cell in student_cells:
        meta = cell.get("metadata")
        nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
        gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
        for key in (gid, cell.get("id")):
            if isinstance(key, str) and key in spec.solution_types and key not in by_id:
                if cell.get("cell_type") == spec.solution_types[key]:
                    by_id[key] = cell
    answers: dict[str, str] = {}
    nb = copy.deepcopy(spec.release)
    for cell in nb["cells"]:
        m = _nbmeta(cell)
        cell.pop("attachments", None)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        gid = m.get("grade_id")
        if m.get("solution"):
            src = clean(_source(by_id[gid]))[:MAX_NOTEBOOK_BYTES] if gid in by_id else ""
            answers[gid] = src
            cell["source"] = plain_text_markdown(src) if cell["cell_type"] == "markdown" else src
            if gid not in by_id and student_cells:
                notes.append(
                    f"The answer cell `{gid}` is missing from your notebook (deleted, or its "
                    "metadata changed); it counts as empty."
                )
        elif m.get("grade") and cell["cell_type"] == "code":
            cell["source"] = spec.tests[gid]
    return Reconstructed(nb, answers, notes)


# ------------------------------------------------------------------------------ tests (grader side)


@dataclass
class Outcome:
    """One instructor test cell, run here against the student's process."""

    passed: bool
    stdout: str = ""
    ename: str = ""
    evalue: str = ""


def student_cells(rec: Reconstructed) -> list[dict]:
    """What runs in the sandbox: the release's given code cells and the student's code answers."""
    cells = []
    for i, cell in enumerate(rec.nb["cells"]):
        m = _nbmeta(cell)
        if cell["cell_type"] != "code" or (m.get("grade") and not m.get("solution")):
            continue
        cells.append({"i": i, "source": _source(cell), "name": m.get("grade_id") or f"cell {i}"})
    return cells


def answers_fingerprint(rec: Reconstructed) -> str:
    """sha256 of the submission's answer sources (what the hidden cases are also seeded by)."""
    import hashlib

    return hashlib.sha256(json.dumps(rec.answers, sort_keys=True).encode("utf-8", "replace")).hexdigest()


def run_tests(
    spec: Spec, rec: Reconstructed, process: Any, secret: bytes, student: str, cell_timeout: float
) -> dict[int, Outcome]:
    """Run every instructor test cell here, with proxies for the student's functions."""
    from course.grading.context import grading_context
    from course.student_process import NoAnswer, Proxy

    outcomes: dict[int, Outcome] = {}
    with grading_context(secret, student, spec.assignment, submission=answers_fingerprint(rec)):
        for i, cell in enumerate(rec.nb["cells"]):
            m = _nbmeta(cell)
            if cell["cell_type"] != "code" or not m.get("grade") or m.get("solution"):
                continue
            deadline = time.monotonic() + cell_timeout
            ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
            out = io.StringIO()
            try:
                for name in spec.interface:
                    if name in spec.functions:
                        ns[name] = Proxy(process, name, lambda d=deadline: d)
                    else:
                        with contextlib.suppress(NoAnswer, NameError):
                            ns[name] = process.ask("get", name, deadline=deadline)
                with contextlib.redirect_stdout(out), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exec(compile(spec.tests[m["grade_id"]], f"<test {m['grade_id']}>", "exec"), ns)  # noqa: S102
            except GradingMachineryError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure of the instructor's test is a zero
                outcomes[i] = Outcome(False, out.getvalue(), type(exc).__name__, clean(str(exc))[:5000])
                continue
            outcomes[i] = Outcome(True, out.getvalue())
    return outcomes


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text[: MAX_CELL_OUTPUT + 200]}


def _error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


def graded_notebook(rec: Reconstructed, process: Any, outcomes: dict[int, Outcome]) -> dict:
    """The reconstructed notebook with outputs: the student's cells from the sandbox, the
    tests from here, and a notes cell at the top for anything that went wrong."""
    nb = rec.nb
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        outputs: list[dict] = []
        if i in outcomes:
            o = outcomes[i]
            if o.stdout:
                outputs.append(_stream(o.stdout))
            if not o.passed:
                outputs.append(_error(o.ename, o.evalue))
        elif process is not None and i in process.skipped:
            outputs.append(_error("GradingStopped", f"This cell was left out: {process.skipped[i]}."))
        elif process is not None and i in process.cell_runs:
            run = process.cell_runs[i]
            if run.output:
                outputs.append(_stream(run.output))
            if run.error:
                ename = (
                    run.error.strip().splitlines()[-1].split(":")[0][:100] if run.error.strip() else "Error"
                )
                outputs.append(_error(ename, run.error))
        cell["outputs"] = outputs
    notes = list(rec.notes) + (list(dict.fromkeys(process.events)) if process is not None else [])
    if notes:
        # Notes quote text of the submission (an error message, a value): plain text, never
        # markdown, so that no link, image or HTML of the student's is rendered.
        lines = "\n".join(f"- {n}" for n in notes)
        nb["cells"].insert(
            0,
            {
                "cell_type": "markdown",
                "metadata": {},
                "id": "grading-notes",
                "source": f"**Notes from the autograder**\n\n{plain_text_markdown(lines)}",
            },
        )
    return nb


@dataclass
class GradingJob:
    """Everything a worker needs to grade one submission, and nothing of other students.

    It travels to the worker process (local pool or cluster), never into the student's
    sandbox: the sandbox gets only the answer cells and the calls.
    """

    spec: Spec  # the instructor's release and tests (hidden ones included)
    rec: Reconstructed  # the release notebook with this student's answer sources
    student: str
    secret: bytes  # the instructor secret: seeds this student's hidden cases
    timeout: float  # seconds per test cell (and to run the answer cells)
    has_file: bool  # False: nothing was submitted; every test scores zero
    allow_unsandboxed: bool
    fingerprint: str = ""  # of the submitted files (see :func:`already_graded`)
    timestamp: Any = None  # the submission time (timestamp.txt), for late penalties


def grade_one(job: GradingJob) -> dict:
    """Worker: one submission from answer server to graded notebook (no gradebook here).

    Returns ``{"nb": the graded notebook, "events": what stopped the student's process}``.
    Raises :class:`GradingMachineryError` when the grader itself failed (the submission is
    then reported as not graded).
    """
    from course.sandbox import SandboxLimits, SandboxUnavailableError
    from course.student_process import Budget, StudentProcess

    # The grader's own conv_lib calls (references, bug diagnoses on shapes a student's
    # answer chose) run on NumPy, never numba's compiler: an answer must not make this
    # worker compile (seconds, and ~450 MB kept for the submissions it grades next).
    # Workers are processes of their own (a pool or Dask): this touches no other process.
    os.environ["CONV_LIB_JIT"] = "0"
    if os.environ.get("COURSE_TEST_KILL_WORKER_FOR") == job.student:
        os._exit(70)  # a test hook: the grader worker dies on this student (tests/test_class_run.py)
    skip_iri_grammars()
    spec: Spec = job.spec
    rec: Reconstructed = job.rec
    process = None
    try:
        if job.has_file:
            timeout = float(job.timeout)
            process = StudentProcess(
                student_cells(rec),
                packages=spec.packages,
                limits=SandboxLimits(
                    wall_seconds=10 * timeout,
                    cpu_seconds=int(10 * timeout),
                    memory_bytes=2 * 2**30,
                    tmp_bytes=64 * 2**20,
                ),
                budget=Budget(start_seconds=timeout, call_seconds=timeout),
                allow_unsandboxed=job.allow_unsandboxed,
            )
            try:
                started = process.start()
            except (SandboxUnavailableError, OSError) as err:
                raise GradingMachineryError(f"the sandbox could not be started ({err})") from err
            if not started and not process.cell_runs and not process.skipped:
                raise GradingMachineryError(
                    "the sandbox's Python ended before running any cell: "
                    + (process.events[-1] if process.events else "unknown reason")
                )
        outcomes = run_tests(spec, rec, process, job.secret, job.student, float(job.timeout))
        events = list(dict.fromkeys(process.events)) if process is not None else []
        return {"nb": graded_notebook(rec, process, outcomes), "events": events}
    finally:
        if process is not None:
            process.close()
        # conv_lib keeps each thread's work arrays between calls; a submission whose
        # answers made the grader compute on large shapes must not leave them to the
        # submissions this worker grades next
        import conv_lib

        conv_lib.release_workspaces()


# ------------------------------------------------------------------------------ notebook + gradebook


def save_grades(
    gb: Any,
    nb: dict,
    db_url: str,
    assignment: str,
    student: str,
    stem: str,
    timestamp: Any = None,
    config: Any = None,
) -> None:
    """nbgrader's SaveAutoGrades on the graded notebook, the submission time and the late
    penalty (nbgrader's plugin), in one transaction."""
    import nbformat
    from nbgrader.preprocessors import SaveAutoGrades
    from nbgrader.preprocessors.base import NbGraderPreprocessor

    node = nbformat.from_dict(nb)
    db = gb.db
    db.commit = db.flush
    try:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        pp = SaveAutoGrades()
        pp.notebook_id, pp.assignment_id, pp.student_id, pp.db_url = stem, assignment, student, db_url
        pp.gradebook = gb
        resources = {
            "nbgrader": {"notebook": stem, "assignment": assignment, "student": student, "db_url": db_url}
        }
        NbGraderPreprocessor.preprocess(pp, node, resources)
        db.flush()
        apply_late_penalty(gb, assignment, student, config)
    except BaseException:
        del db.commit
        db.rollback()
        raise
    del db.commit
    db.commit()


def write_autograded(
    root: Path, nb: dict, assignment: str, student: str, stem: str, fingerprint: str = ""
) -> Path:
    """The autograded notebook, put in place atomically (a rename) with the fingerprint of
    the submission it was graded from (see :func:`already_graded`) and the submission's
    ``timestamp.txt`` and ``submission_secret.txt`` (nbgrader's feedback commands read them)."""
    import nbformat

    from course.exchange import autograded_extras

    folder = root / GRADING / "autograded" / student / assignment
    tmp = folder.with_name(f".{assignment}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    nbformat.write(nbformat.from_dict(nb), str(tmp / f"{stem}.ipynb"))
    for name, data in autograded_extras(root, assignment, student).items():
        (tmp / name).write_bytes(data)
    (tmp / FINGERPRINT).write_text(fingerprint)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder / f"{stem}.ipynb"


def skip_iri_grammars() -> None:
    """Keep jsonschema (imported by nbformat) from compiling the ~40 grammars of
    ``rfc3987_syntax`` (1.5 s per process) for "iri" formats the notebook schema never uses."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ driver


def default_jobs() -> int:
    from course.executors import default_jobs as jobs

    return jobs()


@dataclass
class Graded:
    assignment: str
    student: str
    graded: bool
    reason: str = ""


def check_sandbox(allow_unsandboxed: bool, packages: tuple[str, ...] = ("numpy",)) -> None:
    """Refuse to grade when the answer server cannot start in a sandbox on this machine."""
    from course.sandbox import sandbox_available
    from course.student_process import StudentProcess

    ok, why = sandbox_available()
    if not ok and not allow_unsandboxed:
        raise SystemExit(
            f"refusing to autograde: the grading sandbox is not available ({why}).\n"
            "Install bubblewrap (apt-get install bubblewrap) and run as root or with user namespaces, "
            "or pass --allow-unsandboxed to run student code WITHOUT isolation, with your rights."
        )
    probe = StudentProcess(
        [{"i": 0, "source": "import numpy", "name": "probe"}],
        packages=packages,
        allow_unsandboxed=allow_unsandboxed,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if not process_ready(probe):
                raise SystemExit(f"refusing to autograde: the answer server does not start ({probe.events})")
    finally:
        probe.close()


def process_ready(process: Any) -> bool:
    return process.start() and not process.cell_runs.get(0, None).error


def submission_fingerprint(folder: Path) -> str:
    """What a grade was computed from: the submitted notebooks and the timestamp (sha256)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if p.is_file() and not p.is_symlink() and (p.suffix == ".ipynb" or p.name == "timestamp.txt"):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


FINGERPRINT = ".graded-from"


def already_graded(root: Path, gb: Any, assignment: str, student: str) -> bool:
    """True if the autograded notebook and the gradebook both hold a grade of the submission
    as it is now (a re-collected submission has another fingerprint and is graded again)."""
    from nbgrader.api import MissingEntry

    marker = root / GRADING / "autograded" / student / assignment / FINGERPRINT
    try:
        if marker.read_text() != submission_fingerprint(root / GRADING / "submitted" / student / assignment):
            return False
        gb.find_submission(assignment, student)
    except (OSError, MissingEntry):
        return False
    return True


def read_timestamp(folder: Path) -> Any:
    """The submission time in ``timestamp.txt`` (nbgrader's format), or None."""
    from nbgrader.utils import parse_utc

    path = folder / "timestamp.txt"
    if not path.is_file() or path.is_symlink() or path.stat().st_size > 200:
        return None
    try:
        return parse_utc(path.read_text(encoding="utf-8").strip())
    except (ValueError, OverflowError, UnicodeDecodeError):
        return None


def apply_late_penalty(gb: Any, assignment: str, student: str, config: Any) -> None:
    """nbgrader's late-submission plugin (``c.AssignLatePenalties.plugin_class``, configured
    in nbgrader_config.py) on every notebook of the submission; no penalty when on time."""
    from nbgrader.preprocessors import AssignLatePenalties

    pp = AssignLatePenalties(config=config)
    pp.init_plugin()
    sub = gb.find_submission(assignment, student)
    late = sub.total_seconds_late
    for nb in sub.notebooks:
        nb.late_submission_penalty = None
        if late > 0:
            penalty = pp.plugin_inst.late_submission_penalty(student, nb.score, late)
            if penalty is not None:
                nb.late_submission_penalty = pp._check_late_penalty(nb, penalty)


def autograde_trusted(
    root: Path,
    todo: list[tuple[str, str]],
    *,
    db_url: str,
    secret: bytes,
    jobs: int | None = None,
    timeout: float = 120.0,
    allow_unsandboxed: bool = False,
    regrade: bool = False,
    config: Any = None,
    progress: Any = None,
    cluster: str | None = None,
) -> list[Graded]:
    """Grade ``todo`` [(assignment, student)] in a pool of local worker processes, or on the
    Dask cluster at ``cluster`` (:mod:`course.executors`); the gradebook is written here
    alone. Submissions already graded as they are now are skipped unless ``regrade``.
    Returns one :class:`Graded` per submission graded (or not graded)."""
    from nbgrader.api import Gradebook

    from course.progress import Progress

    if cluster:
        from course.executors import check_address

        check_address(cluster)
    specs = {a: load_spec(root, a) for a in sorted({a for a, _ in todo})}
    db_path = root / GRADING / "gradebook.db"
    results: list[Graded] = []
    with Gradebook(db_url) as gb:
        if db_path.exists():
            os.chmod(db_path, 0o600)
        if not regrade:
            skipped = [(a, s) for a, s in todo if already_graded(root, gb, a, s)]
            if skipped:
                print(
                    f"{len(skipped)} submission(s) already graded as submitted: kept "
                    "(--regrade grades them again)",
                    file=sys.stderr,
                )
            todo = [t for t in todo if t not in set(skipped)]
        if not todo:
            return results
        for packages in {s.packages for s in specs.values()} if not cluster else ():
            check_sandbox(allow_unsandboxed, packages)  # (cluster workers check their own)
        jobs_list = []
        for a, student in todo:
            spec = specs[a]
            folder = root / GRADING / "submitted" / student / a
            path, note = find_submission(folder, spec.notebook)
            rec = reconstruct(spec, path, note)
            rec.graded_file = str(path or "")
            jobs_list.append(
                GradingJob(
                    spec=spec,
                    rec=rec,
                    student=student,
                    secret=secret,
                    timeout=timeout,
                    has_file=path is not None,
                    allow_unsandboxed=allow_unsandboxed,
                    fingerprint=submission_fingerprint(folder),
                    timestamp=read_timestamp(folder),
                )
            )
        bar = progress or Progress(len(todo), "graded")

        def finish(k: int, result: dict | None, reason: str = "") -> None:
            a, s = todo[k]
            job = jobs_list[k]
            nb = result["nb"] if result else None
            if nb is not None:
                try:
                    save_grades(gb, nb, db_url, a, s, specs[a].notebook, job.timestamp, config)
                    write_autograded(root, nb, a, s, specs[a].notebook, job.fingerprint)
                except Exception as err:  # noqa: BLE001 - confined to this submission
                    nb, reason = (
                        None,
                        f"its grades could not be saved ({type(err).__name__}: {clean(str(err))[:300]})",
                    )
            results.append(Graded(a, s, nb is not None, reason))
            notes = list(result.get("events", [])) if result else []
            bar.done(f"{s}/{a}", f"NOT GRADED: {reason}" if nb is None else "; ".join(notes[:3]))

        labels = [f"{s}/{a}" for a, s in todo]
        try:
            if cluster:
                from course.executors import run_cluster

                # a task may take at most the whole budget of its submission, plus start-up
                run_cluster(jobs_list, labels, finish, bar, cluster, task_seconds=12 * timeout + 60)
            else:
                from course.executors import run_local

                run_local(jobs_list, labels, finish, bar, jobs or default_jobs())
        finally:
            if progress is None:
                bar.close()
    if db_path.exists():
        os.chmod(db_path, 0o600)
    return results
