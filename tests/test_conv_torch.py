"""conv2d, conv2d_backward, conv_transpose2d, im2col/col2im against torch (CPU)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_lib import (
    METHODS,
    choose_method,
    col2im,
    conv2d,
    conv2d_backward,
    conv_transpose2d,
    get_memory_budget,
    im2col,
    release_workspaces,
    set_memory_budget,
    winograd_kernels,
)

# torch notes that it copies the input for padding="same" with even kernels; harmless here
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def _random_case(seed: int):
    """A random conv2d configuration: non-square, even/odd kernels, stride that may not
    divide, dilation, groups, padding 0 / pair / "same" / "valid"."""
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 1, 2, 3]))
    c_in = groups * int(rng.integers(1, 4))
    c_out = groups * int(rng.integers(1, 4))
    n = int(rng.integers(1, 4))
    kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
    dh, dw = (int(v) for v in rng.choice([1, 1, 2, 3], size=2))
    sh, sw = (int(v) for v in rng.choice([1, 2, 3], size=2))
    choice = int(rng.integers(0, 4))
    padding = [0, (int(rng.integers(0, 3)), int(rng.integers(0, 3))), "same", "valid"][choice]
    if padding == "same":
        sh = sw = 1
    h = dh * (kh - 1) + 1 + int(rng.integers(0, 9))
    w = dw * (kw - 1) + 1 + int(rng.integers(0, 9))
    kwargs = dict(stride=(sh, sw), padding=padding, dilation=(dh, dw), groups=groups)
    return (n, c_in, h, w), (c_out, c_in // groups, kh, kw), kwargs


CASES = [_random_case(seed) for seed in range(30)] + [
    ((1, 1, 7, 7), (1, 1, 3, 3), dict(stride=2, padding=0, dilation=1, groups=1)),  # batch 1, 1 channel
    ((2, 3, 10, 9), (4, 3, 4, 2), dict(stride=1, padding="same", dilation=1, groups=1)),  # even "same"
    ((2, 4, 11, 8), (4, 1, 3, 3), dict(stride=3, padding=1, dilation=2, groups=4)),  # depthwise
    ((1, 2, 8, 13), (3, 2, 8, 13), dict(stride=1, padding=0, dilation=1, groups=1)),  # kernel == input
    ((2, 2, 12, 12), (2, 2, 4, 4), dict(stride=3, padding=0, dilation=1, groups=1)),  # 12-4 % 3 != 0
]


def _torch_forward_backward(x, w, b, g, kwargs):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    out = F.conv2d(xt, wt, bt, **kwargs)
    out.backward(torch.tensor(g))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _close(got, want, dtype):
    tol = TOL[dtype]
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_conv2d_forward_backward_vs_torch(case, dtype):
    x_shape, w_shape, kwargs = CASES[case]
    rng = np.random.default_rng(1000 + case)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    probe = F.conv2d(torch.tensor(x), torch.tensor(w), **kwargs)
    g = rng.standard_normal(probe.shape).astype(dtype)
    out_t, gx_t, gw_t, gb_t = _torch_forward_backward(x, w, b, g, kwargs)
    for method in METHODS + ("auto",):
        out = conv2d(x, w, b, method=method, **kwargs)
        assert out.dtype == dtype and out.shape == out_t.shape
        _close(out, out_t, dtype)
    for method in ("direct", "im2col", "auto"):
        gx, gw, gb = conv2d_backward(g, x, w, method=method, **kwargs)
        assert gx.dtype == gw.dtype == gb.dtype == dtype
        assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == b.shape
        _close(gx, gx_t, dtype)
        _close(gw, gw_t, dtype)
        _close(gb, gb_t, dtype)


def test_untouched_rows_get_zero_gradient():
    """Stride 3 over 9 rows with a 2x2 kernel: windows start at 0, 3, 6, so rows and
    columns 2, 5 and 8 are never read."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 1, 9, 9)), rng.standard_normal((1, 1, 2, 2))
    g = rng.standard_normal((1, 1, 3, 3))
    gx, _, _ = conv2d_backward(g, x, w, stride=3)
    for idx in (2, 5, 8):
        assert np.all(gx[0, 0, idx, :] == 0) and np.all(gx[0, 0, :, idx] == 0)
    assert np.all(gx[0, 0, :2, :2] != 0)


def test_conv2d_int_input_gives_float64():
    x = np.arange(2 * 3 * 5 * 5).reshape(2, 3, 5, 5)
    w = np.ones((4, 3, 3, 3), dtype=np.int32)
    out = conv2d(x, w, padding=1)
    assert out.dtype == np.float64
    want = F.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), padding=1)
    assert np.array_equal(out, want.numpy())


def test_conv2d_mixed_precision_promotes():
    x = np.ones((1, 1, 4, 4), np.float32)
    assert conv2d(x, np.ones((1, 1, 2, 2), np.float64)).dtype == np.float64
    assert conv2d(x, np.ones((1, 1, 2, 2), np.float32), bias=np.zeros(1)).dtype == np.float64


