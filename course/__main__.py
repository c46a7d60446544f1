"""Command line: ``python -m course {release,collect,autograde,feedback,export,check} ...``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from course.config import ASSIGNMENTS, DEFAULT_ROOT


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course", description=__doc__)
    p.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("COURSE_ROOT", DEFAULT_ROOT)),
        help="the course folder, holding nbgrader_config.py (default: %(default)s)",
    )
    p.add_argument(
        "--exchange",
        type=Path,
        default=None,
        help="nbgrader's exchange folder (default: COURSE_EXCHANGE, else nbgrader_config.py's)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    names = ", ".join(ASSIGNMENTS)

    r = sub.add_parser("release", help="generate exercises/ (student notebooks) from solutions/")
    r.add_argument("assignments", nargs="*", help=f"default: all ({names})")
    r.add_argument(
        "--no-exchange",
        action="store_true",
        help="do not publish to the exchange (default: publish when it exists or is named)",
    )

    c = sub.add_parser("collect", help="import submissions into grading/submitted/")
    c.add_argument(
        "folder",
        nargs="?",
        type=Path,
        help="folder laid out as <student>/<assignment>/<notebook>.ipynb; "
        "without it, collect the latest submission of each student from nbgrader's exchange",
    )
    c.add_argument("--assignment", action="append", dest="assignments", help="only this one (repeatable)")

    a = sub.add_parser("autograde", help="autograde every collected submission (progress bar)")
    a.add_argument("assignments", nargs="*", help=f"default: all ({names})")
    a.add_argument("--student", action="append", dest="students", help="only this student (repeatable)")
    a.add_argument("--jobs", type=int, default=None, help="submissions recorded at once (default: the cores)")
    a.add_argument(
        "--timeout", type=float, default=None, help="seconds one sandboxed run may take (default: nbgrader's)"
    )
    a.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="grade on a Dask cluster: a scheduler's address (tcp://host:8786), or local:N for N local "
        "worker processes (default: c.CourseAutograde.cluster in nbgrader_config.py, else a local pool)",
    )
    a.add_argument(
        "--regrade",
        action="store_true",
        help="grade again submissions already graded as submitted (default: only new or changed ones)",
    )
    a.add_argument(
        "--allow-unsandboxed",
        action="store_true",
        help="grade even if the sandbox is unavailable: student code then runs WITH YOUR RIGHTS",
    )
    a.add_argument(
        "--stock",
        action="store_true",
        help="stock `nbgrader autograde` (untrusted: executes student code as you; for benchmarks)",
    )

    f = sub.add_parser("feedback", help="HTML feedback for every autograded submission")
    f.add_argument("assignments", nargs="*", help=f"default: all ({names})")
    f.add_argument("--student", action="append", dest="students", help="only this student (repeatable)")
    f.add_argument(
        "--no-exchange",
        action="store_true",
        help="do not release the feedback to the exchange (default: release when it exists or is named)",
    )

    e = sub.add_parser("export", help="grades to CSV")
    e.add_argument(
        "--to",
        type=Path,
        help="nbgrader's CSV, one row per student and assignment (default: grading/grades.csv)",
    )
    e.add_argument("--cells", type=Path, help="one row per graded cell (default: grading/grades_cells.csv)")

    d = sub.add_parser("duedate", help="set an assignment's due date (late penalties: see the README)")
    d.add_argument("assignment", choices=ASSIGNMENTS)
    d.add_argument("when", nargs="?", help="e.g. '2026-12-10 17:00 UTC' (nothing: remove the due date)")

    m = sub.add_parser("score", help="give a hand-graded answer its score (and a comment)")
    m.add_argument("assignment", choices=ASSIGNMENTS)
    m.add_argument("student")
    m.add_argument("grade_id", help="the answer cell, e.g. disadvantage_answer")
    m.add_argument("points", type=float)
    m.add_argument("--comment", help="feedback for the student")

    k = sub.add_parser("check", help="students: run a notebook's visible tests; exit 1 if any fails")
    k.add_argument("notebook", type=Path)
    k.add_argument("--timeout", type=int, default=120, help="seconds per cell (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        from course.check import check

        return check(args.notebook.resolve(), args.timeout)

    from course import instructor

    root = args.root.resolve()
    if args.exchange is not None:
        args.exchange = args.exchange.resolve()  # before nbgrader changes into the course folder
    if args.command == "release":
        publish = _use_exchange(root, args, "published")
        for path in instructor.release(root, args.assignments, publish=publish, exchange=args.exchange):
            print(f"released {path.relative_to(root)}")
            if publish:
                print(f"published {path.parent.name} to the exchange {_exchange(root, args)}")
    elif args.command == "collect":
        copied = instructor.collect(root, args.folder, args.assignments, exchange=args.exchange)
        source = args.folder or f"the exchange {_exchange(root, args)}"
        by_assignment: dict[str, list[str]] = {}
        for path in copied:
            by_assignment.setdefault(path.parent.name, []).append(path.parent.parent.name)
        for a, students in sorted(by_assignment.items()):
            print(f"collected {a} of {len(students)} student(s) from {source}: {', '.join(students)}")
        print(f"collected {len(copied)} notebook(s) into grading/submitted/")
    elif args.command == "autograde":
        results = instructor.autograde(
            root,
            args.assignments,
            args.students,
            stock=args.stock,
            allow_unsandboxed=args.allow_unsandboxed,
            jobs=args.jobs,
            timeout=args.timeout,
            regrade=args.regrade,
            cluster=args.cluster,
        )
        _print_scores(root, results)
        failed = [r for r in results if not r.success]
        if failed:
            print(
                f"\n{len(failed)} submission(s) NOT graded (no score was stored for them); "
                "fix the cause above, then rerun:",
                file=sys.stderr,
            )
            for r in failed:
                print(f"  python -m course autograde {r.assignment} --student {r.student}", file=sys.stderr)
            return 1
        return 0
    elif args.command == "feedback":
        publish = _use_exchange(root, args, "released")
        written = instructor.feedback(
            root, args.assignments, args.students, publish=publish, exchange=args.exchange
        )
        print(f"wrote {len(written)} feedback file(s) into grading/feedback/")
    elif args.command == "duedate":
        due = instructor.set_duedate(root, args.assignment, args.when)
        print(f"{args.assignment}: due {due.isoformat(sep=' ') + ' UTC' if due else 'date removed'}")
    elif args.command == "score":
        got, top = instructor.set_manual_score(
            root, args.assignment, args.student, args.grade_id, args.points, args.comment
        )
        print(f"{args.student}/{args.assignment}/{args.grade_id}: {got:g}/{top:g}")
    elif args.command == "export":
        to, cells = instructor.export(root, args.to, args.cells)
        print(f"wrote {to} and {cells}")
    return 0


def _exchange(root: Path, args: argparse.Namespace) -> Path:
    from course.exchange import exchange_root

    return exchange_root(root, args.exchange)


def _use_exchange(root: Path, args: argparse.Namespace, verb: str) -> bool:
    """Publish to the exchange unless ``--no-exchange``; when it was not named (``--exchange``
    or COURSE_EXCHANGE) and does not exist, say so and do not."""
    from course.exchange import exchange_named

    if args.no_exchange:
        return False
    where = _exchange(root, args)
    if exchange_named(args.exchange) or where.is_dir():
        return True
    print(
        f"not {verb} to nbgrader's exchange: {where} does not exist (make it once with "
        f"`sudo install -d -m 1777 {where}`, or name one with --exchange PATH or COURSE_EXCHANGE)",
        file=sys.stderr,
    )
    return False


def _print_scores(root: Path, results: list) -> None:
    from nbgrader.api import Gradebook

    from course.config import inside
    from course.instructor import nbgrader_api

    if not results:
        return
    with inside(root), Gradebook(nbgrader_api(root).coursedir.db_url) as gb:
        for r in results:
            if not r.success:
                print(f"{r.student:<24} {r.assignment:<24} NOT GRADED: {r.message}")
                continue
            sub = gb.find_submission(r.assignment, r.student)
            manual = " (+ manual grading pending)" if sub.needs_manual_grade else ""
            penalty = sub.late_submission_penalty or 0.0
            final = max(0.0, sub.score - penalty)
            late = f" (raw {sub.score:g}, late penalty {penalty:g})" if penalty else ""
            print(f"{r.student:<24} {r.assignment:<24} {final:g}/{sub.max_score:g}{late}{manual}")


if __name__ == "__main__":
    sys.exit(main())
