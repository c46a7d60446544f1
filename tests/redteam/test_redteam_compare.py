"""Red-team reproducers (grader side, no sandbox): answers that fool or hurt the checks.

Each test asserts the SAFE behaviour, so it fails while the hole is open.

1. A boolean array of the right shape "equals" any float reference with no exact zeros:
   ``compare_arrays`` compares ``got.astype(bool) != expected.astype(bool)`` as soon as
   EITHER side is boolean. A student's stub returning ``np.ones(shape, bool)`` (shape from
   the output-size formula, no arithmetic at all) passed conv2d, correlate2d, window_value,
   numeric_gradient, pooling, conv2d_backward dw/db (8/20, 16/20 and 7/20 in a class run
   at 23:48 UTC); since commit 0c1dc8e the checks with a DtypeRule refuse a bool result,
   but window_value and conv2d_backward (db, dw, hidden dx) still pass (2/20 and 5/20),
   and compare_arrays itself still treats a bool answer as "nonzero pattern equals".
2. A list of byte strings (one long, many empty) crosses the wire in 60 MiB, and
   ``np.asarray`` in ``compare_arrays`` (in the grader's worker, which has no memory limit)
   pads every item to the longest: N times the answer's size.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from course.grading import (  # noqa: E402
    GradingError,
    check_conv2d,
    check_conv2d_backward,
    check_correlate2d,
    check_numeric_gradient,
    check_window_value,
    compare_arrays,
)


def _out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _pair(v):  # noqa: ANN001, ANN202
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def bool_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):  # noqa: ANN001, ANN201
    """No convolution at all: all-True booleans of the output's shape."""
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    return np.ones((n, c_out, _out(h, kh, sh, ph, dh), _out(w, kw, sw, pw, dw)), bool)


def bool_correlate2d(image, kernel, mode="valid"):  # noqa: ANN001, ANN201
    (h, w), (kh, kw) = np.shape(image), np.shape(kernel)
    return np.ones((h - kh + 1, w - kw + 1), bool)


def bool_conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1):  # noqa: ANN001, ANN201
    """No gradient at all: all-True booleans of the inputs' shapes."""
    return np.ones(x.shape, bool), np.ones(weight.shape, bool), np.ones(weight.shape[0], bool)


def test_boolean_array_does_not_equal_a_float_reference() -> None:
    expected = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(GradingError):
        compare_arrays(np.ones((3, 4), bool), expected)


def test_python_bool_does_not_equal_a_float_scalar() -> None:
    with pytest.raises(GradingError):
        compare_arrays(True, np.float64(-2.5))


@pytest.mark.parametrize(
    "check",
    [
        lambda: check_conv2d(bool_conv2d, "basic"),
        lambda: check_conv2d(bool_conv2d, "channels"),
        lambda: check_conv2d(bool_conv2d, "dilation"),
        lambda: check_correlate2d(bool_correlate2d, ("valid",)),
        lambda: check_window_value(lambda image, kernel, i, j: True),
        lambda: check_numeric_gradient(lambda f, x, eps=1e-5: np.ones(np.shape(x), bool)),
        lambda: check_conv2d_backward(bool_conv2d_backward, "db"),
        lambda: check_conv2d_backward(bool_conv2d_backward, "dw"),
    ],
    ids=[
        "conv2d-basic",
        "conv2d-channels",
        "conv2d-dilation",
        "correlate2d-valid",
        "window_value",
        "numeric_gradient",
        "conv2d_backward-db",
        "conv2d_backward-dw",
    ],
)
def test_all_true_boolean_stub_fails_the_check(check) -> None:  # noqa: ANN001
    with pytest.raises(GradingError):
        check()


AMPLIFY = textwrap.dedent(
    """
    import resource, sys
    sys.path.insert(0, {root!r})
    import numpy as np
    from course.grading import GradingError, compare_arrays
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answer = [b"\\0" * (8 * 2**20)] + [b""] * 40   # 8 MiB on the wire
    try:
        compare_arrays(answer, np.zeros((2, 3)))
        outcome = "passed"
    except GradingError:
        outcome = "GradingError"
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
    print(outcome, grown)
    """
)


def test_list_of_bytes_answer_is_not_amplified_in_the_grader() -> None:
    """8 MiB of answer must not become 328 MiB in the grader (60 MiB x N would kill the worker)."""
    proc = subprocess.run(
        [sys.executable, "-c", AMPLIFY.format(root=str(ROOT))], capture_output=True, text=True, timeout=120
    )
    outcome, grown_mib = proc.stdout.split()
    assert outcome == "GradingError"
    assert int(grown_mib) < 100, f"the grader's memory grew by {grown_mib} MiB for an 8 MiB answer"
