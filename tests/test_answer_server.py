"""The sandboxed answer server and the grader's handle on it (course/student_process.py).

What the sandbox lets student code see (no reference, no test, no course code), and what
the grader accepts back: only answers to the questions it asked, within a time and size
budget; a process that dies, hangs, answers early or floods costs that call only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course import wire  # noqa: E402
from course.sandbox import sandbox_available  # noqa: E402
from course.student_process import Budget, NoAnswer, RemoteObject, StudentProcess  # noqa: E402

pytestmark = pytest.mark.skipif(not sandbox_available()[0], reason="bubblewrap sandbox unavailable")


def server(source: str, **budget: float) -> StudentProcess:
    sp = StudentProcess(
        [{"i": 0, "source": "import numpy as np\n" + source, "name": "answers"}], budget=Budget(**budget)
    )
    assert sp.start(), sp.events
    return sp


PROBE = """
import importlib, os, sys
def can_import(name):
    try:
        importlib.import_module(name)
        return True
    except Exception:
        return False
def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as err:
        return type(err).__name__
def read(path):
    try:
        with open(path, "rb") as fh:
            return len(fh.read())
    except OSError as err:
        return type(err).__name__
def write(path, n):
    try:
        with open(path, "wb") as fh:
            fh.write(b"x" * n)
        return "written"
    except OSError as err:
        return type(err).__name__
"""


def test_sandbox_holds_no_reference_and_no_test_code():
    sp = server(PROBE)
    try:
        for name in (
            "conv_lib",
            "scipy",
            "torch",
            "course",
            "course.grading",
            "skimage",
            "sklearn",
            "IPython",
        ):
            assert sp.ask("call", "can_import", (name,)) is False, name
        assert sp.ask("call", "can_import", ("numpy",)) is True
        assert sp.ask("call", "can_import", ("coursekit",)) is True
        # the repository (solutions, tests, course) is not there at all
        for path in (ROOT, ROOT / "solutions", ROOT / "tests", ROOT / "course", ROOT / "conv_lib"):
            assert sp.ask("call", "listing", (str(path),)) == "FileNotFoundError", path
        assert (
            sp.ask("call", "read", (str(ROOT / "course" / "grading" / "__init__.py"),)) == "FileNotFoundError"
        )
        site = sp.ask("call", "listing", ("/sandbox/site",))
        assert site == sorted(["coursekit", "numpy", "numpy.libs"]), site
        base_site = (
            Path(sys.base_prefix)
            / "lib"
            / f"python{sys.version_info[0]}.{sys.version_info[1]}"
            / "site-packages"
        )
        assert sp.ask("call", "listing", (str(base_site),)) == []
        assert sp.ask("call", "read", ("/proc/1/environ",)) in ("PermissionError", "FileNotFoundError")
    finally:
        sp.close()


def test_work_space_is_size_limited_and_private():
    """Each sandbox writes into its own tmpfs of a fixed total size (here 32 MiB), never the
    host's disk: four 10 MiB files do not fit, the fourth fails with ENOSPC."""
    from course.sandbox import SandboxLimits

    sp = StudentProcess(
        [
            {
                "i": 0,
                "source": PROBE + "\nimport errno\n"
                "def fill(n):\n"
                "    for k in range(n):\n"
                "        try:\n"
                "            with open(f'/sandbox/work/f{k}', 'wb') as fh:\n"
                "                fh.write(b'x' * (10 * 2**20))\n"
                "        except OSError as err:\n"
                "            return [k, errno.errorcode[err.errno]]\n"
                "    return [n, 'ok']\n",
                "name": "probe",
            }
        ],
        limits=SandboxLimits(tmp_bytes=32 * 2**20),
    )
    try:
        assert sp.start()
        assert sp.ask("call", "fill", (4,)) == [3, "ENOSPC"]
        assert sp.ask("call", "write", ("/tmp/x", 100)) == "written"  # its own /tmp too
    finally:
        sp.close()


