"""Turn a case of tests/hostile/cases.py into the bytes of a submitted notebook.

Most cases are text edits of the instructor's solution (or of the released stubs). A few
need the host (``MAKERS``): a lookup table of every answer the grader will ask for
(computed here by running the instructor's test cells against the instructor's solution,
recording each call), parameters pretrained on the public digits, or a table of the
public digits' labels.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import inspect
import io
import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from hostile.cases import A1, ASSIGNMENT, TABLE_FUNCTIONS, TABLE_KEY  # noqa: E402
from test_assignments_e2e import load_nb, solution_sources, student_notebook  # noqa: E402

from course.config import notebook_name  # noqa: E402

#: The venv's site-packages (where conv_lib's dependencies, scipy and torch live on the host).
VENV_SITE = str(next((Path(sys.prefix) / "lib").glob("python3*/site-packages")))


def assignment_of(case: dict) -> str:
    return ASSIGNMENT[case["a"]]


def _cells(nb: dict) -> list[dict]:
    return nb["cells"]


def _nbg(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def released_sources(released: dict) -> dict[str, str]:
    """grade_id -> the released (stub) source of every answer cell."""
    out = {}
    for cell in _cells(released):
        m = _nbg(cell)
        if m.get("solution"):
            src = cell["source"]
            out[m["grade_id"]] = "".join(src) if isinstance(src, list) else src
    return out


def _weaken_tests(nb: dict) -> None:
    """Blank every test cell, delete one, and give every cell 1000 points, ungraded."""
    tests = [c for c in _cells(nb) if _nbg(c).get("grade") and not _nbg(c).get("solution")]
    for c in tests:
        c["source"] = "pass"
    nb["cells"].remove(tests[-1])
    for c in _cells(nb):
        m = _nbg(c)
        if m:
            m.update(grade=False, points=1000, locked=False)


def _delete_output_size(nb: dict) -> None:
    nb["cells"] = [c for c in _cells(nb) if _nbg(c).get("grade_id") != "output_size"]


NOTEBOOK_CHANGES: dict[str, Callable[[dict], None]] = {
    "weaken_tests": _weaken_tests,
    "delete_output_size": _delete_output_size,
}


# ------------------------------------------------------------------------------ makers


def _given_and_solution_namespace(assignment: str) -> dict[str, Any]:
    """The instructor's notebook run here (given cells and solutions; no test cell)."""
    nb = load_nb(REPO / "solutions" / assignment / f"{notebook_name(assignment)}.ipynb")
    answers = solution_sources(assignment)
    ns: dict[str, Any] = {"__name__": "__main__"}
    for cell in _cells(nb):
        m = _nbg(cell)
        if cell["cell_type"] != "code" or (m.get("grade") and not m.get("solution")):
            continue
        if m.get("grade_id") == "training":
            continue  # assignment 4's training cell: not needed here
        src = answers[m["grade_id"]] if m.get("solution") else "".join(cell["source"])
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(src, f"<{m.get('grade_id', 'cell')}>", "exec"), ns)  # noqa: S102
    return ns


def test_sources(assignment: str) -> dict[str, str]:
    """grade_id -> the instructor's test cell, hidden tests included."""
    nb = load_nb(REPO / "solutions" / assignment / f"{notebook_name(assignment)}.ipynb")
    return {
        _nbg(c)["grade_id"]: "".join(c["source"])
        for c in _cells(nb)
        if c["cell_type"] == "code" and _nbg(c).get("grade") and not _nbg(c).get("solution")
    }


