"""The cases each check runs: fixed *visible* cases and *hidden* case generators.

Visible cases are fixed (their random values come from a generator seeded with the CRC32
of a tag), so a student sees the same cases locally and in the grader. Hidden cases
draw everything from :func:`course.grading.context.hidden_rng`, seeded from the
instructor's secret and the student id: generated only inside the grader, different for
every student, the same on regrading.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import conv_lib as cl
from course.grading.compare import Case
from course.grading.context import hidden_rng

__all__ = [
    "KERNEL_CANDIDATES",
    "backward_cases",
    "case_rng",
    "conv_cases",
    "edge_images",
    "gradient_error_setup",
    "numeric_gradient_functions",
    "output_size_cases",
    "pair",
    "param_count_specs",
    "pool_backward_cases",
    "pool_cases",
    "signal_cases",
    "softmax_cases",
    "threshold_cases",
    "span_out",
    "window_value_cases",
    "zero_pad_cases",
]

#: The kernels of assignment 1's question "which kernels give the same result under correlation and
#: convolution?" (the answer is computed from conv_lib.get_kernel, never typed in).
KERNEL_CANDIDATES: tuple[str, ...] = (
    "box",
    "sobel_x",
    "gaussian",
    "emboss",
    "laplacian",
    "summary_edge",
    "sharpen",
)


def case_rng(tag: str, hidden: bool) -> np.random.Generator:
    """The generator of case set ``tag``: secret for hidden cases, fixed (CRC32) for visible ones."""
    return hidden_rng(tag) if hidden else np.random.default_rng(zlib.crc32(tag.encode()))


def _array(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def _dtype(rng: np.random.Generator) -> Any:
    return np.float32 if rng.random() < 0.5 else np.float64


def pair(v: Any) -> tuple[int, int]:
    """(v, v) for a number, the two values of a pair."""
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def span_out(n: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    """Output size along one axis (floor, or ceil for the "rounded up" mistake)."""
    span = n + 2 * p - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


# ---------------------------------------------------------------------------------------
# Assignment 1
# ---------------------------------------------------------------------------------------


def zero_pad_cases(hidden: bool) -> list[Case]:
    pos = ("image", "padding")
    if not hidden:
        img = np.arange(1.0, 16.0).reshape(3, 5)
        stack = np.arange(1.0, 13.0).reshape(2, 1, 2, 3)
        return [
            Case("image 3x5 float64, padding=1", {"image": img, "padding": 1}, pos),
            Case(
                "image 3x5 float32, padding=(2, 1)", {"image": img.astype(np.float32), "padding": (2, 1)}, pos
            ),
            Case("image 3x5 float64, padding=0", {"image": img, "padding": 0}, pos),
            Case("a stack (2, 1, 2, 3) float64, padding=(0, 2)", {"image": stack, "padding": (0, 2)}, pos),
        ]
    rng = hidden_rng("zero_pad")
    cases = []
    # Leading axes (batch, channels) and unequal, zero and scalar paddings, in a random order.
    lead = [(), (), (), (), (2,), (1, 2), ()]
    kinds = ["zero", "pair_h0", "pair_w0", "scalar", "pair", "scalar", "pair"]
    for k, idx in enumerate(rng.permutation(len(kinds))):
        ph, pw = (int(v) for v in rng.integers(1, 4, size=2))
        pad = {
            "zero": 0,
            "pair_h0": (0, pw),
            "pair_w0": (ph, 0),
            "scalar": ph,
            "pair": (ph, pw if pw != ph else ph + 1),
        }[kinds[idx]]
        shape = lead[idx] + tuple(int(v) for v in rng.integers(1, 8, size=2))
        dtype = np.float32 if k % 2 else np.float64
        cases.append(
            Case(
                f"image {shape} {np.dtype(dtype).name}, padding={pad!r}",
                {"image": _array(rng, shape, dtype), "padding": pad},
                pos,
            )
        )
    return cases


def window_value_cases(hidden: bool) -> list[Case]:
    pos = ("image", "kernel", "i", "j")
    if not hidden:
        img = np.asarray(cl.SUMMARY_IMAGE, dtype=float)
        ker = np.asarray(cl.SUMMARY_KERNEL, dtype=float)
        return [
            Case(
                "seed image 5x5, seed kernel 3x3, (i, j)=(0, 0)",
                {"image": img, "kernel": ker, "i": 0, "j": 0},
                pos,
            ),
            Case(
                "seed image 5x5, seed kernel 3x3, (i, j)=(1, 2)",
                {"image": img, "kernel": ker, "i": 1, "j": 2},
                pos,
            ),
            Case(
                "image 4x5 = arange(20) float32, kernel [[1, 2, 0.5], [-1, 0, 3]] float32, (i, j)=(2, 1)",
                {
                    "image": np.arange(20.0, dtype=np.float32).reshape(4, 5),
                    "kernel": np.array([[1, 2, 0.5], [-1, 0, 3]], dtype=np.float32),
                    "i": 2,
                    "j": 1,
                },
                pos,
            ),
        ]
    rng = hidden_rng("window_value")
    cases = []
    for k in range(5):
        kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
        h, w = int(rng.integers(kh, 8)), int(rng.integers(kw, 8))
        i, j = int(rng.integers(0, h - kh + 1)), int(rng.integers(0, w - kw + 1))
        if k == 0 and (h - kh, w - kw) != (0, 0):  # one case with i != j, so swapping them shows
            i, j = (h - kh, 0) if h > kh else (0, w - kw)
        dtype = np.float32 if k % 2 else np.float64
        cases.append(
            Case(
                f"image {(h, w)} {np.dtype(dtype).name}, kernel {(kh, kw)}, (i, j)={(i, j)}",
                {"image": _array(rng, (h, w), dtype), "kernel": _array(rng, (kh, kw), dtype), "i": i, "j": j},
                pos,
            )
        )
    return cases


def signal_cases(kind: str, modes: Sequence[str], hidden: bool) -> list[Case]:
    """Cases of correlate2d / convolve2d (``kind``) in the given modes."""
    pos = ("image", "kernel")
    cases: list[Case] = []
    if not hidden:
        # Kernels unchanged by no flip or transpose (so each mistake gives its own result), an
        # integer image (the result is a float array), float32, and the one-page summary's example.
        image = np.arange(20).reshape(4, 5)
        kernel = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])
        small = (np.arange(1.0, 13.0).reshape(3, 4) ** 1.5 % 7).astype(np.float32)
        k32 = np.array([[2.0, -1.0], [0.5, 1.0], [0.0, 3.0]], dtype=np.float32)
        for mode in modes:
            cases.append(
                Case(
                    f"image 4x5 = arange(20) (integers), kernel [[1, 2, 0.5], [-1, 0, 3]], mode='{mode}'",
                    {"image": image, "kernel": kernel, "mode": mode},
                    pos,
                )
            )
            cases.append(
                Case(
                    f"image 3x4 float32, kernel 3x2 float32 [[2, -1], [0.5, 1], [0, 3]], mode='{mode}'",
                    {"image": small, "kernel": k32, "mode": mode},
                    pos,
                )
            )
            cases.append(
                Case(
                    f"the one-page summary's image 5x5 and edge kernel 3x3 (integers), mode='{mode}'",
                    {
                        "image": np.asarray(cl.SUMMARY_IMAGE),
                        "kernel": np.asarray(cl.SUMMARY_KERNEL),
                        "mode": mode,
                    },
                    pos,
                )
            )
        return cases
    rng = hidden_rng(f"{kind}:{','.join(modes)}")
    for k in range(7):
        mode = modes[k % len(modes)]
        if k < 2:  # non-square kernels with an even side (where 'same' crops differ)
            kh, kw = (2, 3) if k == 0 else (3, 2)
        else:
            kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        # At least as large as the kernel both ways, so a transposed kernel still fits.
        h, w = (int(v) for v in rng.integers(max(kh, kw), 10, size=2))
        dtype = np.float32 if k % 2 else np.float64
        image = _array(rng, (h, w), dtype)
        if k in (2, 4):  # integer images: the result is still a float array
            image = rng.integers(-5, 10, size=(h, w))
        cases.append(
            Case(
                f"image {h}x{w} {image.dtype.name}, kernel {kh}x{kw} {np.dtype(dtype).name}, mode='{mode}'",
                {"image": image, "kernel": _array(rng, (kh, kw), dtype), "mode": mode},
                pos,
            )
        )
    return cases


_VISIBLE_OUTPUT_SIZES = [
    (5, 3, 1, 0, 1),
    (32, 5, 1, 2, 1),
    (8, 3, 2, 0, 1),
    (10, 3, 1, 0, 2),
    (9, 3, 2, 1, 2),
]


def output_size_cases(
    hidden: bool, tell_apart: Sequence[Callable[[int, int, int, int, int], int]] = ()
) -> list[Case]:
    """Cases ``(n, kernel, stride, padding, dilation)``.

    Hidden cases are random; they are redrawn until every formula of ``tell_apart`` (the
    known wrong ones) gives a different list of answers from the right one and from each
    other, so that a wrong formula is recognised whichever cases a student gets.
    """
    specs = list(_VISIBLE_OUTPUT_SIZES)
    if hidden:
        rng = hidden_rng("output_size")
        for _ in range(1000):
            specs = []
            for _ in range(8):
                k, s, p, d = int(rng.integers(1, 8)), int(rng.integers(1, 5)), int(rng.integers(0, 4)), 1
                if rng.random() < 0.5:
                    d = int(rng.integers(2, 4))
                low = max(1, d * (k - 1) + 1 - 2 * p)
                specs.append((int(rng.integers(low, low + 30)), k, s, p, d))
            big = int(rng.integers(100, 300))
            specs += [(big, int(rng.integers(3, 8)), 2, int(rng.integers(1, 4)), 1), (1, 1, 1, 0, 1)]
            answers = [tuple(span_out(*spec) for spec in specs)]
            answers += [tuple(f(*spec) for spec in specs) for f in tell_apart]
            if len(set(answers)) == len(answers):
                break
    return [
        Case(
            f"n={n}, kernel={k}, stride={s}, padding={p}, dilation={d}",
            {"n": n, "kernel": k, "stride": s, "padding": p, "dilation": d},
            ("n", "kernel"),
        )
        for n, k, s, p, d in specs
    ]


# ---------------------------------------------------------------------------------------
# Assignment 2
# ---------------------------------------------------------------------------------------


def conv_label(x: np.ndarray, w: np.ndarray, b: Any, s: Any, p: Any, d: Any) -> str:
    return (
        f"x {x.shape} {x.dtype.name}, weight {w.shape}, bias {'None' if b is None else b.shape}, "
        f"stride={s!r}, padding={p!r}, dilation={d!r}"
    )


def conv_cases(feature: str, hidden: bool) -> list[Case]:
    """conv2d cases for ``feature``: "basic", "channels", "stride_padding" or "dilation"."""
    pos = ("x", "weight")
    cases: list[Case] = []

    def add(x: np.ndarray, w: np.ndarray, b: Any = None, s: Any = 1, p: Any = 0, d: Any = 1) -> None:
        cases.append(
            Case(
                conv_label(x, w, b, s, p, d),
                {"x": x, "weight": w, "bias": b, "stride": s, "padding": p, "dilation": d},
                pos,
            )
        )

    if not hidden:
        # Small, fixed, and free of symmetries: non-square kernels that no flip or transpose
        # leaves unchanged, strides and paddings that differ along H and W, float32 too.
        vis = np.random.default_rng(zlib.crc32(f"conv2d:{feature}".encode()))
        x = np.arange(20.0).reshape(1, 1, 4, 5)
        w = np.array([[[[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]]]])
        if feature == "basic":
            add(x, w)
            add(_array(vis, (1, 1, 5, 4), np.float32), _array(vis, (1, 1, 3, 2), np.float32))
        elif feature == "channels":
            x2 = _array(vis, (2, 2, 4, 5))
            add(x2, _array(vis, (3, 2, 2, 3)), np.array([0.5, -1.0, 2.0]))
            add(
                x2.astype(np.float32)[:1],
                _array(vis, (2, 2, 3, 2), np.float32),
                np.array([1.0, -2.0], np.float32),
            )
        elif feature == "stride_padding":
            add(x, w, None, 2, 1)
            add(_array(vis, (2, 2, 7, 6)), _array(vis, (3, 2, 3, 2)), None, (2, 3), (1, 0))
            add(
                _array(vis, (1, 1, 6, 5), np.float32),
                _array(vis, (1, 1, 2, 3), np.float32),
                None,
                (3, 1),
                (0, 2),
            )
        else:
            add(np.arange(42.0).reshape(1, 1, 6, 7), w, None, 1, 0, 2)
            add(
                _array(vis, (2, 2, 7, 8), np.float32),
                _array(vis, (2, 2, 2, 3), np.float32),
                None,
                1,
                1,
                (2, 3),
            )
        return cases
    rng = hidden_rng(f"conv2d:{feature}")
    strides = [(2, 3), 3, 2, (1, 2), (3, 1), 2]
    paddings = [(1, 0), 0, 2, (0, 1), 1, (2, 1)]
    dilations = [2, (1, 2), (2, 3), 3, (2, 1), 2]
    for seq in (strides, paddings, dilations):
        order = rng.permutation(len(seq))
        seq[:] = [seq[i] for i in order]
    for k in range(6):
        dtype = np.float32 if k % 2 else np.float64
        n = 1 if k % 3 == 0 else 2
        if feature == "basic":
            h, wd = rng.integers(3, 9, size=2)
            kh, kw = rng.integers(1, 4, size=2)
            kh, kw = min(kh, h), min(kw, wd)
            add(_array(rng, (1, 1, h, wd), dtype), _array(rng, (1, 1, kh, kw), dtype))
            continue
        c_in, c_out = (int(v) for v in rng.integers(1, 4, size=2))
        if k < 2:
            c_in = max(c_in, 2)  # several input channels, so "not summed over channels" shows
        h, wd = (int(v) for v in rng.integers(5, 11, size=2))
        kh, kw = (int(v) for v in rng.integers(2 if feature == "dilation" else 1, 4, size=2))
        if k == 0:
            kh, kw = 2, 3  # a non-square kernel, so a transposed one shows
        if feature == "stride_padding" and k % 2 == 0:
            # Every student gets windows that do not fit exactly (floor and ceil differ).
            (sh, sw), (ph, pw) = pair(strides[k]), pair(paddings[k])
            while sh > 1 and (h + 2 * ph - kh) % sh == 0:
                h += 1
            while sw > 1 and (wd + 2 * pw - kw) % sw == 0:
                wd += 1
        x = _array(rng, (n, c_in, h, wd), dtype)
        w = _array(rng, (c_out, c_in, kh, kw), dtype)
        if feature == "channels":
            add(x, w, _array(rng, (c_out,), dtype) if k != 5 else None)
        elif feature == "stride_padding":
            add(x, w, None, strides[k], paddings[k])
        else:
            dil = dilations[k]
            # The kernel fits with its dilation either way round (so a swapped one shows).
            if max(pair(dil)) * (max(kh, kw) - 1) + 1 > min(h, wd):
                kh, kw = 2, 2
                w = _array(rng, (c_out, c_in, kh, kw), dtype)
            add(x, w, None, 1, 0 if k < 5 else 1, dil)  # stride 1: this cell is about dilation
    return cases


def pool_cases(kind: str, feature: str, hidden: bool) -> list[Case]:
    """max / avg (``kind``) pooling cases: "basic" (stride None) or "overlap"."""
    pos = ("x", "kernel_size")
    cases: list[Case] = []

    def add(x: np.ndarray, k: Any, s: Any) -> None:
        cases.append(
            Case(
                f"x {x.shape} {x.dtype.name}, kernel_size={k!r}, stride={s!r}",
                {"x": x, "kernel_size": k, "stride": s},
                pos,
            )
        )

    if not hidden:
        vis = np.random.default_rng(zlib.crc32(f"{kind}:{feature}".encode()))
        x = np.array([[[[1.0, 2, 5, 0, 3], [3, 4, 1, -1, 2], [0, 1, 9, 8, 7], [2, 3, 7, 6, 1]]]])
        ties = vis.integers(0, 3, size=(2, 1, 5, 6)).astype(np.float64)  # many equal maxima
        if feature == "basic":
            add(x, 2, None)
            add(_array(vis, (2, 3, 7, 5), np.float32), (3, 2), None)
            add(ties, (2, 3), None)
        else:
            add(x, 3, 1)
            add(_array(vis, (1, 2, 7, 6), np.float32), (3, 2), (2, 1))
            add(ties, 3, (1, 2))
        return cases
    rng = hidden_rng(f"{kind}:{feature}")
    specs = {
        "basic": [
            ((1, 1, 4, 6), 2, None),
            ((2, 3, 6, 9), 3, None),
            ((1, 2, 8, 4), (2, 1), None),
            ((2, 1, 6, 6), (3, 2), None),
        ],
        "overlap": [
            ((1, 1, 5, 7), 3, 1),
            ((2, 2, 7, 6), (3, 2), (2, 1)),
            ((1, 3, 9, 8), 3, 2),
            ((2, 1, 6, 7), (2, 3), (1, 2)),
            ((1, 2, 5, 5), 2, (1, 3)),
        ],
    }[feature]
    for k, (shape, ks, st) in enumerate(specs):
        add(_array(rng, shape, np.float32 if k % 2 else np.float64), ks, st)
    if kind == "max":  # ties: a quantised input
        add(rng.integers(0, 3, size=(1, 2, 6, 5)).astype(np.float64), 3, 1 if feature == "overlap" else None)
    return cases


# ---------------------------------------------------------------------------------------
# Assignment 3
# ---------------------------------------------------------------------------------------


def backward_cases(feature: str, hidden: bool) -> list[Case]:
    """conv2d_backward cases: the conv2d cases of ``feature`` with a random ``grad_out``."""
    pos = ("grad_out", "x", "weight")
    fwd_cases = conv_cases(feature, hidden)
    if feature == "basic":  # several channels too, stride 1, no padding
        fwd_cases += conv_cases("channels", hidden)[: 4 if hidden else 1]
    rng = case_rng(f"backward:{feature}", hidden)
    cases = []
    for fc in fwd_cases:
        p = fc.params
        out = cl.conv2d(
            p["x"], p["weight"], None, stride=p["stride"], padding=p["padding"], dilation=p["dilation"]
        )
        g = _array(rng, out.shape, p["x"].dtype)
        cases.append(
            Case(
                f"grad_out {g.shape}, "
                + conv_label(p["x"], p["weight"], None, p["stride"], p["padding"], p["dilation"]).replace(
                    ", bias None", ""
                ),
                {
                    "grad_out": g,
                    "x": p["x"],
                    "weight": p["weight"],
                    "stride": p["stride"],
                    "padding": p["padding"],
                    "dilation": p["dilation"],
                },
                pos,
            )
        )
    return cases


def pool_backward_cases(kind: str, feature: str, hidden: bool) -> list[Case]:
    """max_pool2d_backward / avg_pool2d_backward cases: the pooling cases with a random ``grad_out``."""
    rng = case_rng(f"{kind}_backward:{feature}", hidden)
    cases = []
    for fc in pool_cases(kind, feature, hidden):
        x, ks, st = fc.params["x"], fc.params["kernel_size"], fc.params["stride"]
        out = (cl.max_pool2d if kind == "max" else cl.avg_pool2d)(x, ks, st)
        g = _array(rng, out.shape, x.dtype)
        if kind == "max":
            cases.append(
                Case(
                    f"grad_out {g.shape}, {fc.label}",
                    {"grad_out": g, "x": x, "kernel_size": ks, "stride": st},
                    ("grad_out", "x", "kernel_size"),
                )
            )
        else:
            cases.append(
                Case(
                    f"grad_out {g.shape}, x_shape={x.shape}, kernel_size={ks!r}, stride={st!r}",
                    {"grad_out": g, "x_shape": x.shape, "kernel_size": ks, "stride": st},
                    ("grad_out", "x_shape", "kernel_size"),
                )
            )
    return cases


def numeric_gradient_functions(hidden: bool) -> list[tuple[str, Callable[[np.ndarray], float], np.ndarray]]:
    """(label, f, x) triples for numeric_gradient; x is float64, float32 or integer (the gradient is
    always computed on a float64 copy)."""
    rng = case_rng("numeric_gradient", hidden)
    a = rng.standard_normal((2, 3))
    cube: Callable[[np.ndarray], float] = lambda x: float(np.sum(x**3))  # noqa: E731
    if not hidden:
        return [
            ("f(x) = sum(x**3), x = [0.5, -1.2, 2.0] float64", cube, np.array([0.5, -1.2, 2.0])),
            ("f(x) = sum(x**3), x = [0.5, -1.2, 2.0] float32", cube, np.array([0.5, -1.2, 2.0], np.float32)),
            ("f(x) = sum(x**3), x = [1, -2, 3] (integers)", cube, np.array([1, -2, 3])),
        ]
    return [
        ("f(x) = sum(x**3), x of shape (3,) float32", cube, rng.standard_normal(3).astype(np.float32)),
        (
            "f(x) = sum(sin(x) * A), x of shape (2, 3)",
            lambda x: float(np.sum(np.sin(x) * a)),
            rng.standard_normal((2, 3)),
        ),
        (
            "f(x) = sum(exp(x)) * x[0, 1, 0, 0], x of shape (1, 2, 2, 3)",
            lambda x: float(np.sum(np.exp(x)) * x[0, 1, 0, 0]),
            rng.standard_normal((1, 2, 2, 3)),
        ),
        ("f(x) = sum(x**3), x of shape (2, 2) integers", cube, rng.integers(-4, 5, size=(2, 2))),
    ]


def gradient_error_setup(hidden: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(x, w, g, k) for gradient_error: the loss sum(conv2d(x, w) * g) of w, and an element k to perturb."""
    rng = case_rng("gradient_error", hidden)
    x = rng.standard_normal((1, 2, 5, 4))
    w = rng.standard_normal((3, 2, 2, 3))
    g = rng.standard_normal(cl.conv2d(x, w, stride=(1, 2)).shape)
    return x, w, g, int(rng.integers(0, w.size))


