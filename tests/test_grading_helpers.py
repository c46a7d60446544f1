"""course.grading: every check passes the instructor's solution, and every diagnosis is
triggered by a deliberately buggy function (each check can fail, with the right hint).

The "student" functions are the solution notebooks' code, executed into a fresh module
namespace exactly as a notebook would define them, with small text edits for the bugs.
Every test runs inside a grading context (a fixed test secret), so hidden cases exist;
tests/test_grading_context.py covers the context itself and the accuracy question.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from course import grading
from course.grading import Case, Diagnosis, GradingError, compare_arrays, grading_context

ROOT = Path(__file__).resolve().parents[1]
#: The secret of these tests' grading context (the real one lives outside the repository).
TEST_SECRET = bytes(range(32))


@pytest.fixture(autouse=True, params=["student-a", "student-b"])
def _graded(request: pytest.FixtureRequest) -> Iterator[None]:
    """Hidden cases exist only inside a grading context: every test here runs in one, for two
    students (two different hidden case sets: a diagnosis must not depend on one draw)."""
    with grading_context(TEST_SECRET, request.param, "test-assignment"):
        yield


@functools.cache
def _cells(assignment: str) -> tuple[tuple[str, str], ...]:
    stem = assignment.split("_", 1)[1]
    nb = json.loads((ROOT / "solutions" / assignment / f"{stem}.ipynb").read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and (
            meta.get("solution") or meta.get("grade_id", "").startswith("given")
        ):
            if meta.get("grade_id") != "training":
                out.append((meta["grade_id"], src))
    return tuple(out)


def student(assignment: str, edits: dict[str, list[tuple[str, str]]] | None = None) -> dict[str, Any]:
    """The namespace a notebook would have after running the (edited) solution cells."""
    ns: dict[str, Any] = {"__name__": "submission"}
    for gid, src in _cells(assignment):
        for old, new in (edits or {}).get(gid, []):
            assert old in src, (gid, old)
            src = src.replace(old, new)
        try:  # a notebook goes on after a failing cell; so does this
            exec(compile(src, f"<{gid}>", "exec"), ns)  # noqa: S102 - the course's own solution code
        except Exception:  # noqa: BLE001
            continue
    return ns


A1, A2, A3, A4 = "01_convolution_by_hand", "02_convolution_layers", "03_backpropagation", "04_applications"


def fails_with(fragment: str, fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(GradingError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert fragment in message, message
    return message


# ---------------------------------------------------------------------------------------
# compare_arrays
# ---------------------------------------------------------------------------------------


def test_compare_arrays_accepts_equal_arrays() -> None:
    compare_arrays(np.ones((2, 3)), np.ones((2, 3)), case="c")
    compare_arrays(np.float32(1.00001) * np.ones(3, np.float32), np.ones(3, np.float32), case="c")


def test_compare_arrays_names_case_index_expected_and_got() -> None:
    expected = np.arange(6.0).reshape(2, 3)
    got = expected.copy()
    got[1, 2] = 7.5
    msg = fails_with(
        "First mismatch at index (1, 2): expected 5.0, got 7.5",
        compare_arrays,
        got,
        expected,
        case="image 2x3",
        name="f",
    )
    assert msg.startswith("f for image 2x3: wrong values.")
    assert "(1 of 6 values differ)" in msg


@pytest.mark.parametrize(
    ("got_shape", "hint"),
    [
        ((0, 4), "`a[p:-p]` is `a[0:0]`"),
        ((4, 3), "H and W swapped"),
        ((2, 3), "off-by-one window count"),
        ((3, 4, 1), "Your result has 3 axes; expected 2"),
    ],
)
def test_compare_arrays_shape_hints(got_shape: tuple[int, ...], hint: str) -> None:
    msg = fails_with(hint, compare_arrays, np.zeros(got_shape), np.zeros((3, 4)), case="c")
    assert "wrong shape: expected (3, 4), got " + str(got_shape) in msg


def test_compare_arrays_none_and_non_numeric() -> None:
    fails_with("Did you forget `return`?", compare_arrays, None, np.zeros(2))
    fails_with("expected a numeric array", compare_arrays, ["a", "b"], np.zeros(2))


def test_compare_arrays_reports_matching_diagnosis_only() -> None:
    expected = np.array([1.0, 2.0, 3.0])
    diag = [
        Diagnosis("reversed", "you reversed it", expected[::-1]),
        Diagnosis("doubled", "x2", 2 * expected),
    ]
    msg = fails_with(
        "Likely bug (reversed): you reversed it", compare_arrays, expected[::-1], expected, diagnoses=diag
    )
    assert "doubled" not in msg
    msg = fails_with("No common bug recognised", compare_arrays, expected + 1, expected, diagnoses=diag)


def test_diagnosis_that_cannot_be_computed_is_skipped() -> None:
    def broken() -> np.ndarray:
        raise ValueError("not for this case")

    fails_with(
        "No common bug recognised",
        compare_arrays,
        np.zeros(2),
        np.ones(2),
        diagnoses=[Diagnosis("b", "h", broken)],
    )


# ---------------------------------------------------------------------------------------
# Case: exceptions, NotImplementedError, inputs modified in place
# ---------------------------------------------------------------------------------------


def test_case_explains_student_exceptions() -> None:
    case = Case("image 2x2", {"image": np.zeros((2, 2)), "padding": 1}, ("image", "padding"))

    def boom(image: np.ndarray, padding: int) -> None:
        raise IndexError("index 5 is out of bounds")

    msg = fails_with("f raised IndexError: index 5 is out of bounds", case.call, boom, "f")
    assert "case: image 2x2" in msg and "f(<array (2, 2) float64>, 1)" in msg

    def todo(image: np.ndarray, padding: int) -> None:
        raise NotImplementedError()

    fails_with("f is not written yet", case.call, todo, "f")
    with pytest.raises(GradingError) as info:
        case.call(boom, "f")
    shown = "\n".join(info.value._render_traceback_())  # what a notebook displays
    assert 'raise IndexError("index 5 is out of bounds")' in shown
    assert "course/grading" not in shown and "grading.py" not in shown
    assert shown.endswith(str(info.value))

    def mutate(image: np.ndarray, padding: int) -> np.ndarray:
        image += 1
        return image

    fails_with("modified its argument `image` in place", case.call, mutate, "f")


def _ns(src: str) -> dict[str, Any]:
    ns: dict[str, Any] = {"__name__": "submission"}
    exec(src, ns)  # noqa: S102
    return ns


# ---------------------------------------------------------------------------------------
# Assignment 1
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [False, True])
def test_assignment1_solution_passes(hidden: bool, capsys: pytest.CaptureFixture[str]) -> None:
    ns = student(A1)
    assert grading.check_zero_pad(ns["zero_pad"], hidden=hidden) is None
    grading.check_window_value(ns["window_value"], hidden=hidden)
    for modes in (("valid",), ("same", "full")):
        grading.check_correlate2d(ns["correlate2d"], modes=modes, hidden=hidden)
        grading.check_convolve2d(ns["convolve2d"], modes=modes, hidden=hidden)
    grading.check_symmetric_kernels(ns["same_under_flip"])
    grading.check_output_size(ns["output_size"], hidden=hidden)
    assert "OK: zero_pad: " in capsys.readouterr().out


A1_BUGS = [
    ("zero_pad", {"zero_pad": [("(h + 2 * ph, w + 2 * pw)", "(h + ph, w + pw)")]}, "pad both sides", True),
    (
        "zero_pad",
        {
            "zero_pad": [
                (
                    "ph, pw = (padding, padding) if np.isscalar(padding) else padding",
                    "pw, ph = (padding, padding) if np.isscalar(padding) else padding",
                )
            ]
        },
        "you used them the other way round",
        False,
    ),
    (
        "zero_pad",
        {
            "zero_pad": [
                (
                    "out = np.zeros(image.shape[:-2] + (h + 2 * ph, w + 2 * pw), dtype=image.dtype)\n"
                    "    out[..., ph:ph + h, pw:pw + w] = image\n    return out",
                    "return np.pad(image, [(ph, ph)] * (image.ndim - 2) + [(ph, ph), (pw, pw)])",
                )
            ]
        },
        "only the last two axes",
        True,
    ),
    (
        "window_value",
        {"window_value": [("(window * kernel).sum()", "(window * kernel[::-1, ::-1]).sum()")]},
        "do not flip it here",
        False,
    ),
    (
        "window_value",
        {"window_value": [("image)[i:i + kh, j:j + kw]", "image)[j:j + kh, i:i + kw]")]},
        "i is the row",
        False,
    ),
    (
        "window_value",
        {"window_value": [("(window * kernel).sum()", "window * kernel")]},
        "sum the products",
        False,
    ),
    (
        "correlate2d",
        {
            "correlate2d": [
                ("window_value(image, kernel, i, j)", "window_value(image, kernel[::-1, ::-1], i, j)")
            ]
        },
        "that is convolution",
        False,
    ),
    (
        "correlate2d",
        {
            "correlate2d": [
                ("window_value(image, kernel, i, j)", "window_value(image, kernel.T, i, j)"),
                ("kh, kw = kernel.shape", "kw, kh = kernel.shape"),
            ]
        },
        "you used K.T",
        True,
    ),
    (
        "correlate2d_full",
        {"correlate2d": [('if mode == "full":', 'if mode == "nope":')]},
        "you returned the 'valid' result for mode='full'",
        False,
    ),
    (
        "correlate2d_same",
        {
            "correlate2d": [
                (
                    "full[kh // 2:kh // 2 + h, kw // 2:kw // 2 + w]",
                    "full[(kh - 1) // 2:(kh - 1) // 2 + h, (kw - 1) // 2:(kw - 1) // 2 + w]",
                )
            ]
        },
        "For correlate2d keep the 'full' result from row kH // 2",
        True,
    ),
    (
        "convolve2d",
        {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]},
        "you computed cross-correlation",
        False,
    ),
    ("convolve2d", {"convolve2d": [("kernel[::-1, ::-1]", "kernel[::-1]")]}, "flip BOTH axes", False),
    ("convolve2d", {"convolve2d": [("kernel[::-1, ::-1]", "kernel.T")]}, "K.T swaps rows and columns", True),
    (
        "convolve2d_same",
        {
            "convolve2d": [
                (
                    "full[(kh - 1) // 2:(kh - 1) // 2 + h, (kw - 1) // 2:(kw - 1) // 2 + w]",
                    "full[kh // 2:kh // 2 + h, kw // 2:kw // 2 + w]",
                )
            ]
        },
        "For convolve2d keep the 'full' result from row (kH - 1) // 2",
        False,
    ),
]


@pytest.mark.parametrize(("target", "edits", "hint", "hidden"), A1_BUGS)
def test_assignment1_bugs_are_named(target: str, edits: dict, hint: str, hidden: bool) -> None:
    ns = student(A1, edits)
    fn_name, _, mode = target.partition("_")
    if target == "zero_pad":
        fails_with(hint, grading.check_zero_pad, ns["zero_pad"], hidden=hidden)
    elif target == "window_value":
        fails_with(hint, grading.check_window_value, ns["window_value"], hidden=hidden)
    else:
        check = grading.check_correlate2d if target.startswith("correlate") else grading.check_convolve2d
        fn = ns[target.split("_")[0]]
        fails_with(hint, check, fn, modes=(mode,) if mode else ("valid",), hidden=hidden)


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ("-(-(n + 2 * padding - dilation * (kernel - 1) - 1) // stride) + 1", "you rounded up (ceil)"),
        ("(n + 2 * padding - (kernel - 1) - 1) // stride + 1", "dilation ignored"),
        ("(n - dilation * (kernel - 1) - 1) // stride + 1", "padding ignored"),
        ("(n + padding - dilation * (kernel - 1) - 1) // stride + 1", "padding counted once"),
        ("(n + 2 * padding - dilation * (kernel - 1) - 1) + 1", "stride ignored"),
        ("(n + 2 * padding - dilation * (kernel - 1) - 1) // stride", "add 1 to the number of strides"),
        ("(n + 2 * padding - dilation * (kernel - 1)) // stride + 1", "the kernel spans d(k - 1) + 1 pixels"),
        ("(n + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1", "integer division `//`"),
        ("str((n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1)", "expected an int"),
    ],
)
def test_output_size_bugs_are_named(body: str, hint: str) -> None:
    ns = student(
        A1,
        {
            "output_size": [
                ("return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1", f"return {body}")
            ]
        },
    )
    fails_with(hint, grading.check_output_size, ns["output_size"], hidden=True)


def test_symmetric_kernels_answer() -> None:
    fails_with("Expected a list of kernel names", grading.check_symmetric_kernels, "box")
    fails_with("Unknown names ['circle']", grading.check_symmetric_kernels, ["circle"])
    fails_with(
        "is it still the same kernel?",
        grading.check_symmetric_kernels,
        ["box", "gaussian", "laplacian", "sharpen", "sobel_x"],
    )
    fails_with(
        "1 kernel(s) that stay the same", grading.check_symmetric_kernels, ["box", "gaussian", "laplacian"]
    )


# ---------------------------------------------------------------------------------------
# Assignment 2
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [False, True])
def test_assignment2_solution_passes(hidden: bool) -> None:
    ns = student(A2)
    for feature in ("basic", "channels", "stride_padding", "dilation"):
        grading.check_conv2d(ns["conv2d"], feature, hidden=hidden)
    for feature in ("basic", "overlap"):
        grading.check_max_pool2d(ns["max_pool2d"], feature, hidden=hidden)
        grading.check_avg_pool2d(ns["avg_pool2d"], feature, hidden=hidden)


CONV_BUGS = [
    ({"conv2d": [("weight[:, :, m, q]", "weight[:, :, kh - 1 - m, kw - 1 - q]")]}, "basic", "do not flip"),
    (
        {
            "conv2d": [
                ("// sh + 1", "+ 1"),
                ("// sw + 1", "+ 1"),
                ("sh * (out_h - 1) + 1, sh)", "out_h)"),
                ("sw * (out_w - 1) + 1, sw)", "out_w)"),
            ]
        },
        "stride_padding",
        "stride ignored",
    ),
    ({"conv2d": [("(sh, sw), (ph, pw)", "(sw, sh), (ph, pw)")]}, "stride_padding", "stride (sH, sW) swapped"),
    (
        {
            "conv2d": [
                ("xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))", "xp = x"),
                ("(h + 2 * ph -", "(h -"),
                ("(w + 2 * pw -", "(w -"),
            ]
        },
        "stride_padding",
        "padding ignored",
    ),
    (
        {
            "conv2d": [
                (
                    "(ph, pw), (dh, dw) = pair(stride), pair(padding)",
                    "(pw, ph), (dh, dw) = pair(stride), pair(padding)",
                )
            ]
        },
        "stride_padding",
        "padding (pH, pW) swapped",
    ),
    (
        {
            "conv2d": [
                ("dh * (kh - 1)", "(kh - 1)"),
                ("dw * (kw - 1)", "(kw - 1)"),
                ("m * dh", "m"),
                ("q * dw", "q"),
            ]
        },
        "dilation",
        "dilation ignored",
    ),
    (
        {
            "conv2d": [
                (
                    "(dh, dw) = pair(stride), pair(padding), pair(dilation)",
                    "(dw, dh) = pair(stride), pair(padding), pair(dilation)",
                )
            ]
        },
        "dilation",
        "dilation (dH, dW) swapped",
    ),
    (
        {"conv2d": [("out += np.asarray(bias, dtype=out.dtype).reshape(1, -1, 1, 1)", "pass")]},
        "channels",
        "bias ignored",
    ),
    (
        {
            "conv2d": [
                ("c_out, _, kh, kw = weight.shape", "c_out, _, kw, kh = weight.shape"),
                ("weight[:, :, m, q]", "weight[:, :, q, m]"),
            ]
        },
        "stride_padding",
        "kernel transposed",
    ),
    (
        {
            "conv2d": [
                (
                    '"bchw,oc->bohw", xp[:, :, rows, cols], weight[:, :, m, q]',
                    '"bhw,o->bohw", xp[:, 0, rows, cols], weight[:, 0, m, q]',
                )
            ]
        },
        "channels",
        "input channels not summed",
    ),
    (
        {
            "conv2d": [
                ("// sh + 1", "// sh + 1 + ((h + 2 * ph - dh * (kh - 1) - 1) % sh > 0)"),
                ("// sw + 1", "// sw + 1 + ((w + 2 * pw - dw * (kw - 1) - 1) % sw > 0)"),
                (
                    "xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))",
                    "xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + sh), (pw, pw + sw)))",
                ),
            ]
        },
        "stride_padding",
        "output size rounded up",
    ),
]


@pytest.mark.parametrize(("edits", "feature", "hint"), CONV_BUGS)
def test_conv2d_bugs_are_named(edits: dict, feature: str, hint: str) -> None:
    fails_with(hint, grading.check_conv2d, student(A2, edits)["conv2d"], feature, hidden=True)


def test_diagnose_conv_bug_names_the_variant() -> None:
    rng = np.random.default_rng(1)
    case = Case(
        "c",
        {
            "x": rng.standard_normal((2, 3, 7, 6)),
            "weight": rng.standard_normal((2, 3, 3, 2)),
            "bias": rng.standard_normal(2),
            "stride": (2, 1),
            "padding": 1,
            "dilation": 1,
        },
        ("x", "weight"),
    )
    assert grading.diagnose_conv_bug(student(A2)["conv2d"], case) is None
    flipped = student(A2, CONV_BUGS[0][0])["conv2d"]
    assert grading.diagnose_conv_bug(flipped, case).name == "kernel flipped"
    no_bias = student(A2, CONV_BUGS[7][0])["conv2d"]
    assert grading.diagnose_conv_bug(no_bias, case).name == "bias ignored"
    image_case = Case(
        "i",
        {"image": rng.standard_normal((5, 6)), "kernel": rng.standard_normal((2, 3)), "mode": "full"},
        ("image", "kernel"),
    )
    not_flipped = student(A1, {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]})["convolve2d"]
    assert grading.diagnose_conv_bug(not_flipped, image_case, "convolve2d").name == "kernel not flipped"


POOL_BUGS = [
    (
        "max",
        "basic",
        {"pooling": [("(kh, kw) if stride is None", "(1, 1) if stride is None")]},
        "stride = kernel_size",
    ),
    (
        "avg",
        "overlap",
        {"pooling": [("sh, sw = (kh, kw) if stride is None else pair(stride)", "sh, sw = kh, kw")]},
        "move the window by the stride",
    ),
    (
        "max",
        "basic",
        {"pooling": [("return np.max(np.stack(", "return np.mean(np.stack(")]},
        "take the maximum",
    ),
    (
        "avg",
        "basic",
        {"pooling": [("return np.mean(np.stack(", "return np.sum(np.stack(")]},
        "divides each window's sum",
    ),
    (
        "max",
        "overlap",
        {"pooling": [("kh, kw = pair(kernel_size)", "kw, kh = pair(kernel_size)")]},
        "kernel (kH, kW) swapped",
    ),
]


def test_pool_stride_swapped_and_ceil_are_named() -> None:
    swapped = student(
        A2,
        {
            "pooling": [
                (
                    "sh, sw = (kh, kw) if stride is None else pair(stride)",
                    "sw, sh = (kw, kh) if stride is None else pair(stride)",
                )
            ]
        },
    )
    fails_with(
        "stride (sH, sW) swapped", grading.check_max_pool2d, swapped["max_pool2d"], "overlap", hidden=True
    )
    ceil = _ns(
        "import numpy as np\n"
        "def max_pool2d(x, kernel_size, stride=None):\n"
        "    kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else kernel_size\n"
        "    sh, sw = (kh, kw) if stride is None else ((stride, stride) if np.isscalar(stride) else stride)\n"
        "    oh, ow = -(-(x.shape[2] - kh) // sh) + 1, -(-(x.shape[3] - kw) // sw) + 1\n"
        "    out = np.empty(x.shape[:2] + (oh, ow))\n"
        "    for i in range(oh):\n"
        "        for j in range(ow):\n"
        "            out[:, :, i, j] = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].max(axis=(2, 3))\n"
        "    return out\n"
    )
    fails_with("output size rounded up", grading.check_max_pool2d, ceil["max_pool2d"], "overlap", hidden=True)


@pytest.mark.parametrize(("kind", "feature", "edits", "hint"), POOL_BUGS)
def test_pool_bugs_are_named(kind: str, feature: str, edits: dict, hint: str) -> None:
    ns = student(A2, edits)
    check = grading.check_max_pool2d if kind == "max" else grading.check_avg_pool2d
    fails_with(hint, check, ns[f"{kind}_pool2d"], feature, hidden=True)


# ---------------------------------------------------------------------------------------
# Assignment 3
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [False, True])
def test_assignment3_solution_passes(hidden: bool) -> None:
    ns = student(A3)
    grading.check_numeric_gradient(ns["numeric_gradient"], hidden=hidden)
    grading.check_gradient_error(ns["gradient_error"], hidden=hidden)
    for part in ("dx", "dw", "db"):
        for feature in ("basic", "channels", "strided"):
            grading.check_conv2d_backward(ns["conv2d_backward"], part, feature, hidden=hidden)
    for feature in ("basic", "overlap"):
        grading.check_max_pool2d_backward(ns["max_pool2d_backward"], feature, hidden=hidden)
        grading.check_avg_pool2d_backward(ns["avg_pool2d_backward"], feature, hidden=hidden)


BACKWARD_BUGS = [
    ("db", "basic", [("grad_out.sum(axis=(0, 2, 3))", "grad_out.sum(axis=0)")], "summed over the batch only"),
    (
        "db",
        "channels",
        [("grad_out.sum(axis=(0, 2, 3))", "grad_out.mean(axis=(0, 2, 3))")],
        "mean instead of sum",
    ),
    (
        "db",
        "channels",
        [("grad_out.sum(axis=(0, 2, 3))", "grad_out[0].sum(axis=(1, 2))")],
        "batch not summed",
    ),
    (
        "dw",
        "channels",
        [
            (
                "return grad_xp[:, :, ph:ph + h, pw:pw + w], grad_weight, grad_bias",
                "return grad_xp[:, :, ph:ph + h, pw:pw + w], grad_weight[..., ::-1, ::-1], grad_bias",
            )
        ],
        "weight gradient flipped",
    ),
    (
        "dw",
        "channels",
        [
            (
                'np.einsum("bohw,bchw->oc", grad_out, xp[:, :, rows, cols])',
                'np.einsum("ohw,chw->oc", grad_out[0], xp[0, :, rows, cols])',
            )
        ],
        "sum over the batch",
    ),
    (
        "dw",
        "channels",
        [
            (
                'np.einsum("bohw,bchw->oc", grad_out, xp[:, :, rows, cols])',
                'np.einsum("bohw,bchw->oc", grad_out, xp[:, :, rows, cols]) / n',
            )
        ],
        "the loss's own averaging is already in grad_out",
    ),
    (
        "dx",
        "channels",
        [("weight[:, :, m, q])\n", "weight[:, :, kh - 1 - m, kw - 1 - q])\n")],
        "FULL convolution of grad_out",
    ),
    (
        "dx",
        "stride_padding",
        [("grad_xp[:, :, ph:ph + h, pw:pw + w]", "grad_xp")],
        "keep dx_pad[..., pH:pH + H",
    ),
    ("dx", "basic", [("grad_xp[:, :, ph:ph + h, pw:pw + w]", "grad_xp[:, :, ph:-ph, pw:-pw]")], "-0 == 0"),
    (
        "dx",
        "channels",
        [
            (
                "return grad_xp[:, :, ph:ph + h, pw:pw + w]",
                "return np.broadcast_to(grad_xp[:, :, ph:ph + h, pw:pw + w].sum(axis=0), x.shape)",
            )
        ],
        "do not sum over the batch for dx",
    ),
]


@pytest.mark.parametrize(("part", "feature", "edits", "hint"), BACKWARD_BUGS)
def test_conv2d_backward_bugs_are_named(part: str, feature: str, edits: list, hint: str) -> None:
    fn = student(A3, {"conv2d_backward": edits})["conv2d_backward"]
    fails_with(hint, grading.check_conv2d_backward, fn, part, feature, hidden=True)


MAXPOOL_LINES = (
    "            window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, c, -1)\n"
    "            m, q = np.divmod(window.argmax(axis=2), kw)\n"
)
POOL_BACKWARD_BUGS = [
    (
        "max",
        [
            (
                MAXPOOL_LINES + "            grad_x[b, ch, i * sh + m, j * sw + q] += grad_out[:, :, i, j]\n",
                "            window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]\n"
                "            mask = window == window.max(axis=(2, 3), keepdims=True)\n"
                "            grad_x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += (\n"
                "                mask * grad_out[:, :, i:i + 1, j:j + 1])\n",
            )
        ],
        "only the FIRST maximum",
    ),
    (
        "max",
        [("window.argmax(axis=2)", "(window.shape[2] - 1 - window[:, :, ::-1].argmax(axis=2))")],
        "not the last",
    ),
    (
        "max",
        [
            (
                "grad_x[b, ch, i * sh + m, j * sw + q] += grad_out",
                "grad_x[b, ch, i * sh + m, j * sw + q] = grad_out",
            )
        ],
        "receives the SUM of",
    ),
    (
        "avg",
        [("grad_out[:, :, i:i + 1, j:j + 1] / (kh * kw)", "grad_out[:, :, i:i + 1, j:j + 1]")],
        "grad / (kH * kW)",
    ),
    (
        "avg",
        [
            (
                "+= grad_out[:, :, i:i + 1, j:j + 1] / (kh * kw)",
                "= grad_out[:, :, i:i + 1, j:j + 1] / (kh * kw)",
            )
        ],
        "receives the SUM of",
    ),
]


@pytest.mark.parametrize(("kind", "edits", "hint"), POOL_BACKWARD_BUGS)
def test_pool_backward_bugs_are_named(kind: str, edits: list, hint: str) -> None:
    fn = student(A3, {"pool_backward": edits})[f"{kind}_pool2d_backward"]
    check = grading.check_max_pool2d_backward if kind == "max" else grading.check_avg_pool2d_backward
    fails_with(hint, check, fn, "overlap", hidden=True)


@pytest.mark.parametrize(
    ("edits", "hint"),
    [
        (
            [
                (
                    "        x[k] = old - eps\n        f_minus = f(x)\n",
                    "        x[k] = old\n        f_minus = f(x)\n",
                ),
                ("(f_plus - f_minus) / (2 * eps)", "(f_plus - f_minus) / eps"),
            ],
            "use the central difference",
        ),
        ([("(f_plus - f_minus) / (2 * eps)", "(f_plus - f_minus) / eps")], "divide by 2 * eps"),
        (
            [("    x = np.array(x, dtype=np.float64)\n", ""), ("        x[k] = old\n", "")],
            "modified its argument `x` in place",
        ),
    ],
)
def test_numeric_gradient_bugs_are_named(edits: list, hint: str) -> None:
    fails_with(
        hint, grading.check_numeric_gradient, student(A3, {"numeric_gradient": edits})["numeric_gradient"]
    )


def test_gradient_error_bugs_are_named() -> None:
    wrong = student(
        A3,
        {
            "numeric_gradient": [
                ("np.maximum(np.abs(a) + np.abs(numeric), 1e-12)", "np.maximum(np.abs(numeric), 1e-12)")
            ]
        },
    )
    fails_with("max |a - n| / max(|a| + |n|, 1e-12)", grading.check_gradient_error, wrong["gradient_error"])


# ---------------------------------------------------------------------------------------
# Assignment 4
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [False, True])
def test_assignment4_solution_passes(hidden: bool) -> None:
    ns = student(A4)
    grading.check_pieces(
        ns["conv2d"], ns["conv2d_backward"], ns["max_pool2d"], ns["max_pool2d_backward"], hidden=hidden
    )
    grading.check_edge_magnitude(ns["edge_magnitude"], hidden=hidden)
    grading.check_detect_edges(ns["detect_edges"], hidden=hidden)
    grading.check_param_counts(ns["conv_params"], ns["dense_params"], hidden=hidden)
    grading.check_softmax_cross_entropy(ns["softmax_cross_entropy"], hidden=hidden)


@pytest.mark.parametrize(
    ("edits", "hint"),
    [
        ([("return np.sqrt(g[0] ** 2 + g[1] ** 2)", "return np.abs(g[0])")], "combine both directions"),
        ([("return np.sqrt(g[0] ** 2 + g[1] ** 2)", "return g[0] ** 2 + g[1] ** 2")], "the square root"),
        (
            [("return np.sqrt(g[0] ** 2 + g[1] ** 2)", "return np.abs(g[0]) + np.abs(g[1])")],
            "not |gx| + |gy|",
        ),
        ([("padding=1)", "padding=0)")], "keep the image's size"),
    ],
)
def test_edge_bugs_are_named(edits: list, hint: str) -> None:
    fails_with(
        hint, grading.check_edge_magnitude, student(A4, {"edges": edits})["edge_magnitude"], hidden=True
    )


def test_detect_edges_bugs_are_named() -> None:
    absolute = student(A4, {"edges": [("magnitude > threshold * magnitude.max()", "magnitude > threshold")]})
    fails_with(
        "a fraction of the largest magnitude",
        grading.check_detect_edges,
        absolute["detect_edges"],
        hidden=True,
    )
    numbers = student(
        A4,
        {
            "edges": [
                (
                    "return magnitude > threshold * magnitude.max()",
                    "return (magnitude > threshold * magnitude.max()) * 1.0",
                )
            ]
        },
    )
    fails_with("should return a boolean array", grading.check_detect_edges, numbers["detect_edges"])


@pytest.mark.parametrize(
    ("edits", "hint"),
    [
        (
            [("shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits")],
            "Subtract each row's maximum",
        ),
        (
            [("loss = -log_probs[np.arange(n), y].mean()", "loss = -log_probs[np.arange(n), y].sum()")],
            "return the MEAN loss",
        ),
        ([("return float(loss), grad / n", "return float(loss), grad")], "divide the gradient by N"),
        ([("grad[np.arange(n), y] -= 1.0", "pass")], "(softmax - one_hot(y)) / N"),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
def test_softmax_bugs_are_named(edits: list, hint: str) -> None:
    fn = student(A4, {"softmax": edits})["softmax_cross_entropy"]
    fails_with(hint, grading.check_softmax_cross_entropy, fn, hidden=True)


def test_param_count_bugs_are_named() -> None:
    ns = student(
        A4,
        {
            "param_counts": [
                ("return c_out * c_in * k * k + c_out", "return c_out * c_in * k * k"),
                ("return n_in * n_out + n_out", "return n_in * n_out"),
            ]
        },
    )
    fails_with(
        "one parameter per output channel", grading.check_param_counts, ns["conv_params"], ns["dense_params"]
    )
    ns = student(A4, {"param_counts": [("return n_in * n_out + n_out", "return n_in * n_out")]})
    fails_with("one parameter per output.", grading.check_param_counts, ns["conv_params"], ns["dense_params"])


def test_digits_split_is_fixed() -> None:
    a = grading.digits_split()
    b = grading.digits_split()
    assert [x.shape for x in a] == [(1437, 1, 8, 8), (1437,), (360, 1, 8, 8), (360,)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_every_check_returns_none() -> None:
    """nbgrader would take a number left as a test cell's value as partial credit."""
    names = [n for n in grading.__all__ if n.startswith("check_")]
    assert len(names) == 22
    for name in names:
        assert inspect.signature(getattr(grading, name)).return_annotation in (None, "None"), name


