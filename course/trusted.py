"""The trusted autograder: reconstruct -> record in the sandbox -> replay outside.

Stock nbgrader executes the student's notebook with the grader's rights and believes
what the student's kernel reports. Here:

1. **Reconstruct.** The submitted notebook is never executed as submitted. The
   instructor's release notebook (``exercises/``) is copied and only the *source* of its
   solution cells (instructor metadata, matched by ``grade_id``) is taken from the
   submission. Test cells come from the instructor's ``solutions/`` (hidden tests
   included); the student's metadata, outputs and other cells are ignored.
2. **Record** (inside :func:`course.sandbox.run_sandboxed`, no Jupyter kernel):
   :mod:`course.replay_runner` runs the non-test cells, then the instructor's test cells
   with every student function wrapped by a recorder that logs each call's argument hash
   and return value (``.npy``/JSON, no pickle). If the run dies (wall time, memory,
   ``os._exit``, ...) it is re-run without the cell it died in (at most ``max_runs`` runs).
3. **Replay** (here, in the grader): each instructor test cell runs again in a namespace
   of the instructor's read-only cells and *replayers* standing in for the student's
   functions: a replayer checks the argument hash and returns the recorded value (or
   raises the recorded error). A cell passes iff its replay raises nothing. The
   reference check (:func:`conv_lib.grading.forbid_reference`) reads the student's source.
4. **Score** with nbgrader's own code (``utils.determine_grade`` through
   ``SaveAutoGrades``) into the gradebook, which only this process opens (mode 0600); the
   autograded notebook (with a reason per affected cell) goes to ``grading/autograded/``
   so ``course feedback`` and ``course export`` work unchanged.

The record and replay steps of many submissions run in a process pool (replay in the
pool's trusted worker processes, outside the sandbox); gradebook writes run in the
parent, one submission at a time.
"""

from __future__ import annotations

import ast
import builtins
import concurrent.futures as cf
import contextlib
import copy
import io
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course.config import GRADING, RELEASE, SOURCE, notebook_name

#: Largest submitted notebook read (bytes); a bigger file is graded as unreadable.
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
#: Characters of a student cell's output kept in the autograded notebook.
MAX_CELL_OUTPUT = 20_000
MAX_LOG_BYTES = 64 * 1024 * 1024
MAX_ARRAY_BYTES = 256 * 1024 * 1024


# ------------------------------------------------------------------------------ spec


@dataclass
class Spec:
    """What the instructor's copies say about one assignment (never from a submission)."""

    assignment: str
    notebook: str  # file stem
    release: dict  # the release notebook (JSON)
    tests: dict[str, str]  # grade_id -> instructor test source (hidden tests included)
    solution_ids: list[str]  # grade_ids of solution cells (instructor metadata)
    solution_types: dict[str, str]
    interface: list[str]  # names the solution cells define and the tests use
    given_source: str  # the instructor's read-only code cells, concatenated


