"""``python -m course check NOTEBOOK``: run a student notebook's visible tests, summarise them.

Unlike ``nbgrader validate`` (which exits 0 even when tests fail), the exit status says
whether every visible test passed: 0 all passed, 1 some test failed or could not run. The
notebook runs top to bottom in a fresh kernel of the Python running this command, in its own
folder, on a copy (the file on disk is not changed). Tests are named as the student sees
them: the heading of the part they sit under and the test cell's first line. No score is
printed: hidden tests and the graded score come only when the notebook is graded.

Students need only the ``student`` extra of the package (``pip install "conv-lib[student] @
git+<repository>"``): nbclient, nbformat and ipykernel, no nbgrader.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


@dataclass
class TestOutcome:
    """One graded cell of the notebook after running it."""

    grade_id: str
    points: float
    status: str  # "passed", "failed", "manual"
    message: str = ""
    where: str = ""  # the heading the student sees above the cell
    first_line: str = ""  # the cell's first line of code (what the test calls)

    @property
    def title(self) -> str:
        """How the student finds this test: the part's heading and the test's first line."""
        if self.status == "manual":
            return f"{self.where} (written answer)"
        return f"{self.where}: {self.first_line}" if self.first_line else self.where


def _error_text(cell: dict) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            ename, evalue = out.get("ename", "Error"), _ANSI.sub("", out.get("evalue", ""))
            return f"{ename}: {evalue}" if evalue else ename
    return None


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _first_code_line(cell: dict) -> str:
    """The first line that is not an import, a comment or blank (the call a test cell makes)."""
    for line in _source(cell).splitlines():
        s = line.strip()
        if s and not s.startswith(("#", "from ", "import ")):
            return s if len(s) <= 90 else s[:87] + "..."
    return ""


def _kernel_manager(path: Path):  # noqa: ANN202 - jupyter_client's KernelManager
    """A kernel of *this* Python (the one that has the course installed), quiet about transport."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km._kernel_spec = KernelSpec(  # the spec of this interpreter, not whatever "python3" is on the PATH
        argv=[
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--IPKernelApp.log_level=ERROR",  # no "running over TCP without encryption" warning
        ],
        display_name="Python 3",
        language="python",
        resource_dir=str(path.parent),
    )
    return km


def run_checks(path: Path, timeout: int = 120) -> tuple[list[TestOutcome], list[str]]:
    """Execute the notebook; return the outcome of each graded cell and the errors of the others."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb,
        km=_kernel_manager(path),
        timeout=timeout,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    outcomes: list[TestOutcome] = []
    other_errors: list[str] = []
    heading = path.name
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "markdown":
            found = _HEADING.findall(_source(cell))
            if found:
                heading = found[-1].strip()
            if meta.get("grade") and meta.get("solution"):
                outcomes.append(
                    TestOutcome(
                        meta.get("grade_id", "?"), float(meta.get("points", 0)), "manual", where=heading
                    )
                )
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
                    where=heading,
                    first_line=_first_code_line(cell),
                )
            )
        elif error:
            first = _source(cell).strip().splitlines()[0] if _source(cell).strip() else ""
            start = f" (the cell starting `{first[:60]}`)" if first else ""
            other_errors.append(f"under '{heading}'{start}: {error.splitlines()[0]}")
    return outcomes, other_errors


def check(path: Path, timeout: int = 120) -> int:
    """Run the checks, print the summary, return the exit status."""
    path = Path(path)
    if not path.is_file():
        print(f"{path}: no such notebook", file=sys.stderr)
        return 2
    print(f"Running {path} in a fresh kernel ...", flush=True)
    outcomes, other_errors = run_checks(path, timeout)
    auto = [o for o in outcomes if o.status != "manual"]
    passed = [o for o in auto if o.status == "passed"]
    for o in outcomes:
        mark = {"passed": "PASS", "failed": "FAIL", "manual": "HAND"}[o.status]
        print(f"  {mark}  {o.title}")
        if o.status == "manual":
            print("          graded by hand after you hand it in")
        for line in o.message.splitlines()[:8]:
            print(f"          {line}")
    if other_errors:
        print("Errors in your own cells (fix these first; later tests may fail because of them):")
        for e in other_errors:
            print(f"  - {e}")
    print(
        f"{len(passed)}/{len(auto)} visible tests passed. This is not your score: the hidden tests "
        "(more cases, drawn for you) and the graded score come only when your notebook is graded."
    )
    return 0 if len(passed) == len(auto) and not other_errors else 1
