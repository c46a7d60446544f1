"""The course's JupyterHub (hub/jupyterhub_config.py), started for real on the loopback.

Two students and an instructor are real Unix accounts made for the test (``useradd``;
removed afterwards); the instructor's hub account is an admin whose server keeps nbgrader's
formgrader, the students' servers have none.
The hub (PAM accounts, ``LocalProcessSpawner``, configurable-http-proxy from ``hub/``) runs
each student's Jupyter server as that student; the students work only through the hub's
REST API and nbgrader's server extension in their own server: list and fetch the released
assignment, write their answers (Jupyter's contents API), submit, and later fetch their
feedback. The instructor runs the course's commands on the grading server (here: root, as
in CI): ``course release`` (publishes to the exchange), ``course collect`` (from the
exchange; a submission one student forged in the other's name is refused), ``course
autograde`` (the trusted, sandboxed grader) and ``course feedback`` (releases to the
exchange). Each student's server finds exactly their own feedback, identical to the
instructor's page. Nothing the test started survives it.

Needs root (users, setuid servers), bubblewrap and ``make hub`` (the proxy): ``make test``
provides all three.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_assignments_e2e import solution_sources, student_notebook  # noqa: E402

from course.config import notebook_name  # noqa: E402
from course.sandbox import sandbox_available  # noqa: E402

A = "01_convolution_by_hand"
NB = f"{notebook_name(A)}.ipynb"
COURSE_ID = "convolution-in-deep-learning"
PROXY = ROOT / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="creates Unix users and runs their servers: needs root (CI)"
    ),
    pytest.mark.skipif(not PROXY.exists(), reason="configurable-http-proxy missing: run `make hub`"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="useradd missing"),
    pytest.mark.skipif(not sandbox_available()[0], reason="the grading sandbox (bubblewrap) is unavailable"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_python() -> str:
    """A Python the students' accounts can run: this one, or the system's of the same version."""
    for candidate in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        ok = subprocess.run(
            ["runuser", "-u", "nobody", "--", candidate, "-c", "pass"], capture_output=True, timeout=60
        )
        if ok.returncode == 0:
            return candidate
    pytest.fail(
        "no Python that an unprivileged user can run (see COURSE_HUB_USER_PYTHON in hub/jupyterhub_config.py)"
    )


def processes_of(uids: set[int], needles: tuple[str, ...]) -> list[tuple[int, str]]:
    """(pid, command line) of the processes owned by ``uids`` or whose command line holds a needle."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            uid = os.stat(entry.path).st_uid
            cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if uid in uids or any(n in cmd for n in needles):
            found.append((int(entry.name), cmd[:160]))
    return found


class Hub:
    """The hub process and an HTTP client for its users."""

    def __init__(self, url: str, proc: subprocess.Popen, tokens: dict[str, str]) -> None:
        import requests

        self.url, self.proc, self.tokens = url, proc, tokens
        self.http = requests.Session()

    def call(self, user: str, method: str, path: str, expect: tuple[int, ...] = (200,), **kw):
        r = self.http.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"token {self.tokens[user]}"},
            timeout=120,
            **kw,
        )
        assert r.status_code in expect, f"{method} {path} as {user}: {r.status_code} {r.text[:500]}"
        return r

    def server(self, user: str, method: str, path: str, **kw):
        return self.call(user, method, f"/user/{user}/{path}", **kw)

    def start_server(self, user: str) -> None:
        self.call(user, "POST", f"/hub/api/users/{user}/server", expect=(201, 202))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            model = self.call(user, "GET", f"/hub/api/users/{user}").json()
            if model.get("servers", {}).get("", {}).get("ready"):
                return
            assert self.proc.poll() is None, "the hub exited"
            time.sleep(0.5)
        pytest.fail(f"{user}'s server did not start within 120 s")

    def assignments(self, user: str, action: str) -> list[dict]:
        data = {"course_id": COURSE_ID, "assignment_id": A}
        out = self.server(user, "POST", f"assignments/{action}", data=data).json()
        assert isinstance(out, dict) and out.get("success"), f"{action} as {user}: {out}"
        return [x for x in out["value"] if x["assignment_id"] == A]


