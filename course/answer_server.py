"""The student's side of grading: run the answer cells, then answer the grader's calls.

This file runs *inside* the sandbox (``python -I -S answer_server.py RUNNER_DIR SITE_DIR``),
where nothing but the standard library, NumPy and the student kit exists. It imports
:mod:`wire` (``course/wire.py``, bound next to it) and nothing of the course.

The grader drives everything over the process's standard input and output (which this
server takes for itself at start-up; the student's prints go to standard error):

1. ``{"op": "start", "cells": [...], "skip": [...]}``: run the cells (the release's given
   cells and the student's answers) one after another in one namespace, reporting
   ``cell_start``/``cell_end`` (with the cell's output and error) for each, then ``ready``.
2. ``{"op": "call", "id", "name", "args", "kwargs", "seed"}``: call the function ``name``
   of that namespace and answer ``{"id", "ok": value, "mut": [...]}`` (``mut``: the array
   arguments it changed in place, with their new values) or ``{"id", "raised": {...}}``.
   An argument ``{"t": "cb"}`` is a function of the grader's: calling it sends
   ``{"id", "cb", "args"}`` and waits for ``{"op": "cb_result", ...}``. A return value
   that cannot cross the wire stays here and is sent as a handle ``{"t": "ref"}``.
3. ``{"op": "get", "id", "name"}``: the value of a variable.

Nothing here is trusted by the grader beyond "this is what the function answered": the
student's code runs in this same process and could replace any of it.
"""

import builtins
import contextlib
import io
import os
import random
import sys
import traceback

_REQUESTS = os.dup(0)
_ANSWERS = os.dup(1)
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
os.dup2(2, 1)
sys.stdout = io.TextIOWrapper(
    os.fdopen(1, "wb", closefd=False), encoding="utf-8", errors="replace", line_buffering=True
)
sys.path[:0] = sys.argv[1:3]

import numpy as np  # noqa: E402
import numpy.random.bit_generator as _bit_generator  # noqa: E402
import wire  # noqa: E402

#: The entropy np.random.default_rng() (no seed) draws from, instead of the OS: seeded like
#: the global RNGs (before the cells, and per call), so regrading gives the same answers.
_ENTROPY = random.Random(0)
_bit_generator.randbits = _ENTROPY.getrandbits

MAX_REQUEST = 1 << 30
MAX_TEXT = 20_000


class _Capped(io.TextIOBase):
    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        if self.size < self.limit:
            self.parts.append(text[: self.limit - self.size])
        self.size += len(text)
        return len(text)

    def value(self) -> str:
        out = "".join(self.parts)
        if self.size > self.limit:
            out += f"\n[... output cut at {self.limit} characters ...]"
        return out


def _text(obj: object, limit: int = 2000) -> str:
    try:
        text = str(obj)
    except BaseException:  # noqa: BLE001 - a student's __str__ may raise anything
        text = "<unprintable>"
    return wire.clean_text(text[:limit])


