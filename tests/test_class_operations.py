"""Running a class with the course's commands: late work, resume after a crash, progress,
hand grading, and formgrader's Autograde button.

Everything runs the real commands (``python -m course ...``) on a throw-away copy of the
course, with real ``timestamp.txt`` files, a real due date and a real ``kill -9`` of a
running ``course autograde``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
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

A = "01_convolution_by_hand"
NB = "convolution_by_hand.ipynb"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    shutil.copytree(ROOT / "exercises", root / "exercises")
    monkeypatch.setenv("COURSE_SECRET_FILE", str(tmp_path / "secret"))
    course("release", A, root=root)
    return root


def submit(root: Path, student: str, answers: dict | None = None, timestamp: str | None = None) -> None:
    """Put a submission straight into an inbox folder and collect it (as `course collect`)."""
    inbox = root.parent / "inbox"
    folder = inbox / student / A
    folder.mkdir(parents=True, exist_ok=True)
    released = load_nb(root / "exercises" / A / NB)
    (folder / NB).write_text(json.dumps(student_notebook(released, answers or solution_sources(A))))
    if timestamp:
        (folder / "timestamp.txt").write_text(timestamp)
    course("collect", str(inbox), root=root)
    shutil.rmtree(inbox)


def score_lines(proc: subprocess.CompletedProcess) -> dict[str, str]:
    return {ln.split()[0]: ln for ln in proc.stdout.splitlines() if A in ln}


def csv_rows(path: Path) -> dict[str, dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == A}


def test_late_penalties_in_table_csv_and_feedback_and_regrade_updates_them(root):
    course("duedate", A, "2026-03-01 12:00:00 UTC", root=root)
    submit(root, "ontime", timestamp="2026-03-01 11:59:00.000000 UTC")
    submit(root, "late", timestamp="2026-03-02 18:00:00.000000 UTC")  # 30 h late: 2 started days
    submit(root, "nostamp")
    lines = score_lines(course("autograde", A, root=root))
    assert lines["ontime"].split()[2] == "20/20"
    assert "16/20 (raw 20, late penalty 4)" in lines["late"]
    assert lines["nostamp"].split()[2] == "20/20"
    course("export", root=root)
    rows = csv_rows(root / "grading" / "grades.csv")
    assert (rows["late"]["raw_score"], rows["late"]["late_submission_penalty"], rows["late"]["score"]) == (
        "20.0",
        "4.0",
        "16.0",
    )
    assert rows["late"]["timestamp"].startswith("2026-03-02 18:00:00")
    assert rows["ontime"]["late_submission_penalty"] == "0.0"
    course("feedback", A, root=root)
    page = (root / "grading" / "feedback" / "late" / A / "convolution_by_hand.html").read_text()
    assert "late" in page.lower() and "16" in page
    # the due date moves: a regrade updates the penalty
    course("duedate", A, "2026-03-03 12:00:00 UTC", root=root)
    lines = score_lines(course("autograde", A, "--regrade", root=root))
    assert lines["late"].split()[2] == "20/20"
    course("export", root=root)
    assert csv_rows(root / "grading" / "grades.csv")["late"]["late_submission_penalty"] == "0.0"


def test_rerun_grades_only_what_is_new_or_changed(root):
    for s in ("amy", "ben"):
        submit(root, s)
    first = course("autograde", A, root=root)
    assert set(score_lines(first)) == {"amy", "ben"}
    again = course("autograde", A, root=root)
    assert score_lines(again) == {} and "2 submission(s) already graded as submitted" in again.stderr
    wrong = solution_sources(A, {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]})
    submit(root, "ben", wrong)  # a new version of ben's work
    third = course("autograde", A, root=root)
    assert set(score_lines(third)) == {"ben"} and score_lines(third)["ben"].split()[2] != "20/20"
    assert set(score_lines(course("autograde", A, "--regrade", root=root))) == {"amy", "ben"}


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (pid -> command line), from /proc."""
    parent: dict[int, int] = {}
    cmd: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            raw = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            cmd[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        for child, ppid in parent.items():
            if ppid == p and child not in found:
                found[child] = cmd.get(child, "")
                frontier.append(child)
    return found


def alive(pids) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def test_kill_9_leaves_nothing_running_and_a_rerun_resumes(root):
    slow = solution_sources(A)
    slow["output_size"] += "\nimport time\ntime.sleep(60)\n"
    for s in ("a1", "a2", "a3"):
        submit(root, s)
    submit(root, "slow1", slow)
    submit(root, "slow2", slow)
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "course", "--root", str(root), "autograde", A, "--jobs", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=False,
    )
    deadline = time.monotonic() + 90
    marker = str(root / "grading" / "autograded")
    tree: dict[int, str] = {}
    while time.monotonic() < deadline:
        done = len(list(Path(marker).glob("*/*/.graded-from"))) if Path(marker).exists() else 0
        tree = descendants(proc.pid)
        if done >= 3 and any("answer_server.py" in c for c in tree.values()):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the slow submissions never started")
    assert any("spawn_main" in c for c in tree.values()) and any("bwrap" in c for c in tree.values())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    time.sleep(3)
    left = {p: tree[p][:100] for p in alive(tree)}
    assert left == {}, f"still running after kill -9 of the grader: {left}"
    graded = sorted(p.parent.parent.name for p in Path(marker).glob("*/*/.graded-from"))
    assert graded == ["a1", "a2", "a3"]
    assert all(p.stat().st_mtime < killed_at for p in Path(marker).rglob("*"))
    assert not list(Path("/tmp").glob("course-grading-*"))
    # feedback and export work on what was graded
    assert "wrote 3 feedback file(s)" in course("feedback", A, root=root).stdout
    course("export", root=root)
    assert set(csv_rows(root / "grading" / "grades.csv")) >= {"a1", "a2", "a3"}
    # the rerun grades only the two that were not graded (the slow ones: stopped by the cell limit)
    rerun = course("autograde", A, "--timeout", "5", root=root)
    assert set(score_lines(rerun)) == {"slow1", "slow2"}
    assert "3 submission(s) already graded as submitted" in rerun.stderr


