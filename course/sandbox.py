"""Run untrusted student code in a throw-away sandbox.

Stock nbgrader executes a submission with the grader's rights. This module runs each
submission instead in its own `bubblewrap <https://github.com/containers/bubblewrap>`_
sandbox (Debian package ``bubblewrap``), with the user switch done by util-linux's
``setpriv`` and the resource limits set by util-linux's ``prlimit``:

* **Own, unprivileged user.** When the grader is root, the sandboxed process runs as a
  uid of its own (``60000 + slot``, a uid no account and no other running sandbox uses),
  with every capability dropped (effective, permitted, inheritable, ambient and the
  bounding set) and ``no_new_privs`` set. A uid of its own makes ``RLIMIT_NPROC`` (which
  the kernel counts per real uid, machine-wide) a budget of this run alone, and makes the
  kernel's ordinary permission checks apply to it. When the grader is not root, bubblewrap
  creates a user namespace in which the code runs as ``nobody`` (65534) with no
  capabilities; see :func:`sandbox_mode`.
* **Only what it needs, read-only.** The sandbox's root is an empty tmpfs. Into it are
  bound read-only: ``/usr`` (with the ``/bin``, ``/lib*`` and ``/sbin`` links), a handful of
  files from ``/etc`` (dynamic loader cache, alternatives, fonts, time zone), a generated
  ``passwd``/``group``/``hosts``, and the paths the caller lists (typically the venv, the
  Python installation it links to, and the course library). Nothing else of the host is
  visible: not ``/root``, not the repository's ``solutions/``, not the gradebook, not other
  submissions, not ``/sys``, not the host's ``/proc``.
* **A writable work directory** bound at :data:`SANDBOX_WORKDIR` (``/sandbox/work``), and a
  private, size-limited tmpfs ``/tmp``, both gone from the sandbox's view when it ends.
* **No network.** A private network namespace that has only a loopback interface (which
  bubblewrap brings up, so Jupyter kernels can talk ZMQ over 127.0.0.1 inside it).
* **Private PID, IPC and UTS namespaces**, a new session (no ``TIOCSTI`` into the grader's
  terminal), and a seccomp filter (:func:`course.bwrap._seccomp_program`) that refuses
  the system calls a grading job never needs and that widen the kernel's attack surface
  (creating namespaces, ``ptrace``, ``bpf``, ``keyctl``, ``io_uring``,
  ``perf_event_open``, ...).
* **Limits.** Address space, CPU seconds, processes/threads, file size, open files and no
  core dumps (``prlimit``), a size for ``/tmp``, and a wall-clock limit the grader
  enforces. Output is read incrementally through pipes and capped.
* **Nothing survives.** The sandbox's PID 1 is bubblewrap's reaper; when it dies (because
  the command finished, or the grader killed it, or the grader itself died:
  ``--die-with-parent``) the kernel kills every process left in the PID namespace,
  daemons that double-forked and called ``setsid`` included.

Every way a run can end gives a :class:`SandboxResult`; :func:`run_sandboxed` never
hangs past the wall-clock limit (plus a few seconds to reap). When the sandbox cannot be
created on a machine, :func:`run_sandboxed` raises :class:`SandboxUnavailableError`
saying why, unless the caller passes ``allow_unsandboxed=True``.

The set-up of a sandbox (uid lease, generated ``/etc`` files, seccomp filter, memory
cgroup, bubblewrap's command line) lives in :mod:`course.bwrap`; this module runs a command
or a notebook in one and reports how it ended.

After a run the grader reads results out of the work directory. Everything there was
written by the student's code, so open it with :func:`read_result_file`, which refuses
symbolic links (at any path component), non-regular files and oversized files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from course.bwrap import (
    SANDBOX_WORKDIR,
    UID_BASE,
    UID_SLOTS,
    SandboxLimits,
    SandboxUnavailableError,
    _default_env,
    _find_tool,
    bwrap_launch,
    python_readonly_paths,
    sandbox_mode,
)

__all__ = [
    "SANDBOX_WORKDIR",
    "UID_BASE",
    "UID_SLOTS",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailableError",
    "UnsafeResultError",
    "execute_notebook_sandboxed",
    "python_readonly_paths",
    "read_result_file",
    "run_sandboxed",
    "sandbox_available",
    "sandbox_mode",
]

#: Marker appended to a captured stream that hit :attr:`SandboxLimits.max_output_bytes`.
TRUNCATION_MARKER = "\n[... output truncated: the sandbox's output limit of {limit} bytes was reached ...]\n"

_KILL_GRACE_SECONDS = 5.0
# Successful availability probes, by (bwrap path, mode): a probe costs a sandbox start.
_AVAILABLE: dict[tuple[str, str], str] = {}


class UnsafeResultError(OSError):
    """A result file in a work directory is a symlink, not a regular file, or too large."""


@dataclass(frozen=True)
class SandboxResult:
    """How one sandboxed run ended.

    Attributes
    ----------
    returncode
        Exit status as bubblewrap reports it: the command's exit code, or ``128 + N`` when
        the command was killed by signal ``N``; ``-9`` when the grader killed the sandbox
        (wall time, output limit).
    stdout, stderr
        Captured output, decoded as UTF-8 (undecodable bytes replaced), each cut at
        ``max_output_bytes`` with :data:`TRUNCATION_MARKER` appended when cut.
    timed_out
        The wall-clock limit was reached and the sandbox was killed.
    killed_reason
        ``None`` for an ordinary exit, else one of ``"wall time"``, ``"output limit"``,
        ``"cpu time"``, ``"file size"``, ``"memory"`` or ``"signal N"``. ``"memory"`` is
        inferred from a ``MemoryError``/``Cannot allocate memory`` in stderr of a failed
        run; ``"signal 9"`` may also be the kernel's OOM killer or the CPU hard limit.
    duration
        Wall-clock seconds from start to reaping.
    sandboxed
        False only for a run made with ``allow_unsandboxed=True`` on a machine without a
        working sandbox.
    uid
        The uid the code ran as (host view).
    stdout_truncated, stderr_truncated
        Whether the stream was cut.
    memory_cgroup
        Whether ``total_memory_bytes`` was enforced by a memory cgroup (else only the
        per-process ``RLIMIT_AS`` bounded memory).
    """

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None
    duration: float
    sandboxed: bool = True
    uid: int | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    memory_cgroup: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0 and was not killed."""
        return self.returncode == 0 and self.killed_reason is None


