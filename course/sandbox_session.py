"""A sandboxed process that keeps running, talked to over its standard input and output.

:func:`course.sandbox.run_sandboxed` runs a command to its end. The grader needs a process
that answers questions one at a time (:mod:`course.answer_server`), so this module starts
the same sandbox (bubblewrap, own uid, seccomp, rlimits, memory cgroup when possible) with
pipes on stdin and stdout and a capped capture of stderr, and gives it back as a
:class:`SandboxProcess` that the caller kills when done. Its work directory is a private,
size-limited tmpfs: nothing the student's code writes reaches the host's disk.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from course.bwrap import (
    SandboxLimits,
    SandboxUnavailableError,
    _default_env,
    _find_tool,
    _MemoryCgroup,
    bwrap_launch,
)
from course.sandbox import _Capture, _kill_group, sandbox_available

__all__ = ["SandboxProcess", "start_sandboxed"]


class SandboxProcess:
    """A running sandboxed command: ``stdin``/``stdout`` file descriptors for a protocol.

    Use as a context manager, or call :meth:`kill`. Everything the sandbox holds (the uid
    lease, the memory cgroup, temporary files) is released by :meth:`kill`.
    """

    def __init__(
        self, proc: subprocess.Popen, stack: contextlib.ExitStack, cgroup: _MemoryCgroup | None, cap: int
    ) -> None:
        self.proc = proc
        self._stack = stack
        self._cgroup = cgroup
        self._stderr = _Capture(cap)
        self.stdin_fd = proc.stdin.fileno()  # type: ignore[union-attr]
        self.stdout_fd = proc.stdout.fileno()  # type: ignore[union-attr]
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.sandboxed = True

    def _drain(self) -> None:
        fd = self.proc.stderr.fileno()  # type: ignore[union-attr]
        with contextlib.suppress(OSError, ValueError):
            while chunk := os.read(fd, 1 << 16):
                self._stderr.add(chunk)

    @property
    def stderr(self) -> str:
        return self._stderr.text()

    def poll(self) -> int | None:
        return self.proc.poll()

    def memory_killed(self) -> bool:
        """True if the memory cgroup's OOM killer killed a process of this sandbox."""
        return self._cgroup is not None and self._cgroup.oom_kills() > 0

    def kill(self) -> int:
        """Kill every process of the sandbox, release its resources; the exit status."""
        _kill_group(self.proc)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
            code = -9
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                f.close()  # type: ignore[union-attr]
        self._reader.join(timeout=2)
        with contextlib.suppress(OSError):
            self.proc.stderr.close()  # type: ignore[union-attr]
        self._stack.close()
        return code

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def start_sandboxed(
    argv: Sequence[str],
    *,
    readonly: Sequence[str | os.PathLike[str]] = (),
    mounts: Sequence[tuple[str, str, str]] = (),
    limits: SandboxLimits | None = None,
    env: Mapping[str, str] | None = None,
    allow_unsandboxed: bool = False,
    unsandboxed_argv: Sequence[str] | None = None,
) -> SandboxProcess:
    """Start ``argv`` in a fresh sandbox with pipes on its stdin and stdout.

    Parameters
    ----------
    argv
        Command inside the sandbox.
    readonly, mounts
        Host paths bound read-only at the same path; ``("ro", host, dest)`` binds and
        ``("tmpfs", "", dest)`` hides (see :func:`course.bwrap._bwrap_argv`).
    limits
        Resource limits; ``wall_seconds`` is not enforced here (the caller owns the
        deadlines of its protocol and kills the process).
    allow_unsandboxed, unsandboxed_argv
        Without a working sandbox: refuse (default) or run ``unsandboxed_argv`` with
        rlimits only, after a warning.
    """
    limits = limits or SandboxLimits()
    ok, why = sandbox_available()
    stack = contextlib.ExitStack()
    if not ok:
        if not allow_unsandboxed:
            raise SandboxUnavailableError(
                f"refusing to run student code: the sandbox is not available ({why}). Fix that, or "
                "pass --allow-unsandboxed to run it WITHOUT isolation, with the grader's rights."
            )
        warnings.warn(f"running WITHOUT a sandbox ({why})", RuntimeWarning, stacklevel=2)
        return _start_unsandboxed(list(unsandboxed_argv or argv), limits, env, stack)
    exe = _find_tool("bwrap")
    assert exe is not None
    try:
        launch = stack.enter_context(
            bwrap_launch(
                exe,
                argv,
                workdir=None,
                readonly=readonly,
                limits=limits,
                env=env,
                mounts=mounts,
                cgroup_prefix="course-session",
            )
        )
        proc = subprocess.Popen(  # noqa: S603
            launch.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=launch.env,
            pass_fds=launch.pass_fds,
            start_new_session=True,
            preexec_fn=launch.preexec_fn,  # noqa: PLW1509
        )
    except BaseException:
        stack.close()
        raise
    return SandboxProcess(proc, stack, launch.cgroup, limits.max_output_bytes)


def _start_unsandboxed(
    argv: list[str], limits: SandboxLimits, env: Mapping[str, str] | None, stack: contextlib.ExitStack
) -> SandboxProcess:
    import resource

    def set_limits() -> None:
        for res, value in (
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_FSIZE, limits.max_file_bytes),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(res, (value, value + 2 if res == resource.RLIMIT_CPU else value))

    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="course-unsandboxed-")))
    full_env = _default_env(env, [])
    full_env.update({"HOME": str(work), "TMPDIR": str(work)})
    proc = subprocess.Popen(  # noqa: S603
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
        cwd=work,
        start_new_session=True,
        preexec_fn=set_limits,  # noqa: PLW1509
        executable=sys.executable if argv[0] == "python" else None,
    )
    sp = SandboxProcess(proc, stack, None, limits.max_output_bytes)
    sp.sandboxed = False
    return sp
