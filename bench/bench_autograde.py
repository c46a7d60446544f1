"""Throughput of ``course autograde`` (trusted path, sandbox on) vs stock ``nbgrader autograde``.

Builds N submissions of assignment 1 (40% correct, 30% wrong from tests/submissions, 30%
hostile from tests/hostile that are safe to run *unsandboxed*: no fork bomb, no
memory hog, no hang, nothing that writes outside its folder), grades the same set in two
throw-away copies of the course, and prints submissions/minute for each and the ratio.

    .venv/bin/python bench/bench_autograde.py            # N = 100
    .venv/bin/python bench/bench_autograde.py --n 30     # fewer (stock is slow)
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_assignments_e2e import load_nb, solution_sources, student_notebook  # noqa: E402
from test_autograde_hostile import build  # noqa: E402

A, NB = "01_convolution_by_hand", "convolution_by_hand.ipynb"
#: Hostile cases that stock nbgrader can run without harming the machine.
SAFE_FOR_STOCK = [
    "assert_allclose_noop", "displayhook_partial_credit", "input_transformer_blanks_tests",
    "patch_conv_lib_grading", "numpy_patched_to_expected", "eq_override_returns_true", "float_subclass_eq",
    "edited_test_cell_weakened", "deleted_test_cells", "metadata_grade_false_points_1000",
    "deleted_solution_cell", "sys_exit_in_function", "warnings_from_correct_code", "uses_scipy_reference",
    "modifies_input_in_place", "invalid_json", "huge_print",
]  # fmt: skip


def course(root: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=7200,
    )
    return time.perf_counter() - start


def make_course(base: Path, n: int) -> Path:
    root = base / "course"
    root.mkdir(parents=True)
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    course(root, "release", A)
    released = load_nb(root / "exercises" / A / NB)
    wrong = list(runpy.run_path(str(ROOT / "tests" / "submissions" / f"{A}.py"))["SUBMISSIONS"].values())
    hostile = runpy.run_path(str(ROOT / "tests" / "hostile" / "cases.py"))["CASES"]
    incoming = base / "incoming"
    for k in range(n):
        student = f"s{k:03d}"
        folder = incoming / student / A
        folder.mkdir(parents=True)
        kind = k % 10
        if kind < 4:
            data, name = json.dumps(student_notebook(released, solution_sources(A))).encode(), NB
        elif kind < 7:
            edits = wrong[k % len(wrong)]["edits"]
            data, name = json.dumps(student_notebook(released, solution_sources(A, edits))).encode(), NB
        else:
            name, data = build(hostile[SAFE_FOR_STOCK[k % len(SAFE_FOR_STOCK)]], released, root, student)
        (folder / name).write_bytes(data)
    course(root, "collect", str(incoming))
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="submissions (default: %(default)s)")
    p.add_argument("--skip-stock", action="store_true", help="time only the trusted path")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        trusted_root = make_course(base / "trusted", args.n)
        stock_root = make_course(base / "stock", args.n)
        cores = len(os.sched_getaffinity(0))
        t_new = course(trusted_root, "autograde", A)
        print(f"machine: {cores} cores; {args.n} submissions of {A} (40% correct, 30% wrong, 30% hostile)")
        rate = 60 * args.n / t_new
        print(f"trusted (sandbox on, {cores} jobs): {t_new:7.1f} s  {rate:7.1f} submissions/min")
        if not args.skip_stock:
            t_stock = course(stock_root, "autograde", A, "--stock")
            rate = 60 * args.n / t_stock
            print(f"stock nbgrader autograde:         {t_stock:7.1f} s  {rate:7.1f} submissions/min")
            print(f"ratio trusted/stock: {t_stock / t_new:.2f}x")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