@dataclass
class _Capture:
    limit: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    truncated: bool = False

    def add(self, data: bytes) -> None:
        room = self.limit - self.size
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        self.chunks.append(data)
        self.size += len(data)

    def text(self) -> str:
        out = b"".join(self.chunks).decode("utf-8", errors="replace")
        if self.truncated:
            out += TRUNCATION_MARKER.format(limit=self.limit)
        return out


# --------------------------------------------------------------------------- availability


def sandbox_available(bwrap: str | os.PathLike[str] | None = None) -> tuple[bool, str]:
    """Check that a sandbox can really be created here.

    Looks for ``bwrap`` (and, in root mode, ``setpriv``; always ``prlimit``) and then creates
    a real sandbox with the same options :func:`run_sandboxed` uses, running ``true`` in it.

    Parameters
    ----------
    bwrap
        Path of the bubblewrap binary; default: ``bwrap`` on ``PATH``.

    Returns
    -------
    tuple of (bool, str)
        Whether it works, and a one-line reason (what was found, or what is missing and how
        to fix it).
    """
    exe = _find_tool("bwrap", bwrap)
    if exe is not None and (exe, sandbox_mode()) in _AVAILABLE:
        return True, _AVAILABLE[(exe, sandbox_mode())]
    if exe is None:
        where = f"at {bwrap}" if bwrap is not None else "on PATH"
        return False, f"bubblewrap (bwrap) not found {where}; install it with `apt-get install -y bubblewrap`"
    for tool in ("prlimit", "setpriv") if sandbox_mode() == "root" else ("prlimit",):
        if shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin") is None:
            return False, f"{tool} (util-linux) not found; install it with `apt-get install -y util-linux`"
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as tmp:
        try:
            result = _run_bwrap(
                exe, ["true"], workdir=Path(tmp), readonly=(), limits=SandboxLimits(wall_seconds=20), env=None
            )
        except OSError as exc:
            return False, f"could not start bubblewrap ({exe}): {exc}"
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        return False, f"bubblewrap ({exe}) cannot create the sandbox's namespaces here: {detail}"
    reason = f"bubblewrap sandbox works ({exe}, mode {sandbox_mode()})"
    _AVAILABLE[(exe, sandbox_mode())] = reason
    return True, reason


