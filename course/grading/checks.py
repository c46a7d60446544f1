"""The checks the assignments' test cells call: each compares a student's function with
:mod:`conv_lib` (the only reference) on visible or hidden cases and fails with a message that
teaches: the case, the first mismatching index, expected vs got, and the hint of a known
mistake (:mod:`course.grading.diagnoses`).

Test cells stay one or two lines long, e.g.::

    check_correlate2d(correlate2d, modes=("valid",))               # visible
    check_correlate2d(correlate2d, modes=("valid",), hidden=True)  # hidden (grader only)

A check passes silently apart from a one-line summary and raises :class:`GradingError`
otherwise. Checks return None: nbgrader would read a number left as a cell's value as
partial credit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

import conv_lib as cl
from course.grading import cases as C
from course.grading import diagnoses as D
from course.grading.compare import (
    Case,
    Diagnosis,
    DtypeRule,
    GradingError,
    answer_shape,
    compare_arrays,
    format_value,
    passed,
    run_cases,
    tolerances,
)

__all__ = [
    "check_avg_pool2d",
    "check_avg_pool2d_backward",
    "check_conv2d",
    "check_conv2d_backward",
    "check_convolve2d",
    "check_correlate2d",
    "check_detect_edges",
    "check_edge_magnitude",
    "check_gradient_error",
    "check_max_pool2d",
    "check_max_pool2d_backward",
    "check_numeric_gradient",
    "check_output_size",
    "check_param_counts",
    "check_pieces",
    "check_softmax_cross_entropy",
    "check_symmetric_kernels",
    "check_window_value",
    "check_zero_pad",
]

# ---------------------------------------------------------------------------------------
# Assignment 1: convolution by hand
# ---------------------------------------------------------------------------------------


def _keep_dtype(param: str, how: str) -> Callable[[Case], DtypeRule]:
    """The rule "the result keeps the dtype of ``param``" (``how``: the hint's fix)."""
    return lambda c: DtypeRule(
        np.asarray(c.params[param]).dtype,
        f"keep the dtype of `{param}` ({np.asarray(c.params[param]).dtype.name} here): {how}",
    )


def _input_tolerance(param: str) -> Callable[[Case], tuple[float, float]]:
    """float32 tolerances when ``param`` is float32 (the student may compute in float32)."""
    return lambda c: tolerances(np.zeros(1, dtype=np.result_type(c.params[param], np.float32)))


_FLOAT_RESULT = DtypeRule(
    "floating",
    "the result is a float array even for an integer image: create the output with a float "
    "dtype (np.zeros(shape), or dtype=np.result_type(image, kernel, np.float32)).",
)


def check_zero_pad(zero_pad: Callable[..., Any], hidden: bool = False) -> None:
    """Compare ``zero_pad(image, padding)`` with :func:`conv_lib.zero_pad` (values, then dtype)."""
    run_cases(
        zero_pad,
        "zero_pad",
        C.zero_pad_cases(hidden),
        lambda c: cl.zero_pad(c.params["image"], c.params["padding"]),
        D.zero_pad_variants,
        "zero_pad",
        hidden,
        dtype=_keep_dtype("image", "np.zeros(shape, dtype=image.dtype) (np.zeros alone makes float64)."),
    )


def check_window_value(window_value: Callable[..., Any], hidden: bool = False) -> None:
    """``window_value(image, kernel, i, j)``: one step (multiply and sum) of a valid correlation."""

    def reference(c: Case) -> Any:
        p = c.params
        return np.float64(D.window_value_at(p["image"], p["kernel"], p["i"], p["j"]))

    run_cases(
        window_value,
        "window_value",
        C.window_value_cases(hidden),
        reference,
        D.window_value_variants,
        "window_value",
        hidden,
        tolerance=_input_tolerance("image"),
    )


def check_correlate2d(
    correlate2d: Callable[..., Any], modes: Sequence[str] = ("valid",), hidden: bool = False
) -> None:
    """Compare ``correlate2d(image, kernel, mode)`` with :func:`conv_lib.correlate2d`."""
    run_cases(
        correlate2d,
        "correlate2d",
        C.signal_cases("correlate2d", modes, hidden),
        lambda c: cl.correlate2d(c.params["image"], c.params["kernel"], c.params["mode"]),
        lambda c: D.signal_variants("correlate2d", c),
        f"correlate2d, mode {'/'.join(modes)}",
        hidden,
        dtype=lambda c: _FLOAT_RESULT,
    )


def check_convolve2d(
    convolve2d: Callable[..., Any], modes: Sequence[str] = ("valid",), hidden: bool = False
) -> None:
    """Compare ``convolve2d(image, kernel, mode)`` with :func:`conv_lib.convolve2d`."""
    run_cases(
        convolve2d,
        "convolve2d",
        C.signal_cases("convolve2d", modes, hidden),
        lambda c: cl.convolve2d(c.params["image"], c.params["kernel"], c.params["mode"]),
        lambda c: D.signal_variants("convolve2d", c),
        f"convolve2d, mode {'/'.join(modes)}",
        hidden,
        dtype=lambda c: _FLOAT_RESULT,
    )


def check_symmetric_kernels(answer: Any, candidates: Sequence[str] = C.KERNEL_CANDIDATES) -> None:
    """``answer``: the names among ``candidates`` for which correlation equals convolution.

    The truth is computed from :func:`conv_lib.get_kernel`: correlating with K equals
    convolving with K exactly when K equals K rotated by 180 degrees.
    """
    if answer is None or isinstance(answer, str) or not isinstance(answer, Iterable):
        raise GradingError(f"Expected a list of kernel names, got {answer!r}.")
    given = set(answer)
    unknown = given - set(candidates)
    if unknown:
        raise GradingError(f"Unknown names {sorted(unknown)}; choose among {list(candidates)}.")
    truth = {n for n in candidates if np.allclose(cl.get_kernel(n), cl.get_kernel(n)[::-1, ::-1])}
    missing, extra = truth - given, given - truth
    if missing or extra:
        lines = ["Not quite:"]
        if extra:
            lines.append(
                f"  {sorted(extra)}: rotate each by 180 degrees (K[::-1, ::-1]); is it still the same "
                "kernel? If not, correlation and convolution give different results."
            )
        if missing:
            lines.append(
                f"  {len(missing)} kernel(s) that stay the same under a 180-degree rotation are missing."
            )
        raise GradingError("\n".join(lines))
    print(f"OK: the {len(truth)} kernels unchanged by a 180-degree rotation.")


def check_output_size(output_size: Callable[..., Any], hidden: bool = False) -> None:
    """Compare ``output_size(n, kernel, stride, padding, dilation)`` with :func:`conv_lib.output_size`.

    A wrong answer is explained by the known wrong formula that reproduces the student's
    answers on every case (not just the failing one).
    """
    cases = C.output_size_cases(hidden, [f for f, _ in D.OUTPUT_SIZE_BUGS])
    answers: list[tuple[Case, tuple[int, ...], int, Any]] = []
    for c in cases:
        args = tuple(c.params[x] for x in ("n", "kernel", "stride", "padding", "dilation"))
        expected = cl.output_size(*args)
        got = c.call(output_size, "output_size")
        if isinstance(got, (float, np.floating)) and float(got).is_integer() and int(got) == expected:
            raise GradingError(
                f"output_size({c.signature()}) returned {format_value(got)}, a float: use integer division "
                "`//` so that the size is an int."
            )
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            extra = " Use integer division `//`." if isinstance(got, (float, np.floating)) else ""
            raise GradingError(
                f"output_size({c.signature()}) returned {format_value(got)}; "
                f"expected an int ({expected}).{extra}"
            )
        answers.append((c, args, expected, int(got)))
    wrong = [(c, exp, got) for c, _, exp, got in answers if got != exp]
    if wrong:
        c, expected, got = wrong[0]
        hint = next(
            (h for f, h in D.OUTPUT_SIZE_BUGS if all(f(*args) == g for _, args, _, g in answers)),
            "check the formula floor((n + 2p - d(k - 1) - 1) / s) + 1 on this case by hand.",
        )
        raise GradingError(
            f"output_size({c.signature()}): expected {expected}, got {got}.\n  Likely bug: {hint}"
        )
    passed("output_size", len(cases), hidden)


# ---------------------------------------------------------------------------------------
# Assignment 2: convolution layers (NCHW)
# ---------------------------------------------------------------------------------------

_CONV_FEATURES = ("basic", "channels", "stride_padding", "dilation")


def check_conv2d(conv2d: Callable[..., Any], feature: str = "basic", hidden: bool = False) -> None:
    """Compare ``conv2d(x, weight, bias, stride, padding, dilation)`` with :func:`conv_lib.conv2d`.

    ``feature`` selects the cases: "basic" (one channel, stride 1, no padding),
    "channels" (several input/output channels, batch, bias), "stride_padding" (stride
    that does not divide, padding 0 / int / pair), "dilation".
    """
    if feature not in _CONV_FEATURES:
        raise ValueError(f"feature: got {feature!r}; expected one of {_CONV_FEATURES}")
    cases = C.conv_cases(feature, hidden)
    with D.naming_swapped_channels(conv2d, cases, "conv2d"):
        _run_conv2d(conv2d, feature, cases, hidden)


def _run_conv2d(conv2d: Callable[..., Any], feature: str, cases: list[Case], hidden: bool) -> None:
    run_cases(
        conv2d,
        "conv2d",
        cases,
        lambda c: D.conv_reference(c.params),
        D.conv_variants,
        f"conv2d ({feature.replace('_', ' and ')})",
        hidden,
        dtype=_keep_dtype("x", "make the output with dtype=x.dtype (np.zeros(shape) alone is float64)."),
    )


def check_max_pool2d(max_pool2d: Callable[..., Any], feature: str = "basic", hidden: bool = False) -> None:
    """Compare ``max_pool2d(x, kernel_size, stride=None)`` with :func:`conv_lib.max_pool2d`.

    ``feature``: "basic" (stride None, i.e. non-overlapping) or "overlap" (stride smaller
    than the kernel, not dividing, non-square, ties).
    """
    run_cases(
        max_pool2d,
        "max_pool2d",
        C.pool_cases("max", feature, hidden),
        lambda c: cl.max_pool2d(c.params["x"], c.params["kernel_size"], c.params["stride"]),
        lambda c: D.pool_variants("max", c),
        f"max_pool2d ({feature})",
        hidden,
        dtype=_keep_dtype("x", "make the output with dtype=x.dtype (np.zeros(shape) alone is float64)."),
    )


def check_avg_pool2d(avg_pool2d: Callable[..., Any], feature: str = "basic", hidden: bool = False) -> None:
    """Compare ``avg_pool2d(x, kernel_size, stride=None)`` with :func:`conv_lib.avg_pool2d`."""
    run_cases(
        avg_pool2d,
        "avg_pool2d",
        C.pool_cases("avg", feature, hidden),
        lambda c: cl.avg_pool2d(c.params["x"], c.params["kernel_size"], c.params["stride"]),
        lambda c: D.pool_variants("avg", c),
        f"avg_pool2d ({feature})",
        hidden,
        dtype=_keep_dtype("x", "make the output with dtype=x.dtype (np.zeros(shape) alone is float64)."),
    )


# ---------------------------------------------------------------------------------------
# Assignment 3: backpropagation
# ---------------------------------------------------------------------------------------

_BACKWARD_PARTS = {"dx": 0, "dw": 1, "db": 2}


def check_conv2d_backward(
    conv2d_backward: Callable[..., Any], part: str = "dx", feature: str = "basic", hidden: bool = False
) -> None:
    """Compare one part ("dx", "dw" or "db") of ``conv2d_backward`` with :func:`conv_lib.conv2d_backward`.

    ``conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1)`` returns
    ``(grad_x, grad_weight, grad_bias)``. ``feature`` as for :func:`check_conv2d`;
    "strided" means stride, padding and dilation together.
    """
    if part not in _BACKWARD_PARTS:
        raise ValueError(f"part: got {part!r}; expected one of {tuple(_BACKWARD_PARTS)}")
    features = ("stride_padding", "dilation") if feature == "strided" else (feature,)
    cases = [c for f in features for c in C.backward_cases(f, hidden)]
    if feature == "strided" and hidden:
        cases = cases[::2] + cases[1::4]
    k = _BACKWARD_PARTS[part]
    names = {"dx": "grad_x", "dw": "grad_weight", "db": "grad_bias"}

    def extract(got: Any, c: Case) -> Any:
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise GradingError(
                f"conv2d_backward must return a tuple (grad_x, grad_weight, grad_bias); got "
                f"{type(got).__name__} for {c.label}."
            )
        return got[k]

    def reference(c: Case) -> np.ndarray:
        p = c.params
        return cl.conv2d_backward(
            p["grad_out"],
            p["x"],
            p["weight"],
            stride=p["stride"],
            padding=p["padding"],
            dilation=p["dilation"],
        )[k]

    with D.naming_swapped_channels(conv2d_backward, cases, "conv2d_backward"):
        run_cases(
            conv2d_backward,
            "conv2d_backward",
            cases,
            reference,
            lambda c: D.backward_variants(part, c),
            f"conv2d_backward {names[part]} ({feature})",
            hidden,
            extract=extract,
            tolerance=_input_tolerance("x"),
            result_name=f"conv2d_backward -> {names[part]}",
        )


def check_max_pool2d_backward(
    max_pool2d_backward: Callable[..., Any], feature: str = "basic", hidden: bool = False
) -> None:
    """Compare ``max_pool2d_backward(grad_out, x, kernel_size, stride=None)`` with conv_lib.

    "overlap" cases have overlapping windows (gradients accumulate) and ties (the first
    maximum in row-major order gets the gradient, like torch and conv_lib).
    """
    run_cases(
        max_pool2d_backward,
        "max_pool2d_backward",
        C.pool_backward_cases("max", feature, hidden),
        lambda c: cl.max_pool2d_backward(
            c.params["grad_out"], c.params["x"], c.params["kernel_size"], c.params["stride"]
        ),
        D.max_pool_backward_variants,
        f"max_pool2d_backward ({feature})",
        hidden,
        tolerance=_input_tolerance("grad_out"),
    )


def check_avg_pool2d_backward(
    avg_pool2d_backward: Callable[..., Any], feature: str = "basic", hidden: bool = False
) -> None:
    """Compare ``avg_pool2d_backward(grad_out, x_shape, kernel_size, stride=None)`` with conv_lib."""
    run_cases(
        avg_pool2d_backward,
        "avg_pool2d_backward",
        C.pool_backward_cases("avg", feature, hidden),
        lambda c: cl.avg_pool2d_backward(
            c.params["grad_out"], c.params["x_shape"], c.params["kernel_size"], c.params["stride"]
        ),
        D.avg_pool_backward_variants,
        f"avg_pool2d_backward ({feature})",
        hidden,
        tolerance=_input_tolerance("grad_out"),
    )


def check_numeric_gradient(numeric_gradient: Callable[..., Any], hidden: bool = False) -> None:
    """Compare ``numeric_gradient(f, x, eps)`` with :func:`conv_lib.numeric_gradient`.

    ``x`` is float64, float32 or integer; the gradient is taken on a float64 copy and is a
    float64 array shaped like ``x``.
    """
    cases = [
        Case(f"{label}, eps={eps}", {"f": f, "x": x, "eps": eps}, ("f", "x"))
        for label, f, x in C.numeric_gradient_functions(hidden)
        for eps in ((1e-4,) if not hidden else (1e-4, 1e-3))
    ]

    def reference(c: Case) -> np.ndarray:
        return cl.numeric_gradient(
            c.params["f"], np.asarray(c.params["x"], dtype=np.float64), eps=c.params["eps"]
        )

    def variants(c: Case) -> list[Diagnosis]:
        f, x, eps = c.params["f"], np.asarray(c.params["x"], dtype=np.float64), c.params["eps"]
        forward = np.zeros_like(x)
        base = f(x)
        for idx in np.ndindex(x.shape):
            xp = x.copy()
            xp[idx] += eps
            forward[idx] = (f(xp) - base) / eps
        return D.numeric_gradient_variants(forward, reference(c), f, c.params["x"], eps)

    run_cases(
        numeric_gradient,
        "numeric_gradient",
        cases,
        reference,
        variants,
        "numeric_gradient",
        hidden,
        dtype=lambda c: DtypeRule(
            np.float64, "return a float64 array: the gradient of a float64 copy of x (np.zeros(x.shape))."
        ),
        tolerance=lambda c: (1e-6, 1e-8),
    )


def _gradient_error_hint(
    got: float, f: Callable[..., Any], w: np.ndarray, analytic: np.ndarray, eps: float
) -> str:
    """Name the formula a wrong ``gradient_error`` answer came from (the variants are computed here)."""
    a = np.asarray(analytic, dtype=np.float64)
    n = cl.numeric_gradient(f, w, eps=eps)
    n_default = cl.numeric_gradient(f, w, eps=1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        variants = [
            (
                f"use the eps you are given (eps={eps} here): numeric_gradient(f, x, eps).",
                np.max(np.abs(a - n_default) / np.maximum(np.abs(a) + np.abs(n_default), 1e-12))
                if eps != 1e-6
                else np.nan,
            ),
            (
                "divide by |a| + |n| (element-wise), not by max(|a|, |n|).",
                np.max(np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-12)),
            ),
            (
                "take the MAXIMUM of the element-wise relative errors, not their mean.",
                np.mean(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), 1e-12)),
            ),
            (
                "the error is relative: divide |a - n| by max(|a| + |n|, 1e-12), element-wise.",
                np.max(np.abs(a - n)),
            ),
        ]
    if math.isnan(got):
        return (
            "nan comes from 0 / 0: where both gradients are exactly 0 the denominator is 0. "
            "Divide by max(|a| + |n|, 1e-12), the floor of the definition."
        )
    for hint, value in variants:
        if math.isfinite(value) and math.isclose(got, value, rel_tol=1e-3, abs_tol=1e-12):
            return hint
    return "relative error = max |a - n| / max(|a| + |n|, 1e-12), element-wise, then the maximum."