TRANSPOSE_CASES = [
    ((2, 4, 5, 6), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1, dilation=1, groups=2)),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(stride=(1, 2), padding=0, output_padding=(0, 1), dilation=2, groups=1)),
    ((3, 3, 3, 7), (3, 2, 4, 1), dict(stride=3, padding=(2, 0), output_padding=2, dilation=1, groups=1)),
    ((1, 6, 5, 5), (6, 1, 3, 3), dict(stride=1, padding=1, output_padding=0, dilation=1, groups=6)),
    ((2, 1, 1, 1), (1, 2, 5, 4), dict(stride=2, padding=0, output_padding=1, dilation=1, groups=1)),
    ((1, 2, 6, 3), (2, 2, 2, 3), dict(stride=1, padding=0, output_padding=(1, 2), dilation=(2, 3), groups=1)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(TRANSPOSE_CASES) + 10))
def test_conv_transpose2d_vs_torch(case, dtype):
    if case < len(TRANSPOSE_CASES):
        x_shape, w_shape, kwargs = TRANSPOSE_CASES[case]
    else:  # the random conv2d cases, read backwards
        conv_x, conv_w, conv_kw = CASES[case]
        if isinstance(conv_kw["padding"], str):
            conv_kw = dict(conv_kw, padding=0)
        zeros = dict(dtype=torch.float64)
        probe = F.conv2d(torch.zeros(conv_x, **zeros), torch.zeros(conv_w, **zeros), **conv_kw)
        x_shape = tuple(probe.shape)
        w_shape = conv_w
        kwargs = dict(conv_kw, output_padding=0)
    rng = np.random.default_rng(2000 + case)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * kwargs["groups"]).astype(dtype)
    want = F.conv_transpose2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kwargs).numpy()
    got = conv_transpose2d(x, w, b, **kwargs)
    assert got.dtype == dtype and got.shape == want.shape
    _close(got, want, dtype)


@pytest.mark.parametrize(
    "x_shape, k, s, p, d",
    [((2, 3, 7, 9), (3, 2), (1, 1), (0, 0), (1, 1)), ((1, 2, 10, 8), (3, 3), (2, 3), (1, 2), (2, 1))],
)
def test_im2col_col2im_vs_torch_unfold_fold(x_shape, k, s, p, d):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape)
    cols = im2col(x, k, s, p, d)
    want = F.unfold(torch.tensor(x), k, dilation=d, padding=p, stride=s).numpy()
    np.testing.assert_array_equal(cols, want)
    back = col2im(cols, x_shape, k, s, p, d)
    want_back = F.fold(torch.tensor(want), x_shape[2:], k, dilation=d, padding=p, stride=s).numpy()
    np.testing.assert_allclose(back, want_back, rtol=1e-14, atol=1e-14)


@pytest.fixture
def restore_budget():
    old = get_memory_budget()
    yield
    set_memory_budget(old)


def _peaks(fn_forward, fn_backward):
    release_workspaces()  # the work arrays kept between calls are allocated, and counted, anew
    tracemalloc.start()
    try:
        out = fn_forward()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        back = fn_backward()
        _, peak_back = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, back, peak, peak_back