def test_grading_workers_run_conv_lib_on_numpy() -> None:
    """A grading worker never compiles numba kernels for the grader's own conv_lib calls,
    whatever shapes a student's answer makes it diagnose (grade_one sets CONV_LIB_JIT=0
    first thing, in the worker's own process)."""

    code = (
        "import os\n"
        "os.environ.pop('CONV_LIB_JIT', None)\n"
        "import conv_lib.winograd_kernels as k\n"
        "assert k.available()\n"
        "from course.grader import grade_one\n"
        "try:\n"
        "    grade_one(None)\n"
        "except AttributeError:\n"
        "    pass\n"
        "print(os.environ.get('CONV_LIB_JIT'), k.available())\n"
    )
    assert _printed_by_fresh_python(code) == ["0", "False"]


def test_named_network_bug_is_not_diagnosed_on_huge_networks(monkeypatch) -> None:
    """The ReLU-mask diagnosis recomputes the network in the grader's process on the
    shapes the student's init_params chose: it runs for the notebook's sizes, not for a
    network of thousands of filters (a student must not make the grader compute it)."""
    from course.grading import accuracy

    calls: list[int] = []

    def reference_grads(params, X, y, variant):
        calls.append(params["W1"].shape[0])
        raise ValueError("recorded")

    monkeypatch.setattr(accuracy, "_reference_grads", reference_grads)
    X, y = np.zeros((2, 1, 8, 8)), np.zeros(2, dtype=int)

    def network(f: int) -> dict[str, np.ndarray]:
        shapes = {"W1": (f, 1, 3, 3), "b1": (f,), "W2": (16 * f, 10), "b2": (10,)}
        return {name: np.zeros(shape) for name, shape in shapes.items()}

    for f in (8, 256, 257, 5000):
        params = network(f)
        assert accuracy._named_network_bug(params, params, X, y) is None
    assert calls == [8, 256]


