"""``python -m course check NOTEBOOK``: run a student notebook's visible tests, summarise them.

Unlike ``nbgrader validate`` (which exits 0 even when tests fail), the exit status says
whether every test passed: 0 all passed, 1 some test failed or could not run. The
notebook runs top to bottom in a fresh kernel, in its own folder, on a copy (the file on
disk is not changed).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class TestOutcome:
    """One graded cell of the notebook after running it."""

    grade_id: str
    points: float
    status: str  # "passed", "failed", "manual"
    message: str = ""


def _error_text(cell: dict) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            ename, evalue = out.get("ename", "Error"), _ANSI.sub("", out.get("evalue", ""))
            return f"{ename}: {evalue}" if evalue else ename
    return None


def run_checks(path: Path, timeout: int = 120) -> tuple[list[TestOutcome], list[str]]:
    """Execute the notebook; return the outcome of each graded cell and the errors of the others."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    outcomes: list[TestOutcome] = []
    other_errors: list[str] = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and meta.get("solution") and cell.cell_type == "markdown":
            outcomes.append(TestOutcome(meta.get("grade_id", "?"), float(meta.get("points", 0)), "manual"))
            continue
        if cell.cell_type != "code":
            continue
        error = _error_text(cell)
        if meta.get("grade") and not meta.get("solution"):
            outcomes.append(
                TestOutcome(
                    meta.get("grade_id", "?"),
                    float(meta.get("points", 0)),
                    "failed" if error else "passed",
                    error or "",
                )
            )
        elif error:
            where = meta.get("grade_id") or cell.get("id", "?")
            other_errors.append(f"cell {where}: {error.splitlines()[0]}")
    return outcomes, other_errors


def _fmt(points: float) -> str:
    return f"{points:g}"


def check(path: Path, timeout: int = 120) -> int:
    """Run the checks, print the summary, return the exit status."""
    path = Path(path)
    if not path.is_file():
        print(f"{path}: no such notebook", file=sys.stderr)
        return 2
    print(f"Running {path} ...", flush=True)
    outcomes, other_errors = run_checks(path, timeout)
    auto = [o for o in outcomes if o.status != "manual"]
    passed = [o for o in auto if o.status == "passed"]
    width = max((len(o.grade_id) for o in outcomes), default=10)
    for o in outcomes:
        mark = {"passed": "PASS", "failed": "FAIL", "manual": "HAND"}[o.status]
        pts = (
            f"{_fmt(o.points if o.status == 'passed' else 0)}/{_fmt(o.points)}"
            if o.status != "manual"
            else f"?/{_fmt(o.points)}"
        )
        print(f"  {mark}  {o.grade_id:<{width}}  {pts:>7}")
        if o.message:
            for line in o.message.splitlines()[:8]:
                print(f"          {line}")
    if other_errors:
        print("Errors in your own cells (fix these first; later tests may fail because of them):")
        for e in other_errors:
            print(f"  - {e}")
    got = sum(o.points for o in passed)
    total = sum(o.points for o in auto)
    manual = sum(o.points for o in outcomes if o.status == "manual")
    extra = f" (+ {_fmt(manual)} graded by hand)" if manual else ""
    print(
        f"{len(passed)}/{len(auto)} visible tests passed, {_fmt(got)}/{_fmt(total)} points{extra}. "
        "Hidden tests run when your work is graded."
    )
    return 0 if len(passed) == len(auto) and not other_errors else 1
