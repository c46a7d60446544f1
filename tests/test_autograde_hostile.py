"""The hostile corpus (tests/hostile/cases.py) through ``course autograde``.

Every case is graded in the class run (tests/hostile/classrun.py: one ``course autograde``
for the whole corpus and the honest students, sandbox on). For each case: the exact
score of every autograded test cell, the reason the feedback shows, and, for markup in a
written answer, that the feedback page holds no student markup that a browser would run.
The class as a whole (exit status, honest students, nothing else touched) is
tests/test_class_run.py.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hostile import classrun  # noqa: E402
from hostile.build import assignment_of  # noqa: E402
from hostile.cases import ATTACK_CLASSES, CASES  # noqa: E402

from course import wire  # noqa: E402
from course.sandbox import sandbox_available  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox_available()[0], reason="the grading sandbox (bubblewrap) is unavailable"),
]

MANUAL_ID = "disadvantage_answer"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return classrun.class_run(tmp_path_factory)


def scores_of(grades: dict, student: str) -> dict[str, float | None]:
    return {g: v[0] for (_, s, g), v in grades.items() if s == student and g != MANUAL_ID}


def test_corpus_covers_every_attack_class() -> None:
    """At least 45 cases; each attack class of issue 9 has cases, each case has a class."""
    assert len(CASES) >= 45
    classified = [name for names in ATTACK_CLASSES.values() for name in names]
    assert sorted(classified) == sorted(CASES), set(classified) ^ set(CASES)
    assert all(len(names) >= 1 for names in ATTACK_CLASSES.values())
    assert {assignment_of(c) for c in CASES.values()} >= {"01_convolution_by_hand", "04_applications"}


@pytest.mark.parametrize("student", sorted(s for s, c in CASES.items() if c.get("fails") != "RANDOM"))
def test_exact_score_of_every_test_cell(run: dict, student: str) -> None:
    got = scores_of(run["after"], student)
    assert got == run["expected"][student]
    manual = {g: v for (_, s, g), v in run["after"].items() if s == student and g == MANUAL_ID}
    needs_manual = {g for (_, s, g), v in run["after"].items() if s == student and v[2]}
    # only the hand-graded written answer waits for the instructor, and only when it exists
    assert needs_manual == set(manual)


@pytest.mark.parametrize("student", sorted(s for s, c in CASES.items() if c.get("reason")))
def test_reason_is_shown(run: dict, student: str) -> None:
    """The reason is in the autograded notebook and in the feedback page the student reads."""
    reasons = CASES[student]["reason"]
    a = assignment_of(CASES[student])
    notebook = classrun.cell_outputs_text(run["root"], student, a)
    for reason in [reasons] if isinstance(reasons, str) else reasons:
        assert reason in run["pages_text"][student], reason
        assert reason in notebook, reason


def test_random_answers_get_the_same_grade_on_regrade(run: dict) -> None:
    random_students = [s for s, c in CASES.items() if c.get("regrade")]
    assert len(random_students) >= 2
    for s in random_students:
        first, second = scores_of(run["after"], s), scores_of(run["regraded"], s)
        assert first == second, s
    assert scores_of(run["after"], "random_answers")["test_output_size"] == 0.0  # caught answering at random
    assert "NOT GRADED" not in run["regrade"].stdout


class _Markup(HTMLParser):
    """Everything in a page a browser could run: script bodies, event handlers, URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.handlers: list[tuple[str, str]] = []
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.frames: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, f"{name}={value}"))
            if name in ("href", "src", "action", "formaction", "data") and value:
                self.urls.append(value.strip().lower())
        if tag in ("iframe", "object", "embed"):
            self.frames.append(tag)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


@pytest.mark.parametrize("student", sorted(s for s, c in CASES.items() if c.get("absent")))
def test_feedback_never_runs_student_markup(run: dict, student: str) -> None:
    page = run["pages"][student]
    for raw in CASES[student]["absent"]:
        assert raw not in page, raw
    markup = _Markup()
    markup.feed(page)
    assert markup.handlers == []
    assert not [u for u in markup.urls if u.startswith(("javascript:", "data:text/html", "vbscript:"))]
    assert markup.frames == []
    assert not [s for s in markup.scripts if "pwned" in s or "alert(" in s or "document.cookie" in s]
    # the answer is there, as text the instructor can read and grade
    assert CASES[student]["reason"][0] in run["pages_text"][student]


def test_wire_refuses_a_buffer_named_twice() -> None:
    """A forged answer naming one 8 MiB buffer 3000 times would make the grader copy 24 GiB;
    the reader refuses it before copying anything twice (the corpus case
    ``forged_answer_one_buffer_many_times`` does this from inside a sandbox)."""
    item = {"t": "nd", "d": "<f8", "s": [4], "b": 0}
    data = [np.arange(4.0).tobytes()]
    assert wire.decode({"t": "list", "v": [item]}, data)[0].tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(wire.Unsupported, match="buffer 0 twice"):
        wire.decode({"t": "list", "v": [item, item]}, data)
    with pytest.raises(wire.Unsupported, match="buffer 0 twice"):
        wire.decode({"t": "dict", "k": [{"t": "bytes", "b": 0}], "v": [{"t": "bytes", "b": 0}]}, [b"x"])
