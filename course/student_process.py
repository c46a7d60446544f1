"""The grader's handle on one submission's sandboxed answer server.

:class:`StudentProcess` starts :mod:`course.answer_server` in a sandbox that holds only the
Python standard library, the packages the assignment allows (NumPy by default) and the
student kit, runs the submission's cells there, and then asks it questions: "what does your
``zero_pad`` return for these arguments?". Every answer is read with a time budget and a
size budget; an answer to a question that was not asked (wrong request id), a process that
dies, hangs or answers too much costs that one call, and the process is started again for
the next one (at most ``max_restarts`` times).

:class:`Proxy` stands in for a student function in the grader's namespace, so that the
instructor's test cells run here, outside the sandbox, unchanged.
"""

from __future__ import annotations

import builtins
import glob
import importlib.util
import itertools
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from course import wire
from course.sandbox import SandboxLimits

RUNNER_DIR = "/sandbox/runner"
SITE_DIR = "/sandbox/site"
_HERE = Path(__file__).resolve().parent


class NoAnswer(Exception):  # noqa: N818 - the name reads well in a student's feedback
    """The student's process gave no usable answer to a call (the message says why)."""


class StudentError(Exception):
    """Stands in for an exception class of the student's that is not a Python builtin."""


_EXC_TYPES: dict[str, type] = {}


def exception_type(name: str) -> type[BaseException]:
    """A builtin exception class by name, else a :class:`StudentError` subclass of that name."""
    obj = getattr(builtins, name, None)
    if isinstance(obj, type) and issubclass(obj, Exception):
        return obj
    if name not in _EXC_TYPES:
        _EXC_TYPES[name] = type(name if name.isidentifier() else "StudentError", (StudentError,), {})
    return _EXC_TYPES[name]


@dataclass(frozen=True)
class RemoteObject:
    """A value the student's function returned that cannot cross the wire; it stays in the
    sandbox and can be passed back to another of the student's functions."""

    index: int
    epoch: int
    type_name: str

    def __repr__(self) -> str:
        return f"<{self.type_name} object in your notebook>"


@dataclass
class Budget:
    """Per-submission limits of the conversation with the student's process."""

    start_seconds: float = 120.0  # running all the cells
    call_seconds: float = 120.0  # one call (a test cell's limit also applies)
    answer_bytes: int = 64 * 2**20  # one answer
    callbacks: int = 200_000  # calls of the grader's functions during one call
    max_runs: int = 5  # starts of the process, restarts included


