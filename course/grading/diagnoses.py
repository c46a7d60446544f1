"""Known mistakes: what a buggy answer would return for a case, and the hint that goes with it.

Each ``*_variants(case)`` returns :class:`~course.grading.compare.Diagnosis` objects.
Wrong variants are recomputed with :mod:`conv_lib` where possible (a flipped kernel,
stride 1 instead of the requested stride, ...); the few that conv_lib cannot produce
(tie handling in max-pool backward, ...) are written here, clearly marked as *wrong*.
A conv2d or conv2d_backward that raises is named by a probe instead
(:func:`naming_swapped_channels`: right once the weight's channel axes are exchanged).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import conv_lib as cl
from course.grading.cases import pair, span_out
from course.grading.compare import Case, Diagnosis, GradingError, tolerances
from course.student_process import NoAnswer

__all__ = [
    "CHANNELS_HINT",
    "OUTPUT_SIZE_BUGS",
    "avg_pool_backward_variants",
    "backward_variants",
    "conv_variants",
    "diagnose_conv_bug",
    "edge_variants",
    "max_pool_backward_variants",
    "naming_swapped_channels",
    "pool_variants",
    "reads_weight_as_cin_cout",
    "signal_variants",
    "window_value_at",
    "window_value_variants",
    "zero_pad_variants",
]

_BOTH_SIDES = "pad both sides: p rows above AND below, p columns left AND right (the shape grows by 2p)."


def zero_pad_variants(case: Case) -> list[Diagnosis]:
    img, pad = case.params["image"], case.params["padding"]
    ph, pw = pair(pad)
    return [
        Diagnosis(
            "(pH, pW) swapped",
            "padding=(pH, pW) adds pH rows (top and bottom) and pW columns "
            "(left and right); you used them the other way round.",
            lambda: cl.zero_pad(img, (pw, ph)) if ph != pw else None,
        ),
        Diagnosis(
            "one side only",
            _BOTH_SIDES,
            lambda: np.pad(img, [(0, 0)] * (img.ndim - 2) + [(0, ph), (0, pw)]) if ph or pw else None,
        ),
        Diagnosis(
            "one side only",
            _BOTH_SIDES,
            lambda: np.pad(img, [(0, 0)] * (img.ndim - 2) + [(ph, 0), (pw, 0)]) if ph or pw else None,
        ),
        Diagnosis(
            "np.pad with one pair for every axis",
            "np.pad(image, (a, b)) reads (a, b) as (before, after) on EVERY axis: a rows/columns "
            "before and b after. Give one (before, after) pair per axis: "
            "np.pad(image, [(0, 0)] * (image.ndim - 2) + [(pH, pH), (pW, pW)]).",
            lambda: np.pad(img, (ph, pw)) if ph != pw else None,
        ),
        Diagnosis(
            "all axes padded",
            "only the last two axes (H, W) are padded; leading axes (batch, channels) keep their size.",
            lambda: (
                np.pad(img, [(ph, ph)] * (img.ndim - 2) + [(ph, ph), (pw, pw)])
                if img.ndim > 2 and ph
                else None
            ),
        ),
    ]


def window_value_at(image: np.ndarray, kernel: np.ndarray, i: int, j: int, flip: bool = False) -> float:
    """One output pixel of the valid correlation (convolution with ``flip``), from conv_lib's walk."""
    walk = cl.walk_windows(image, kernel, flip=flip)
    return walk[i * walk.output_shape[1] + j].value


def window_value_variants(c: Case) -> list[Diagnosis]:
    p = c.params
    return [
        Diagnosis(
            "kernel flipped",
            "one step of correlate2d multiplies the window by the kernel as it is; do not flip it here.",
            lambda: window_value_at(p["image"], p["kernel"], p["i"], p["j"], True),
        ),
        Diagnosis(
            "i and j swapped",
            "i is the row (first axis), j the column: the window is image[i:i + kH, j:j + kW].",
            lambda: window_value_at(p["image"], p["kernel"], p["j"], p["i"]),
        ),
        Diagnosis(
            "products not summed", "step 3: sum the products to one number.", shape=np.shape(p["kernel"])
        ),
    ]


MODE_HINT = {
    "valid": "'valid' keeps only windows fully inside the image: (H - kH + 1, W - kW + 1).",
    "same": "'same' has the image's shape (H, W): the 'full' result cropped so that the kernel element "
    "K[(kH - 1) // 2, (kW - 1) // 2] sits on each output pixel (like scipy): from row kH // 2 for a "
    "correlation, from row (kH - 1) // 2 for a convolution (the same for odd kernels).",
    "full": "'full' has every overlap of kernel and image: (H + kH - 1, W + kW - 1); pad the image with "
    "kH - 1 rows and kW - 1 columns of zeros on each side.",
}