def check_gradient_error(gradient_error: Callable[..., Any], hidden: bool = False) -> None:
    """``gradient_error(f, x, analytic_grad, eps)``: the cs231n max relative error.

    Compared with ``conv_lib.check_gradient(...).max_rel_error``: equal within 1e-3
    relative when the error is larger than 1e-6, and also below 1e-6 otherwise. The trials
    include weights the loss does not depend on (both gradients exactly 0 there: the floor
    1e-12 of the denominator matters) and a large ``eps`` (an answer that ignores ``eps``
    differs).
    """
    x, w, g, bump = C.gradient_error_setup(hidden)
    mask = (np.arange(w.size).reshape(w.shape) % 3 != 1).astype(float)

    def loss_of_w(ww: np.ndarray) -> float:
        return float(np.sum(cl.conv2d(x, ww, stride=(1, 2)) * g))

    def masked_loss(ww: np.ndarray) -> float:
        return float(np.sum(cl.conv2d(x, ww * mask, stride=(1, 2)) * g))

    def cube(ww: np.ndarray) -> float:
        return float(np.sum(ww**3))

    dw = cl.conv2d_backward(g, x, w, stride=(1, 2))[1]
    about = f"as a function of w {w.shape}"
    conv_f = f"f = sum(conv2d(x, w, stride=(1, 2)) * g) {about}"
    trials = [
        (conv_f, loss_of_w, "the correct weight gradient", dw, 1e-6),
        (conv_f, loss_of_w, "a flipped weight gradient", dw[..., ::-1, ::-1], 1e-6),
        (conv_f, loss_of_w, "the correct gradient times 2", 2 * dw, 1e-6),
        (
            f"f = sum(conv2d(x, w * M, stride=(1, 2)) * g), M zero at every third weight, {about}",
            masked_loss,
            "the correct gradient (exactly 0 where M is 0)",
            dw * mask,
            1e-6,
        ),
        (f"f = sum(w**3) {about}", cube, "3 * w**2", 3 * w**2, 0.05),
    ]
    if hidden:
        trials.append(
            (
                conv_f,
                loss_of_w,
                "the correct gradient plus 1e-3 at one element",
                dw + np.where(np.arange(dw.size).reshape(dw.shape) == bump, 1e-3, 0.0),
                1e-6,
            )
        )
    for f_label, f, label, analytic, eps in trials:
        c = Case(
            f"{f_label}, analytic = {label}, eps={eps}",
            {"f": f, "x": w, "analytic_grad": analytic, "eps": eps},
            ("f", "x", "analytic_grad"),
        )
        got = c.call(gradient_error, "gradient_error")
        try:
            got = float(got)
        except (TypeError, ValueError) as err:
            raise GradingError(
                f"gradient_error should return a float, got {format_value(got)} ({c.label})."
            ) from err
        ref = cl.check_gradient(f, w, analytic, eps=eps).max_rel_error
        ok = got < 1e-6 if ref < 1e-6 else abs(got - ref) <= 1e-3 * ref
        if not ok:
            hint = _gradient_error_hint(got, f, w, analytic, eps)
            raise GradingError(
                f"gradient_error for {c.label}: expected {ref:.6g}, got {got:.6g}.\n  Hint: {hint}"
            )
    passed("gradient_error", len(trials), hidden)