def test_grading_workers_release_conv_lib_work_arrays() -> None:
    """After each submission, grade_one frees the work arrays conv_lib's threads keep
    between calls, so that what one submission made the grader compute is not held
    while the worker grades the next ones."""

    code = (
        "import types\n"
        "import numpy as np\n"
        "import conv_lib\n"
        "from conv_lib import workspace\n"
        "conv_lib.conv2d(np.ones((2, 8, 40, 40)), np.ones((64, 8, 3, 3)), padding=1, method='im2col')\n"
        "held = sum(len(s) for s in workspace._all_workspaces)\n"
        "from course.grader import grade_one\n"
        "job = types.SimpleNamespace(student='s', spec=None, rec=None, has_file=False,\n"
        "                            secret=None, timeout=1)\n"
        "try:\n"
        "    grade_one(job)\n"
        "except Exception:\n"
        "    pass\n"
        "print(held > 0, sum(len(s) for s in workspace._all_workspaces))\n"
    )
    assert _printed_by_fresh_python(code) == ["True", "0"]


def test_loss_and_grads_needs_a_loss_that_moves() -> None:
    """A constant loss with zero gradients is consistent but is no network's loss: refused
    (a red team passed the check that way); a loss that moves, with its gradient, passes."""
    from course.grading import accuracy

    def init_params() -> dict[str, np.ndarray]:
        return {"W": np.ones((3, 2))}

    def constant(params, X, y):
        return 1.0, {"W": np.zeros((3, 2))}

    def quadratic(params, X, y):
        return float(np.sum(params["W"] ** 2)), {"W": 2 * params["W"]}

    with pytest.raises(GradingError, match="does not change when the parameters move"):
        accuracy.check_loss_and_grads(init_params, constant)
    accuracy.check_loss_and_grads(init_params, quadratic)