def signal_variants(kind: str, c: Case) -> list[Diagnosis]:
    """Mistakes of correlate2d / convolve2d (``kind``): flips, transposes, the wrong mode or 'same' crop."""
    img, ker, mode = c.params["image"], c.params["kernel"], c.params["mode"]
    ref = cl.correlate2d if kind == "correlate2d" else cl.convolve2d
    other = cl.convolve2d if kind == "correlate2d" else cl.correlate2d
    out: list[Diagnosis] = []
    if kind == "convolve2d":
        flip_both = "flip BOTH axes: K[::-1, ::-1], not K[::-1] or K[:, ::-1]."
        out += [
            Diagnosis(
                "kernel not flipped",
                "you computed cross-correlation. Convolution flips the kernel "
                "(K[::-1, ::-1], a 180-degree rotation) before sliding it: that is the minus sign in "
                "K(i - m, j - n).",
                lambda: other(img, ker, mode),
            ),
            Diagnosis("flipped one axis only", flip_both, lambda: other(img, ker[::-1, :], mode)),
            Diagnosis("flipped one axis only", flip_both, lambda: other(img, ker[:, ::-1], mode)),
            Diagnosis(
                "transposed instead of flipped",
                "K.T swaps rows and columns; a flip is K[::-1, ::-1].",
                lambda: other(img, ker.T, mode),
            ),
        ]
    else:
        out += [
            Diagnosis(
                "kernel flipped",
                "you flipped the kernel: that is convolution. Cross-correlation slides K as it "
                "is: out[i, j] = sum over m, n of image[i + m, j + n] * K[m, n].",
                lambda: other(img, ker, mode),
            ),
            Diagnosis(
                "kernel transposed",
                "you used K.T (rows and columns of the kernel swapped); use K as it is.",
                lambda: ref(img, ker.T, mode),
            ),
        ]
    for m in ("valid", "same", "full"):
        if m != mode:
            out.append(
                Diagnosis(
                    f"'{m}' instead of '{mode}'",
                    f"you returned the '{m}' result for mode='{mode}'. {MODE_HINT[mode]}",
                    functools.partial(ref, img, ker, m),
                )
            )
    if mode == "same":
        kh, kw = ker.shape
        h, w = img.shape

        # scipy crops 'full' from k // 2 (correlation) or (k - 1) // 2 (convolution); the
        # wrong variant uses the other one (they differ for even kernel sizes only).
        right, wrong = ("kH // 2", "(kH - 1) // 2") if kind == "correlate2d" else ("(kH - 1) // 2", "kH // 2")

        def other_centre() -> np.ndarray | None:
            if kh % 2 and kw % 2:
                return None
            full = ref(img, ker, "full")
            r0, c0 = ((kh - 1) // 2, (kw - 1) // 2) if kind == "correlate2d" else (kh // 2, kw // 2)
            return full[r0 : r0 + h, c0 : c0 + w]

        out.append(
            Diagnosis(
                "'same' centred the other way",
                f"for an even kernel size the 'same' crop is not symmetric. For {kind} keep the 'full' "
                f"result from row {right} and column {right.replace('H', 'W')} (you started at {wrong}): "
                "the kernel element K[(kH - 1) // 2, (kW - 1) // 2] sits on the output pixel, like scipy.",
                other_centre,
            )
        )
    return out


#: Wrong output-size formulas ``f(n, k, s, p, d)`` and their hints, in the order they are tried.
OUTPUT_SIZE_BUGS: list[tuple[Callable[[int, int, int, int, int], int], str]] = [
    (
        lambda n, k, s, p, d: span_out(n, k, s, p, d, ceil=True),
        "you rounded up (ceil). A window that would stick out past the padded border is dropped: "
        "floor((n + 2p - d(k - 1) - 1) / s) + 1, i.e. `//`.",
    ),
    (
        lambda n, k, s, p, d: span_out(n, k, s, p, 1),
        "dilation ignored: a kernel of size k with dilation d spans d(k - 1) + 1 pixels.",
    ),
    (
        lambda n, k, s, p, d: span_out(n, k, s, 0, d),
        "padding ignored: padding p adds p pixels on EACH side (2p in total).",
    ),
    (
        lambda n, k, s, p, d: span_out(n + p, k, s, 0, d),
        "padding counted once: it is added on both sides, so n + 2p.",
    ),
    (
        lambda n, k, s, p, d: span_out(n, k, 1, p, d),
        "stride ignored: with stride s only every s-th window position is used.",
    ),
    (
        lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s,
        "off by one: the first window is at position 0, so add 1 to the number of strides: "
        "(n + 2p - d(k - 1) - 1) // s + 1.",
    ),
    (
        lambda n, k, s, p, d: (n + 2 * p - d * (k - 1)) // s + 1,
        "off by one: the kernel spans d(k - 1) + 1 pixels, so subtract 1: (n + 2p - d(k - 1) - 1) // s + 1.",
    ),
]


CHANNELS_HINT = (
    "weight is (C_out, C_in, kH, kW): its FIRST axis is the output channel, its second the input "
    "channel (out[b, o] sums weight[o, c] * x[b, c] over c), and the output has C_out = "
    "weight.shape[0] channels."
)

_ACCUMULATE_HINT = (
    "overlapping windows must ADD their contributions. In a loop, use +=, not =. With one "
    "fancy-indexed update such as `dx[idx] += v`, NumPy writes a repeated index only once (the "
    "last value wins, nothing adds up): use np.add.at(dx, idx, v) instead."
)


def conv_reference(p: dict[str, Any]) -> np.ndarray:
    """conv_lib.conv2d on a case's parameters."""
    return cl.conv2d(
        p["x"], p["weight"], p["bias"], stride=p["stride"], padding=p["padding"], dilation=p["dilation"]
    )


def conv_variants(c: Case) -> list[Diagnosis]:
    """Mistakes of conv2d: kernel flipped or transposed; stride, padding, dilation, bias ignored."""
    p = c.params
    x, w, b, s, pad, d = p["x"], p["weight"], p["bias"], p["stride"], p["padding"], p["dilation"]
    sh, sw = pair(s)
    ph, pw = pair(pad)
    dh, dw = pair(d)
    kh, kw = w.shape[-2:]
    n, c_out = x.shape[0], w.shape[0]

    def conv(**over: Any) -> Callable[[], np.ndarray]:
        return lambda: conv_reference(p | over)

    c_in = x.shape[1]
    ref_shape = conv_reference(p).shape

    def cropped(**over: Any) -> Callable[[], np.ndarray]:
        """The output of the wrong setting, cut to the right size (the size formula was right)."""
        return lambda: conv_reference(p | over)[..., : ref_shape[2], : ref_shape[3]]

    ceil_shape = (
        n,
        c_out,
        span_out(x.shape[2], kh, sh, ph, dh, True),
        span_out(x.shape[3], kw, sw, pw, dw, True),
    )
    return [
        Diagnosis(
            "kernel flipped",
            "conv2d in deep learning (torch, conv_lib) is cross-correlation: do not flip the weights.",
            conv(weight=w[..., ::-1, ::-1]),
        ),
        Diagnosis(
            "stride ignored",
            "move the window by the stride: output (i, j) reads rows i*sH ... and columns "
            "j*sW ... of the padded input.",
            conv(stride=1) if (sh, sw) != (1, 1) else None,
        ),
        Diagnosis(
            "stride ignored",
            "your output has the right size, but window (i, j) starts at row i and column j: "
            "with stride s it starts at row i*sH and column j*sW of the padded input.",
            cropped(stride=1) if (sh, sw) != (1, 1) else None,
        ),
        Diagnosis(
            "stride (sH, sW) swapped",
            "stride=(sH, sW): sH along H (rows), sW along W (columns).",
            conv(stride=(sw, sh)) if sh != sw else None,
        ),
        Diagnosis(
            "padding ignored",
            "pad the input with zeros (padding rows top and bottom, columns left and right) before sliding.",
            conv(padding=0) if (ph, pw) != (0, 0) else None,
        ),
        Diagnosis(
            "padding (pH, pW) swapped",
            "padding=(pH, pW): pH rows, pW columns.",
            conv(padding=(pw, ph)) if ph != pw else None,
        ),
        Diagnosis(
            "dilation ignored",
            "with dilation d the kernel taps are d pixels apart: rows i*sH + m*dH for m in range(kH).",
            conv(dilation=1) if (dh, dw) != (1, 1) else None,
        ),
        Diagnosis(
            "dilation ignored",
            "your output has the right size, but the kernel taps are next to each other: with "
            "dilation d, tap (m, n) reads row i*sH + m*dH and column j*sW + n*dW.",
            cropped(dilation=1) if (dh, dw) != (1, 1) else None,
        ),
        Diagnosis(
            "dilation (dH, dW) swapped",
            "dilation=(dH, dW): dH between rows, dW between columns.",
            conv(dilation=(dw, dh)) if dh != dw else None,
        ),
        Diagnosis(
            "bias ignored",
            "add bias[c_out] to every pixel of output channel c_out.",
            conv(bias=None) if b is not None else None,
        ),
        Diagnosis(
            "kernel transposed",
            "weight is (C_out, C_in, kH, kW): kH rows, kW columns; you swapped them.",
            conv(weight=w.swapaxes(-1, -2)),
        ),
        Diagnosis(
            "weight's channel axes swapped",
            CHANNELS_HINT,
            conv(weight=w.swapaxes(0, 1)) if c_in == c_out > 1 else None,
        ),
        Diagnosis(
            "weight's channel axes swapped",
            CHANNELS_HINT,
            shape=(n, c_in) + ref_shape[2:] if c_in != c_out else None,
        ),
        Diagnosis(
            "input channels not summed",
            "each output channel sums over ALL input channels: "
            "out[n, co] = sum over ci of correlate(x[n, ci], weight[co, ci]).",
            conv(x=x[:, :1], weight=w[:, :1]) if x.shape[1] > 1 else None,
        ),
        Diagnosis(
            "output size rounded up",
            "the output size uses floor: (n + 2p - d(k - 1) - 1) // s + 1; a window "
            "sticking out past the padded border is dropped.",
            shape=ceil_shape if ceil_shape[2:] != ref_shape[2:] else None,
        ),
    ]


def diagnose_conv_bug(student_fn: Callable[..., Any], case: Case, kind: str = "conv2d") -> Diagnosis | None:
    """Run ``student_fn`` on ``case`` and name the known mistake it makes.

    ``kind`` is "conv2d" (case params x, weight, bias, stride, padding, dilation),
    "correlate2d" or "convolve2d" (params image, kernel, mode). The likely-wrong variants
    are recomputed with conv_lib. Returns the first :class:`Diagnosis` whose output
    equals the student's, or None (a correct result, or an unrecognised mistake).
    """
    got = np.asarray(case.call(student_fn, getattr(student_fn, "__name__", "function")))
    p = case.params
    if kind == "conv2d":
        expected = conv_reference(p)
        variants = conv_variants(case)
    else:
        expected = getattr(cl, kind)(p["image"], p["kernel"], p["mode"])
        variants = signal_variants(kind, case)
    rtol, atol = tolerances(np.asarray(expected))
    if got.shape == expected.shape and np.allclose(got, expected, rtol=rtol, atol=atol):
        return None
    return next((d for d in variants if d.matches(got, rtol, atol)), None)


def reads_weight_as_cin_cout(
    student_fn: Callable[..., Any], cases: Sequence[Case], kind: str = "conv2d"
) -> bool:
    """Whether ``student_fn`` reads the weight as (C_in, C_out, kH, kW): right on a case with
    C_in != C_out once the weight's first two axes are exchanged.

    ``kind`` is "conv2d" (the output must then be right) or "conv2d_backward" (``grad_x``
    must then be right and ``grad_weight`` the right gradient in the exchanged layout, the
    layout of the weight it was given). Only the first case with C_in != C_out is tried; a
    probe that raises, or returns anything else, is no evidence (False).
    """
    if kind not in ("conv2d", "conv2d_backward"):
        raise ValueError(f"kind: got {kind!r}; expected 'conv2d' or 'conv2d_backward'")
    for c in cases:
        w = c.params["weight"]
        if w.shape[0] == w.shape[1]:
            continue
        probe = Case(c.label, c.params | {"weight": np.ascontiguousarray(w.swapaxes(0, 1))}, c.positional)
        try:
            got = probe.call(student_fn, kind)
        except GradingError:
            return False
        p = c.params
        if kind == "conv2d":
            pairs = [(got, conv_reference(p))]
        else:
            if not isinstance(got, (tuple, list)) or len(got) != 3:
                return False
            dx, dw, _ = cl.conv2d_backward(
                p["grad_out"], p["x"], w, stride=p["stride"], padding=p["padding"], dilation=p["dilation"]
            )
            pairs = [(got[0], dx), (got[1], dw.swapaxes(0, 1))]
        for answer, want in pairs:
            try:
                answer = np.asarray(answer, dtype=np.float64)
            except (TypeError, ValueError):
                return False
            rtol, atol = tolerances(np.asarray(want, dtype=np.result_type(p["x"], np.float32)))
            if answer.shape != want.shape or not np.allclose(answer, want, rtol=rtol, atol=atol):
                return False
        return True
    return False


@contextlib.contextmanager
def naming_swapped_channels(
    student_fn: Callable[..., Any], cases: Sequence[Case], kind: str
) -> Iterator[None]:
    """Add the swapped-channels hint to a :class:`GradingError` raised inside the block when
    ``student_fn`` (``kind`` "conv2d" or "conv2d_backward") raised an error on ``cases`` and
    :func:`reads_weight_as_cin_cout` (it is right with the weight's channel axes exchanged).

    Only an exception the student's code raised is probed. A call that gave no answer
    (time limit, crash, exit, answer budget: ``NoAnswer``) is not called again: the probe
    would restart the student's process, or wait out the time limit once more, and use up
    the process starts that the submission's later cells need."""
    try:
        yield
    except GradingError as err:
        cause = err.__cause__
        if cause is None or isinstance(cause, NoAnswer):
            raise
        if not reads_weight_as_cin_cout(student_fn, cases, kind):
            raise
        works = (
            "Your conv2d gives the right result when weight is passed as (C_in, C_out, kH, kW)."
            if kind == "conv2d"
            else "Your conv2d_backward gives the right grad_x (and grad_weight with its first two axes "
            "exchanged too) when weight is passed as (C_in, C_out, kH, kW); grad_weight has weight's "
            "own shape, (C_out, C_in, kH, kW)."
        )
        raise GradingError(
            f"{err}\n  Likely bug (weight's channel axes swapped): {CHANNELS_HINT} {works}"
        ) from err.__cause__


def pool_variants(kind: str, c: Case) -> list[Diagnosis]:
    """Mistakes of max / avg pooling (``kind``)."""
    x, ks, st = c.params["x"], c.params["kernel_size"], c.params["stride"]
    kh, kw = pair(ks)
    fn = cl.max_pool2d if kind == "max" else cl.avg_pool2d
    other = cl.avg_pool2d if kind == "max" else cl.max_pool2d
    eff = (kh, kw) if st is None else pair(st)
    ceil_shape = x.shape[:2] + (
        span_out(x.shape[2], kh, eff[0], 0, 1, True),
        span_out(x.shape[3], kw, eff[1], 0, 1, True),
    )
    return [
        Diagnosis(
            "stride=None treated as 1",
            "stride=None means stride = kernel_size (non-overlapping windows), as in torch.",
            (lambda: fn(x, ks, 1)) if st is None and (kh, kw) != (1, 1) else None,
        ),
        Diagnosis(
            "stride ignored",
            "move the window by the stride, not by the kernel size.",
            (lambda: fn(x, ks, None)) if st is not None and eff != (kh, kw) else None,
        ),
        Diagnosis(
            "max and average confused",
            f"this is {kind} pooling: take the {'maximum' if kind == 'max' else 'mean'} of each window.",
            lambda: other(x, ks, st),
        ),
        Diagnosis(
            "kernel (kH, kW) swapped",
            "kernel_size=(kH, kW): kH rows, kW columns.",
            (lambda: fn(x, (kw, kh), st)) if kh != kw else None,
        ),
        Diagnosis(
            "stride (sH, sW) swapped",
            "stride=(sH, sW): sH along rows, sW along columns.",
            (lambda: fn(x, ks, (eff[1], eff[0]))) if eff[0] != eff[1] else None,
        ),
        Diagnosis(
            "sum instead of mean",
            "average pooling divides each window's sum by kH * kW.",
            (lambda: cl.avg_pool2d(x, ks, st) * (kh * kw)) if kind == "avg" else None,
        ),
        Diagnosis(
            "output size rounded up",
            "the number of windows is (n - k) // s + 1 (floor): a window "
            "sticking out of the input is dropped.",
            shape=ceil_shape if ceil_shape != fn(x, ks, st).shape else None,
        ),
    ]


def _backward_indexed(
    g: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    padding: Any,
    step: tuple[int, int],
    dilation: tuple[int, int],
    mode: str = "add",
) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dW) of a conv layer whose windows are read with ``step`` and ``dilation``.

    With the case's own stride and dilation this is the right answer; WRONG on purpose
    otherwise (stride or dilation ignored), or with ``mode`` "overwrite_taps" (each kernel
    tap assigns its slice of dx: ``=`` instead of ``+=``) or "overwrite_windows" (each
    output pixel assigns its window of dx).
    """
    ph, pw = pair(padding)
    (sh, sw), (dh, dw) = step, dilation
    n, c_in, h, wd = x.shape
    kh, kw = w.shape[-2:]
    oh, ow = g.shape[2:]
    xp = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    g64, w64 = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if (kh - 1) * dh + sh * (oh - 1) >= xp.shape[2] or (kw - 1) * dw + sw * (ow - 1) >= xp.shape[3]:
        raise ValueError("windows out of range: this mistake cannot be reproduced here")
    gxp = np.zeros_like(xp)
    gw = np.zeros(w.shape, dtype=np.float64)
    for m in range(kh):
        for q in range(kw):
            rows = slice(m * dh, m * dh + sh * (oh - 1) + 1, sh)
            cols = slice(q * dw, q * dw + sw * (ow - 1) + 1, sw)
            gw[:, :, m, q] = np.einsum("bohw,bchw->oc", g64, xp[:, :, rows, cols])
            part = np.einsum("bohw,oc->bchw", g64, w64[:, :, m, q])
            if mode == "overwrite_taps":
                gxp[:, :, rows, cols] = part
            else:
                gxp[:, :, rows, cols] += part
    if mode == "overwrite_windows":
        gxp[:] = 0.0
        r_taps, c_taps = np.arange(kh) * dh, np.arange(kw) * dw
        for i in range(oh):
            for j in range(ow):
                rr, cc = i * sh + r_taps, j * sw + c_taps
                gxp[:, :, rr[:, None], cc[None, :]] = np.einsum("bo,ocmn->bcmn", g64[:, :, i, j], w64)
    return gxp[:, :, ph : ph + h, pw : pw + wd], gw


def backward_variants(part: str, c: Case) -> list[Diagnosis]:
    """Mistakes of one part ("dx", "dw", "db") of conv2d_backward."""
    p = c.params
    g, x, w = p["grad_out"], p["x"], p["weight"]
    kw_args = {"stride": p["stride"], "padding": p["padding"], "dilation": p["dilation"]}
    ph, pw = pair(p["padding"])
    step, dil = pair(p["stride"]), pair(p["dilation"])
    c_out, c_in = w.shape[:2]

    def ref(gg: np.ndarray = g, xx: np.ndarray = x, ww: np.ndarray = w) -> tuple[np.ndarray, ...]:
        return cl.conv2d_backward(gg, xx, ww, **kw_args)

    k = 0 if part == "dx" else 1

    def indexed(stp: tuple[int, int], dl: tuple[int, int], mode: str = "add") -> Callable[[], np.ndarray]:
        return lambda: _backward_indexed(g, x, w, p["padding"], stp, dl, mode)[k]

    ignored = [
        Diagnosis(
            "stride ignored",
            "window (i, j) of the forward pass starts at row i*sH and column j*sW of the padded "
            "input: use the stride in the backward pass too.",
            indexed((1, 1), dil) if step != (1, 1) else None,
        ),
        Diagnosis(
            "dilation ignored",
            "with dilation d, kernel tap (m, n) touches row i*sH + m*dH and column j*sW + n*dW: use "
            "the dilation in the backward pass too.",
            indexed(step, (1, 1)) if dil != (1, 1) else None,
        ),
    ]

    if part == "db":
        return [
            Diagnosis(
                "summed over the batch only",
                "the bias touches every output pixel: "
                "grad_bias = grad_out.sum(axis=(0, 2, 3)), shape (C_out,).",
                shape=g.shape[1:],
            ),
            Diagnosis(
                "mean instead of sum",
                "add up the gradient of every pixel and every sample (sum, not mean).",
                lambda: g.mean(axis=(0, 2, 3)),
            ),
            Diagnosis(
                "batch not summed",
                "sum over the batch axis too: grad_out.sum(axis=(0, 2, 3)).",
                lambda: g[0].sum(axis=(1, 2)) if g.shape[0] > 1 else None,
            ),
        ]
    if part == "dw":
        n = x.shape[0]
        return [
            Diagnosis(
                "weight gradient flipped",
                "dW[co, ci, m, n] = sum over batch and positions of "
                "grad_out[b, co, i, j] * x_pad[b, ci, i*sH + m*dH, j*sW + n*dW]; it is not flipped.",
                lambda: ref()[1][..., ::-1, ::-1],
            ),
            *ignored,
            Diagnosis(
                "weight's channel axes swapped",
                CHANNELS_HINT,
                (lambda: ref()[1].swapaxes(0, 1)) if c_in == c_out > 1 else None,
            ),
            Diagnosis(
                "weight's channel axes swapped",
                CHANNELS_HINT,
                shape=(c_in, c_out) + w.shape[2:] if c_in != c_out else None,
            ),
            Diagnosis(
                "batch not summed",
                "every sample of the batch contributes to dW: sum over the batch.",
                (lambda: ref(g[:1], x[:1])[1]) if n > 1 else None,
            ),
            Diagnosis(
                "batch averaged",
                "sum over the batch (the loss's own averaging is already in grad_out).",
                (lambda: ref()[1] / n) if n > 1 else None,
            ),
        ]
    return [
        Diagnosis(
            "kernel not flipped in dx",
            "the input gradient is a FULL convolution of grad_out with the "
            "kernel, i.e. a correlation with the flipped kernel: scatter-add grad_out[b, co, i, j] * "
            "W[co] into each window (or flip W if you use a correlation).",
            lambda: ref(ww=w[..., ::-1, ::-1])[0],
        ),
        *ignored,
        Diagnosis("= instead of +=", _ACCUMULATE_HINT, indexed(step, dil, "overwrite_taps")),
        Diagnosis("= instead of +=", _ACCUMULATE_HINT, indexed(step, dil, "overwrite_windows")),
        Diagnosis(
            "weight's channel axes swapped",
            CHANNELS_HINT,
            (lambda: ref(ww=w.swapaxes(0, 1))[0]) if c_in == c_out > 1 else None,
        ),
        Diagnosis(
            "padding not cropped",
            "dx must have x's shape: compute the gradient of the padded input, then "
            "keep dx_pad[..., pH:pH + H, pW:pW + W].",
            shape=x.shape[:2] + (x.shape[2] + 2 * ph, x.shape[3] + 2 * pw) if ph or pw else None,
        ),
        Diagnosis(
            "batch mixed",
            "each sample's gradient depends only on its own grad_out: do not sum over the batch for dx.",
            (lambda: np.broadcast_to(ref()[0].sum(axis=0), x.shape)) if x.shape[0] > 1 else None,
        ),
    ]


def _wrong_max_pool_backward(
    g: np.ndarray, x: np.ndarray, ks: Any, st: Any, mode: str, step: tuple[int, int] | None = None
) -> np.ndarray:
    """WRONG on purpose (to recognise mistakes): max-pool backward with a known bug.

    mode "all_ties": every maximum of a window gets the gradient; "split_ties": the tied
    maxima share it equally; "last_tie": the last maximum; "overwrite": overlapping
    windows overwrite instead of accumulating; "first" with ``step``: the right rule, but
    windows read with ``step`` instead of the stride (stride=None taken as 1).
    """
    kh, kw = pair(ks)
    sh, sw = step if step is not None else ((kh, kw) if st is None else pair(st))
    dx = np.zeros(x.shape, dtype=np.float64)
    for b in range(g.shape[0]):
        for ch in range(g.shape[1]):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    win = x[b, ch, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    target = dx[b, ch, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    if mode in ("all_ties", "split_ties"):
                        ties = win == win.max()
                        target += ties * g[b, ch, i, j] / (ties.sum() if mode == "split_ties" else 1)
                        continue
                    flat = win.ravel()
                    k = (
                        len(flat) - 1 - int(np.argmax(flat[::-1]))
                        if mode == "last_tie"
                        else int(np.argmax(flat))
                    )
                    m, n = divmod(k, win.shape[1])
                    if mode == "overwrite":
                        target[m, n] = g[b, ch, i, j]
                    else:
                        target[m, n] += g[b, ch, i, j]
    return dx


def _wrong_avg_pool_backward(
    g: np.ndarray, shape: tuple[int, ...], ks: Any, st: Any, mode: str, step: tuple[int, int] | None = None
) -> np.ndarray:
    """WRONG on purpose: average-pool backward where overlapping windows overwrite ("overwrite"),
    or with windows read with ``step`` instead of the stride ("add")."""
    kh, kw = pair(ks)
    sh, sw = step if step is not None else ((kh, kw) if st is None else pair(st))
    dx = np.zeros(shape, dtype=np.float64)
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            share = g[:, :, i : i + 1, j : j + 1] / (kh * kw)
            if mode == "overwrite":
                dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] = share
            else:
                dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += share
    return dx


_STRIDE_NONE = "stride=None means stride = kernel_size (windows side by side), in the backward pass too."


def max_pool_backward_variants(c: Case) -> list[Diagnosis]:
    p = c.params
    args = (p["grad_out"], p["x"], p["kernel_size"], p["stride"])
    first = (
        "only the FIRST maximum of a window (row-major order, what np.argmax returns) receives the gradient"
    )
    return [
        Diagnosis(
            "ties: every maximum got the gradient",
            f"when several values tie for the maximum, {first}; the others get 0.",
            lambda: _wrong_max_pool_backward(*args, "all_ties"),
        ),
        Diagnosis(
            "ties: the gradient was split between the maxima",
            f"do not share the gradient between tied maxima: {first}, all of it.",
            lambda: _wrong_max_pool_backward(*args, "split_ties"),
        ),
        Diagnosis(
            "ties: last maximum got the gradient",
            "use the FIRST maximum (np.argmax), not the last.",
            lambda: _wrong_max_pool_backward(*args, "last_tie"),
        ),
        Diagnosis(
            "overlapping windows overwrite",
            "a position that is the maximum of several overlapping windows receives the SUM of their "
            "gradients. " + _ACCUMULATE_HINT.split(". ", 1)[1],
            lambda: _wrong_max_pool_backward(*args, "overwrite"),
        ),
        Diagnosis(
            "stride=None treated as 1",
            _STRIDE_NONE,
            (lambda: _wrong_max_pool_backward(*args, "first", (1, 1))) if p["stride"] is None else None,
        ),
    ]


def avg_pool_backward_variants(c: Case) -> list[Diagnosis]:
    p = c.params
    kh, kw = pair(p["kernel_size"])
    ref = cl.avg_pool2d_backward(p["grad_out"], p["x_shape"], p["kernel_size"], p["stride"])
    args = (p["grad_out"], p["x_shape"], p["kernel_size"], p["stride"])
    return [
        Diagnosis(
            "not divided by the window size",
            "each input of a window gets grad / (kH * kW).",
            lambda: ref * (kh * kw),
        ),
        Diagnosis(
            "overlapping windows overwrite",
            "windows overlap when stride < kernel: each input receives the SUM of the shares of every "
            "window it is in. " + _ACCUMULATE_HINT.split(". ", 1)[1],
            lambda: _wrong_avg_pool_backward(*args, "overwrite"),
        ),
        Diagnosis(
            "stride=None treated as 1",
            _STRIDE_NONE,
            (lambda: _wrong_avg_pool_backward(*args, "add", (1, 1))) if p["stride"] is None else None,
        ),
    ]


def _numeric_gradient_in_dtype(f: Callable[[np.ndarray], Any], x: np.ndarray, eps: float) -> np.ndarray:
    """WRONG on purpose for non-float64 ``x``: central differences computed in x's own dtype."""
    x = np.array(x)
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        old = x[k]
        x[k] = old + eps
        f_plus = f(x)
        x[k] = old - eps
        f_minus = f(x)
        x[k] = old
        grad[k] = (f_plus - f_minus) / (2 * eps)
    return grad