# ---------------------------------------------------------------------------------------
# Assignment 4: applications (the accuracy of the trained network: course.grading.accuracy)
# ---------------------------------------------------------------------------------------


def _magnitude(image: np.ndarray) -> np.ndarray:
    gx = cl.correlate2d(image, cl.get_kernel("sobel_x"), "same")
    gy = cl.correlate2d(image, cl.get_kernel("sobel_y"), "same")
    return np.sqrt(gx**2 + gy**2)


def check_edge_magnitude(edge_magnitude: Callable[..., Any], hidden: bool = False) -> None:
    """``edge_magnitude(image)``: sqrt(gx**2 + gy**2) of the Sobel responses, same size as the image.

    The reference uses :func:`conv_lib.correlate2d` (mode "same") with
    ``get_kernel("sobel_x")`` and ``"sobel_y"`` (the sign and the x/y order do not matter).
    """
    images = C.edge_images(hidden)
    for label, img in images:
        got = Case(label, {"image": img}, ("image",)).call(edge_magnitude, "edge_magnitude")
        compare_arrays(
            got, _magnitude(img), case=label, name="edge_magnitude", diagnoses=D.edge_variants(img)
        )
    passed("edge_magnitude", len(images), hidden)


def check_detect_edges(detect_edges: Callable[..., Any], hidden: bool = False) -> None:
    """``detect_edges(image, threshold)``: boolean map of magnitude > threshold * magnitude.max().

    Some cases have a pixel whose magnitude equals threshold * max exactly (integer images):
    it is not an edge (strictly greater).
    """
    cases = [
        Case(f"{label}, threshold={thr}", {"image": img, "threshold": thr}, ("image",))
        for label, img in C.edge_images(hidden)
        for thr in ((0.5,) if not hidden else (0.25, 0.6))
    ]
    cases += [
        Case(label, {"image": img, "threshold": thr}, ("image",))
        for label, img, thr in C.threshold_cases(hidden)
    ]

    def extract(got: Any, c: Case) -> np.ndarray:
        got_arr = np.asarray(got)
        if got_arr.dtype != bool:
            raise GradingError(
                f"detect_edges should return a boolean array (e.g. `magnitude > t`); got dtype "
                f"{got_arr.dtype} for {c.label}."
            )
        return got_arr

    def reference(c: Case) -> np.ndarray:
        mag = _magnitude(c.params["image"])
        return mag > c.params["threshold"] * mag.max()

    def variants(c: Case) -> list[Diagnosis]:
        mag, thr = _magnitude(c.params["image"]), c.params["threshold"]
        return [
            Diagnosis(
                ">= instead of >",
                "an edge is where the magnitude is strictly GREATER than threshold * max: a pixel "
                "exactly at the threshold is not an edge (use >, not >=).",
                mag >= thr * mag.max(),
            ),
            Diagnosis(
                "absolute threshold",
                "the threshold is a fraction of the largest magnitude: "
                "magnitude > threshold * magnitude.max().",
                mag > thr,
            ),
        ]

    run_cases(
        detect_edges, "detect_edges", cases, reference, variants, "detect_edges", hidden, extract=extract
    )


