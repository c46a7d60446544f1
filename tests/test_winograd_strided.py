"""method="winograd" on strided layers (conv_lib.winograd_strided): the F(4, 4)
transforms, polyphase components + F(4x4, 4x4) against the direct method and torch on
both paths (compiled transforms and NumPy), the memory budget's chunks, the choice
"auto" makes, the backward pass of such layers, and the errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from winograd_paths import PATHS, close, peak, transforms

from conv_lib import (
    choose_method,
    conv2d,
    conv2d_backward,
    get_memory_budget,
    set_memory_budget,
    winograd_kernels,
)
from conv_lib.winograd_strided import matrices_f44, polyphase_kernel_size, supports

SETTINGS = settings(max_examples=30, deadline=None)


def test_f44_identity_holds_exactly():
    """sum_j AT[i, j] G[j, k] BT[j, l] = [l == i + k] in exact fractions: A^T [(G g) *
    (B^T d)] is the valid correlation of any d (7 values) with any g (4 values); and the
    float64 matrices are those fractions."""
    at, gm, bt = matrices_f44(exact=True)
    assert (len(at), len(at[0]), len(gm), len(gm[0]), len(bt), len(bt[0])) == (4, 7, 7, 4, 7, 7)
    for i in range(4):
        for k in range(4):
            for col in range(7):
                total = sum(at[i][j] * gm[j][k] * bt[j][col] for j in range(7))
                assert total == (1 if col == i + k else 0), (i, k, col, total)
    for exact, approx in zip((at, gm, bt), matrices_f44(), strict=True):
        np.testing.assert_array_equal(approx, [[float(v) for v in row] for row in exact])


def test_f44_interpolates_at_its_points():
    """A^T's columns are the powers of the points 0, 1, -1, 1/2, -1/2, -2 (and the
    point at infinity), as in Lavin and Gray's construction."""
    at, _, _ = matrices_f44(exact=True)
    points = [Fraction(p) for p in (0, 1, -1, Fraction(1, 2), Fraction(-1, 2), -2)]
    for i in range(4):
        assert at[i][:6] == [p**i for p in points]
        assert at[i][6] == (1 if i == 3 else 0)


@st.composite
def strided_layers(draw):
    """Random strided layers that method="winograd" computes: strides 1-4 per axis (not
    both 1), kernels up to 4 times the stride, groups, padding, bias, sizes that are
    and are not multiples of the 4x4 output tile."""
    sh, sw = draw(st.sampled_from([(2, 2), (2, 2), (1, 2), (3, 1), (2, 3), (4, 4)]))
    kh, kw = draw(st.integers(1, 4 * sh)), draw(st.integers(1, 4 * sw))
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh)), draw(st.integers(0, kw))
    h = max(1, kh - 2 * ph) + draw(st.integers(0, 14))
    w = max(1, kw - 2 * pw) + draw(st.integers(0, 14))
    n = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in // groups, kh, kw))
    bias = rng.standard_normal(c_out) if draw(st.booleans()) else None
    return x, weight, bias, dict(stride=(sh, sw), padding=(ph, pw), groups=groups)


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(strided_layers(), st.sampled_from([np.float32, np.float64]), st.sampled_from([None, 1]))
def test_strided_winograd_matches_direct(path, layer, dtype, budget):
    """Against the direct method in float64; a 1-byte budget makes every tile row its
    own chunk (chunks start at every tile row of the polyphase components)."""
    x, weight, bias, kwargs = layer
    assert supports(weight.shape[2:], kwargs["stride"], (1, 1))
    want = conv2d(x, weight, bias, method="direct", **kwargs)
    x, weight = x.astype(dtype), weight.astype(dtype)
    bias = None if bias is None else bias.astype(dtype)
    old = get_memory_budget()
    set_memory_budget(budget or old)
    try:
        with transforms(path):
            got = conv2d(x, weight, bias, method="winograd", **kwargs)
    finally:
        set_memory_budget(old)
    close(got, want.astype(dtype), dtype)


TORCH_CASES = [
    ((2, 3, 40, 36), (8, 3, 7, 7), dict(stride=2, padding=3)),  # a ResNet stem, small
    ((1, 4, 23, 29), (6, 2, 8, 5), dict(stride=(2, 3), padding=(1, 2), groups=2)),
    ((2, 3, 35, 35), (5, 3, 11, 11), dict(stride=4, padding=2)),  # AlexNet's first layer
    ((1, 16, 64, 48), (24, 16, 7, 7), dict(stride=2, padding=3)),  # chunks on both threads
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(TORCH_CASES)))
def test_strided_winograd_matches_torch(case, dtype, path):
    x_shape, w_shape, kwargs = TORCH_CASES[case]
    rng = np.random.default_rng(case)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kwargs).numpy()
    with transforms(path):
        close(conv2d(x, w, b, method="winograd", **kwargs), want, dtype)


