"""Tests of course.sandbox: every test runs hostile or probing code and checks a real outcome.

The sandbox is required: when bubblewrap is missing or cannot create namespaces these tests
FAIL (CI installs ``bubblewrap``); they never skip.
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from course.sandbox import (
    SANDBOX_WORKDIR,
    UID_BASE,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailableError,
    UnsafeResultError,
    execute_notebook_sandboxed,
    python_readonly_paths,
    read_result_file,
    run_sandboxed,
    sandbox_available,
)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
READONLY = [*python_readonly_paths(), ROOT / "conv_lib"]
FAST = SandboxLimits(wall_seconds=30, cpu_seconds=20)


@pytest.fixture(scope="module", autouse=True)
def require_sandbox() -> None:
    """Fail (not skip) every test of this module when the sandbox does not work here."""
    ok, why = sandbox_available()
    assert ok, f"the sandbox must work on this machine (CI installs bubblewrap): {why}"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def run_py(code: str, work: Path, limits: SandboxLimits = FAST, **kw: object) -> SandboxResult:
    argv = [PY, "-c", textwrap.dedent(code)]
    return run_sandboxed(argv, workdir=work, readonly=READONLY, limits=limits, **kw)


def pids_of_uid(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uids = next(ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("Uid:"))
            except (OSError, StopIteration):
                continue
            if str(uid) in uids.split()[1:]:
                found.append(int(entry.name))
    return found


def pids_with_marker(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [p for p in found if p != os.getpid()]


def wait_until_gone(check, timeout: float = 3.0) -> list[int]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while (left := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# ----------------------------------------------------------------------------- identity


def test_runs_unprivileged_without_capabilities(work: Path) -> None:
    r = run_py(
        """
        import os
        status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
        print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
        for key in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
            print(key, status[key].strip())
        print("cwd", os.getcwd())
        """,
        work,
    )
    assert r.ok, r.stderr
    lines = r.stdout.splitlines()
    uid, euid, gid, groups = lines[0].split(maxsplit=3)
    assert uid == euid and int(uid) != 0
    if os.geteuid() == 0:  # root mode: a uid of the run's own, no supplementary groups
        assert int(uid) == r.uid and UID_BASE <= int(uid) and gid == uid and groups == "[]"
    else:
        assert int(uid) == 65534
    info = dict(line.split(" ", 1) for line in lines[1:])
    for key in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
        assert int(info[key], 16) == 0, (key, info[key])
    assert info["NoNewPrivs"] == "1"
    assert info["Seccomp"] == "2"  # filter mode
    assert info["cwd"] == str(SANDBOX_WORKDIR)


def test_conv_lib_uses_its_numpy_path_inside(work: Path) -> None:
    """A student's conv_lib call never waits for numba's compiler: the sandbox's
    environment sets CONV_LIB_JIT=0, and Winograd then runs on NumPy (and is right)."""
    r = run_py(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import os
        import numpy as np
        import conv_lib.winograd_kernels as kernels
        from conv_lib import conv2d
        x = np.arange(2 * 3 * 6 * 5, dtype=float).reshape(2, 3, 6, 5) % 7
        w = np.arange(4 * 3 * 9, dtype=float).reshape(4, 3, 3, 3) % 5
        diff = np.abs(conv2d(x, w, padding=1, method="winograd") - conv2d(x, w, padding=1, method="direct"))
        print(os.environ.get("CONV_LIB_JIT"), kernels.available(), kernels._kernels.cache_info().currsize,
              float(diff.max()) < 1e-9, "numba" in sys.modules)
        """,
        work,
    )
    assert r.ok, r.stderr
    assert r.stdout.split() == ["0", "False", "0", "True", "False"]


def test_seccomp_blocks_new_namespaces_and_ptrace(work: Path) -> None:
    r = run_py(
        """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        for name, call in (("unshare", lambda: libc.unshare(0x10000000)),      # CLONE_NEWUSER
                           ("ptrace", lambda: libc.ptrace(16, 1, 0, 0))):      # PTRACE_ATTACH pid 1
            rc = call()
            print(name, rc, os.strerror(ctypes.get_errno()))
        import subprocess
        print("subprocess", subprocess.run(["true"]).returncode)  # clone3 falls back to clone
        """,
        work,
    )
    assert r.ok, r.stderr
    assert "unshare -1 Operation not permitted" in r.stdout
    assert "ptrace -1 Operation not permitted" in r.stdout
    assert "subprocess 0" in r.stdout


# ----------------------------------------------------------------------------- network