def check_softmax_cross_entropy(softmax_cross_entropy: Callable[..., Any], hidden: bool = False) -> None:
    """``softmax_cross_entropy(logits, y) -> (mean loss, d loss / d logits)``.

    Compared with :func:`conv_lib.softmax_cross_entropy`.
    """
    cases = C.softmax_cases(hidden)
    for label, logits, y in cases:
        c = Case(label, {"logits": logits, "y": y}, ("logits", "y"))
        got = c.call(softmax_cross_entropy, "softmax_cross_entropy")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise GradingError(
                f"softmax_cross_entropy must return (loss, dlogits); got {type(got).__name__}."
            )
        loss, dlogits = got
        shape = answer_shape(dlogits, logits.size)  # before any conversion of the student's array
        if shape != logits.shape:
            raise GradingError(
                f"dlogits should be an array of the shape of logits, {logits.shape}; got "
                f"{shape if shape is not None else type(dlogits).__name__} ({label})."
            )
        ref_loss, ref_d = cl.softmax_cross_entropy(logits, y)
        ref_d = np.array(ref_d, dtype=np.float64)
        n = logits.shape[0]
        try:
            loss = float(loss)
        except (TypeError, ValueError) as err:
            raise GradingError(f"the loss should be a number, got {format_value(loss)} ({label}).") from err
        if not math.isfinite(loss) or not np.isfinite(np.asarray(dlogits, dtype=float)).all():
            row_max = logits.max(axis=1)
            if row_max.max() - row_max.min() > 500 and np.isfinite(logits - logits.max()).all():
                why = (
                    "the rows are far apart in scale here: subtracting ONE maximum (of the whole "
                    "array) leaves a row far below it, whose exp underflows to 0 (log 0 = -inf). "
                    "Subtract each ROW's maximum: logits - logits.max(axis=1, keepdims=True)."
                )
            else:
                why = (
                    "exp overflows for large logits. Subtract each row's maximum before "
                    "exponentiating (softmax does not change): logits - logits.max(axis=1, keepdims=True)."
                )
            raise GradingError(f"the loss or the gradient for {label} is not finite (loss {loss}): {why}")
        if not math.isclose(loss, ref_loss, rel_tol=1e-6, abs_tol=1e-9):
            hint = (
                "you summed over the batch: return the MEAN loss."
                if math.isclose(loss, ref_loss * n, rel_tol=1e-6)
                else "loss = mean over samples of -log(softmax(logits)[i, y[i]])."
            )
            raise GradingError(f"loss for {label}: expected {ref_loss:.8g}, got {loss:.8g}.\n  Hint: {hint}")
        compare_arrays(
            dlogits, ref_d, case=label, name="dlogits", diagnoses=D.softmax_gradient_variants(ref_d, y)
        )
    passed("softmax_cross_entropy", len(cases), hidden)