def record_answers(assignment: str, student: str, secret: bytes | None) -> tuple[dict[str, Any], dict]:
    """Every call the instructor's tests make (visible ones, and the hidden ones of
    ``student`` under ``secret``), answered by the instructor's solution: key -> answer."""
    from course.grading.context import grading_context

    key_ns: dict[str, Any] = {"_TABLE": {}}
    exec(TABLE_KEY, key_ns)  # noqa: S102 - the same key function the submission uses
    ns = _given_and_solution_namespace(assignment)
    table: dict[str, Any] = {}

    def recorder(name: str) -> Callable[..., Any]:
        fn = ns[name]
        sig = inspect.signature(fn)

        def record(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            result = fn(*args, **kwargs)
            table[key_ns["_key"](name, *bound.arguments.values())] = copy.deepcopy(result)
            return result

        record.__name__ = name
        return record

    names = [n for n in TABLE_FUNCTIONS if n in ns]
    for grade_id, src in test_sources(assignment).items():
        test_ns = {**{n: recorder(n) for n in names}, "same_under_flip": ns.get("same_under_flip")}
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                if secret is None:
                    exec(compile(src, grade_id, "exec"), test_ns)  # noqa: S102
                else:
                    with grading_context(secret, student, assignment):
                        exec(compile(src, grade_id, "exec"), test_ns)  # noqa: S102
        except AssertionError:
            if secret is not None:
                raise
    return table, ns


def make_table(case: dict, student: str, secret: bytes) -> dict[str, str]:
    """Answer cells that look every answer up in a table instead of computing it.

    ``make_args["secret"]``: "visible" (the visible cases only: what any student can
    record), "guessed" (the hidden cases too, drawn by the public generator with a guessed
    secret), "real" (with the instructor's secret: what a leak would give). ``student``
    in ``make_args`` records another student's cases.
    """
    args = case.get("make_args", {})
    which = args.get("secret", "visible")
    chosen = {"visible": None, "guessed": b"\0" * 32, "real": secret}[which]
    table, ns = record_answers(A1, args.get("student", student), chosen)
    blob = base64.b64encode(pickle.dumps(table)).decode()
    answers = {gid: TABLE_FUNCTIONS[gid] for gid in TABLE_FUNCTIONS}
    answers["zero_pad"] = f"_TABLE = pickle.loads(base64.b64decode('{blob}'))\n" + answers["zero_pad"]
    answers["zero_pad"] = TABLE_KEY + answers["zero_pad"]
    answers["same_under_flip"] = f"same_under_flip = {list(ns['same_under_flip'])!r}\n"
    return answers


def _pretrained_params() -> dict[str, np.ndarray]:
    """The instructor's network trained here on every public training digit, original labels."""
    ns = _given_and_solution_namespace(ASSIGNMENT["04"])
    X, y = ns["load_digits_train"]()
    with contextlib.redirect_stdout(io.StringIO()):
        return {k: np.asarray(v) for k, v in ns["train"](X, y).items()}


def make_pretrained(case: dict, student: str, secret: bytes) -> dict[str, str]:
    """``train`` ignores what it is given and returns parameters trained beforehand."""
    answers = solution_sources(ASSIGNMENT["04"])
    blob = base64.b64encode(pickle.dumps(_pretrained_params())).decode()
    answers["cnn"] += (
        "\n\nimport base64 as _b64, pickle as _pickle\n"
        f"_PRETRAINED = _pickle.loads(_b64.b64decode('{blob}'))\n\n\n"
        "def train(X, y, *args, **kwargs):\n    return {k: v.copy() for k, v in _PRETRAINED.items()}\n"
    )
    return answers


def make_digit_table(case: dict, student: str, secret: bytes) -> dict[str, str]:
    """``predict`` looks each image up in a table of all 1797 public digits and their labels."""
    import conv_lib

    X, y = conv_lib.load_digits()
    table = {np.asarray(x, dtype=np.float64).tobytes(): int(label) for x, label in zip(X, y, strict=True)}
    blob = base64.b64encode(pickle.dumps(table)).decode()
    answers = solution_sources(ASSIGNMENT["04"])
    answers["cnn"] += (
        "\n\nimport base64 as _b64, pickle as _pickle\n"
        f"_DIGITS = _pickle.loads(_b64.b64decode('{blob}'))\n\n\n"
        "def predict(params, X):\n"
        "    return np.array([_DIGITS.get(np.asarray(x, dtype=np.float64).tobytes(), 0) for x in X])\n"
    )
    return answers


MAKERS: dict[str, Callable[[dict, str, bytes], dict[str, str]]] = {
    "table": make_table,
    "pretrained": make_pretrained,
    "digit_table": make_digit_table,
}


# ------------------------------------------------------------------------------ build


def build(
    case: dict, released: dict, root: Path, student: str, secret: bytes = b"", secret_file: str = ""
) -> tuple[str, bytes]:
    """(file name, bytes) of the notebook ``student`` submits for ``case`` (``secret`` and
    ``secret_file``: the instructor's, for the tables that need them and the canaries)."""
    a = assignment_of(case)
    stem = notebook_name(a)
    if "raw" in case:
        return case.get("rename", f"{stem}.ipynb"), case["raw"]
    if "make" in case:
        answers = MAKERS[case["make"]](case, student, secret)
    elif case.get("stubs"):
        answers = released_sources(released)
    else:
        answers = solution_sources(a, case.get("edits"))
    if case.get("stubs") and case.get("edits"):
        raise ValueError("edits apply to the solution; with stubs use prepend/append/replace")
    answers = {**answers, **case.get("replace", {})}
    for gid, code in case.get("prepend", {}).items():
        answers[gid] = code + answers[gid]
    for gid, code in case.get("append", {}).items():
        answers[gid] = answers[gid] + code
    nb = student_notebook(released, answers)
    if "notebook" in case:
        NOTEBOOK_CHANGES[case["notebook"]](nb)
    text = json.dumps(nb)
    for old, new in case.get("raw_replace", []):
        assert old in text, f"raw_replace target {old!r} not found"
        text = text.replace(old, new)
    subs = {
        "{GRADEBOOK}": str(root / "grading" / "gradebook.db"),
        "{ROOT}": str(root),
        "{AUTOGRADED}": str(root / "grading" / "autograded" / student / a / f"{stem}.ipynb"),
        "{SECRET_FILE}": secret_file or "/nonexistent/secret",
        "{SECRET_HEX}": secret.hex(),
        "{REPO}": str(REPO),
        "{VENV_SITE}": VENV_SITE,
    }
    for k, v in subs.items():
        text = text.replace(k, v)
    data = text.encode()
    for old_b, new_b in case.get("raw_replace_bytes", []):
        assert old_b in data, f"raw_replace_bytes target {old_b!r} not found"
        data = data.replace(old_b, new_b)
    return case.get("rename", f"{stem}.ipynb"), data