def numeric_gradient_variants(
    forward: np.ndarray,
    central: np.ndarray,
    f: Callable[[np.ndarray], Any] | None = None,
    x: np.ndarray | None = None,
    eps: float = 1e-6,
) -> list[Diagnosis]:
    """Mistakes of numeric_gradient, given the one-sided (``forward``) and right (``central``) answers
    (and ``f``, ``x``, ``eps`` of the case, to recognise a gradient computed in x's own dtype)."""
    kept = x is not None and f is not None and np.asarray(x).dtype != np.float64
    return [
        Diagnosis(
            "x kept in its own dtype",
            f"x is {np.asarray(x).dtype.name if x is not None else ''} here: x[k] + eps is "
            "rounded (float32) or cut (integers) when it is stored back into x, so the probes are not "
            "eps apart. Work on a float64 copy: x = np.array(x, dtype=np.float64).",
            (lambda: _numeric_gradient_in_dtype(f, x, eps)) if kept else None,
        ),
        Diagnosis(
            "one-sided difference",
            "use the central difference (f(x + eps) - f(x - eps)) / (2 eps): "
            "its error is O(eps**2) instead of O(eps).",
            forward,
        ),
        Diagnosis(
            "divided by eps instead of 2 eps",
            "the two probes are 2 eps apart: divide by 2 * eps.",
            2 * central,
        ),
    ]


