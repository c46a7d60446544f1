"""The recorder: runs ONE reconstructed submission inside the sandbox (no Jupyter kernel).

Started by :mod:`course.trusted` as the sandbox's command (venv python, ``-I``). It reads
``job.json`` from the work directory (and deletes it), then, in one IPython
``InteractiveShell`` (magics work):

1. runs every non-test code cell in order (the student's solution cells, the instructor's
   read-only cells), capturing each cell's text output, cut to a limit;
2. wraps every callable of the assignment's interface (the names the instructor's
   solution cells define and the test cells use) in a *recorder*, and exports the
   interface's other values (``params``, lists, ...);
3. runs each instructor test cell. Each outermost call of a student function is logged:
   ``(test cell, name, call index, argument hash)`` and the value it returned (arrays as
   ``.npy`` with ``allow_pickle=False``), or the exception it raised, plus any array
   argument it changed in place.

Everything goes to ``rec/log.jsonl`` (one ``os.write`` per event, so ``os._exit`` or a kill
loses only what came after) and ``rec/*.npy``. NOTHING this process writes is trusted as
a verdict: the grader replays the instructor's test cells outside the sandbox against
these recordings (:mod:`course.trusted`). Student code runs in this same process and can
forge any of it; that can only change what *its own* functions are taken to return.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import warnings


class _Capped:
    """A text stream keeping the first ``limit`` characters and counting the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def write(self, text: str) -> int:
        text = str(text)
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[... {self.dropped} more characters of output not kept ...]\n"
        return out


def _safe_str(exc: BaseException, limit: int = 2000) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - a student's __str__ may raise anything
        text = "<unprintable message>"
    return text[:limit]