@pytest.fixture
def world():
    """Two student accounts, a course, an exchange and the running hub; everything removed after."""
    base = Path(tempfile.mkdtemp(prefix="cdl-hub-", dir="/tmp"))
    base.chmod(0o755)
    suffix = secrets.token_hex(3)
    students = [f"cdla{suffix}", f"cdlb{suffix}"]
    instructor = f"cdlt{suffix}"
    created: list[str] = []
    hub_proc = None
    log = base / "state" / "hub.log"
    try:
        (base / "home").mkdir()
        for name in [*students, instructor]:
            subprocess.run(
                ["useradd", "--create-home", "--home-dir", str(base / "home" / name), "--shell", "/bin/sh",
                 "--user-group", name],
                check=True, capture_output=True,
            )  # fmt: skip
            created.append(name)
        exchange = base / "exchange"
        exchange.mkdir()
        exchange.chmod(0o1777)
        course = base / "course"
        course.mkdir(mode=0o700)
        shutil.copy2(ROOT / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "solutions", course / "solutions")
        shutil.copytree(ROOT / "exercises", course / "exercises")
        state = base / "state"
        state.mkdir(mode=0o700)
        tokens = {name: secrets.token_hex(32) for name in [*students, instructor]}
        config = state / "test_config.py"
        config.write_text(
            "c = get_config()  # noqa: F821\n"
            f"load_subconfig({str(ROOT / 'hub' / 'jupyterhub_config.py')!r})  # noqa: F821\n"
            "# the students' API tokens (they would make them on the hub's token page)\n"
            f"c.JupyterHub.api_tokens = {json.dumps({t: n for n, t in tokens.items()})}\n"
        )
        port, api_port, proxy_port = free_port(), free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "COURSE_EXCHANGE"))}
        env.update(
            COURSE_ROOT=str(course),
            COURSE_EXCHANGE=str(exchange),
            COURSE_HUB_URL=f"http://127.0.0.1:{port}",
            COURSE_HUB_API_URL=f"http://127.0.0.1:{api_port}",
            COURSE_HUB_PROXY_API_URL=f"http://127.0.0.1:{proxy_port}",
            COURSE_HUB_STATE=str(state),
            COURSE_HUB_STUDENTS=",".join(students),
            COURSE_HUB_INSTRUCTORS=instructor,
            COURSE_HUB_USER_PYTHON=user_python(),
        )
        with log.open("wb") as out:
            hub_proc = subprocess.Popen(
                [str(BIN / "jupyterhub"), "-f", str(config)],
                cwd=state, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        hub = Hub(f"http://127.0.0.1:{port}", hub_proc, tokens)
        deadline = time.monotonic() + 90
        while True:
            try:
                if hub.http.get(f"{hub.url}/hub/api", timeout=5).status_code == 200:
                    break
            except OSError:
                pass
            assert hub_proc.poll() is None, f"the hub exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"the hub did not answer within 90 s:\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.5)
        yield {
            "hub": hub,
            "students": students,
            "instructor": instructor,
            "course": course,
            "exchange": exchange,
            "base": base,
            "env": env,
        }
    finally:
        uids = set()
        for name in created:
            try:
                uids.add(pwd.getpwnam(name).pw_uid)
            except KeyError:
                pass
        if hub_proc is not None and hub_proc.poll() is None:
            hub_proc.send_signal(signal.SIGTERM)  # the hub stops the users' servers and its proxy
            try:
                hub_proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(hub_proc.pid, signal.SIGKILL)
                hub_proc.wait()
        needles = (str(base),)
        leftovers = processes_of(uids, needles)
        for pid, _ in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for name in created:
            subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        assert not leftovers, f"processes left behind by the hub: {leftovers}"


