"""Throughput and memory of ``course autograde`` (the grader owns the tests, student code in
sandboxed answer servers) against stock ``nbgrader autograde``, on the same submissions in
the same run.

Builds N submissions of assignment 1: 40% honest (the instructor's solution, a vectorised
and a loop variant), 30% wrong (tests/submissions), 30% hostile cases of the corpus
(tests/hostile/cases.py) that stock nbgrader can run without harming the machine (no fork
or memory bomb, no hang, nothing that writes outside its folder). The same set is graded in
two throw-away copies of the course, the new design first, then stock, then the new design
again (its median is used). While a command runs, its process tree is sampled every 0.1 s
(psutil): the peak resident memory of the grader's own processes (the coordinating process
and its worker processes; for stock, the nbgrader process) is printed apart from that of
the processes running student code (sandboxes; for stock, the Jupyter kernels).

    .venv/bin/python bench/bench_autograde.py            # N = 60
    .venv/bin/python bench/bench_autograde.py --n 100
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hostile.build import build  # noqa: E402
from hostile.cases import A1_LOOPS, A1_VECTORISED, CASES  # noqa: E402
from test_assignments_e2e import load_nb, solution_sources, student_notebook  # noqa: E402

from course.sandbox import UID_BASE, UID_SLOTS  # noqa: E402
from course.secret import SECRET_ENV  # noqa: E402

A, NB = "01_convolution_by_hand", "convolution_by_hand.ipynb"
#: Hostile cases that stock nbgrader can run without harming the machine.
SAFE_FOR_STOCK = [
    "reference_importlib",
    "reference_dunder_concat",
    "reference_scipy_signal",
    "reference_toplevel_try_if_for",
    "table_of_visible_answers",
    "table_from_public_generator_guessed_secret",
    "stubs_hunt_tests_gc_inspect_modules",
    "int_subclass_eq_always_true",
    "ndarray_subclass_eq_always_true",
    "list_subclass_answer",
    "object_array",
    "recursive_structure",
    "nan_and_inf_tricks",
    "patches_numpy_in_its_process",
    "modifies_input_in_place",
    "lone_surrogate_and_nul_in_answer",
    "test_cells_weakened_and_deleted_metadata_changed",
    "deleted_solution_cell",
    "renamed_notebook",
    "invalid_json",
    "sys_exit_in_function",
    "huge_prints",
    "random_answers",
]


@dataclass
class Measured:
    seconds: float
    grader_peak: int  # bytes: the largest sum of RSS of the grader's own processes
    grader_largest: int  # bytes: the largest RSS of one grader process
    student_peak: int  # bytes: the largest sum of RSS of processes running student code
    returncode: int


def _is_student_process(proc: object, sandbox_uids: range) -> bool:
    import psutil

    try:
        if proc.uids().real in sandbox_uids or proc.name() in ("bwrap", "prlimit", "setpriv"):  # type: ignore[attr-defined]
            return True
        return any("ipykernel" in part for part in proc.cmdline())  # type: ignore[attr-defined]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def measured(root: Path, env: dict[str, str], *args: str) -> Measured:
    """Run ``python -m course --root ROOT ARGS``, sampling its process tree's memory."""
    import psutil

    sandbox_uids = range(UID_BASE, UID_BASE + UID_SLOTS)
    start = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "course", "--root", str(root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    top = psutil.Process(proc.pid)
    grader_peak = grader_largest = student_peak = 0
    while proc.poll() is None:
        try:
            tree = [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        grader = student = 0
        for p in tree:
            try:
                rss = p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if p.pid != top.pid and _is_student_process(p, sandbox_uids):
                student += rss
            else:
                grader += rss
                grader_largest = max(grader_largest, rss)
        grader_peak, student_peak = max(grader_peak, grader), max(student_peak, student)
        time.sleep(0.1)
    proc.wait()
    return Measured(time.perf_counter() - start, grader_peak, grader_largest, student_peak, proc.returncode)


def make_course(base: Path, n: int) -> tuple[Path, dict[str, str]]:
    root = base / "course"
    root.mkdir(parents=True)
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    secret_file = base / "instructor" / "course.secret"
    env = {SECRET_ENV: str(secret_file)}
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "course", "--root", str(root), "release", A],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    from course.secret import load_secret

    secret = load_secret(secret_file)
    released = load_nb(root / "exercises" / A / NB)
    import runpy

    wrong = list(runpy.run_path(str(ROOT / "tests" / "submissions" / f"{A}.py"))["SUBMISSIONS"].values())
    honest = [
        solution_sources(A),
        {**solution_sources(A), **A1_VECTORISED},
        {**solution_sources(A), **A1_LOOPS},
    ]
    incoming = base / "incoming"
    for k in range(n):
        student = f"s{k:03d}"
        folder = incoming / student / A
        folder.mkdir(parents=True)
        kind = k % 10
        if kind < 4:
            data, name = json.dumps(student_notebook(released, honest[k % 3])).encode(), NB
        elif kind < 7:
            answers = solution_sources(A, wrong[k % len(wrong)]["edits"])
            data, name = json.dumps(student_notebook(released, answers)).encode(), NB
        else:
            case = CASES[SAFE_FOR_STOCK[k % len(SAFE_FOR_STOCK)]]
            name, data = build(case, released, root, student, secret, str(secret_file))
        (folder / name).write_bytes(data)
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "course", "--root", str(root), "collect", str(incoming)],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    return root, env