# ---------------------------------------------------------------------------------------
# Assignment 4
# ---------------------------------------------------------------------------------------


def edge_images(hidden: bool) -> list[tuple[str, np.ndarray]]:
    """(label, image) pairs for edge_magnitude / detect_edges."""
    step = np.zeros((6, 7))
    step[:, 3:] = 1.0
    if not hidden:
        return [("a 6x7 vertical step edge", step)]
    rng = hidden_rng("edges")
    cam = cl.load_image("camera")
    h, w = (int(v) for v in rng.integers(3, 12, size=2))
    ch, cw = (int(v) for v in rng.integers(32, 80, size=2))
    r0, c0 = int(rng.integers(0, cam.shape[0] - ch)), int(rng.integers(0, cam.shape[1] - cw))
    return [
        ("a 6x7 vertical step edge transposed (7x6)", step.T.copy()),
        (f"random {h}x{w} image", rng.random((h, w))),
        (
            f"the 'camera' image, rows {r0}:{r0 + ch}, columns {c0}:{c0 + cw}",
            np.array(cam[r0 : r0 + ch, c0 : c0 + cw]),
        ),
    ]


def threshold_cases(hidden: bool) -> list[tuple[str, np.ndarray, float]]:
    """(label, image, threshold) for detect_edges, each with a pixel whose magnitude EQUALS
    threshold * max (``>`` and ``>=`` differ there).

    The images are integers, so gx and gy are exact integers in any order of summation, and
    the largest magnitude and the tied one are whole numbers (sqrt of a perfect square): the
    tie is exact for every correct implementation.
    """
    rng = case_rng("edges:thresholds", hidden)
    out: list[tuple[str, np.ndarray, float]] = []
    while len(out) < (1 if not hidden else 2):
        h, w = (int(v) for v in rng.integers(5, 10, size=2))
        img = rng.integers(0, 4, size=(h, w)).astype(np.float64)
        gx = cl.correlate2d(img, cl.get_kernel("sobel_x"), "same")
        gy = cl.correlate2d(img, cl.get_kernel("sobel_y"), "same")
        sq = np.rint(gx**2 + gy**2).astype(np.int64)
        top = int(sq.max())
        root = math.isqrt(top)
        if root * root != top or top == 0:
            continue
        for t2 in sorted(set(sq.ravel().tolist())):
            t = math.isqrt(t2)
            if 0 < t2 < top and t * t == t2 and (t / root) * root == t and 0.2 <= t / root <= 0.8:
                out.append((f"a {h}x{w} image of integers 0-3, threshold={t}/{root}", img, t / root))
                break
    return out