def _nbmeta(cell: dict) -> dict:
    meta = cell.get("metadata", {})
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def _bound_names(source: str) -> set[str]:
    """Top-level names a cell binds (def, class, assignment, import, for, with)."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names


def _loaded_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _strip_magics(source: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.split("\n"))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def load_spec(root: Path, assignment: str) -> Spec:
    stem = notebook_name(assignment)
    release = json.loads((root / RELEASE / assignment / f"{stem}.ipynb").read_text(encoding="utf-8"))
    source = json.loads((root / SOURCE / assignment / f"{stem}.ipynb").read_text(encoding="utf-8"))
    tests = {}
    defined: set[str] = set()
    for cell in source["cells"]:
        m = _nbmeta(cell)
        if m.get("grade") and not m.get("solution") and cell["cell_type"] == "code":
            tests[m["grade_id"]] = _source(cell)
        elif m.get("solution") and cell["cell_type"] == "code":
            defined |= _bound_names(_source(cell))
    solution_ids, types_, given = [], {}, []
    for cell in release["cells"]:
        m = _nbmeta(cell)
        if m.get("solution"):
            solution_ids.append(m["grade_id"])
            types_[m["grade_id"]] = cell["cell_type"]
        elif cell["cell_type"] == "code" and m.get("locked") and not m.get("grade"):
            given.append(_source(cell))
        if m.get("grade") and not m.get("solution") and m.get("grade_id") not in tests:
            raise SystemExit(f"{assignment}: test cell {m.get('grade_id')} is not in {SOURCE}/")
    used: set[str] = set()
    for src in tests.values():
        used |= _loaded_names(src)
    interface = sorted(n for n in defined & used if not hasattr(builtins, n))
    return Spec(assignment, stem, release, tests, solution_ids, types_, interface, "\n\n".join(given))


# ------------------------------------------------------------------------------ reconstruct


@dataclass
class Reconstructed:
    nb: dict
    answers: dict[str, str]  # solution grade_id -> the student's source
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


def reconstruct(spec: Spec, path: Path | None, note: str = "") -> Reconstructed:
    """The release notebook with the submission's solution sources; test cells from the instructor."""
    notes = [note] if note else []
    student_cells: list[dict] = []
    if path is not None:
        try:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB")
            data = json.loads(path.read_bytes().decode("utf-8"))
            cells = data.get("cells") if isinstance(data, dict) else None
            if not isinstance(cells, list):
                raise ValueError("it has no list of cells")
            student_cells = [c for c in cells if isinstance(c, dict)]
        except (ValueError, OSError, UnicodeDecodeError, RecursionError) as err:
            notes.append(
                f"Your notebook could not be read as a notebook ({type(err).__name__}: {str(err)[:200]}); "
                "every answer counts as empty."
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
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        gid = m.get("grade_id")
        if m.get("solution"):
            if gid in by_id:
                src = by_id[gid].get("source", "")
                src = "".join(s for s in src if isinstance(s, str)) if isinstance(src, list) else str(src)
                answers[gid] = src
                cell["source"] = src
            else:
                answers[gid] = ""
                cell["source"] = ""
                if student_cells:
                    notes.append(
                        f"The answer cell `{gid}` is missing from your notebook (deleted, or its "
                        "metadata changed); it counts as empty."
                    )
        elif m.get("grade") and cell["cell_type"] == "code":
            cell["source"] = spec.tests[gid]
    return Reconstructed(nb, answers, notes)


# ------------------------------------------------------------------------------ record (sandbox)


def _job(spec: Spec, rec: Reconstructed, skip: list[int], cell_timeout: float) -> dict:
    cells = []
    for i, cell in enumerate(rec.nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        m = _nbmeta(cell)
        test = bool(m.get("grade")) and not m.get("solution")
        cells.append({"i": i, "test": test, "grade_id": m.get("grade_id"), "source": _source(cell)})
    return {
        "cells": cells,
        "interface": spec.interface,
        "skip": skip,
        "max_cell_output": MAX_CELL_OUTPUT,
        "cell_timeout": cell_timeout,
    }


def readonly_binds() -> list[Path]:
    import conv_lib
    from course.sandbox import python_readonly_paths

    return [
        *python_readonly_paths(),
        Path(conv_lib.__file__).resolve().parent,
        Path(__file__).resolve().parent,
    ]


def runner_argv() -> list[str]:
    parent = str(Path(__file__).resolve().parents[1])
    code = f"import sys; sys.path.insert(0, {parent!r}); from course.replay_runner import main; main()"
    return [sys.executable, "-I", "-c", code]


def parse_log(workdir: Path) -> list[dict]:
    from course.sandbox import UnsafeResultError, read_result_file

    try:
        data = read_result_file(workdir, "rec/log.jsonl", MAX_LOG_BYTES)
    except (FileNotFoundError, UnsafeResultError, NotADirectoryError):
        return []
    events = []
    for line in data.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError, RecursionError):
            ev = json.loads(line)
            if isinstance(ev, dict) and isinstance(ev.get("ev"), str):
                events.append(ev)
    return events


def _gib(n: float) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def death_reason(result: Any, limits: Any, events: list[dict], cell_timeout: float = 0) -> str:
    """One sentence on why a run ended before its end (the sandbox's view, not the student's)."""
    why = result.killed_reason
    if why is None and result.returncode == 3 and any(e["ev"] == "cell_timeout" for e in events):
        text = f"The run was stopped after {cell_timeout:g} s (time limit of a cell)"
    elif why == "wall time":
        text = f"The run was stopped after {limits.wall_seconds:g} s (wall-time limit)"
    elif why == "memory":
        text = f"The run ran out of memory (limit {_gib(limits.memory_bytes)} per process)"
    elif why == "cpu time":
        text = f"The run used more than {limits.cpu_seconds} s of CPU time"
    elif why == "output limit":
        text = "The run printed more than the output limit"
    elif why == "file size":
        text = f"A file written by the run went over {_gib(limits.max_file_bytes)}"
    elif why:
        text = f"The run was killed ({why})"
    else:
        text = f"The Python process of the run ended early (exit status {result.returncode}: sys.exit at "
        text += "process level, os._exit or a crash)"
    started = {(e.get("test"), e.get("name"), e.get("idx")) for e in events if e["ev"] == "call_start"}
    done = {(e.get("test"), e.get("name"), e.get("idx")) for e in events if e["ev"] == "call"}
    open_calls = [k for k in started - done if isinstance(k[1], str)]
    if open_calls:
        text += f" while running `{open_calls[-1][1]}`"
    return text


def record_submission(job: dict) -> dict:
    """Worker: run the recorder in the sandbox, re-running without a fatal cell; pure data out.

    A re-run skips the cell the previous run died in (it keeps that run's reason) and the
    test cells already recorded (their records stay in that run's work directory); it
    runs all other non-test cells again. At most ``max_runs`` runs. Returns
    ``{"workdirs": [...], "skipped": {i: reason}, "runs": [...], "final_reason"}``; the
    grader reads the work directories itself.
    """
    from course.sandbox import SandboxLimits, run_sandboxed

    limits = SandboxLimits(**job["limits"])
    skipped: dict[int, str] = {}
    recorded: set[int] = set()
    runs: list[dict] = []
    workdirs: list[str] = []
    final_reason = ""
    tests = {c["i"] for c in job["payload"]["cells"] if c["test"]}
    for attempt in range(job["max_runs"]):
        workdir = Path(tempfile.mkdtemp(prefix=f"run{attempt}-", dir=job["base"]))
        workdirs.append(str(workdir))
        payload = dict(job["payload"], skip=sorted(set(skipped) | recorded))
        (workdir / "job.json").write_text(json.dumps(payload), encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = run_sandboxed(
                runner_argv(),
                workdir=workdir,
                readonly=readonly_binds(),
                limits=limits,
                allow_unsandboxed=job["allow_unsandboxed"],
            )
        events = parse_log(workdir)
        done = any(e["ev"] == "done" for e in events)
        runs.append(
            {
                "returncode": result.returncode,
                "killed": result.killed_reason,
                "seconds": round(result.duration, 2),
                "done": done,
                "sandboxed": result.sandboxed,
            }
        )
        ended = {e.get("i") for e in events if e["ev"] == "cell_end"}
        recorded |= {i for i in ended if i in tests}
        if done and result.killed_reason is None:
            final_reason = ""
            break
        final_reason = death_reason(result, limits, events, job["payload"].get("cell_timeout", 0))
        started = [e.get("i") for e in events if e["ev"] == "cell_start" and isinstance(e.get("i"), int)]
        culprit = next((i for i in reversed(started) if i not in ended), None)
        if culprit is None or culprit in skipped:
            break
        skipped[culprit] = final_reason
    return {"workdirs": workdirs, "skipped": skipped, "runs": runs, "final_reason": final_reason}


# ------------------------------------------------------------------------------ replay (grader)


class NoRecord(AssertionError):
    """A student function has no recorded result for this call."""


class ReplayedError(Exception):
    """Stands in for an exception class of the student's run that is not a builtin."""


_EXC_CACHE: dict[str, type] = {}


def _exception_type(name: str) -> type[BaseException]:
    obj = getattr(builtins, name, None)
    if isinstance(obj, type) and issubclass(obj, Exception):
        return obj
    if name not in _EXC_CACHE:
        safe = name if name.isidentifier() else "StudentError"
        _EXC_CACHE[name] = type(safe, (ReplayedError,), {})
    return _EXC_CACHE[name]


class Recording:
    """The final run's log and arrays, read safely from its work directory."""

    def __init__(self, workdir: Path, events: list[dict]) -> None:
        self.workdir = workdir
        self.events = events
        self.calls: dict[tuple[str, str], dict[int, dict]] = {}
        self.vars: dict[str, dict] = {}
        self.cells: dict[int, dict] = {}
        self.started: set[int] = set()
        self.died: dict[int, dict] = {}
        for e in events:
            kind = e["ev"]
            if kind == "call" and isinstance(e.get("idx"), int):
                self.calls.setdefault((str(e.get("test")), str(e.get("name"))), {}).setdefault(e["idx"], e)
            elif kind == "var" and isinstance(e.get("name"), str):
                self.vars.setdefault(e["name"], e)
            elif kind == "cell_end" and isinstance(e.get("i"), int):
                self.cells.setdefault(e["i"], e)
            elif kind == "cell_start" and isinstance(e.get("i"), int):
                self.started.add(e["i"])
            elif kind == "cell_died" and isinstance(e.get("i"), int):
                self.died.setdefault(e["i"], e)

    def died_reason(self, i: int, cell_timeout: float) -> str:
        """Why the forked process of test cell ``i`` ended before its end ("" if it did not)."""
        e = self.died.get(i)
        if e is None:
            return ""
        why = e.get("why") if isinstance(e.get("why"), list) else ["?", "?"]
        if why[0] == "timeout":
            text = f"The test was stopped after {cell_timeout:g} s (time limit of a cell)"
        elif why[0] == "signal":
            text = f"The test's process was killed (signal {why[1]}: a memory or CPU limit, or a crash)"
        else:
            text = f"The test's process ended early (exit status {why[1]}: sys.exit, os._exit or a crash)"
        gid = e.get("test")
        started = {
            (x.get("name"), x.get("idx"))
            for x in self.events
            if x["ev"] == "call_start" and x.get("test") == gid
        }
        done = {
            (x.get("name"), x.get("idx")) for x in self.events if x["ev"] == "call" and x.get("test") == gid
        }
        left = [k for k in started - done if isinstance(k[0], str)]
        return text + (f" while running `{left[0][0]}`" if left else "")

    def read_array(self, name: str) -> Any:
        from course.recording import Unsupported, load_array
        from course.sandbox import UnsafeResultError, read_result_file

        if "/" in name or not name.endswith(".npy"):
            raise Unsupported(f"bad array file name {name!r}")
        try:
            return load_array(read_result_file(self.workdir, f"rec/{name}", MAX_ARRAY_BYTES))
        except (FileNotFoundError, UnsafeResultError, ValueError, OSError) as err:
            raise Unsupported(f"unreadable array ({type(err).__name__})") from err


class Replayer:
    """Stands in for one student function during the replay of one test cell."""

    def __init__(
        self,
        name: str,
        records: dict[int, dict],
        recording: Recording,
        missing: str,
        student_source: str,
        given_source: str,
    ) -> None:
        self.__name__ = self.__qualname__ = name
        self.__module__ = "__main__"
        self._records = records
        self._recording = recording
        self._missing = missing
        self._n = 0
        self.__student_source__ = student_source
        self.__given_source__ = given_source

    def __repr__(self) -> str:
        return f"<function {self.__name__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import numpy as np

        from course.recording import Unsupported, decode, hash_call

        idx = self._n
        self._n += 1
        ev = self._records.get(idx)
        name = self.__name__
        if ev is None:
            raise NoRecord(f"`{name}` did not return for this input in the graded run ({self._missing}).")
        if ev.get("hash") != hash_call(args, kwargs):
            raise NoRecord(
                f"`{name}` was called with other inputs in the graded run than in the test "
                "(something in your notebook changed the test's data or its libraries)."
            )
        for key, fname in ev.get("mut") or []:
            target = args[key] if isinstance(key, int) and key < len(args) else kwargs.get(str(key))
            with contextlib.suppress(Exception):
                new = self._recording.read_array(str(fname))
                if isinstance(target, np.ndarray) and new.shape == target.shape:
                    np.copyto(target, new, casting="unsafe")
        kind = ev.get("kind")
        if kind == "return":
            try:
                return decode(ev.get("value"), self._recording.read_array)
            except (Unsupported, KeyError, TypeError, ValueError) as err:
                raise TypeError(f"{name} returned a value the grader cannot read ({err})") from None
        if kind == "unsupported":
            raise TypeError(
                f"{name} returned an unsupported return type {str(ev.get('what'))[:200]} (return arrays, "
                "numbers, strings, None, or tuples/lists/dicts of these)"
            )
        if kind == "raise":
            etype, msg = str(ev.get("type")), str(ev.get("msg"))[:2000]
            cls = _exception_type(etype)
            if cls is ReplayedError or issubclass(cls, ReplayedError):
                raise cls(msg)
            if etype not in ("KeyboardInterrupt", "SystemExit", "GeneratorExit"):
                raise cls(msg)
        raise RuntimeError(
            f"{name} stopped with {ev.get('type', 'an unknown outcome')}: {str(ev.get('msg', ''))[:500]}"
        )


@dataclass
class Outcome:
    """Replay of one test cell."""

    passed: bool
    stdout: str = ""
    value: str | None = None
    ename: str = ""
    evalue: str = ""
    reason: str = ""


_BASE_NS: dict[str, dict] = {}


def _base_namespace(spec: Spec) -> dict:
    """The instructor's read-only cells, executed once per assignment (instructor code only)."""
    if spec.assignment not in _BASE_NS:
        ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(_strip_magics(spec.given_source), "<given cells>", "exec"), ns)  # noqa: S102
        _BASE_NS[spec.assignment] = ns
    return _BASE_NS[spec.assignment]


def replay_cell(spec: Spec, gid: str, recording: Recording, student_source: str, missing: str) -> Outcome:
    from course.recording import Unsupported, decode

    ns = dict(_base_namespace(spec))
    for name in spec.interface:
        var = recording.vars.get(name)
        if var is None:
            continue
        if var.get("kind") == "callable":
            ns[name] = Replayer(
                name,
                recording.calls.get((gid, name), {}),
                recording,
                missing,
                student_source,
                spec.given_source,
            )
        elif var.get("kind") == "value":
            with contextlib.suppress(Unsupported, KeyError, TypeError, ValueError):
                ns[name] = decode(var.get("value"), recording.read_array)
    tree = ast.parse(spec.tests[gid])
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(tree, f"<test {gid}>", "exec"), ns)  # noqa: S102
            value = eval(compile(last, f"<test {gid}>", "eval"), ns) if last is not None else None  # noqa: S307
    except Exception as exc:  # noqa: BLE001 - every failure of the instructor's test is a zero
        return Outcome(False, out.getvalue(), None, type(exc).__name__, str(exc))
    return Outcome(True, out.getvalue(), None if value is None else repr(value))