@pytest.mark.parametrize("path", PATHS)
def test_memory_budget_bounds_the_transformed_tiles(path):
    """Beyond the output and the polyphase components (the size of the input), a call
    holds at most the budget's worth of transformed tiles, products and temporaries:
    with a 64 KiB budget, one tile row per thread; with 4 MiB, within the 4 MiB."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 3, 128, 128))  # 3 MiB
    w = rng.standard_normal((32, 3, 7, 7))
    kwargs = dict(stride=2, padding=3, method="winograd")
    old = get_memory_budget()
    try:
        with transforms(path):
            set_memory_budget(2**30)
            ref, big = peak(lambda: conv2d(x, w, **kwargs))
            set_memory_budget(64 * 1024)
            got, small = peak(lambda: conv2d(x, w, **kwargs))
            set_memory_budget(4 * 2**20)
            got_mid, mid = peak(lambda: conv2d(x, w, **kwargs))
    finally:
        set_memory_budget(old)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_mid, ref, rtol=1e-12, atol=1e-12)
    mib = 2**20
    base = ref.nbytes + 8 * 12 * 67 * 68 * 8  # output + components (N, 4 C, 4*16 + 3, 4*17)
    # one tile row per thread (V, products, work rows): 0.3 MiB per thread compiled, plus
    # the transformed weights (49*O*C*S values, 0.15 MiB here, outside the budget) and
    # the work rows of their transform; the NumPy path's temporaries about twice that
    assert small < base + (1.5 if path == "compiled" else 2) * mib
    assert mid < base + 4.5 * mib
    assert big > small + 3 * mib  # units of 8 tile rows on 2 threads


def test_auto_takes_it_for_large_kernels_at_stride_2_and_4():
    """The rule of choose_method: 49/16*s_h*s_w multiplications per output and channel
    against kH*kW, at most 0.45 of it, at least 64 output tiles (4x4), compiled
    transforms, floating data, not depthwise."""
    stem = ((8, 3, 224, 224), (64, 3, 7, 7))
    assert choose_method(*stem, stride=2, dtype=np.float32) == "winograd"
    assert choose_method((1, 3, 224, 224), (64, 3, 7, 7), stride=2, dtype=np.float32) == "winograd"
    assert choose_method((8, 3, 128, 128), (32, 3, 8, 8), stride=2, dtype=np.float64) == "winograd"
    deep = ((8, 128, 28, 28), (128, 128, 7, 7))  # 72 tiles
    assert choose_method(*deep, stride=2, dtype=np.float32) == "winograd"
    # fewer than 64 tiles: small images, and deep layers whose kernel transform would
    # cost more than the products save
    assert choose_method((1, 2, 12, 12), (2, 2, 7, 7), stride=2, dtype=np.float32) == "im2col"
    assert choose_method((2, 256, 28, 28), (256, 256, 7, 7), stride=2, dtype=np.float32) == "im2col"
    assert choose_method((1, 512, 14, 14), (512, 512, 7, 7), stride=2, dtype=np.float32) == "im2col"
    assert choose_method((1, 3, 227, 227), (96, 3, 11, 11), stride=4, dtype=np.float32) == "winograd"
    # ratios above 0.45: 5x5 (0.49) and 3x3 (1.36) at stride 2, 5x5 at stride (2, 3) (0.74)
    assert choose_method((8, 32, 32, 32), (64, 32, 5, 5), stride=2, dtype=np.float32) == "im2col"
    assert choose_method((8, 64, 56, 56), (128, 64, 3, 3), stride=2, dtype=np.float32) == "im2col"
    assert choose_method((2, 3, 64, 64), (16, 3, 5, 5), stride=(2, 3), dtype=np.float32) == "im2col"
    assert choose_method(*stem, stride=2, dtype=np.int64) == "im2col"  # exact stays exact
    depthwise = ((8, 64, 224, 224), (64, 1, 7, 7))
    assert choose_method(*depthwise, stride=2, dtype=np.float32) == "im2col"
    assert choose_method(*stem, stride=2, dilation=2, dtype=np.float32) == "im2col"
    with winograd_kernels.numpy_transforms():
        assert choose_method(*stem, stride=2, dtype=np.float32) == "im2col"


def _strided_call_in_child(queue):
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((1, 3, 64, 64)), rng.standard_normal((4, 3, 7, 7))
    got = conv2d(x, w, stride=2, padding=3, method="winograd")
    queue.put(float(np.abs(got - conv2d(x, w, stride=2, padding=3, method="direct")).max()))


@pytest.mark.skipif(not winograd_kernels.available(), reason="the compiled path runs on numba's threads")
def test_a_forked_child_computes_strided_layers():
    """After the parent ran a strided layer on numba's threads (OpenMP, which does not
    survive a fork), a child forked from it computes the layer too, on its own thread,
    instead of being terminated by OpenMP or waiting forever on a lock the parent held."""
    import multiprocessing
    import threading

    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((1, 3, 64, 64)), rng.standard_normal((4, 3, 7, 7))
    conv2d(x, w, stride=2, padding=3, method="winograd")  # the parent uses the threads
    context = multiprocessing.get_context("fork")
    def keep_calling(stop):
        while not stop.is_set():
            conv2d(x, w, stride=2, padding=3, method="winograd")

    for busy in (False, True):
        stop = threading.Event()
        # busy: another thread of the parent is inside strided calls while it forks
        worker = threading.Thread(target=keep_calling, args=(stop,))
        if busy:
            worker.start()
        queue = context.Queue()
        child = context.Process(target=_strided_call_in_child, args=(queue,))
        child.start()
        child.join(60)
        stop.set()
        if busy:
            worker.join()
        alive = child.is_alive()
        if alive:
            child.kill()
        assert not alive and child.exitcode == 0, (busy, child.exitcode)
        assert queue.get(timeout=5) < 1e-10


@pytest.mark.skipif(not winograd_kernels.available(), reason="the compiled path runs on numba's threads")
def test_numba_thread_count_is_put_back():
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)  # the caller's own setting (the call itself uses 2)
    try:
        conv2d(np.ones((1, 3, 40, 40)), np.ones((2, 3, 7, 7)), stride=2, padding=3, method="winograd")
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(before)


def test_auto_forward_and_backward_of_a_stem():
    """ "auto" computes the forward by Winograd and the backward by im2col (Winograd's
    backward is for stride-1 layers), both against torch."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 224, 224)).astype(np.float32)
    w = rng.standard_normal((64, 3, 7, 7)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = F.conv2d(xt, wt, bt, stride=2, padding=3)
    g = rng.standard_normal(tuple(out_t.shape)).astype(np.float32)
    out_t.backward(torch.tensor(g))
    assert choose_method(x.shape, w.shape, stride=2, dtype=np.float32) == "winograd"
    close(conv2d(x, w, b, stride=2, padding=3), out_t.detach().numpy(), np.float32)
    grads = conv2d_backward(g, x, w, stride=2, padding=3)
    for got, want in zip(grads, (xt.grad, wt.grad, bt.grad), strict=True):
        close(got, want.numpy(), np.float32)


def test_integer_inputs_stay_exact_under_auto():
    """Integer x and weight: "auto" keeps to exact methods (not Winograd), so the result
    holds the exact integers, for a strided stem and for a 3x3 layer Winograd would
    take in floating point, forward and backward."""
    rng = np.random.default_rng(8)
    x, w = rng.integers(-50, 50, (2, 3, 224, 224)), rng.integers(-50, 50, (64, 3, 7, 7))
    assert choose_method(x.shape, w.shape, stride=2, dtype=np.float32) == "winograd"
    got = conv2d(x, w, stride=2, padding=3)  # exact: every sum is an integer below 2**53
    np.testing.assert_array_equal(got, conv2d(x, w, stride=2, padding=3, method="im2col"))
    x3, w3 = rng.integers(-9, 9, (8, 16, 32, 32)), rng.integers(-9, 9, (16, 16, 3, 3))
    assert choose_method(x3.shape, w3.shape, dtype=np.float32) == "winograd"
    out = conv2d(x3, w3, padding=1)
    np.testing.assert_array_equal(out, conv2d(x3, w3, padding=1, method="direct"))
    g = rng.integers(-9, 9, out.shape)
    want = conv2d_backward(g, x3, w3, padding=1, method="direct")
    for got_part, want_part in zip(conv2d_backward(g, x3, w3, padding=1), want, strict=True):
        np.testing.assert_array_equal(got_part, want_part)


@pytest.mark.parametrize(
    ("kwargs", "w_shape", "message"),
    [
        (
            dict(stride=2),
            (2, 2, 9, 9),
            r"weight: got kernel size \(9, 9\) with method='winograd' at stride \(2, 2\); "
            r"expected at most \(8, 8\)",
        ),
        (
            dict(stride=(1, 2), dilation=2),
            (2, 2, 3, 3),
            r"dilation: got \(2, 2\) with method='winograd'; expected \(1, 1\)",
        ),
    ],
)
def test_layers_it_does_not_compute_are_refused(kwargs, w_shape, message):
    x, w = np.ones((1, 2, 20, 20)), np.ones(w_shape)
    with pytest.raises(ValueError, match=message):
        conv2d(x, w, method="winograd", **kwargs)


def test_backward_of_a_strided_layer_is_refused():
    x, w = np.ones((1, 2, 20, 20)), np.ones((3, 2, 7, 7))
    out = conv2d(x, w, stride=2, method="winograd")
    with pytest.raises(ValueError, match=r"stride: got \(2, 2\) with method='winograd' in conv2d_backward"):
        conv2d_backward(np.ones_like(out), x, w, stride=2, method="winograd")


def test_polyphase_kernel_size():
    assert polyphase_kernel_size((7, 7), (2, 2)) == (4, 4)
    assert polyphase_kernel_size((11, 5), (4, 2)) == (3, 3)
    assert supports((8, 8), (2, 2), (1, 1)) and not supports((9, 8), (2, 2), (1, 1))
    assert not supports((3, 3), (1, 1), (1, 1))  # stride 1 is conv_lib.winograd's