def edge_variants(img: np.ndarray) -> list[Diagnosis]:
    """Mistakes of edge_magnitude on ``img``."""
    gx = cl.correlate2d(img, cl.get_kernel("sobel_x"), "same")
    gy = cl.correlate2d(img, cl.get_kernel("sobel_y"), "same")
    both = "combine both directions: sqrt(gx**2 + gy**2)."
    return [
        Diagnosis("one direction only", both, np.abs(gx)),
        Diagnosis("one direction only", both, np.abs(gy)),
        Diagnosis("no square root", "the magnitude is the square root of gx**2 + gy**2.", gx**2 + gy**2),
        Diagnosis(
            "|gx| + |gy|", "the magnitude is sqrt(gx**2 + gy**2), not |gx| + |gy|.", np.abs(gx) + np.abs(gy)
        ),
        Diagnosis(
            "no padding",
            "keep the image's size: pad by 1 (padding=1, or mode 'same'), so gx and gy are (H, W).",
            lambda: np.sqrt(
                cl.correlate2d(img, cl.get_kernel("sobel_x"), "valid") ** 2
                + cl.correlate2d(img, cl.get_kernel("sobel_y"), "valid") ** 2
            ),
        ),
    ]


def softmax_gradient_variants(ref_d: np.ndarray, y: np.ndarray) -> list[Diagnosis]:
    """Mistakes of the gradient of softmax_cross_entropy (``ref_d`` the right one)."""
    n = ref_d.shape[0]
    probs = ref_d * n
    probs[np.arange(n), y] += 1.0
    return [
        Diagnosis(
            "not divided by the batch size",
            "the loss is a mean over N samples: divide the gradient by N.",
            ref_d * n,
        ),
        Diagnosis("forgot the -1 at the label", "d loss / d logits = (softmax - one_hot(y)) / N.", probs / n),
    ]