# ------------------------------------------------------------------------------ notebook + gradebook


def _stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def _error(ename: str, evalue: str, lines: list[str]) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": lines}


def grade_reconstructed(
    spec: Spec, rec: Reconstructed, result: dict | None, run_reason: str = "", cell_timeout: float = 120
) -> dict:
    """Fill the reconstructed notebook's outputs: student cells from the run, test cells from replay."""
    recordings = [Recording(Path(w), parse_log(Path(w))) for w in (result or {}).get("workdirs", [])]
    recording = recordings[-1] if recordings else None

    def recording_for(i: int) -> Recording | None:
        """The run that finished test cell ``i`` (else the last one that started it, else the last run)."""
        for r in recordings:
            if i in r.cells:
                return r
        return next((r for r in reversed(recordings) if i in r.started), recording)

    skipped = {int(k): v for k, v in (result or {}).get("skipped", {}).items()}
    final = (result or {}).get("final_reason", "") or run_reason
    student_source = "\n\n".join(
        rec.answers.get(g, "") for g in spec.solution_ids if spec.solution_types.get(g) == "code"
    )
    nb = rec.nb
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        m = _nbmeta(cell)
        gid = m.get("grade_id")
        is_test = bool(m.get("grade")) and not m.get("solution")
        outputs: list[dict] = []
        if i in skipped:
            reason = skipped[i]
            if is_test:
                reason += "; this test scores zero (the other cells were run again without it)."
            outputs.append(_error("GradingStopped", reason, [reason]))
        elif is_test:
            recording = recording_for(i)
            if recording is None:
                missing = final or "your notebook was not run"
            elif i not in recording.started:
                missing = (final or "the run did not reach this test") + " before this test"
            elif i not in recording.cells:
                missing = final or "the run ended in this test"
            else:
                missing = recording.died_reason(i, cell_timeout) or "no result was recorded for this call"
            o = (
                replay_cell(spec, gid, recording, student_source, missing)
                if recording
                else Outcome(False, "", None, "GradingStopped", missing)
            )
            if o.stdout:
                outputs.append(_stream(o.stdout))
            if o.passed:
                if o.value is not None:
                    outputs.append(
                        {
                            "output_type": "execute_result",
                            "execution_count": None,
                            "metadata": {},
                            "data": {"text/plain": o.value},
                        }
                    )
            else:
                outputs.append(_error(o.ename, o.evalue, [f"{o.ename}: {o.evalue}"]))
        elif recordings:
            recording = recordings[-1]
            end = recording.cells.get(i)
            if end is not None:
                text = str(end.get("output") or "")[: MAX_CELL_OUTPUT + 200]
                if text:
                    outputs.append(_stream(text))
                err = end.get("error")
                if isinstance(err, list) and len(err) == 2:
                    outputs.append(
                        _error(str(err[0])[:200], str(err[1])[:2000], [f"{err[0]}: {err[1]}"[:2200]])
                    )
            elif i in recording.started:
                outputs.append(_error("GradingStopped", final, [final]))
        cell["outputs"] = outputs
    notes = rec.notes + ([final + "."] if final and not skipped else [])
    if notes:
        lines = "\n".join(f"- {n}" for n in notes)
        nb["cells"].insert(
            0,
            {
                "cell_type": "markdown",
                "metadata": {},
                "id": "grading-notes",
                "source": f"**Notes from the autograder**\n\n{lines}",
            },
        )
    return nb