# --------------------------------------------------------------------------- running


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _supervise(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    limits: SandboxLimits,
    pass_fds: Sequence[int] = (),
    preexec_fn: object = None,
    sandboxed: bool,
    uid: int | None,
) -> SandboxResult:
    """Start ``cmd`` in a new session, capture its output with caps, enforce wall time."""
    start = time.monotonic()
    deadline = start + limits.wall_seconds
    proc = subprocess.Popen(  # noqa: S603 - the whole point: run a given argv
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        pass_fds=tuple(pass_fds),
        start_new_session=True,
        preexec_fn=preexec_fn,  # type: ignore[arg-type]
    )
    assert proc.stdout is not None and proc.stderr is not None
    caps = {
        proc.stdout.fileno(): _Capture(limits.max_output_bytes),
        proc.stderr.fileno(): _Capture(limits.max_output_bytes),
    }
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    reason: str | None = None
    exited_at: float | None = None
    with selectors.DefaultSelector() as sel:
        for fd in caps:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                reason = "wall time"
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            # Unsandboxed only: a leftover child may hold the pipes open after the main
            # process exited; give it a moment, then stop reading (it gets killed below).
            if exited_at is not None and now - exited_at > 1.0:
                break
            for key, _ in sel.select(timeout=min(deadline - now, 0.25)):
                try:
                    data = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(key.fd)
                    continue
                caps[key.fd].add(data)
                if caps[key.fd].truncated:
                    reason = "output limit"
            if reason:
                break
    if reason is not None:
        _kill_group(proc)
    try:
        returncode = proc.wait(timeout=max(deadline - time.monotonic(), 0) + _KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        reason = reason or "wall time"
        _kill_group(proc)
        returncode = proc.wait()
    if not sandboxed:
        _kill_group(proc)  # same-session leftovers; setsid() daemons can escape (no PID namespace)
    proc.stdout.close()
    proc.stderr.close()
    stderr_text = caps[err_fd].text()
    if reason is None:
        reason = _reason_from_status(returncode, stderr_text)
    return SandboxResult(
        returncode=returncode,
        stdout=caps[out_fd].text(),
        stderr=stderr_text,
        timed_out=reason == "wall time",
        killed_reason=reason,
        duration=time.monotonic() - start,
        sandboxed=sandboxed,
        uid=uid,
        stdout_truncated=caps[out_fd].truncated,
        stderr_truncated=caps[err_fd].truncated,
    )


def _reason_from_status(returncode: int, stderr: str) -> str | None:
    """Interpret bubblewrap's exit status (``128 + N`` for death by signal ``N``)."""
    sig = returncode - 128 if 128 < returncode < 128 + 65 else (-returncode if returncode < 0 else None)
    if sig == signal.SIGXCPU:
        return "cpu time"
    if sig == signal.SIGXFSZ:
        return "file size"
    if sig is not None:
        return f"signal {sig}"
    if returncode != 0 and ("MemoryError" in stderr or "Cannot allocate memory" in stderr):
        return "memory"
    return None


def _run_bwrap(
    bwrap: str,
    argv: Sequence[str],
    *,
    workdir: Path,
    readonly: Sequence[os.PathLike[str] | str],
    limits: SandboxLimits,
    env: Mapping[str, str] | None,
) -> SandboxResult:
    with bwrap_launch(bwrap, argv, workdir=workdir, readonly=readonly, limits=limits, env=env) as launch:
        result = _supervise(
            launch.argv,
            env=launch.env,
            cwd=None,
            limits=limits,
            pass_fds=launch.pass_fds,
            preexec_fn=launch.preexec_fn,
            sandboxed=True,
            uid=launch.uid,
        )
        if launch.cgroup is None:
            return result
        oom = launch.cgroup.oom_kills() > 0 and result.killed_reason not in ("wall time", "output limit")
        return dataclasses.replace(
            result, memory_cgroup=True, killed_reason="memory" if oom else result.killed_reason
        )


def _run_unsandboxed(
    argv: Sequence[str], *, workdir: Path, limits: SandboxLimits, env: Mapping[str, str] | None
) -> SandboxResult:
    import resource

    def set_limits() -> None:  # runs in the child between fork and exec
        for res, value in (
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_NPROC, limits.max_processes),
            (resource.RLIMIT_FSIZE, limits.max_file_bytes),
            (resource.RLIMIT_NOFILE, limits.max_open_files),
            (resource.RLIMIT_CORE, 0),
        ):
            hard = value + 2 if res == resource.RLIMIT_CPU else value
            resource.setrlimit(res, (value, hard))

    full_env = _default_env(env, [])
    full_env.update({"HOME": str(workdir), "TMPDIR": str(workdir)})
    return _supervise(
        list(argv),
        env=full_env,
        cwd=workdir,
        limits=limits,
        preexec_fn=set_limits,
        sandboxed=False,
        uid=os.getuid(),
    )


