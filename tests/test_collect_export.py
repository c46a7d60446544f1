"""``course collect`` refuses what could smuggle files or rows in; ``course export`` quotes.

A symlinked submission (to ``solutions/`` or to another student's file), a FIFO, a device
name or a student id with a comma, quote or newline must never reach ``grading/submitted``;
a comma or newline in a gradebook field must never add a column or a row to a CSV.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.instructor import _nbgrader_csv, check_student_id, collect  # noqa: E402

A = "01_convolution_by_hand"
NB = "convolution_by_hand.ipynb"


@pytest.fixture
def course_root(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    return root


def put(folder: Path, student: str, data: bytes = b'{"cells": []}') -> Path:
    d = folder / student / A
    d.mkdir(parents=True)
    (d / NB).write_bytes(data)
    return d / NB


def test_collect_refuses_links_special_files_and_unsafe_ids(tmp_path, course_root, capsys):
    inbox = tmp_path / "inbox"
    honest = put(inbox, "alice")
    # a notebook that is a link to the instructor's solutions, and one to another student's file
    (inbox / "mallory" / A).mkdir(parents=True)
    (inbox / "mallory" / A / NB).symlink_to(ROOT / "solutions" / A / NB)
    (inbox / "eve" / A).mkdir(parents=True)
    (inbox / "eve" / A / NB).symlink_to(honest)
    # a student folder that is a link, an assignment folder that is a link
    (inbox / "trudy").symlink_to(inbox / "alice")
    (inbox / "oscar").mkdir()
    (inbox / "oscar" / A).symlink_to(inbox / "alice" / A)
    # a FIFO in place of the notebook (would hang a naive reader)
    (inbox / "fifo" / A).mkdir(parents=True)
    os.mkfifo(inbox / "fifo" / A / NB)
    # ids that would inject CSV rows or columns, or escape paths
    for bad in ("bob,42", 'q"uote', "new\nline", "-dash"):
        put(inbox, bad)
    copied = collect(course_root, inbox, [A])
    err = capsys.readouterr().err
    assert [p.relative_to(course_root).as_posix() for p in copied] == [f"grading/submitted/alice/{A}/{NB}"]
    assert not (course_root / "grading" / "submitted" / "alice" / A / NB).is_symlink()
    submitted = sorted(p.name for p in (course_root / "grading" / "submitted").iterdir())
    assert submitted == ["alice"]
    assert f"refused mallory/{A}/{NB}: a symbolic link" in err
    assert f"refused eve/{A}/{NB}: a symbolic link" in err
    assert "refused 'trudy': a symbolic link or not a folder" in err
    assert f"refused oscar/{A}: a symbolic link" in err
    assert f"refused fifo/{A}/{NB}: not a regular file" in err
    for bad in ("bob,42", 'q"uote', "new\nline", "-dash"):
        assert f"refused {bad!r}: student id: got {bad!r}; expected 1 to 64 letters" in err


@pytest.mark.parametrize("good", ["alice", "s12345", "jane.doe@uni.edu", "a_b-c"])
def test_student_ids_that_are_accepted(good):
    assert check_student_id(good) == good


def test_export_quotes_every_field(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # alembic

    db = f"sqlite:///{tmp_path / 'gb.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(db) as gb:
            gb.add_assignment("a1")
            gb.add_student("s1", first_name='Ann, "the first"', last_name="Line\nBreak", email="a@b")
            gb.add_student("s2", first_name="Bo", last_name="=cmd|' /C calc'!A0")
            gb.add_submission("a1", "s1")
            out = tmp_path / "grades.csv"
            _nbgrader_csv(gb, out)
    text = out.read_bytes().decode("utf-8")  # as written: rows end in \r\n
    rows = list(csv.reader(text.splitlines(keepends=True)))
    assert len(rows) == 3 and all(len(r) == 11 for r in rows)
    by_id = {r[3]: r for r in rows[1:]}
    assert by_id["s1"][5] == 'Ann, "the first"' and by_id["s1"][4] == "Line\nBreak"
    assert by_id["s2"][4] == "=cmd|' /C calc'!A0"
    assert all(line.startswith('"') and line.endswith('"') for line in text.split("\r\n") if line)
