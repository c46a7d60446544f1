"""Red-team reproducer: a student's text reaches the feedback's notes cell as live markdown.

The notes cell ("Notes from the autograder") is a *markdown* cell; each note is only
``html.escape``d. A note made by ``StudentProcess._why_dead`` quotes the decoding error of a
forged answer, e.g. ``could not convert string to float: '<student text>'``, so the student
chooses ~150 characters of markdown: ``[Click for the trace](javascript:...)`` becomes a live
``javascript:`` link and ``![x](http://...)`` an image that loads, in the feedback page and
in formgrader (the instructor's logged-in Jupyter). Asserts the SAFE behaviour.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from course.grader import Reconstructed, graded_notebook  # noqa: E402
from course.sandbox import sandbox_available  # noqa: E402
from course.student_process import NoAnswer, StudentProcess  # noqa: E402

pytestmark = pytest.mark.skipif(not sandbox_available()[0], reason="bubblewrap sandbox unavailable")

FORGE = """
import sys, time
def f(x):
    frame = sys._getframe(1)
    while "req_id" not in frame.f_locals:
        frame = frame.f_back
    server = sys.modules["__main__"]
    text = "[Click for the full trace](javascript:window.__pwned=1) ![x](http://127.0.0.1:9/beacon.png)"
    answer = {"id": frame.f_locals["req_id"], "ok": {"t": "float", "v": text}}
    server.wire.write_message(server._ANSWERS, answer)
    time.sleep(30)
"""


def test_forged_answer_text_is_not_live_markup_in_the_feedback() -> None:
    import nbformat
    from nbconvert import HTMLExporter

    process = StudentProcess([{"i": 0, "source": FORGE, "name": "answer"}])
    try:
        assert process.start(), process.events
        with pytest.raises(NoAnswer):
            process.ask("call", "f", (1,))
        nb = graded_notebook(
            Reconstructed({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, {}), process, {}
        )
    finally:
        process.close()
    assert any("javascript" in n for n in process.events)  # the student's text did reach the notes
    page, _ = HTMLExporter().from_notebook_node(nbformat.from_dict(nb))
    assert 'href="javascript:' not in page
    assert 'src="http://127.0.0.1:9/beacon.png"' not in page
