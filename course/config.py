"""Where things are: the course folder, the assignments and their notebooks."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: The course folder (the one holding nbgrader_config.py); ``--root`` overrides it.
DEFAULT_ROOT = Path(__file__).resolve().parents[1]

#: The graded assignments, in order; each has one notebook (see :func:`notebook_name`).
ASSIGNMENTS: tuple[str, ...] = (
    "01_convolution_by_hand",
    "02_convolution_layers",
    "03_backpropagation",
    "04_applications",
)

#: What student code may import while it is graded: only these packages (and the student kit,
#: ``coursekit``) are bound into the sandbox, next to Python's standard library. NumPy unless an
#: assignment's questions need more; ``conv_lib``, SciPy and torch are never there.
SANDBOX_PACKAGES: dict[str, tuple[str, ...]] = {a: ("numpy",) for a in ASSIGNMENTS}

SOURCE = "solutions"
RELEASE = "exercises"
GRADING = "grading"


def notebook_name(assignment: str) -> str:
    """The notebook's file stem: the folder name without its number, e.g. ``convolution_by_hand``."""
    prefix, _, stem = assignment.partition("_")
    if not prefix.isdigit() or not stem:
        raise ValueError(f"assignment: got {assignment!r}; expected a name like '01_convolution_by_hand'")
    return stem


def check_assignments(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The requested assignments (all of them for None/empty), each checked against :data:`ASSIGNMENTS`."""
    if not names:
        return ASSIGNMENTS
    unknown = [n for n in names if n not in ASSIGNMENTS]
    if unknown:
        raise SystemExit(f"unknown assignment(s) {unknown}; expected some of {list(ASSIGNMENTS)}")
    return tuple(names)


@contextlib.contextmanager
def inside(root: Path) -> Iterator[Path]:
    """Run the body with the course folder as the current directory (nbgrader needs it)."""
    root = Path(root).resolve()
    if not (root / "nbgrader_config.py").is_file():
        raise SystemExit(f"{root} is not the course folder: it has no nbgrader_config.py")
    before = Path.cwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(before)