def test_no_network_but_private_loopback(work: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        r = run_py(
            f"""
            import socket
            for addr in (("127.0.0.1", {port}), ("10.0.0.1", 80), ("8.8.8.8", 53)):
                s = socket.socket(); s.settimeout(3)
                try:
                    s.connect(addr); print("CONNECTED", addr)
                except OSError as exc:
                    print("blocked", addr, type(exc).__name__)
            # the sandbox's own loopback works (Jupyter kernels need it)
            srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
            c = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()
            c.sendall(b"ping"); print("loopback", conn.recv(4).decode())
            """,
            work,
        )
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached the host's listener
    finally:
        server.close()
    assert r.ok, r.stderr
    assert "CONNECTED" not in r.stdout
    assert r.stdout.count("blocked") == 3
    assert "loopback ping" in r.stdout


# ----------------------------------------------------------------------------- file system


def test_cannot_see_gradebook_solutions_or_other_submissions(tmp_path: Path, work: Path) -> None:
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_text("SECRET-GRADES")
    gradebook.chmod(0o644)  # world-readable on purpose: only the mount layout protects it
    other = tmp_path / "submitted" / "alice" / "ps1.ipynb"
    other.parent.mkdir(parents=True)
    other.write_text("ALICE-ANSWER")
    solutions = ROOT / "solutions"
    assert solutions.is_dir()
    home_files = [p for p in (Path.home() / ".profile", Path.home() / ".ssh") if p.exists()]
    targets = [
        gradebook,
        other,
        other.parent,
        solutions,
        ROOT / "README.md",
        Path("/etc/shadow"),
        *home_files,
    ]
    r = run_py(
        f"""
        import os
        for p in {[str(t) for t in targets]!r}:
            try:
                data = os.listdir(p) if os.path.isdir(p) else open(p).read()
                print("LEAKED", p, data)
            except OSError as exc:
                print("denied", p, type(exc).__name__)
        """,
        work,
    )
    assert r.ok, r.stderr
    assert "LEAKED" not in r.stdout and "SECRET" not in r.stdout and "ALICE" not in r.stdout
    assert r.stdout.count("denied") == len(targets)


def test_readonly_binds_are_not_writable(work: Path) -> None:
    venv_target = Path(sys.prefix) / "sandbox-was-here"
    lib_target = ROOT / "conv_lib" / "__init__.py"
    before = lib_target.read_bytes()
    r = run_py(
        f"""
        import os
        for p, mode in (({str(venv_target)!r}, "w"), ({str(lib_target)!r}, "a"), ("/usr/bin/x", "w"),
                        ("/etc/passwd", "a"), ("/sandbox/x", "w")):
            try:
                open(p, mode).write("pwned"); print("WROTE", p)
            except OSError as exc:
                print("denied", p, type(exc).__name__)
        """,
        work,
    )
    assert r.ok, r.stderr
    assert "WROTE" not in r.stdout and r.stdout.count("denied") == 5
    assert not venv_target.exists()
    assert lib_target.read_bytes() == before


def test_private_tmp_and_writable_workdir(work: Path) -> None:
    marker = f"sandbox-tmp-{uuid.uuid4().hex}"
    code = f"""
        import os
        print("seen before:", os.path.exists("/tmp/{marker}"))
        open("/tmp/{marker}", "w").write("x")
        open("result.txt", "w").write("42")
        """
    first = run_py(code, work)
    assert first.ok, first.stderr
    assert "seen before: False" in first.stdout
    assert not (Path("/tmp") / marker).exists()  # not on the host
    second = run_py(code, work)
    assert "seen before: False" in second.stdout  # and not carried to the next run
    assert read_result_file(work, "result.txt", 100) == b"42"


# ----------------------------------------------------------------------------- limits


def test_memory_limit(work: Path) -> None:
    r = run_py("buf = bytearray(4 << 30); print('ALLOCATED')", work, SandboxLimits(memory_bytes=512 << 20))
    assert "ALLOCATED" not in r.stdout
    assert r.returncode != 0
    assert r.killed_reason == "memory"


def test_total_memory_of_all_processes_is_capped_by_a_cgroup(work: Path) -> None:
    # Each child stays under the per-process RLIMIT_AS; together they exceed the total.
    limits = SandboxLimits(memory_bytes=1 << 30, total_memory_bytes=512 << 20, wall_seconds=30)
    r = run_py(
        """
        import os, time
        kids = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                block = b"x" * (300 << 20)  # touched, so resident
                time.sleep(2)
                os._exit(0)
            kids.append(pid)
        print("child statuses", sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in kids))
        """,
        work,
        limits,
    )
    if not r.memory_cgroup:
        pytest.skip("no writable memory cgroup here: only per-process RLIMIT_AS applies (see README)")
    assert r.killed_reason == "memory"
    assert "child statuses [-9" in r.stdout or r.returncode == 128 + 9


def test_fork_bomb_is_bounded_and_leaves_nothing(work: Path) -> None:
    limits = SandboxLimits(max_processes=16, wall_seconds=4)
    r = run_py(
        """
        import os, sys, time
        main, reported = os.getpid(), False
        while True:
            try:
                os.fork()
            except OSError as exc:
                if os.getpid() == main and not reported:
                    print("fork refused:", type(exc).__name__, flush=True); reported = True
                time.sleep(0.01)
        """,
        work,
        limits,
    )
    assert "fork refused: BlockingIOError" in r.stdout
    assert r.timed_out and r.killed_reason == "wall time"
    assert r.duration < limits.wall_seconds + 5
    assert wait_until_gone(lambda: pids_of_uid(r.uid)) == []


def test_wall_time_on_busy_loop(work: Path) -> None:
    r = run_py("while True: pass", work, SandboxLimits(wall_seconds=2))
    assert r.timed_out and r.killed_reason == "wall time" and r.returncode != 0
    assert 2 <= r.duration < 7


def test_wall_time_on_process_ignoring_signals(work: Path) -> None:
    r = run_py(
        """
        import signal, time
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGXCPU):
            signal.signal(s, signal.SIG_IGN)
        print("ignoring", flush=True)
        while True:
            time.sleep(0.1)
        """,
        work,
        SandboxLimits(wall_seconds=2),
    )
    assert "ignoring" in r.stdout
    assert r.timed_out and r.killed_reason == "wall time"
    assert r.duration < 7
    assert wait_until_gone(lambda: pids_of_uid(r.uid)) == []


def test_cpu_time_limit(work: Path) -> None:
    r = run_py("while True: pass", work, SandboxLimits(cpu_seconds=1, wall_seconds=30))
    assert r.killed_reason == "cpu time" and not r.timed_out
    assert r.duration < 25  # 1 s of CPU; generous for a loaded CI machine


def test_detached_double_fork_does_not_survive(work: Path) -> None:
    marker = f"sandbox-daemon-{uuid.uuid4().hex}"
    r = run_py(
        f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sh", ["sh", "-c", "echo $$ > daemon.pid; sleep 1000; : {marker}"])
            os._exit(0)
        for _ in range(100):
            if os.path.exists("daemon.pid") and open("daemon.pid").read().strip():
                break
            time.sleep(0.05)
        pid = int(open("daemon.pid").read())
        print("daemon alive:", os.path.exists(f"/proc/{{pid}}"))
        """,
        work,
    )
    assert r.ok, r.stderr
    assert "daemon alive: True" in r.stdout
    assert wait_until_gone(lambda: pids_with_marker(marker)) == []
    assert wait_until_gone(lambda: pids_of_uid(r.uid)) == []


def test_huge_output_is_truncated(work: Path) -> None:
    limits = SandboxLimits(max_output_bytes=1 << 20, wall_seconds=30)
    r = run_py(
        "import sys\nchunk = 'x' * 1_000_000\nfor _ in range(50): sys.stdout.write(chunk)\nprint('END')",
        work,
        limits,
    )
    assert r.stdout_truncated and r.killed_reason == "output limit"
    assert "END" not in r.stdout
    assert "output truncated" in r.stdout
    assert len(r.stdout) < (1 << 20) + 200
    assert r.duration < 10


def test_file_size_limit(work: Path) -> None:
    limits = SandboxLimits(max_file_bytes=1 << 20)
    r = run_py("open('big.bin', 'wb').write(b'x' * (4 << 20))", work, limits)
    assert r.returncode != 0 and "File too large" in r.stderr
    assert (work / "big.bin").stat().st_size <= 1 << 20
    # A program that does not ignore SIGXFSZ (Python does) is killed by it.
    r = run_sandboxed(["/bin/sh", "-c", "head -c 4000000 /dev/zero > big2.bin"], workdir=work, limits=limits)
    assert r.killed_reason == "file size"
    assert (work / "big2.bin").stat().st_size <= 1 << 20


@pytest.mark.parametrize(
    ("code", "returncode", "reason"),
    [
        ("import sys; sys.exit(3)", 3, None),
        ("import os; os._exit(7)", 7, None),
        ("raise SystemExit('bye')", 1, None),
        ("raise ValueError('boom')", 1, None),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", 128 + 11, "signal 11"),
        ("print('fine')", 0, None),
    ],
)
def test_exit_statuses_are_reported(work: Path, code: str, returncode: int, reason: str | None) -> None:
    r = run_py(code, work)
    assert (r.returncode, r.killed_reason, r.timed_out) == (returncode, reason, False)


# ----------------------------------------------------------------------------- results


def test_read_result_file_refuses_planted_links_and_specials(work: Path) -> None:
    r = run_py(
        """
        import os
        os.symlink("/etc/passwd", "result.json")
        os.symlink("/etc", "outdir")
        os.mkfifo("fifo")
        open("big.json", "w").write("x" * 5000)
        os.mkdir("sub"); open("sub/ok.txt", "w").write("fine")
        """,
        work,
    )
    assert r.ok, r.stderr
    with pytest.raises(UnsafeResultError, match="symlink"):
        read_result_file(work, "result.json", 1 << 20)
    with pytest.raises(UnsafeResultError, match="symlink"):
        read_result_file(work, "outdir/passwd", 1 << 20)
    with pytest.raises(UnsafeResultError, match="regular"):
        read_result_file(work, "fifo", 1 << 20)  # opened non-blocking: must not hang
    with pytest.raises(UnsafeResultError, match="limit"):
        read_result_file(work, "big.json", 1000)
    for bad in ("../work/sub/ok.txt", "/etc/passwd", ""):
        with pytest.raises(UnsafeResultError):
            read_result_file(work, bad, 1000)
    assert read_result_file(work, "sub/ok.txt", 1000) == b"fine"


# ----------------------------------------------------------------------------- refusal


def test_refuses_without_bubblewrap_unless_opted_out(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SandboxUnavailableError, match="allow_unsandboxed=True"):
        run_sandboxed(["true"], workdir=work, bwrap=tmp_path / "no-such-bwrap")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    ok, why = sandbox_available()
    assert not ok and "apt-get install -y bubblewrap" in why
    with pytest.raises(SandboxUnavailableError, match="not available"):
        run_sandboxed([PY, "-c", "print(1)"], workdir=work)
    with pytest.warns(RuntimeWarning, match="WITHOUT a sandbox"):
        r = run_sandboxed([PY, "-c", "print('ran')"], workdir=work, allow_unsandboxed=True)
    assert r.ok and not r.sandboxed and r.stdout == "ran\n"


def test_refuses_to_bind_the_whole_host(work: Path) -> None:
    for path in ("/", "/etc", "/sandbox", "relative/path"):
        with pytest.raises(ValueError):
            run_sandboxed(["true"], workdir=work, readonly=[path])


def test_concurrent_runs_get_distinct_uids(tmp_path: Path) -> None:
    results: list[SandboxResult] = []

    def one(i: int) -> None:
        d = tmp_path / f"w{i}"
        d.mkdir()
        results.append(run_sandboxed(["/bin/sh", "-c", "id -u; sleep 1"], workdir=d, limits=FAST))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results)
    uids = {int(r.stdout) for r in results}
    assert len(uids) == 3 if os.geteuid() == 0 else uids == {65534}


# ----------------------------------------------------------------------------- notebooks


def write_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_notebook_executes_inside_the_sandbox(tmp_path: Path, work: Path) -> None:
    src = write_notebook(
        tmp_path / "ps1.ipynb",
        "import numpy as np\nimport conv_lib\nx = np.arange(16.0).reshape(4, 4)\nprint(x.sum())",
        "import os\nprint('uid', os.getuid(), os.getcwd())",
        "1 / 0",
        "print('after error')",
    )
    before = src.read_bytes()
    out, r = execute_notebook_sandboxed(
        src, work, READONLY, SandboxLimits(wall_seconds=60), timeout_per_cell=20
    )
    assert r.ok, r.stderr
    assert out is not None and not out.is_symlink() and out.stat().st_uid == os.geteuid()
    cells = nbformat.read(out, as_version=4).cells
    assert cells[0].outputs[0]["text"] == "120.0\n"
    assert cells[1].outputs[0]["text"] == f"uid {r.uid if os.geteuid() == 0 else 65534} {SANDBOX_WORKDIR}\n"
    assert cells[2].outputs[0]["ename"] == "ZeroDivisionError"
    assert cells[3].outputs[0]["text"] == "after error\n"
    assert src.read_bytes() == before  # the submission itself is not modified


def test_notebook_with_hanging_cell_is_stopped(tmp_path: Path, work: Path) -> None:
    src = write_notebook(tmp_path / "hang.ipynb", "print('start')", "while True:\n    pass", "print('never')")
    limits = SandboxLimits(wall_seconds=60)
    out, r = execute_notebook_sandboxed(src, work, READONLY, limits, timeout_per_cell=2)
    assert r.returncode == 3 and r.killed_reason == "cell timeout" and not r.timed_out
    assert r.duration < limits.wall_seconds - 10
    assert out is not None
    cells = nbformat.read(out, as_version=4).cells
    assert cells[0].outputs[0]["text"] == "start\n"
    assert any(o.get("ename") == "CellTimeoutError" for o in cells[1].outputs)
    assert cells[2].execution_count is None and not cells[2].outputs
    assert wait_until_gone(lambda: pids_of_uid(r.uid)) == []