def course_cmd(world: dict, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_HUB")}
    env["COURSE_EXCHANGE"] = str(world["exchange"])
    proc = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(world["course"]), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"course {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def test_a_term_on_the_hub(world: dict) -> None:
    hub, (alice, bob) = world["hub"], world["students"]
    exchange, course = world["exchange"], world["course"]

    # the instructor releases: exercises/ and the exchange
    out = course_cmd(world, "release", A).stdout
    assert f"published {A} to the exchange {exchange}" in out

    # the instructor's hub account: an admin, whose server keeps nbgrader's formgrader and sees the release
    teacher = world["instructor"]
    listed = hub.call(teacher, "GET", "/hub/api/users").json()
    assert sorted(u["name"] for u in listed) == sorted([alice, bob, teacher])
    hub.call(alice, "GET", "/hub/api/users", expect=(403,))
    hub.start_server(teacher)
    hub.server(teacher, "GET", "formgrader", expect=(200,))
    seen = hub.server(teacher, "GET", "assignments", params={"course_id": COURSE_ID}).json()
    assert [x["status"] for x in seen["value"] if x["assignment_id"] == A] == ["released"]

    answers = {
        alice: solution_sources(A),
        bob: solution_sources(A, {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]}),
    }
    for user in (alice, bob):
        hub.start_server(user)
        # students have no formgrader; they see the release in their Assignments list
        hub.server(user, "GET", "formgrader", expect=(404,))
        listed = hub.server(user, "GET", "assignments", params={"course_id": COURSE_ID}).json()
        assert [x["status"] for x in listed["value"] if x["assignment_id"] == A] == ["released"]
        assert [x["status"] for x in hub.assignments(user, "fetch")] == ["fetched"]
        home = Path(pwd.getpwnam(user).pw_dir)
        fetched = home / A / NB
        assert os.stat(fetched).st_uid == pwd.getpwnam(user).pw_uid  # written by the student's own server
        path = f"api/contents/{A}/{NB}"
        nb = hub.server(user, "GET", path).json()["content"]
        nb = student_notebook(nb, answers[user])
        hub.server(
            user, "PUT", path, json={"type": "notebook", "format": "json", "content": nb}, expect=(200, 201)
        )
        submitted = hub.assignments(user, "submit")
        assert any(x["status"] == "submitted" for x in submitted), submitted

    inbound = exchange / COURSE_ID / "inbound"
    mine = {
        user: next(p for p in inbound.iterdir() if p.name.startswith(f"{user}+")) for user in (alice, bob)
    }
    for user, folder in mine.items():
        assert os.stat(folder).st_uid == pwd.getpwnam(user).pw_uid
    # bob forges a later submission in alice's name (the exchange's inbound is writable by all)
    forged = f"{alice}+{A}+2099-01-01 00:00:00.000000 UTC+forged"
    subprocess.run(
        ["runuser", "-u", bob, "--", "/bin/sh", "-c",
         f'mkdir "{inbound / forged}" && cp "{mine[bob] / NB}" "{inbound / forged / NB}"'],
        check=True, cwd="/",
    )  # fmt: skip

    got = course_cmd(world, "collect", "--assignment", A)
    assert f"collected {A} of 2 student(s) from the exchange {exchange}: {alice}, {bob}" in got.stdout
    assert f"refused {forged}: owned by {bob}, not by the student's account {alice}" in got.stderr
    for user, folder in mine.items():
        kept = course / "grading" / "submitted" / user / A
        assert (kept / NB).read_bytes() == (folder / NB).read_bytes()
        assert (kept / "timestamp.txt").read_bytes() == (folder / "timestamp.txt").read_bytes()

    graded = course_cmd(world, "autograde", A)
    lines = {ln.split()[0]: ln for ln in graded.stdout.splitlines() if A in ln}
    assert lines[alice].split()[2] == "20/20"
    assert lines[bob].split()[2] != "20/20" and "NOT GRADED" not in lines[bob]

    fb = course_cmd(world, "feedback", A)
    assert f"released the feedback of {A} to the exchange for 2 student(s): {alice}, {bob}" in fb.stdout

    pages = {}
    for user in (alice, bob):
        hub.assignments(user, "fetch_feedback")
        stamp = (mine[user] / "timestamp.txt").read_text()
        listing = hub.server(user, "GET", f"api/contents/{A}/feedback").json()["content"]
        assert [d["name"] for d in listing] == [stamp]  # one submission, one feedback: their own
        files = hub.server(user, "GET", f"api/contents/{A}/feedback/{stamp}").json()["content"]
        assert [f["name"] for f in files] == [f"{notebook_name(A)}.html"]
        page = hub.server(user, "GET", f"files/{A}/feedback/{stamp}/{notebook_name(A)}.html").content
        expected = (course / "grading" / "feedback" / user / A / f"{notebook_name(A)}.html").read_bytes()
        assert page == expected
        on_disk = Path(pwd.getpwnam(user).pw_dir) / A / "feedback" / stamp / f"{notebook_name(A)}.html"
        assert (
            stat.S_ISREG(os.lstat(on_disk).st_mode) and os.stat(on_disk).st_uid == pwd.getpwnam(user).pw_uid
        )
        pages[user] = page
    assert pages[alice] != pages[bob]