def test_answers_only_what_was_asked():
    """A frame the student's process writes on its own (not an answer to the request it
    got, e.g. from a thread, guessing the request id) is refused: that call fails."""
    sp = server(
        "import __main__, threading, time, wire\n"
        "def forge():\n"
        "    time.sleep(0.5)\n"
        "    wire.write_message(__main__._ANSWERS, {'id': '0' * 32, 'ok': {'t': 'int', 'v': '42'}})\n"
        "threading.Thread(target=forge, daemon=True).start()\n"
        "def slow(x):\n"
        "    time.sleep(1.5)\n"
        "    return x\n"
        "def ok(x):\n"
        "    return x\n"
    )
    try:
        with pytest.raises(NoAnswer, match="not asked"):
            sp.ask("call", "slow", (1,))
        assert sp.ask("call", "ok", (5,)) == 5  # a fresh process answers again
    finally:
        sp.close()


def test_returned_values_are_fresh_and_plain():
    sp = server(
        "class F(float):\n    def __eq__(self, o):\n        return True\n"
        "def sub():\n    return F(1.0)\n"
        "def arr():\n    return np.arange(6, dtype=np.float32).reshape(2, 3)\n"
        "def obj():\n    return np.array([object()], dtype=object)\n"
    )
    try:
        got = sp.ask("call", "sub")
        assert isinstance(got, RemoteObject)  # a subclass never reaches the checks as a number
        a = sp.ask("call", "arr")
        assert a.dtype == np.float32 and a.shape == (2, 3) and a.flags.writeable
        assert isinstance(sp.ask("call", "obj"), RemoteObject)
    finally:
        sp.close()


def test_hang_crash_and_flood_cost_one_call_each():
    sp = server(
        "def hang():\n    while True:\n        pass\n"
        "def die():\n    import os\n    os._exit(7)\n"
        "def flood():\n    return np.zeros(20 * 2**20)\n"
        "def ok(x):\n    return x + 1\n",
        answer_bytes=16 * 2**20,
    )
    try:
        with pytest.raises(NoAnswer, match="time limit"):
            sp.ask("call", "hang", deadline=time.monotonic() + 2)
        assert sp.ask("call", "ok", (1,)) == 2  # restarted
        with pytest.raises(NoAnswer, match="exit status 7"):
            sp.ask("call", "die")
        assert sp.ask("call", "ok", (2,)) == 3
        with pytest.raises(NoAnswer, match="more than 16 MiB"):
            sp.ask("call", "flood")
        assert sp.ask("call", "ok", (3,)) == 4
        assert sp.runs == 4
    finally:
        sp.close()


def test_a_process_that_stops_reading_costs_one_call():
    """A function that points the answer server's request channel at a pipe nobody
    writes (so nothing reads the grader's next request, larger than a pipe holds) costs
    that call a NoAnswer at its deadline, not a grader blocked in its write; the
    process is then restarted."""
    import threading

    sp = server(
        "def stall(x):\n    import os\n    r, w = os.pipe()\n    os.dup2(r, 3)\n    return 0\n"
        "def ok(x):\n    return x + 1\n"
    )
    outcome: list[str] = []

    def big_call() -> None:
        try:
            sp.ask("call", "ok", (np.zeros(2_000_000),), deadline=time.monotonic() + 2)
            outcome.append("answered")
        except NoAnswer:
            outcome.append("NoAnswer")

    try:
        assert sp.ask("call", "stall", (np.zeros(3),)) == 0
        caller = threading.Thread(target=big_call, daemon=True)
        caller.start()
        caller.join(60)  # the call's deadline is 2 s; a blocked write would still be here
        assert not caller.is_alive(), "the grader's write to the stalled process never returned"
        assert outcome == ["NoAnswer"]
        assert sp.ask("call", "ok", (1,)) == 2  # restarted
    finally:
        sp.close()