@pytest.mark.parametrize("method", ["im2col", "fft"])
def test_memory_budget_is_honoured(method, restore_budget):
    """With a 64 KiB budget the peak allocation stays near input + output, well below
    what a 1 GiB budget uses; results agree with the large-budget computation."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((8, 16, 32, 32))  # 1 MiB
    w = rng.standard_normal((16, 16, 5, 5))
    g = rng.standard_normal((8, 16, 32, 32))

    def forward():
        return conv2d(x, w, padding=2, method=method)

    def backward():
        return conv2d_backward(g, x, w, padding=2, method=method)

    set_memory_budget(2**30)
    ref, ref_back, big_peak, _ = _peaks(forward, backward)
    set_memory_budget(64 * 1024)
    got, got_back, peak, peak_back = _peaks(forward, backward)
    mib = 2**20
    # forward: padded input (1.27 MiB) + output (1 MiB) + chunk-sized temporaries;
    # backward: padded input, padded grad_x, cropped grad_x (3.5 MiB) + chunk temporaries
    assert peak < 3.5 * mib, peak / mib
    assert peak_back < 5.0 * mib, peak_back / mib
    assert big_peak > peak + 4 * mib, (big_peak / mib, peak / mib)  # the budget is what limits
    unchunked_cols = 8 * 16 * 25 * 32 * 32 * 8  # 25 MiB
    assert unchunked_cols > 7 * peak
    # equal up to rounding (BLAS may order sums differently for different chunk shapes)
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-12)
    for a, b in zip(got_back, ref_back, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-12)


def test_memory_budget_counts_the_products_of_many_filters(restore_budget):
    """im2col's chunks hold the column matrix AND the products (or grad_out's rows): O
    values per position. With 4096 filters on a one-channel image those dominate, and a
    1 MiB budget keeps them to a band of rows: forward, backward, and the strided
    backward on the flat grid. (One chunk of the whole image added 30-34 MiB.)"""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 1, 32, 32))
    w = rng.standard_normal((4096, 1, 3, 3))
    g = rng.standard_normal((1, 4096, 32, 32))  # 32 MiB, as is the output
    g2 = rng.standard_normal((1, 4096, 16, 16))
    mib = 2**20
    cases = {
        "forward": (lambda: conv2d(x, w, padding=1, method="im2col"), g.nbytes + 3 * mib),
        # grad_x is the "full" correlation of grad_out with 4096 input channels: one
        # output row of its column matrix (9*4096 values per position) per thread at least
        "backward": (lambda: conv2d_backward(g, x, w, padding=1, method="im2col"), 36 * mib),
        "strided backward": (
            lambda: conv2d_backward(g2, x, w, padding=1, stride=2, method="im2col"),
            5 * mib,
        ),
    }
    for name, (fn, bound) in cases.items():
        set_memory_budget(2**30)
        want = fn()
        set_memory_budget(2**20)
        release_workspaces()
        tracemalloc.start()
        try:
            got = fn()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < bound, (name, peak / mib)
        got, want = (r if isinstance(r, tuple) else (r,) for r in (got, want))
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("batch", [1, 3])
def test_memory_budget_chunk_sizes_agree(batch, restore_budget):
    """Tiny budgets (one output row per chunk) give the unchunked result, forward and
    backward (a strided layer's grad_x: bands of one image's rows overlap, whole images
    do not)."""
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((batch, 4, 20, 17)), rng.standard_normal((6, 2, 3, 3))
    kwargs = dict(stride=2, padding=1, groups=2)
    g = rng.standard_normal(conv2d(x, w, **kwargs).shape)
    set_memory_budget(2**30)
    ref = conv2d(x, w, method="im2col", **kwargs)
    ref_back = conv2d_backward(g, x, w, method="im2col", **kwargs)
    for budget in (1, 1000, 50_000):
        set_memory_budget(budget)
        for method in ("im2col", "fft"):
            got = conv2d(x, w, method=method, **kwargs)
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
        for a, b in zip(conv2d_backward(g, x, w, method="im2col", **kwargs), ref_back, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_choose_method_nchw():
    assert choose_method((8, 64, 56, 56), (64, 64, 3, 3), dtype=np.float32) == "winograd"
    assert choose_method((8, 64, 56, 56), (64, 64, 3, 3), dtype=np.int64) == "im2col"  # exact
    # ResNet's stem: Winograd over the polyphase components when its transforms are
    # compiled (tests/test_winograd_strided.py), im2col otherwise
    assert choose_method((2, 3, 224, 224), (64, 3, 7, 7), stride=2) == "winograd"
    assert choose_method((1, 3, 224, 224), (64, 3, 7, 7), stride=2) == "winograd"  # one image too
    with winograd_kernels.numpy_transforms():
        assert choose_method((2, 3, 224, 224), (64, 3, 7, 7), stride=2) == "im2col"
    assert choose_method((1, 1, 512, 512), (1, 1, 31, 31)) == "fft"


@pytest.mark.parametrize("method", ["auto", "direct", "im2col", "fft", "winograd"])
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs"),
    [
        ((0, 3, 8, 8), (4, 3, 3, 3), dict(padding=1)),
        ((0, 3, 40, 40), (4, 3, 7, 7), dict(stride=2, padding=3)),
    ],
)
def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients(method, x_shape, w_shape, kwargs):
    """N = 0, as torch allows: the output has no images, grad_x none, grad_w and grad_b
    are zeros (sums over no images), for every method (the chunked ones used to divide
    by the number of images)."""
    x, w = np.ones(x_shape), np.ones(w_shape)
    xt, wt = torch.zeros(x_shape, requires_grad=True), torch.ones(w_shape, requires_grad=True)
    out_t = F.conv2d(xt, wt, **kwargs)
    out = conv2d(x, w, method=method, **kwargs)
    assert out.shape == tuple(out_t.shape) and out.dtype == np.float64
    g = np.ones(out.shape)
    if method == "winograd" and kwargs.get("stride", 1) != 1:
        method = "auto"  # Winograd's backward is for stride-1 layers
    grad_x, grad_w, grad_b = conv2d_backward(g, x, w, method=method, **kwargs)
    assert grad_x.shape == x_shape and grad_w.shape == w_shape and grad_b.shape == (w_shape[0],)
    np.testing.assert_array_equal(grad_w, 0)
    np.testing.assert_array_equal(grad_b, 0)