def sandbox_mounts(packages: Sequence[str]) -> tuple[list[Path], list[tuple[str, str, str]]]:
    """Read-only binds and mounts: Python's standard library (its site-packages hidden), the
    allowed packages and the student kit under :data:`SITE_DIR`, the server under
    :data:`RUNNER_DIR`. Nothing of the repository, the venv or ``course`` is bound."""
    base = Path(sys.base_prefix).resolve()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    mounts: list[tuple[str, str, str]] = [("tmpfs", "", str(base / "lib" / version / "site-packages"))]
    # /usr is bound whole (the loader, libc): hide the system Pythons' packages in it, which a
    # grading host may have (Debian's python3-scipy would be a reference).
    for pattern in ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages"):
        mounts += [("tmpfs", "", d) for d in sorted(glob.glob(pattern)) if Path(d).is_dir()]
    for pkg in (*packages, "coursekit"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or spec.origin is None:
            raise SystemExit(f"the package {pkg!r} that the sandbox needs is not installed")
        folder = Path(spec.origin).resolve().parent
        mounts.append(("ro", str(folder), f"{SITE_DIR}/{pkg}"))
        libs = folder.parent / f"{pkg}.libs"
        if libs.is_dir():
            mounts.append(("ro", str(libs.resolve()), f"{SITE_DIR}/{pkg}.libs"))
    for name in ("wire.py", "answer_server.py"):
        mounts.append(("ro", str(_HERE / name), f"{RUNNER_DIR}/{name}"))
    return [base], mounts


def _unsandboxed_dirs(packages: Sequence[str]) -> tuple[str, str]:
    site = Path(tempfile.mkdtemp(prefix="course-site-"))
    for pkg in (*packages, "coursekit"):
        spec = importlib.util.find_spec(pkg)
        assert spec is not None and spec.origin is not None
        folder = Path(spec.origin).resolve().parent
        (site / pkg).symlink_to(folder)
        if (folder.parent / f"{pkg}.libs").is_dir():
            (site / f"{pkg}.libs").symlink_to(folder.parent / f"{pkg}.libs")
    runner = Path(tempfile.mkdtemp(prefix="course-runner-"))
    for name in ("wire.py", "answer_server.py"):
        (runner / name).symlink_to(_HERE / name)
    return str(runner), str(site)


@dataclass
class CellRun:
    output: str = ""
    error: str = ""


@dataclass
class StudentProcess:
    """One submission's answer server; see the module's docstring."""

    cells: list[dict]  # {"i", "source", "name"}: given cells and the student's answers, in order
    packages: Sequence[str] = ("numpy",)
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    budget: Budget = field(default_factory=Budget)
    allow_unsandboxed: bool = False
    runs: int = 0
    skipped: dict[int, str] = field(default_factory=dict)  # cell index -> why it was left out
    cell_runs: dict[int, CellRun] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # what went wrong, for the feedback
    _proc: Any = None
    _epoch: int = 0
    _calls: itertools.count = field(default_factory=itertools.count)
    _tmp: list[str] = field(default_factory=list)

    # -- life cycle -------------------------------------------------------------------
    def _spawn(self) -> Any:
        from course.sandbox_session import start_sandboxed

        python = str(Path(sys.executable).resolve())
        readonly, mounts = sandbox_mounts(self.packages)
        argv = [python, "-I", "-S", "-B", f"{RUNNER_DIR}/answer_server.py", RUNNER_DIR, SITE_DIR]
        runner, site = ("", "")
        if not self.allow_unsandboxed:
            un_argv = None
        else:
            runner, site = _unsandboxed_dirs(self.packages)
            self._tmp += [runner, site]
            un_argv = [python, "-I", "-S", "-B", f"{runner}/answer_server.py", runner, site]
        return start_sandboxed(
            argv,
            readonly=readonly,
            mounts=mounts,
            limits=self.limits,
            env={"PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8"},
            allow_unsandboxed=self.allow_unsandboxed,
            unsandboxed_argv=un_argv,
        )

    def start(self) -> bool:
        """Start the process and run the cells; False when no more starts are allowed."""
        while self.runs < self.budget.max_runs:
            self.runs += 1
            self._epoch += 1
            self._proc = self._spawn()
            deadline = time.monotonic() + self.budget.start_seconds
            current: int | None = None
            runs: dict[int, CellRun] = {}
            try:
                wire.write_message(
                    self._proc.stdin_fd,
                    {"op": "start", "cells": self.cells, "skip": sorted(self.skipped)},
                    deadline=deadline,
                )
                while True:
                    header, _ = wire.read_message(self._proc.stdout_fd, 4 * 2**20, deadline)
                    ev = header.get("ev")
                    if ev == "cell_start":
                        current = int(header.get("i", -1))
                    elif ev == "cell_end":
                        i = int(header.get("i", -1))
                        runs[i] = CellRun(
                            wire.clean_text(str(header.get("output", "")))[:25_000],
                            wire.clean_text(str(header.get("error", "")))[:5_000],
                        )
                        current = None
                    elif ev == "ready":
                        self.cell_runs = runs
                        return True
                    else:
                        raise wire.WireError("an unexpected message while running the cells")
            except (wire.WireError, ValueError, TypeError) as err:
                why = self._why_dead(err, "running your cells", self.budget.start_seconds)
                self.kill()
                self.cell_runs = runs
                if current is None or current in self.skipped:
                    self.events.append(why)
                    return False
                self.skipped[current] = why
        self.events.append(f"your notebook's process was started {self.budget.max_runs} times; no more runs")
        return False

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc = None

    def close(self) -> None:
        if self._proc is not None:
            try:
                wire.write_message(self._proc.stdin_fd, {"op": "stop"}, deadline=time.monotonic() + 1)
            except OSError:  # WireTimeout too: a process that stopped reading is killed below
                pass
        self.kill()
        import shutil

        for d in self._tmp:
            shutil.rmtree(d, ignore_errors=True)

    def _why_dead(self, err: BaseException, doing: str, seconds: float) -> str:
        if isinstance(err, wire.WireTimeout):
            return f"it was stopped after {seconds:g} s (time limit) while {doing}"
        proc = self._proc
        if proc is not None:
            for _ in range(20):
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
            code = proc.poll()
            if proc.memory_killed():
                return f"it ran out of memory while {doing}"
            if code is not None:
                if 128 < code < 128 + 65:
                    sig = code - 128
                    what = {24: "CPU-time limit", 9: "killed: memory or CPU limit", 25: "file-size limit"}
                    return f"its process was killed (signal {sig}, {what.get(sig, 'a crash')}) while {doing}"
                return f"its process ended (exit status {code}: sys.exit, os._exit or a crash) while {doing}"
        return f"it broke the grading protocol ({wire.clean_text(str(err))[:200]}) while {doing}"

    # -- questions --------------------------------------------------------------------
    def _ensure(self) -> None:
        if not self.alive():
            self.kill()
            if not self.start():
                raise NoAnswer(
                    "your notebook's process could not be started again ("
                    + (self.events[-1] if self.events else "no more runs")
                    + ")"
                )

    def ask(
        self, op: str, name: str, args: tuple = (), kwargs: dict | None = None, deadline: float = 0
    ) -> Any:
        """Call (``op="call"``) or read (``op="get"``) ``name`` in the student's namespace."""
        self._ensure()
        proc = self._proc
        req_id = secrets.token_hex(16)
        callbacks: dict[int, Callable] = {}
        epoch = self._epoch

        def ref(value: Any) -> dict:
            if isinstance(value, RemoteObject):
                if value.epoch != epoch:
                    raise NoAnswer(
                        f"an object returned earlier ({value!r}) is gone: your notebook's process "
                        "was restarted after a failure"
                    )
                return {"t": "ref", "v": value.index}
            if callable(value):
                callbacks[len(callbacks)] = value
                return {"t": "cb", "v": len(callbacks) - 1}
            raise wire.Unsupported(f"{type(value).__name__}")

        buffers: list[bytes] = []
        header: dict = {"op": op, "id": req_id, "name": name, "seed": next(self._calls)}
        if op == "call":
            header["args"] = wire.encode([list(args), dict(kwargs or {})], buffers, ref)
        deadline = deadline or time.monotonic() + self.budget.call_seconds
        # the test's functions are called with arrays like the call's own, not larger ones
        callback_bytes = 4 * sum(len(b) for b in buffers) + 4096
        seconds = max(deadline - time.monotonic(), 0)
        n_callbacks = 0
        try:
            wire.write_message(proc.stdin_fd, header, buffers, deadline=deadline)
            while True:
                answer, bufs = wire.read_message(proc.stdout_fd, self.budget.answer_bytes, deadline)
                if answer.get("id") != req_id:
                    raise wire.WireError("it sent something it was not asked for")
                if "cb" in answer:
                    n_callbacks += 1
                    if n_callbacks > self.budget.callbacks:
                        raise wire.WireError(
                            f"it called the test's function over {self.budget.callbacks} times"
                        )
                    if sum(len(b) for b in bufs) > callback_bytes:
                        raise wire.WireError(
                            "it called the test's function with arguments larger than the call's own "
                            f"({sum(len(b) for b in bufs)} bytes)"
                        )
                    self._answer_callback(proc, callbacks, answer, bufs, deadline)
                    if time.monotonic() > deadline:
                        raise wire.WireTimeout("no answer before the deadline")
                    continue
                outcome = self._decode_answer(op, answer, bufs, epoch, name, args, kwargs or {})
                break
        except (wire.WireError, OSError, ValueError, TypeError, KeyError, IndexError) as err:
            why = self._why_dead(err, f"running `{name}`", seconds)
            if isinstance(err, wire.WireError) and "limit" in str(err) and "bytes" in str(err):
                why = f"`{name}` answered with more than {self.budget.answer_bytes // 2**20} MiB"
            self.events.append(why)
            self.kill()
            raise NoAnswer(why) from None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _answer_callback(
        self, proc: Any, callbacks: dict, answer: dict, bufs: list[bytes], deadline: float
    ) -> None:
        fn = callbacks.get(int(answer["cb"]))
        try:
            args, kwargs = wire.decode(answer["args"], bufs)
            if fn is None:
                raise NameError("no such function")
            value = fn(*args, **kwargs)
            out: list[bytes] = []
            tree = wire.encode(value, out)
            wire.write_message(proc.stdin_fd, {"op": "cb_result", "ok": tree}, out, deadline=deadline)
        except (wire.WireError, OSError):
            raise
        except Exception as err:  # noqa: BLE001 - the test's function failing on the student's input
            raised = {"op": "cb_result", "raised": f"{type(err).__name__}: {err}"}
            wire.write_message(proc.stdin_fd, raised, deadline=deadline)

    @staticmethod
    def _decode_answer(
        op: str, answer: dict, bufs: list[bytes], epoch: int, name: str, args: tuple, kwargs: dict
    ) -> Any:
        def deref(tree: dict) -> Any:
            if tree.get("t") == "ref":
                return RemoteObject(
                    int(tree["v"]), epoch, wire.clean_text(str(tree.get("type", "object")))[:80]
                )
            raise wire.Unsupported("an unknown value")

        if "raised" in answer:
            r = answer["raised"] if isinstance(answer["raised"], dict) else {}
            etype = wire.clean_text(str(r.get("type", "Exception")))[:80]
            msg = wire.clean_text(str(r.get("msg", "")))[:2000]
            if etype in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
                return NoAnswer(f"`{name}` stopped with {etype}({msg})")
            return exception_type(etype)(msg)
        value = wire.decode(answer["ok"], bufs, deref)
        if op == "get":
            return value
        result, mutated = value
        for key, new in mutated if isinstance(mutated, list) else []:
            target = args[key] if isinstance(key, int) and 0 <= key < len(args) else kwargs.get(key)
            if type(target) is np.ndarray and isinstance(new, np.ndarray) and new.shape == target.shape:
                np.copyto(target, new, casting="unsafe")
        return result


class Proxy:
    """Stands in for one student function in the grader's namespace (instructor tests)."""

    def __init__(self, process: StudentProcess, name: str, deadline: Callable[[], float]) -> None:
        self.__name__ = self.__qualname__ = name
        self._process = process
        self._deadline = deadline

    def __repr__(self) -> str:
        return f"<function {self.__name__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._process.ask("call", self.__name__, args, kwargs, self._deadline())