def run_sandboxed(
    argv: Sequence[str],
    *,
    workdir: str | os.PathLike[str],
    readonly: Sequence[str | os.PathLike[str]] = (),
    limits: SandboxLimits | None = None,
    env: Mapping[str, str] | None = None,
    allow_unsandboxed: bool = False,
    bwrap: str | os.PathLike[str] | None = None,
) -> SandboxResult:
    """Run ``argv`` in a fresh sandbox and report how it ended.

    Parameters
    ----------
    argv
        Command and arguments, as seen *inside* the sandbox (use absolute paths of bound
        executables, e.g. the venv's ``python``, or names on the sandbox's ``PATH``).
    workdir
        Host directory bound read-write at :data:`SANDBOX_WORKDIR`, which is also the
        working directory. In root mode it (and everything in it) is handed to the run's
        uid first. Use one fresh directory per submission; read results back with
        :func:`read_result_file`.
    readonly
        Host paths bound read-only at the same paths inside (absolute; their symlink-free
        form is bound too). Typically :func:`python_readonly_paths` plus the course library.
        ``/``, ``/etc``, ``/usr``, ``/proc``, ``/dev``, ``/sys`` and ``/tmp`` are refused.
    limits
        Resource limits; default :class:`SandboxLimits()`.
    env
        Extra environment variables (on top of a small fixed environment: ``PATH`` with the
        venv's ``bin`` first, ``HOME=/tmp``, Jupyter/IPython/Matplotlib dirs under ``/tmp``,
        one BLAS thread). The grader's own environment is never passed in.
    allow_unsandboxed
        When the sandbox cannot be created: False (default) raises
        :class:`SandboxUnavailableError`; True runs the command *without isolation* (only
        rlimits, wall time and output caps; ``SandboxResult.sandboxed`` is False) and warns.
    bwrap
        Path of the bubblewrap binary; default: ``bwrap`` on ``PATH``.

    Returns
    -------
    SandboxResult

    Raises
    ------
    SandboxUnavailableError
        No working sandbox and ``allow_unsandboxed`` is False.
    ValueError, FileNotFoundError
        A bad ``readonly`` entry or a missing ``workdir``.
    """
    limits = limits or SandboxLimits()
    work = Path(workdir)
    if work.is_symlink() or not work.is_dir():
        raise FileNotFoundError(f"workdir must be an existing directory (not a symlink): {work}")
    work = work.resolve()
    if not argv:
        raise ValueError("argv is empty")
    ok, why = sandbox_available(bwrap)
    if not ok:
        if not allow_unsandboxed:
            raise SandboxUnavailableError(
                f"refusing to run student code: the sandbox is not available ({why}). "
                "Fix that, or pass allow_unsandboxed=True (the grading command's --allow-unsandboxed) "
                "to run it WITHOUT isolation, with the grader's rights."
            )
        warnings.warn(
            f"running WITHOUT a sandbox ({why}); only rlimits, wall time and output caps apply",
            RuntimeWarning,
            stacklevel=2,
        )
        return _run_unsandboxed(argv, workdir=work, limits=limits, env=env)
    exe = _find_tool("bwrap", bwrap)
    assert exe is not None
    return _run_bwrap(exe, argv, workdir=work, readonly=readonly, limits=limits, env=env)