def test_parameters_are_not_widened_beyond_a_bound() -> None:
    """init_params() answers of more than 2**20 float values (e.g. float16, 4x smaller than
    the float64 the grader works in) are refused before anything is converted."""
    from course.grading import accuracy

    def huge() -> dict[str, np.ndarray]:
        return {"W": np.zeros(2**20 + 1, np.float16)}

    with pytest.raises(GradingError, match="over 1,048,576 float values"):
        accuracy.check_loss_and_grads(huge, lambda params, X, y: (0.0, {}))
    assert accuracy._float_arrays({"W": np.zeros(2**20, np.float16)}, "p")["W"].dtype == np.float64


def test_softmax_gradient_shape_is_checked_before_conversion() -> None:
    """A dlogits of the wrong shape (e.g. a huge boolean array, 8x larger as float64) is
    refused from its shape alone."""
    with pytest.raises(GradingError, match="dlogits should be an array of the shape of logits"):
        grading.check_softmax_cross_entropy(lambda logits, y: (1.0, np.zeros((4096, 4096), bool)))


def test_non_finite_losses_and_gradients_fail() -> None:
    """A NaN or inf loss, or NaN gradients, fail the gradient check (a NaN relative
    difference compared False with the tolerance, and passed)."""
    from course.grading import accuracy

    def init_params() -> dict[str, np.ndarray]:
        return {"W": np.ones((3, 2))}

    for loss_value, grad_value in ((np.nan, 0.0), (np.inf, 0.0), (1.0, np.nan)):

        def loss_and_grads(params, X, y, loss_value=loss_value, grad_value=grad_value):
            return loss_value + float(np.sum(params["W"] ** 2)), {"W": np.full((3, 2), grad_value)}

        with pytest.raises(GradingError, match="should be finite|is not the gradient"):
            accuracy.check_loss_and_grads(init_params, loss_and_grads)


