"""Student markup never runs in the pages made from a submission (Chromium proves it).

A submission of assignment 4 whose hand-graded markdown answer carries a ``<script>``, an
``<img onerror>``, an ``<svg onload>``, a ``javascript:`` link and an ``<iframe srcdoc>``,
and whose notebook name and code answers try the same, is collected, autograded and given
feedback with the course's commands. The feedback page and the formgrader page (rendered by
nbgrader's own formgrade exporter from the autograded notebook) are opened in headless
Chromium: no payload runs, even when the link is clicked, and the answer is shown as text.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_assignments_e2e import course, load_nb, solution_sources, student_notebook  # noqa: E402

from course.sandbox import sandbox_available  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox_available()[0], reason="the grading sandbox (bubblewrap) is unavailable"),
]

A = "04_applications"
NB = "applications.ipynb"
PAYLOAD = (
    "My answer.\n\n<script>window.__pwned = 'script'</script>\n"
    '<img src="x" onerror="window.__pwned = \'img\'">\n'
    "<svg onload=\"window.__pwned = 'svg'\"></svg>\n"
    "[click me](javascript:window.__pwned='link')\n"
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>\n"
    "<a href=\"javascript&#58;window.__pwned='entity'\">entity link</a>\n"
)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("xss")
    root = base / "course"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    shutil.copytree(ROOT / "exercises", root / "exercises")
    released = load_nb(root / "exercises" / A / NB)
    answers = solution_sources(A)
    answers["disadvantage_answer"] = PAYLOAD
    answers["edges"] = answers["edges"] + "\nprint('<script>window.__pwned = \"output\"</script>')\n"
    inbox = base / "inbox" / "mallory" / A
    inbox.mkdir(parents=True)
    (inbox / NB).write_text(json.dumps(student_notebook(released, answers)), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_SECRET_FILE", str(base / "secret"))
        course("release", A, root=root)
        course("collect", str(base / "inbox"), root=root)
        course("autograde", A, root=root)
        course("feedback", A, root=root)
    autograded = root / "grading" / "autograded" / "mallory" / A / NB
    feedback = root / "grading" / "feedback" / "mallory" / A / NB.replace(".ipynb", ".html")
    formgrade = base / "formgrade.html"
    formgrade.write_text(render_formgrade(autograded), encoding="utf-8")
    return {"feedback": feedback, "formgrade": formgrade, "autograded": autograded}


def render_formgrade(notebook: Path) -> str:
    """The page formgrader serves for this submission (its exporter, its template)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {
        "assignment_id": A, "notebook_id": "applications", "submission_id": "x", "index": 0,
        "total": 1, "base_url": "", "student": "mallory", "last_name": "", "first_name": "",
        "notebook_path": str(notebook),
    }  # fmt: skip
    html, _ = HTMLExporter(config=config).from_filename(str(notebook), resources=resources)
    return html


def test_markdown_answer_is_stored_as_text(pages):
    nb = load_nb(pages["autograded"])
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in nb["cells"]]
    cell = nb["cells"][ids.index("disadvantage_answer")]
    source = "".join(cell["source"])
    assert source.startswith("```text\n") and PAYLOAD in source


@pytest.mark.parametrize("page", ["feedback", "formgrade"])
def test_no_student_markup_runs_in_chromium(pages, page, browser):
    """The session's Chromium (tests/conftest.py), in a context of its own that loads only files."""
    ctx = browser.new_context(java_script_enabled=True)
    try:
        ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        p = ctx.new_page()
        dialogs: list[str] = []
        p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        p.goto(pages[page].as_uri())
        p.wait_for_timeout(500)
        for text in ("click me", "entity link"):  # a link made of the answer would be clicked
            for link in p.locator("a", has_text=text).all():
                link.click(timeout=1000, no_wait_after=True)
        p.wait_for_timeout(300)
        assert p.evaluate("window.__pwned") is None
        assert dialogs == []
        body = p.inner_text("body")
        assert "<script>window.__pwned = 'script'</script>" in body  # shown as typed
        assert p.locator("iframe[srcdoc]").count() == 0 and p.locator("svg[onload]").count() == 0
        assert p.locator("img[onerror]").count() == 0 and p.locator("a[href^='javascript']").count() == 0
    finally:
        ctx.close()