def check_param_counts(
    conv_params: Callable[..., Any], dense_params: Callable[..., Any], hidden: bool = False
) -> None:
    """``conv_params(c_in, c_out, k)`` and ``dense_params(n_in, n_out)`` (bias included) vs conv_lib."""
    conv_specs, dense_specs = C.param_count_specs(hidden)
    for ci, co, k in conv_specs:
        exp = cl.conv2d_param_count(ci, co, k)
        got = Case(
            f"c_in={ci}, c_out={co}, k={k}", {"c_in": ci, "c_out": co, "k": k}, ("c_in", "c_out", "k")
        ).call(conv_params, "conv_params")
        if got != exp:
            hint = (
                "the bias adds one parameter per output channel."
                if got == exp - co
                else "each output channel has a k x k kernel per INPUT channel: c_out * c_in * k * k + c_out."
                if got in (co * k * k + co, ci * k * k + co)
                else "count weights c_out * c_in * k * k plus c_out biases."
            )
            raise GradingError(
                f"conv_params({ci}, {co}, {k}): expected {exp}, got {format_value(got)}.\n  Hint: {hint}"
            )
    for ni, no in dense_specs:
        exp = cl.dense_param_count(ni, no)
        got = Case(f"n_in={ni}, n_out={no}", {"n_in": ni, "n_out": no}, ("n_in", "n_out")).call(
            dense_params, "dense_params"
        )
        if got != exp:
            hint = "the bias adds one parameter per output." if got == exp - no else "n_in * n_out + n_out."
            raise GradingError(
                f"dense_params({ni}, {no}): expected {exp}, got {format_value(got)}.\n  Hint: {hint}"
            )
    passed("conv_params and dense_params", len(conv_specs) + len(dense_specs), hidden)


def check_pieces(
    conv2d: Callable[..., Any],
    conv2d_backward: Callable[..., Any],
    max_pool2d: Callable[..., Any],
    max_pool2d_backward: Callable[..., Any],
    hidden: bool = False,
) -> None:
    """Your own layers, pasted from assignments 2 and 3: right results on a few cases."""
    check_conv2d(conv2d, "channels", hidden)
    check_conv2d(conv2d, "stride_padding", hidden)
    for part in ("dx", "dw", "db"):
        check_conv2d_backward(conv2d_backward, part, "basic", hidden)
    check_conv2d_backward(conv2d_backward, "dx", "stride_padding", hidden)  # padding cropped
    check_max_pool2d(max_pool2d, "basic", hidden)
    check_max_pool2d_backward(max_pool2d_backward, "basic", hidden)
    check_max_pool2d_backward(max_pool2d_backward, "overlap", hidden)  # ties and overlaps