def mib(n: int) -> str:
    return f"{n / 2**20:7.0f} MiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60, help="submissions (default: %(default)s)")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        new_roots = [make_course(base / f"new{k}", args.n) for k in range(2)]
        stock_root = make_course(base / "stock", args.n)
        cores = len(os.sched_getaffinity(0))
        print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.1f}")
        print(f"{args.n} submissions of {A} (40% correct, 30% wrong, 30% hostile that stock can run)\n")
        new = [measured(new_roots[0][0], new_roots[0][1], "autograde", A)]
        stock = measured(stock_root[0], stock_root[1], "autograde", A, "--stock")
        new.append(measured(new_roots[1][0], new_roots[1][1], "autograde", A))
        t_new = statistics.median(m.seconds for m in new)
        rate_new, rate_stock = 60 * args.n / t_new, 60 * args.n / stock.seconds
        runs = ", ".join(f"{m.seconds:.1f} s" for m in new)
        print(
            f"new design ({cores} jobs, sandboxes): {t_new:7.1f} s  {rate_new:6.1f} submissions/min ({runs})"
        )
        print(
            f"stock nbgrader autograde:           {stock.seconds:7.1f} s  {rate_stock:6.1f} submissions/min"
        )
        print(f"ratio new/stock: {stock.seconds / t_new:.2f}x\n")
        worst = max(new, key=lambda m: m.grader_peak)
        print("peak resident memory (sampled every 0.1 s)")
        peak, largest = mib(worst.grader_peak), mib(worst.grader_largest)
        print(f"  new design, grader processes (coordinator + workers): {peak} (largest one: {largest})")
        print(f"  new design, sandboxed student processes at once:       {mib(worst.student_peak)}")
        print(f"  stock, nbgrader process:                               {mib(stock.grader_peak)}")
        print(f"  stock, Jupyter kernels running student code:           {mib(stock.student_peak)}")
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        print(f"  (largest process of all, getrusage RUSAGE_CHILDREN ru_maxrss: {mib(children)})")
        if any(m.returncode for m in new):
            print(f"WARNING: the new design exited {[m.returncode for m in new]}: not all were graded")
        # stock exits 1 when nbgrader could not autograde a notebook (the invalid JSON, the
        # renamed one): those are 0 there and reported, as in the new design
        print(f"(stock's exit status: {stock.returncode})")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