# --------------------------------------------------------------------------- results


def read_result_file(workdir: str | os.PathLike[str], name: str, max_bytes: int) -> bytes:
    """Read a file the sandboxed code left in its work directory, safely.

    Every component of ``name`` is opened relative to the previous one with
    ``O_NOFOLLOW``, so a symlink anywhere (pointing at ``/etc/passwd``, the gradebook, or
    another submission) is refused rather than followed; so are ``..``, absolute names,
    FIFOs and devices (opened non-blocking, then checked to be a regular file), and files
    larger than ``max_bytes`` (checked before and while reading).

    Parameters
    ----------
    workdir
        The run's work directory (the host path given to :func:`run_sandboxed`).
    name
        Relative path inside it, e.g. ``"results.json"`` or ``"out/a.txt"``.
    max_bytes
        Largest size accepted.

    Returns
    -------
    bytes

    Raises
    ------
    UnsafeResultError
        A symlink, a non-regular file, a bad name, or a file over ``max_bytes``.
    FileNotFoundError
        No such file.
    """
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in ("..", ".") for p in parts):
        raise UnsafeResultError(f"unsafe result name: {name!r}")
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fds: list[int] = []
    try:
        fds.append(os.open(workdir, flags_dir))
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = (os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC) if last else flags_dir
            try:
                fds.append(os.open(part, flags, dir_fd=fds[-1]))
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(
                    os.path.join(os.fspath(workdir), *parts[: i + 1])
                ):
                    raise UnsafeResultError(f"refusing to follow a symlink: {name!r}") from exc
                raise
        fd = fds[-1]
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeResultError(f"not a regular file: {name!r}")
        if st.st_size > max_bytes:
            raise UnsafeResultError(f"{name!r} is {st.st_size} bytes, over the limit of {max_bytes}")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - size) or 1):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise UnsafeResultError(f"{name!r} grew over the limit of {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        for fd in reversed(fds):
            os.close(fd)


# --------------------------------------------------------------------------- notebooks

_NOTEBOOK_DRIVER = r"""
import sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

src, dst, timeout, kernel = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
nb = nbformat.read(src, as_version=4)
current = {"index": None}

def on_cell_start(cell, cell_index, **kwargs):
    current["index"] = cell_index

client = NotebookClient(
    nb, timeout=timeout, allow_errors=True, interrupt_on_timeout=False, kernel_name=kernel,
    startup_timeout=60, resources={"metadata": {"path": "."}}, on_cell_start=on_cell_start,
    shutdown_kernel="immediate",
)
status, message = 0, ""
try:
    client.execute()
except CellTimeoutError:
    status, message = 3, f"CellTimeoutError: the cell ran longer than {timeout} s"
except DeadKernelError as exc:
    status, message = 4, f"DeadKernelError: the kernel died ({exc})"
except Exception as exc:
    status, message = 5, f"{type(exc).__name__}: {exc}"
finally:
    if status:
        if current["index"] is not None:
            nb.cells[current["index"]].setdefault("outputs", []).append(nbformat.v4.new_output(
                "error", ename=message.split(":")[0], evalue=message, traceback=[message]))
        print(message, file=sys.stderr)
    nbformat.write(nb, dst)
sys.exit(status)
"""


#: ``killed_reason`` of notebook runs, by the driver's exit status.
_NOTEBOOK_STATUS = {3: "cell timeout", 4: "kernel died"}


def execute_notebook_sandboxed(
    notebook_path: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    readonly: Sequence[str | os.PathLike[str]] | None = None,
    limits: SandboxLimits | None = None,
    timeout_per_cell: int = 30,
    *,
    python: str | os.PathLike[str] | None = None,
    kernel_name: str = "python3",
    env: Mapping[str, str] | None = None,
    allow_unsandboxed: bool = False,
    bwrap: str | os.PathLike[str] | None = None,
) -> tuple[Path | None, SandboxResult]:
    """Execute a notebook with nbclient inside the sandbox.

    The notebook is copied into ``workdir`` and executed there (``allow_errors``, so a
    failing cell does not stop the rest), by ``python`` inside the sandbox, with the kernel
    also inside it (ZMQ over the sandbox's private loopback).

    Parameters
    ----------
    notebook_path
        The notebook to run (host path; it is copied, not modified).
    workdir
        Empty host directory for this run (bound at :data:`SANDBOX_WORKDIR`).
    readonly
        Read-only binds; default :func:`python_readonly_paths` of ``python``. Must include
        the interpreter's installation and whatever the notebook imports.
    limits
        Limits of the whole run (kernel included); the wall limit covers every cell.
    timeout_per_cell
        Seconds one cell may run; at the first cell over it execution stops, the cell gets
        an error output ``CellTimeoutError`` and the partial notebook is written
        (``returncode`` 3, ``killed_reason`` ``"cell timeout"``). A dead kernel (e.g. killed
        by a limit) gives ``returncode`` 4, ``killed_reason`` ``"kernel died"``.
    python
        Interpreter (with nbclient and ipykernel) to run; default ``sys.executable``.
    kernel_name
        Kernel spec name.
    env, allow_unsandboxed, bwrap
        As for :func:`run_sandboxed`.

    Returns
    -------
    tuple of (Path or None, SandboxResult)
        Path of the executed notebook (a regular, grader-owned file in ``workdir``, re-written
        from a safe read), or None when none was produced (e.g. wall time), and the result.
    """
    src = Path(notebook_path)
    work = Path(workdir)
    python = str(python or sys.executable)
    if readonly is None:
        readonly = python_readonly_paths(python)
    name = "submission.ipynb"
    out_name = "submission.executed.ipynb"
    for leftover in (name, out_name):
        with contextlib.suppress(FileNotFoundError):
            (work / leftover).unlink()
    shutil.copyfile(src, work / name)
    result = run_sandboxed(
        [python, "-c", _NOTEBOOK_DRIVER, name, out_name, str(int(timeout_per_cell)), kernel_name],
        workdir=work,
        readonly=readonly,
        limits=limits,
        env=env,
        allow_unsandboxed=allow_unsandboxed,
        bwrap=bwrap,
    )
    if result.killed_reason is None and result.returncode in _NOTEBOOK_STATUS:
        result = dataclasses.replace(result, killed_reason=_NOTEBOOK_STATUS[result.returncode])
    limit = (limits or SandboxLimits()).max_file_bytes
    try:
        data = read_result_file(work, out_name, limit)
    except (FileNotFoundError, UnsafeResultError):
        return None, result
    # Replace the sandbox-owned file by a grader-owned copy of what was read.
    out = work / out_name
    out.unlink()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return out, result