def save_grades(gb: Any, nb: dict, db_url: str, assignment: str, student: str, stem: str) -> None:
    """nbgrader's SaveAutoGrades on the graded notebook, through the grader's open gradebook."""
    import nbformat
    from nbgrader.preprocessors import SaveAutoGrades
    from nbgrader.preprocessors.base import NbGraderPreprocessor

    node = nbformat.from_dict(nb)
    # nbgrader commits after every cell (one fsync each); here the submission's writes are
    # flushed as they come and committed once at the end (all of it, or none on an error).
    db = gb.db
    db.commit = db.flush
    try:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student)
        pp = SaveAutoGrades()
        pp.notebook_id, pp.assignment_id, pp.student_id, pp.db_url = stem, assignment, student, db_url
        pp.gradebook = gb
        resources = {
            "nbgrader": {"notebook": stem, "assignment": assignment, "student": student, "db_url": db_url}
        }
        NbGraderPreprocessor.preprocess(pp, node, resources)
    except BaseException:
        del db.commit
        db.rollback()
        raise
    del db.commit
    db.commit()


def write_autograded(root: Path, nb: dict, assignment: str, student: str, stem: str) -> Path:
    import nbformat

    folder = root / GRADING / "autograded" / student / assignment
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out = folder / f"{stem}.ipynb"
    node = nbformat.from_dict(nb)
    nbformat.write(node, str(out))
    return out