def test_errors_come_back_by_type_and_callbacks_reach_the_grader():
    sp = server(
        "def raises(x):\n    raise ValueError(f'bad x {x}')\n"
        "def stub():\n    raise NotImplementedError()\n"
        "def grad(f, x):\n    return np.array([f(x + 1) - f(x)])\n"
        "def mutate(a):\n    a[0] = 9\n"
    )
    try:
        with pytest.raises(ValueError, match="bad x 3"):
            sp.ask("call", "raises", (3,))
        with pytest.raises(NotImplementedError):
            sp.ask("call", "stub")
        seen = []
        assert sp.ask("call", "grad", (lambda v: seen.append(float(v)) or float(v) ** 2, 2.0)).tolist() == [
            5.0
        ]
        assert seen == [3.0, 2.0]
        a = np.zeros(3)
        sp.ask("call", "mutate", (a,))
        assert a.tolist() == [9.0, 0.0, 0.0]  # in-place changes are visible to the check
    finally:
        sp.close()


def test_cells_that_kill_the_process_are_left_out():
    sp = StudentProcess(
        [
            {"i": 0, "source": "import numpy as np\ndef f():\n    return 1", "name": "a"},
            {"i": 1, "source": "import os\nos._exit(3)", "name": "b"},
            {"i": 2, "source": "def g():\n    return 2", "name": "c"},
        ]
    )
    try:
        assert sp.start()
        assert list(sp.skipped) == [1] and "exit status 3" in sp.skipped[1]
        assert sp.ask("call", "f") == 1 and sp.ask("call", "g") == 2
    finally:
        sp.close()


def test_seeds_are_fixed_per_call():
    src = "import random\ndef draw():\n    return [random.random(), float(np.random.rand())]\n"
    first, second = server(src), server(src)
    try:
        assert first.ask("call", "draw") == second.ask("call", "draw")
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    "frame",
    [
        b"\xff" * 8,  # a header length over the budget
        (5).to_bytes(8, "little") + b"[1,2]",  # not an object
        (2).to_bytes(8, "little") + b"{}" + b"",  # fine header, then nothing: handled by sizes
        (30).to_bytes(8, "little") + b'{"sizes": [99999999999], "x":1}',
    ],
)
def test_wire_reader_refuses_malformed_frames(frame, tmp_path):
    import os

    r, w = os.pipe()
    os.write(w, frame)
    os.close(w)
    try:
        header, bufs = wire.read_message(r, 1 << 20, time.monotonic() + 1)
        assert header == {} and bufs == []
    except wire.WireError:
        pass
    finally:
        os.close(r)


@pytest.mark.parametrize(
    "value",
    [
        np.float64(3.5), np.float32(-1.25), np.int8(-3), np.bool_(True), np.array(5), np.array([]),
        np.arange(6.0).reshape(2, 3).T, np.arange(3, dtype=">i4"), np.array(["ab", "c"]),
        np.array([1 + 2j], dtype=np.complex64), 2**100, -0.0, float("nan"), 1e308, "\ud800x",
        b"\x00\xff", None, True, (1, [2.0, {"k": (None,)}]), {1: "a", "b": np.zeros((0, 3))},
    ],
)  # fmt: skip
def test_wire_round_trip_is_exact(value):
    bufs: list[bytes] = []
    got = wire.decode(wire.encode(value, bufs), bufs)
    if isinstance(value, str):
        assert got == "?x" or got == "\ufffdx" or got == value.encode("utf-8", "replace").decode()
        return
    assert type(got) is type(value)
    if isinstance(value, (np.ndarray, np.generic)):
        assert got.shape == np.shape(value) and got.dtype == np.asarray(value).dtype.newbyteorder("=")
        np.testing.assert_array_equal(got, value)
    elif isinstance(value, float) and value != value:
        assert got != got
    else:
        assert repr(got) == repr(value)