def softmax_cases(hidden: bool) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, logits, y) triples for softmax_cross_entropy."""
    if not hidden:
        rng = case_rng("softmax", False)
        apart = np.array([[1.0, 2.0, 0.5], [1001.0, 1003.0, 999.0], [-998.0, -1000.0, -999.5]])
        return [
            ("logits (4, 3), y=[0, 2, 1, 2]", rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])),
            (
                "large logits (3, 4) around 1000, y=[3, 0, 1]",
                1000 + 20 * rng.standard_normal((3, 4)),
                np.array([3, 0, 1]),
            ),
            ("rows far apart in scale (around 1, 1000 and -1000), y=[1, 0, 2]", apart, np.array([1, 0, 2])),
        ]
    rng = hidden_rng("softmax")
    n = int(rng.integers(8, 33))
    apart = rng.standard_normal((6, 10)) + np.array([0.0, 900.0, -900.0, 400.0, -50.0, 2000.0])[:, None]
    return [
        (f"logits ({n}, 10)", 3 * rng.standard_normal((n, 10)), rng.integers(0, 10, n)),
        (
            "large logits (5, 10), values around 1000",
            1000 + 50 * rng.standard_normal((5, 10)),
            rng.integers(0, 10, 5),
        ),
        ("rows far apart in scale (6, 10), from around -900 to around 2000", apart, rng.integers(0, 10, 6)),
        ("one sample (1, 10)", rng.standard_normal((1, 10)), rng.integers(0, 10, 1)),
        ("logits (4, 3)", rng.standard_normal((4, 3)), rng.integers(0, 3, 4)),
    ]


def param_count_specs(hidden: bool) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """((c_in, c_out, k) for conv_params, (n_in, n_out) for dense_params)."""
    conv_specs = [(1, 8, 3), (3, 64, 3)]
    dense_specs = [(72, 10), (784, 100)]
    if hidden:
        rng = hidden_rng("param_counts")
        conv_specs = [
            (int(rng.integers(2, 65)), int(rng.integers(2, 129)), int(rng.choice([1, 3, 5, 7])))
            for _ in range(3)
        ]
        dense_specs = [(1, 1)] + [(int(rng.integers(2, 5000)), int(rng.integers(2, 1001))) for _ in range(2)]
    return conv_specs, dense_specs