def skip_iri_grammars() -> None:
    """Keep jsonschema (imported by nbformat) from compiling the ~40 grammars of
    ``rfc3987_syntax`` (1.5 s per process) for its "iri" formats, which the notebook schema
    never uses. Only before jsonschema's first import; a no-op afterwards."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def grade_submission(job: dict) -> dict:
    """Worker: :func:`record_submission`, then the replay (:func:`grade_reconstructed`) and the
    autograded notebook, here in the (unsandboxed, trusted) pool worker so that only the
    gradebook write is left to the grader's process. Returns ``{"nb": graded notebook}``.

    Only the grader's own code runs here: the student's code ran in the sandbox, and the
    recordings are read as JSON and ``.npy`` without pickle, as in the parent.
    """
    skip_iri_grammars()
    spec, rec = job["spec"], job["rec"]
    try:
        result: dict | None = record_submission(job)
    except Exception as err:  # noqa: BLE001 - one broken run never stops the class
        result = None
        rec.notes.append(f"The grader could not run this submission ({type(err).__name__}: {err}).")
    try:
        nb = grade_reconstructed(spec, rec, result, cell_timeout=job["payload"]["cell_timeout"])
        write_autograded(Path(job["root"]), nb, spec.assignment, job["student"], spec.notebook)
    finally:
        for w in (result or {}).get("workdirs", []):
            shutil.rmtree(w, ignore_errors=True)
    return {"nb": nb}


# ------------------------------------------------------------------------------ driver


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def autograde_trusted(
    root: Path,
    todo: list[tuple[str, str]],
    *,
    db_url: str,
    jobs: int | None = None,
    timeout: float = 120.0,
    allow_unsandboxed: bool = False,
    max_runs: int = 5,
    progress: Any = None,
) -> list[tuple[str, str, bool, str]]:
    """Grade ``todo`` [(assignment, student)]: record + replay in a pool, gradebook here."""
    from nbgrader.api import Gradebook

    from course.sandbox import sandbox_available

    ok, why = sandbox_available()
    if not ok and not allow_unsandboxed:
        raise SystemExit(
            f"refusing to autograde: the grading sandbox is not available ({why}).\n"
            "Install bubblewrap (apt-get install bubblewrap) and run as root or with user namespaces, "
            "or pass "
            "--allow-unsandboxed to run student code WITHOUT isolation, with your rights (not recommended)."
        )
    specs = {a: load_spec(root, a) for a in sorted({a for a, _ in todo})}
    # ``timeout`` is per cell (as nbgrader's); one run may take a few cells' worth.
    limits = {"wall_seconds": 3 * float(timeout) + 30, "cpu_seconds": int(3 * timeout + 30)}
    base = Path(tempfile.mkdtemp(prefix="course-grading-"))
    os.chmod(base, 0o711)
    results: list[tuple[str, str, bool, str]] = []
    recs: dict[tuple[str, str], Reconstructed] = {}
    payloads = []
    for a, student in todo:
        spec = specs[a]
        path, note = find_submission(root / GRADING / "submitted" / student / a, spec.notebook)
        rec = reconstruct(spec, path, note)
        rec.graded_file = str(path or "")
        recs[(a, student)] = rec
        if path is not None:
            payloads.append(
                (
                    a,
                    student,
                    {
                        "payload": _job(spec, rec, [], timeout),
                        "limits": limits,
                        "max_runs": max_runs,
                        "base": str(base),
                        "allow_unsandboxed": allow_unsandboxed,
                        "spec": spec,
                        "rec": rec,
                        "root": str(root),
                        "student": student,
                    },
                )
            )
    db_path = root / GRADING / "gradebook.db"
    ctx = multiprocessing.get_context("spawn")
    done = 0
    try:
        with (
            Gradebook(db_url) as gb,
            cf.ProcessPoolExecutor(max_workers=jobs or default_jobs(), mp_context=ctx) as pool,
        ):
            if db_path.exists():
                os.chmod(db_path, 0o600)
            futures = {pool.submit(grade_submission, job): (a, s) for a, s, job in payloads}

            def finish(a: str, s: str, nb: dict) -> None:
                """Record one graded submission (the parent alone writes the gradebook)."""
                nonlocal done
                save_grades(gb, nb, db_url, a, s, specs[a].notebook)
                results.append((a, s, True, ""))
                done += 1
                if progress:
                    progress(done, len(todo), f"{s}/{a}")

            submitted = set(futures.values())
            for a, s in todo:
                if (a, s) in submitted:
                    continue
                # nothing to run: grade the empty reconstruction now
                rec = recs[(a, s)]
                nb = grade_reconstructed(specs[a], rec, None, rec.notes[-1] if rec.notes else "")
                write_autograded(root, nb, a, s, specs[a].notebook)
                finish(a, s, nb)
            for fut in cf.as_completed(futures):
                a, s = futures[fut]
                try:
                    nb = fut.result()["nb"]
                except Exception as err:  # noqa: BLE001 - one broken worker never stops the class
                    recs[(a, s)].notes.append(
                        f"The grader could not run this submission ({type(err).__name__}: {err})."
                    )
                    nb = grade_reconstructed(specs[a], recs[(a, s)], None, cell_timeout=timeout)
                    write_autograded(root, nb, a, s, specs[a].notebook)
                finish(a, s, nb)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if db_path.exists():
            os.chmod(db_path, 0o600)
    return results