def _seed_all(seed: int) -> None:
    """Fix every random source student code draws from by default: ``random``, NumPy's global
    RNG and the entropy of an unseeded ``np.random.default_rng()``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - fixing the global RNG is the point
    _ENTROPY.seed(seed)


def _strip_magics(source: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.split("\n"))


class Server:
    def __init__(self) -> None:
        self.ns: dict = {"__name__": "__main__", "__builtins__": builtins}
        self.refs: list = []

    # -- values ---------------------------------------------------------------------
    def _ref(self, value: object) -> dict:
        self.refs.append(value)
        return {"t": "ref", "v": len(self.refs) - 1, "type": type(value).__name__[:80]}

    def _deref(self, req_id: str):
        def deref(tree: dict):
            if tree.get("t") == "ref":
                return self.refs[int(tree["v"])]
            if tree.get("t") == "cb":
                return self._callback(req_id, int(tree["v"]))
            raise wire.Unsupported(f"unknown value {tree.get('t')!r}")

        return deref

    def _callback(self, req_id: str, k: int):
        def grader_function(*args, **kwargs):
            buffers: list[bytes] = []
            tree = wire.encode([list(args), kwargs], buffers, self._ref)
            wire.write_message(_ANSWERS, {"id": req_id, "cb": k, "args": tree}, buffers)
            header, bufs = wire.read_message(_REQUESTS, MAX_REQUEST)
            if header.get("raised"):
                raise RuntimeError(str(header["raised"])[:2000])
            return wire.decode(header["ok"], bufs, self._deref(req_id))

        grader_function.__name__ = f"f{k}"
        return grader_function

    def send(self, header: dict, value: object = None, has_value: bool = False) -> None:
        buffers: list[bytes] = []
        if has_value:
            try:
                header["ok"] = wire.encode(value, buffers, self._ref)
            except Exception as err:  # noqa: BLE001 - e.g. nesting too deep: this call's answer
                buffers = []
                header = {
                    "id": header.get("id"),
                    "raised": {
                        "type": "TypeError",
                        "msg": f"the returned value cannot be sent to the grader ({_text(err, 300)})",
                    },
                }
        wire.write_message(_ANSWERS, header, buffers)

    # -- cells ------------------------------------------------------------------------
    def run_cells(self, cells: list, skip: set) -> None:
        _seed_all(0)  # what the cells draw at random is the same on every (re)start
        for cell in cells:
            i = cell["i"]
            if i in skip:
                continue
            wire.write_message(_ANSWERS, {"ev": "cell_start", "i": i})
            out = _Capped(MAX_TEXT)
            error = ""
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                try:
                    code = compile(_strip_magics(cell["source"]), f"<cell {cell.get('name', i)}>", "exec")
                    exec(code, self.ns)  # noqa: S102 - running the student's cell is the point
                except BaseException as err:  # noqa: BLE001 - any error is reported, not fatal
                    lines = traceback.format_exception(type(err), err, err.__traceback__)
                    error = _text("".join(lines[-6:]), 4000)
            wire.write_message(_ANSWERS, {"ev": "cell_end", "i": i, "error": error, "output": out.value()})
        wire.write_message(_ANSWERS, {"ev": "ready"})

    # -- calls ------------------------------------------------------------------------
    def call(self, header: dict, buffers: list) -> None:
        req_id = str(header.get("id"))
        seed = int(header.get("seed", 0))
        _seed_all(seed)
        name = str(header.get("name"))
        fn = self.ns.get(name)
        if header.get("op") == "get":
            if name not in self.ns:
                self.send(
                    {"id": req_id, "raised": {"type": "NameError", "msg": f"name {name!r} is not defined"}}
                )
            else:
                self.send({"id": req_id}, fn, has_value=True)
            return
        if not callable(fn):
            what = "is not defined" if fn is None else "is not a function"
            self.send({"id": req_id, "raised": {"type": "NameError", "msg": f"{name} {what}"}})
            return
        try:
            args, kwargs = wire.decode(header["args"], buffers, self._deref(req_id))
        except Exception as err:  # noqa: BLE001
            self.send(
                {"id": req_id, "raised": {"type": "RuntimeError", "msg": f"bad arguments: {_text(err)}"}}
            )
            return
        arrays = [(i, a, a.copy()) for i, a in enumerate(args) if type(a) is np.ndarray]
        arrays += [(k, a, a.copy()) for k, a in kwargs.items() if type(a) is np.ndarray]
        out = _Capped(MAX_TEXT)
        try:
            with contextlib.redirect_stdout(out):
                result = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - SystemExit too: it is this call's answer
            tb = traceback.format_exception(type(err), err, err.__traceback__)
            raised = {"type": type(err).__name__[:80], "msg": _text(err), "tb": _text("".join(tb[-4:]), 3000)}
            self.send({"id": req_id, "raised": raised})
            return
        mut = [[k, now] for k, now, before in arrays if not np.array_equal(before, now, equal_nan=True)]
        self.send({"id": req_id}, [result, mut], has_value=True)

    def serve(self) -> None:
        while True:
            header, buffers = wire.read_message(_REQUESTS, MAX_REQUEST)
            op = header.get("op")
            if op == "start":
                self.run_cells(list(header.get("cells", [])), set(header.get("skip", [])))
            elif op in ("call", "get"):
                self.call(header, buffers)
            elif op == "stop":
                return


if __name__ == "__main__":
    try:
        Server().serve()
    except wire.WireError:
        pass
    os._exit(0)