def main() -> None:
    from course.recording import Unsupported, encode, hash_call, hash_value

    with open("job.json", encoding="utf-8") as fh:
        job = json.load(fh)
    os.unlink("job.json")
    os.makedirs("rec", exist_ok=True)
    log_fd = os.open("rec/log.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing printed reaches the sandbox's pipes (no output-limit kill)
    os.dup2(devnull, 2)
    limit = int(job.get("max_cell_output", 20000))
    counter = {"npy": 0}

    def log(event: dict) -> None:
        os.write(log_fd, (json.dumps(event) + "\n").encode("utf-8", "replace"))

    def save_array(a) -> str:  # noqa: ANN001
        import numpy as np

        counter["npy"] += 1
        name = f"{os.getpid()}-{counter['npy']}.npy"
        with open(os.path.join("rec", name), "wb") as fh:
            np.save(fh, a, allow_pickle=False)
        return name

    # The modules the instructor's tests use, as they were before any student code ran:
    # restored before the tests, so a student's monkeypatching cannot stop the recording.
    import builtins

    import numpy
    import numpy.testing
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    import conv_lib
    import conv_lib.grading

    # NumPy imports some submodules on first attribute access (``np.random``): import them
    # now, so that the snapshot below has them and restoring it keeps them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sub in ("random", "fft", "linalg", "polynomial", "ma", "ctypeslib", "rec", "char", "strings"):
            with contextlib.suppress(Exception):
                importlib.import_module(f"numpy.{sub}")

        # conv_lib's direct convolution loads SciPy's BLAS (~0.3 s) on first use: load it
        # once here rather than in every forked test cell.
        with contextlib.suppress(Exception):
            from conv_lib.algorithms import _axpy

            _axpy(numpy.dtype("float64"))
            _axpy(numpy.dtype("float32"))

    pristine = {
        m.__name__: (m, dict(vars(m))) for m in (builtins, numpy, numpy.testing, conv_lib, conv_lib.grading)
    }

    cfg = Config()
    cfg.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=cfg)
    skip = set(job.get("skip", []))
    log({"ev": "start", "pid": os.getpid()})

    # A per-cell time limit: a watchdog thread ends the process (os._exit cannot be caught
    # or ignored); the sandbox's wall-clock limit stays the backstop (a C loop holding the GIL).
    import threading

    cell_timeout = float(job.get("cell_timeout", 120))
    deadline: list = [None, None]
    _exit, _mono, _sleep, _write = os._exit, time.monotonic, time.sleep, os.write
    line_end = chr(10)

    def watchdog() -> None:
        while True:
            _sleep(0.1)
            if deadline[0] is not None and _mono() > deadline[0]:
                _write(log_fd, (json.dumps({"ev": "cell_timeout", "i": deadline[1]}) + line_end).encode())
                _exit(3)

    threading.Thread(target=watchdog, daemon=True).start()

    def arm(i):  # noqa: ANN001, ANN202
        deadline[1] = i
        deadline[0] = None if i is None else _mono() + cell_timeout

    # ---------------------------------------------------------------- 1. non-test cells
    for cell in job["cells"]:
        if cell["test"]:
            continue
        i = cell["i"]
        if i in skip:
            log({"ev": "cell_skip", "i": i})
            continue
        log({"ev": "cell_start", "i": i})
        arm(i)
        cap = _Capped(limit)
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = cap
        error = None
        started = time.monotonic()
        try:
            result = shell.run_cell(cell["source"], store_history=False)
            exc = result.error_in_exec or result.error_before_exec
            if exc is not None:
                error = [type(exc).__name__, _safe_str(exc)]
        except BaseException as exc:  # noqa: BLE001 - whatever the cell does, go on
            error = [type(exc).__name__, _safe_str(exc)]
        finally:
            arm(None)
            sys.stdout, sys.stderr = old
        log(
            {
                "ev": "cell_end",
                "i": i,
                "error": error,
                "output": cap.text(),
                "seconds": round(time.monotonic() - started, 3),
            }
        )

    # ---------------------------------------------------------------- 2. interface
    ns = shell.user_ns
    depth = [0]
    counts: dict[str, int] = {}
    current = {"test": None}

    def arrays_of(args: tuple, kwargs: dict) -> list:
        import numpy as np

        found = [(k, a) for k, a in enumerate(args) if type(a) is np.ndarray]
        found += [(k, a) for k, a in kwargs.items() if type(a) is np.ndarray]
        return found

    def recorder_for(name: str, fn):  # noqa: ANN001, ANN202
        def recorder(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if depth[0] > 0 or current["test"] is None:
                return fn(*args, **kwargs)
            key = f"{current['test']}|{name}"
            idx = counts.get(key, 0)
            counts[key] = idx + 1
            event = {"ev": "call", "test": current["test"], "name": name, "idx": idx}
            try:
                event["hash"] = hash_call(args, kwargs)
                before = [(k, hash_value(a)) for k, a in arrays_of(args, kwargs)]
            except BaseException as exc:  # noqa: BLE001
                event["hash"], before = f"unhashable: {type(exc).__name__}", []
            log({"ev": "call_start", "test": current["test"], "name": name, "idx": idx})

            def changed() -> list:
                out = []
                try:
                    now = dict((k, a) for k, a in arrays_of(args, kwargs))
                    for k, h in before:
                        if k in now and hash_value(now[k]) != h:
                            out.append([k, save_array(now[k])])
                except BaseException:  # noqa: BLE001
                    pass
                return out

            depth[0] += 1
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:
                depth[0] -= 1
                event.update(kind="raise", type=type(exc).__name__, msg=_safe_str(exc), mut=changed())
                log(event)
                raise
            depth[0] -= 1
            try:
                event.update(kind="return", value=encode(value, save_array))
            except Unsupported as exc:
                event.update(kind="unsupported", what=str(exc))
            except BaseException as exc:  # noqa: BLE001 - e.g. a student's __array__ raising
                event.update(kind="unsupported", what=f"{type(value).__name__} ({type(exc).__name__})")
            event["mut"] = changed()
            log(event)
            return value

        recorder.__name__ = name
        recorder.__qualname__ = name
        recorder.__wrapped__ = fn
        return recorder

    for name in job["interface"]:
        if name not in ns:
            log({"ev": "var", "name": name, "kind": "missing"})
            continue
        value = ns[name]
        if callable(value):
            ns[name] = recorder_for(name, value)
            log({"ev": "var", "name": name, "kind": "callable"})
            continue
        try:
            log({"ev": "var", "name": name, "kind": "value", "value": encode(value, save_array)})
        except BaseException as exc:  # noqa: BLE001
            what = str(exc) if isinstance(exc, Unsupported) else type(value).__name__
            log({"ev": "var", "name": name, "kind": "unsupported", "what": what})

    for mod_name, (mod, saved) in pristine.items():
        try:
            current_dict = mod.__dict__
            current_dict.update(saved)  # never clear: builtins must stay usable throughout
            for extra in [k for k in current_dict if k not in saved]:
                del current_dict[extra]
            sys.modules[mod_name] = mod
        except BaseException:  # noqa: BLE001
            pass

    # Checks in this process must not stop before the student's functions are called:
    # the reference check is made by the grader, on the source (see conv_lib.grading).
    try:
        import conv_lib.grading as grading

        grading.forbid_reference = lambda *a, **k: None
    except BaseException:  # noqa: BLE001
        pass

    # ---------------------------------------------------------------- 3. test cells
    def run_test(cell: dict) -> None:
        i, gid = cell["i"], cell["grade_id"]
        current["test"] = gid
        cap = _Capped(limit)
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = cap
        error = None
        try:
            exec(compile(cell["source"], f"<test {gid}>", "exec"), ns)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001
            error = [type(exc).__name__, _safe_str(exc)]
        finally:
            sys.stdout, sys.stderr = old
            current["test"] = None
        log({"ev": "cell_end", "i": i, "test": gid, "error": error})

    for cell in job["cells"]:
        if not cell["test"]:
            continue
        i, gid = cell["i"], cell["grade_id"]
        if i in skip:
            log({"ev": "cell_skip", "i": i})
            continue
        log({"ev": "cell_start", "i": i, "test": gid})
        # Each test cell runs in a forked child (same state, cheap): a test that hangs, exits
        # or crashes costs that test only. Without a free process slot, it runs in-process.
        try:
            rfd, wfd = os.pipe()
            pid = os.fork()
        except OSError:
            pid = None
        if pid == 0:
            os.close(rfd)
            run_test(cell)
            _write(wfd, b"ok")
            _exit(0)
        if pid is None:
            arm(i)
            run_test(cell)
            arm(None)
            continue
        os.close(wfd)
        end = _mono() + cell_timeout
        status = None
        pause = 0.001  # most test cells take milliseconds: poll fast first, then every 20 ms
        while status is None:
            done_pid, st = os.waitpid(pid, os.WNOHANG)
            if done_pid:
                status = st
            elif _mono() > end:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                status = "timeout"
            else:
                _sleep(pause)
                pause = min(0.02, pause * 1.5)
        ok = os.read(rfd, 2) == b"ok"
        os.close(rfd)
        if not ok:
            if status == "timeout":
                why = ["timeout", cell_timeout]
            elif os.WIFSIGNALED(status):
                why = ["signal", os.WTERMSIG(status)]
            else:
                why = ["exit", os.WEXITSTATUS(status)]
            log({"ev": "cell_died", "i": i, "test": gid, "why": why})
            log({"ev": "cell_end", "i": i, "test": gid, "error": None})
    log({"ev": "done"})
    os._exit(0)  # no atexit handlers of student code


if __name__ == "__main__":
    main()
