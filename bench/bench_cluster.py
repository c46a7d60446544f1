"""Throughput of ``course autograde --cluster`` with 1, 2 and 4 Dask worker processes.

The same N submissions of assignment 1 (the instructor's solution and the wrong
submissions of tests/submissions, in turn) are graded from scratch (``--regrade``) on a
local Dask cluster (``--cluster local:W``: W worker processes of one thread, on this
machine), once per W, and once by the local process pool for reference. Printed: wall
time, submissions per minute, and per minute per core used (W, or the cores for the pool),
and the machine's load. The README's estimate for a class on N nodes comes from these
figures.

    .venv/bin/python bench/bench_cluster.py             # N = 200
    .venv/bin/python bench/bench_cluster.py --n 60 --workers 1 2
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

A, NB = "01_convolution_by_hand", "convolution_by_hand.ipynb"


def course(root: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"course {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def make_course(base: Path, n: int) -> Path:
    root = base / "course"
    root.mkdir(parents=True)
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    shutil.copytree(ROOT / "exercises", root / "exercises")
    course(root, "release", A)
    released = load_nb(root / "exercises" / A / NB)
    wrong = runpy.run_path(str(ROOT / "tests" / "submissions" / f"{A}.py"))["SUBMISSIONS"]
    variants = [solution_sources(A)] + [solution_sources(A, w.get("edits")) for w in wrong.values()]
    inbox = base / "inbox"
    for i in range(n):
        (inbox / f"s{i:04d}" / A).mkdir(parents=True)
        nb = student_notebook(released, variants[i % len(variants)])
        (inbox / f"s{i:04d}" / A / NB).write_text(json.dumps(nb), encoding="utf-8")
    course(root, "collect", str(inbox))
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200, help="submissions (default: %(default)s)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    base = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    os.environ.setdefault("COURSE_SECRET_FILE", str(base / "secret"))
    try:
        root = make_course(base, args.n)
        rows = []
        for label, extra, used in [("local pool", [], cores)] + [
            (f"dask, {w} worker(s)", ["--cluster", f"local:{w}"], w) for w in args.workers
        ]:
            load = os.getloadavg()[0]
            start = time.perf_counter()
            proc = course(root, "autograde", A, "--regrade", *extra)
            seconds = time.perf_counter() - start
            graded = sum(1 for ln in proc.stdout.splitlines() if A in ln and "NOT GRADED" not in ln)
            rows.append((label, used, seconds, graded, load))
        print(f"{args.n} submissions of {A}; {cores} cores; load before each run in the last column")
        head = ("runner", "cores", "seconds", "graded", "per min", "/min/core", "load")
        print("{:<20} {:>5} {:>8} {:>7} {:>8} {:>9} {:>5}".format(*head))
        for label, used, seconds, graded, load in rows:
            rate = 60 * graded / seconds
            per_core = rate / used
            cells = (label, used, f"{seconds:.1f}", graded, f"{rate:.1f}", f"{per_core:.1f}", f"{load:.1f}")
            print("{:<20} {:>5} {:>8} {:>7} {:>8} {:>9} {:>5}".format(*cells))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