def test_progress_for_logs(root):
    for s in ("p1", "p2", "p3"):
        submit(root, s)
    proc = course("autograde", A, root=root)
    log = [ln for ln in proc.stderr.splitlines() if ln.startswith("[")]
    assert log[0].endswith("graded: 0/3")
    assert "graded: 3/3" in log[-1] and "/min" in log[-1] and "left" in log[-1]
    assert "\r" not in proc.stderr  # no bar redraws in a log


def test_a_limit_gets_a_line_of_its_own(root):
    hang = solution_sources(
        A, {"zero_pad": [("    image = np.asarray(image)\n", "    while True:\n        pass\n")]}
    )
    submit(root, "hang", hang)
    proc = course("autograde", A, "--timeout", "3", root=root)
    lines = [ln for ln in proc.stderr.splitlines() if "hang/" in ln and "time limit" in ln]
    assert lines and "`zero_pad`" in lines[0]


def test_hand_grading_and_formgrader_autograde_button(root, tmp_path):
    submit(root, "hannah")
    course("autograde", A, root=root)
    course("release", "04_applications", root=root)
    inbox = tmp_path / "in4" / "hannah" / "04_applications"
    inbox.mkdir(parents=True)
    released = load_nb(root / "exercises" / "04_applications" / "applications.ipynb")
    answers = solution_sources("04_applications")
    (inbox / "applications.ipynb").write_text(json.dumps(student_notebook(released, answers)))
    course("collect", str(tmp_path / "in4"), root=root)
    out = course("autograde", "04_applications", root=root).stdout
    assert "manual grading pending" in out
    bad = course("score", "04_applications", "hannah", "disadvantage_answer", "4", root=root, check=False)
    assert bad.returncode != 0 and "expected a number from 0 to 3" in bad.stderr
    bad = course("score", "04_applications", "hannah", "test_pieces", "1", root=root, check=False)
    assert bad.returncode != 0 and "autograded" in bad.stderr
    ok = course(
        "score", "04_applications", "hannah", "disadvantage_answer", "2.5", "--comment", "Good.", root=root
    )
    assert "2.5/3" in ok.stdout
    course("export", root=root)
    with (root / "grading" / "grades_cells.csv").open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["grade_id"] == "disadvantage_answer")
    assert float(row["score"]) == 2.5 and row["needs_manual_grade"] == "False"
    # formgrader's Autograde button runs nbgrader's autograde with the course's config: refused
    stock = subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", A, "--student", "hannah", "--force"],
        cwd=root,
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"),
    )
    assert "Stock nbgrader autograding is disabled for this course" in stock.stdout + stock.stderr
