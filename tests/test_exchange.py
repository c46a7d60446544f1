"""nbgrader's exchange, end to end, with the course's commands and nbgrader's own student commands.

A real exchange folder in a temporary directory; the instructor runs ``python -m course
--exchange EXCHANGE ...``; two students (each with a home of their own) fetch, submit and
fetch feedback with ``nbgrader`` and the student configuration the hub gives them
(``hub/exchange_config``). One student submits after the due date: the real submission times
travel from ``nbgrader submit`` through ``course collect`` into the gradebook, and each
student fetches only their own feedback. Also: what ``course collect`` refuses or drops, from
the exchange and from a folder.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_assignments_e2e import load_nb, solution_sources, student_notebook  # noqa: E402

from course.config import notebook_name  # noqa: E402
from course.instructor import collect  # noqa: E402
from course.sandbox import sandbox_available  # noqa: E402

A = "01_convolution_by_hand"
NB = f"{notebook_name(A)}.ipynb"
COURSE_ID = "convolution-in-deep-learning"
NBGRADER = str(Path(sys.executable).with_name("nbgrader"))


def make_course(base: Path) -> Path:
    root = base / "cls"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    shutil.copytree(ROOT / "exercises", root / "exercises")
    return root


def make_exchange(base: Path) -> Path:
    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o1777)  # as an administrator makes it: every user may write
    return exchange


def course(root: Path, exchange: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COURSE_EXCHANGE"}
    proc = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), "--exchange", str(exchange), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, (
        f"course {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def student(home: Path, exchange: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``nbgrader ARGS`` as a student with home ``home`` (own nbgrader cache), configured as the hub does."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "COURSE_"))}
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_PATH=str(ROOT / "hub" / "exchange_config"),
        COURSE_ID=COURSE_ID,
        COURSE_EXCHANGE=str(exchange),
    )
    proc = subprocess.run([NBGRADER, *args], cwd=home, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc


def answer(home: Path, answers: dict[str, str]) -> None:
    """The student fills in the fetched notebook."""
    import json

    path = home / A / NB
    path.write_text(json.dumps(student_notebook(load_nb(path), answers)), encoding="utf-8")


@pytest.mark.slow
@pytest.mark.skipif(not sandbox_available()[0], reason="the grading sandbox (bubblewrap) is unavailable")
def test_release_submit_collect_grade_feedback_through_the_exchange(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    root, exchange = make_course(tmp_path), make_exchange(tmp_path)
    homes = {s: tmp_path / "home" / s for s in ("alice", "bob")}

    out = course(root, exchange, "release", A).stdout
    assert f"published {A} to the exchange {exchange}" in out
    outbound = exchange / COURSE_ID / "outbound" / A
    assert sorted(p.name for p in outbound.iterdir()) == [NB]
    assert (outbound / NB).read_bytes() == (root / "exercises" / A / NB).read_bytes()

    for home in homes.values():
        student(home, exchange, "fetch_assignment", A)
        assert (home / A / NB).read_bytes() == (outbound / NB).read_bytes()
    answer(homes["alice"], solution_sources(A))
    answer(homes["bob"], solution_sources(A, {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]}))

    student(homes["alice"], exchange, "submit", A, "--student", "alice")
    due = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(seconds=2)
    course(root, exchange, "duedate", A, f"{due:%Y-%m-%d %H:%M:%S} UTC")
    time.sleep(max(0.0, (due - datetime.datetime.now(datetime.UTC)).total_seconds()) + 1.0)
    student(homes["bob"], exchange, "submit", A, "--student", "bob")

    inbound = {p.name.split("+")[0]: p for p in (exchange / COURSE_ID / "inbound").iterdir()}
    assert sorted(inbound) == ["alice", "bob"]
    claimed = {s: (inbound[s] / "timestamp.txt").read_bytes() for s in inbound}
    assert (
        parse_utc(claimed["alice"].decode()) < due.replace(tzinfo=None) < parse_utc(claimed["bob"].decode())
    )

    got = course(root, exchange, "collect", "--assignment", A)
    assert f"collected {A} of 2 student(s) from the exchange {exchange}: alice, bob" in got.stdout
    assert "collected 2 notebook(s)" in got.stdout
    for s in ("alice", "bob"):
        kept = root / "grading" / "submitted" / s / A
        assert sorted(p.name for p in kept.iterdir()) == [NB, "submission_secret.txt", "timestamp.txt"]
        assert (kept / "timestamp.txt").read_bytes() == claimed[s]
        assert (kept / NB).read_bytes() == (inbound[s] / NB).read_bytes()
        assert (kept / "submission_secret.txt").read_bytes() == (
            inbound[s] / "submission_secret.txt"
        ).read_bytes()
    again = course(root, exchange, "collect", "--assignment", A)
    assert "collected 0 notebook(s)" in again.stdout
    assert f"unchanged alice/{A}: already collected" in again.stderr

    graded = course(root, exchange, "autograde", A)
    lines = {ln.split()[0]: ln for ln in graded.stdout.splitlines() if A in ln}
    assert lines["alice"].split()[2] == "20/20"
    assert "late penalty" in lines["bob"] and "late penalty" not in lines["alice"]
    with Gradebook(f"sqlite:///{root / 'grading' / 'gradebook.db'}") as gb:
        for s in ("alice", "bob"):
            sub = gb.find_submission(A, s)
            assert sub.timestamp == parse_utc(claimed[s].decode())
        assert gb.find_submission(A, "alice").total_seconds_late == 0
        assert gb.find_submission(A, "bob").total_seconds_late > 0

    for s in ("alice", "bob"):  # the autograded folder carries what nbgrader's feedback commands read
        graded_folder, kept = (root / "grading" / d / s / A for d in ("autograded", "submitted"))
        for name in ("timestamp.txt", "submission_secret.txt"):
            assert (graded_folder / name).read_bytes() == (kept / name).read_bytes()
    fb = course(root, exchange, "feedback", A)
    assert f"released the feedback of {A} to the exchange for 2 student(s): alice, bob" in fb.stdout
    assert len(list((exchange / COURSE_ID / "feedback").glob("*.html"))) == 2

    pages = {}
    for s, home in homes.items():
        student(home, exchange, "fetch_feedback", A, "--student", s)
        fetched = sorted((home / A / "feedback").rglob("*.html"))
        stamp = claimed[s].decode()
        assert [p.relative_to(home / A / "feedback").as_posix() for p in fetched] == [
            f"{stamp}/{notebook_name(A)}.html"
        ]
        pages[s] = fetched[0].read_bytes()
        assert pages[s] == (root / "grading" / "feedback" / s / A / f"{notebook_name(A)}.html").read_bytes()
    assert pages["alice"] != pages["bob"]


def inbound_submission(
    exchange: Path, name: str, notebook: bytes = b'{"cells": []}', stamp: str | None = None
) -> Path:
    folder = exchange / COURSE_ID / "inbound" / name
    folder.mkdir(parents=True)
    (folder / NB).write_bytes(notebook)
    if stamp is not None:
        (folder / "timestamp.txt").write_text(stamp)
    (folder / "submission_secret.txt").write_text("ab" * 64)
    return folder


def test_collect_from_the_exchange_takes_the_latest_and_refuses_what_it_should(tmp_path, capsys):
    root = tmp_path / "cls"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    exchange = make_exchange(tmp_path)
    inbound_submission(
        exchange, f"amy+{A}+2026-03-01 10:00:00.000000 UTC+r1", b'{"v": 1}', "2026-03-01 10:00:00.000000 UTC"
    )
    inbound_submission(
        exchange, f"amy+{A}+2026-03-02 10:00:00.000000 UTC+r2", b'{"v": 2}', "2026-03-02 10:00:00.000000 UTC"
    )
    # no timestamp.txt: the time in the folder's name is kept
    inbound_submission(exchange, f"ben+{A}+2026-03-03 09:30:00.000000 UTC+r3")
    # an unparseable timestamp.txt: dropped with a message, the name's time kept
    inbound_submission(exchange, f"cat+{A}+2026-03-04 08:00:00.000000 UTC+r4", stamp="yesterday, honest")
    # a link to another folder, an unsafe id, a FIFO in place of the notebook
    (exchange / COURSE_ID / "inbound" / f"eve+{A}+2026-03-05 00:00:00 UTC+r5").symlink_to(
        exchange / COURSE_ID / "inbound" / f"amy+{A}+2026-03-02 10:00:00.000000 UTC+r2"
    )
    inbound_submission(exchange, f"bad,id+{A}+2026-03-05 00:00:00 UTC+r6")
    fifo = inbound_submission(exchange, f"fay+{A}+2026-03-05 00:00:00 UTC+r7")
    (fifo / NB).unlink()
    os.mkfifo(fifo / NB)
    # another assignment's submission is not this one's
    inbound_submission(exchange, "amy+02_convolution_layers+2026-03-05 00:00:00 UTC+r8")

    copied = collect(root, None, [A], exchange=exchange)
    err = capsys.readouterr().err
    sub = root / "grading" / "submitted"
    assert [p.relative_to(sub).as_posix() for p in copied] == [f"{s}/{A}/{NB}" for s in ("amy", "ben", "cat")]
    assert (sub / "amy" / A / NB).read_bytes() == b'{"v": 2}'
    assert (sub / "amy" / A / "timestamp.txt").read_text() == "2026-03-02 10:00:00.000000 UTC"
    assert (sub / "ben" / A / "timestamp.txt").read_text() == "2026-03-03 09:30:00.000000 UTC"
    assert (sub / "cat" / A / "timestamp.txt").read_text() == "2026-03-04 08:00:00.000000 UTC"
    assert f"dropped cat/{A}/timestamp.txt: timestamp.txt: got 'yesterday, honest'; expected a time" in err
    assert f"refused eve+{A}+2026-03-05 00:00:00 UTC+r5: a symbolic link or not a folder" in err
    assert "refused 'bad,id+" in err and "student id: got 'bad,id'" in err
    assert f"refused fay/{A}/{NB}: not a regular file" in err
    assert sorted(p.name for p in sub.iterdir()) == ["amy", "ben", "cat"]
    # a student who submitted days before the folder was written is flagged
    assert "check this submission's time" in err


def test_collect_from_a_folder_keeps_a_valid_timestamp(tmp_path, capsys):
    root = tmp_path / "cls"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    inbox = tmp_path / "inbox"
    for s in ("ann", "bo", "cy", "di"):
        (inbox / s / A).mkdir(parents=True)
        (inbox / s / A / NB).write_bytes(b'{"cells": []}')
    (inbox / "ann" / A / "timestamp.txt").write_text("2026-03-01 11:59:00.000000 UTC\n")
    (inbox / "bo" / A / "timestamp.txt").write_text("not a time")
    (inbox / "cy" / A / "timestamp.txt").symlink_to(inbox / "ann" / A / "timestamp.txt")
    (inbox / "di" / A / "timestamp.txt").write_bytes(b"2026-03-01 11:59:00 UTC" + b" " * 500)

    copied = collect(root, inbox, [A])
    err = capsys.readouterr().err
    sub = root / "grading" / "submitted"
    assert len(copied) == 4
    assert (sub / "ann" / A / "timestamp.txt").read_bytes() == b"2026-03-01 11:59:00.000000 UTC\n"
    for s in ("bo", "cy", "di"):
        assert sorted(p.name for p in (sub / s / A).iterdir()) == [NB]
    assert f"dropped bo/{A}/timestamp.txt: timestamp.txt: got 'not a time'" in err
    assert f"dropped cy/{A}/timestamp.txt: a symbolic link" in err
    assert f"dropped di/{A}/timestamp.txt: larger than 200 bytes" in err
    # a new version without a timestamp replaces the whole submission: no stale time stays
    (inbox / "ann" / A / "timestamp.txt").unlink()
    (inbox / "ann" / A / NB).write_bytes(b'{"cells": [], "v": 2}')
    assert [p.parent.parent.name for p in collect(root, inbox, [A])] == ["ann"]
    assert sorted(p.name for p in (sub / "ann" / A).iterdir()) == [NB]
    assert "unchanged bo/" in capsys.readouterr().err