def test_list_answers_are_not_converted_beyond_their_bound() -> None:
    """Lists mixing strings or dtypes grow far beyond their size when NumPy converts them:
    their shape is taken only when they hold numbers within the bound."""
    from course.grading.compare import answer_shape

    assert answer_shape([np.zeros(3), np.ones(3)], 6) == (2, 3)
    assert answer_shape([np.zeros(30), np.ones(30)], 6) is None  # far more than the bound
    assert answer_shape([np.zeros(3, np.uint8), np.array(["x" * 64] * 3)], 100) is None  # a string
    assert answer_shape([[1, 2], [3]], 10) is None  # ragged
    assert answer_shape(np.zeros((4, 5)), 1) == (4, 5)  # an array's own shape costs nothing
    strings = [np.zeros(15_000, np.uint8)] * 64 + [np.array(["x" * 64])]
    with pytest.raises(GradingError, match="dlogits should be an array of the shape of logits"):
        grading.check_softmax_cross_entropy(lambda logits, y: (1.0, strings))
    with pytest.raises(GradingError, match="holds no float arrays"):
        accuracy_float_arrays({"W": strings + [np.zeros(3)]})


def accuracy_float_arrays(params):
    from course.grading import accuracy

    return accuracy._float_arrays(params, "init_params()")


def _printed_by_fresh_python(code: str) -> list[str]:
    """The words ``code`` prints, run in a fresh Python process (the grading worker's
    environment changes must not leak into the test process)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()
