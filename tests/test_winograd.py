"""method="winograd" (conv_lib.winograd): F(m x m, 3x3) against torch and the direct
method, backward as the adjoint of forward, memory budget, choice, and errors; each
on the compiled transforms (conv_lib.winograd_kernels, numba) and on the NumPy path."""

from __future__ import annotations

import os

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
    winograd_1d,
    winograd_kernels,
    winograd_matrices,
)
from conv_lib.winograd import FLOAT32_RTOL, TILE, winograd_error

SETTINGS = settings(max_examples=25, deadline=None)


@pytest.mark.parametrize("m", [2, 4])
def test_1d_transforms_compute_a_correlation(m):
    """y = A^T [(G g) * (B^T d)] is the valid correlation of d with g, and the identity
    sum_j AT[i, j] G[j, k] BT[j, l] = [l == i + k] holds exactly."""
    rng = np.random.default_rng(m)
    d, g = rng.standard_normal(m + 2), rng.standard_normal(3)
    np.testing.assert_allclose(winograd_1d(d, g, m), np.correlate(d, g, "valid"), rtol=1e-13, atol=1e-13)
    at, gm, bt = winograd_matrices(m)
    assert at.shape == (m, m + 2) and gm.shape == (m + 2, 3) and bt.shape == (m + 2, m + 2)
    triple = np.einsum("ij,jk,jl->ikl", at, gm, bt)
    want = np.zeros((m, 3, m + 2))
    for i in range(m):
        for k in range(3):
            want[i, k, i + k] = 1
    np.testing.assert_allclose(triple, want, atol=1e-14)


@st.composite
def layers(draw):
    """Random 3x3 stride-1 layers: groups, any padding (zero, pairs, larger than the
    kernel, "same"), sizes that are and are not multiples of the tile."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    padding = draw(st.sampled_from([0, 1, 2, (0, 2), (3, 1), "same"]))
    ph, pw = (1, 1) if padding == "same" else ((padding, padding) if isinstance(padding, int) else padding)
    h = max(1, 3 - 2 * ph) + draw(st.integers(0, 11))
    w = max(1, 3 - 2 * pw) + draw(st.integers(0, 11))
    n = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in // groups, 3, 3))
    return x, weight, dict(padding=padding, groups=groups), rng


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(layers(), st.sampled_from([np.float32, np.float64]), st.sampled_from([None, 1]), st.booleans())
def test_winograd_matches_direct(path, layer, dtype, budget, with_bias):
    """Forward (with and without a bias, which Winograd adds inside its chunks) and
    backward against the direct method; a 1-byte budget makes every tile row its own
    chunk, so chunks start at every tile row of the padded input."""
    x, weight, kwargs, rng = layer
    x, weight = x.astype(dtype), weight.astype(dtype)
    bias = rng.standard_normal(weight.shape[0]).astype(dtype) if with_bias else None
    want = conv2d(x.astype(np.float64), weight.astype(np.float64), bias, method="direct", **kwargs)
    g = rng.standard_normal(want.shape).astype(dtype)
    want_back = conv2d_backward(
        g.astype(np.float64), x.astype(np.float64), weight.astype(np.float64), method="direct", **kwargs
    )
    old = get_memory_budget()
    set_memory_budget(budget or old)
    try:
        with transforms(path):
            got = conv2d(x, weight, bias, method="winograd", **kwargs)
            got_back = conv2d_backward(g, x, weight, method="winograd", **kwargs)
    finally:
        set_memory_budget(old)
    assert got.dtype == dtype
    close(got, want.astype(dtype), dtype)
    for got_part, want_part in zip(got_back, want_back, strict=True):
        close(got_part, want_part.astype(dtype), dtype)


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(layers())
def test_winograd_backward_is_the_adjoint(path, layer):
    """<conv(x, w), g> = <x, grad_x> = <w, grad_w> (the forward is linear in x and in w)."""
    x, weight, kwargs, rng = layer
    with transforms(path):
        out = conv2d(x, weight, method="winograd", **kwargs)
        g = rng.standard_normal(out.shape)
        grad_x, grad_w, _ = conv2d_backward(g, x, weight, method="winograd", **kwargs)
    lhs = float(np.sum(out * g))
    scale = float(np.abs(out).sum() * np.abs(g).max()) + 1e-30
    assert abs(lhs - float(np.sum(x * grad_x))) <= 1e-12 * scale
    assert abs(lhs - float(np.sum(weight * grad_w))) <= 1e-12 * scale


TORCH_CASES = [
    ((2, 8, 12, 12), (16, 8, 3, 3), dict(padding=1, groups=1)),  # tiles divide the output
    ((1, 6, 9, 14), (4, 3, 3, 3), dict(padding=(2, 0), groups=2)),  # partial tiles, groups
    ((3, 4, 7, 5), (4, 1, 3, 3), dict(padding="same", groups=4)),  # depthwise
    ((1, 3, 3, 3), (5, 3, 3, 3), dict(padding=0, groups=1)),  # one output pixel
    ((3, 32, 30, 34), (24, 32, 3, 3), dict(padding=(1, 2), groups=1)),  # chunks on both threads
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(TORCH_CASES)))
def test_winograd_matches_torch(case, dtype, path):
    x_shape, w_shape, kwargs = TORCH_CASES[case]
    rng = np.random.default_rng(case)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    bt = torch.tensor(b, requires_grad=True)
    out_t = F.conv2d(xt, wt, bt, **kwargs)
    g = rng.standard_normal(tuple(out_t.shape)).astype(dtype)
    out_t.backward(torch.tensor(g))
    with transforms(path):
        close(conv2d(x, w, b, method="winograd", **kwargs), out_t.detach().numpy(), dtype)
        gx, gw, gb = conv2d_backward(g, x, w, method="winograd", **kwargs)
    close(gx, xt.grad.numpy(), dtype)
    close(gw, wt.grad.numpy(), dtype)
    close(gb, bt.grad.numpy(), dtype)


def test_float32_error_of_the_tiles():
    """The chosen tile keeps float32 within the stated tolerance; the smaller tile is
    more exact (the trade-off the tile size makes), float64 is exact to ~1e-14."""
    big, small = winograd_error(TILE, c_in=64), winograd_error(2, c_in=64)
    assert TILE == 4 and 1e-7 < big <= FLOAT32_RTOL
    assert small < big / 4
    assert winograd_error(TILE, c_in=64, dtype=np.float64) < 1e-13


@pytest.fixture
def restore_budget():
    old = get_memory_budget()
    yield
    set_memory_budget(old)


@pytest.mark.parametrize("path", PATHS)
def test_memory_budget_bounds_the_transformed_tiles(restore_budget, path):
    """With a 64 KiB budget the transformed tiles are made a band of tile rows at a
    time: the peak stays near the output's size, far below the default's. (The
    default's peak depends on whether one or both threads hold a chunk at once.)"""
    rng = np.random.default_rng(5)
    n = 8 if path == "compiled" else 4  # the compiled path's chunks are smaller: more images
    x = rng.standard_normal((n, 32, 32, 32))  # n/4 MiB, as is the output
    w = rng.standard_normal((32, 32, 3, 3))
    g = rng.standard_normal((n, 32, 32, 32))
    with transforms(path):
        set_memory_budget(2**30)
        ref, big = peak(lambda: conv2d(x, w, padding=1, method="winograd"))
        ref_back, big_back = peak(lambda: conv2d_backward(g, x, w, padding=1, method="winograd"))
        set_memory_budget(64 * 1024)
        got, small = peak(lambda: conv2d(x, w, padding=1, method="winograd"))
        got_back, small_back = peak(lambda: conv2d_backward(g, x, w, padding=1, method="winograd"))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(got_back, ref_back, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)
    mib, out = 2**20, x.nbytes
    # the output + one band of tile rows per thread (its input tiles, products and work
    # rows); the default budget's chunks: whole images, 2**20 elements of V and products
    # per thread on the compiled path (4 images here), up to 32 MiB on the NumPy path
    assert small < out + 1.5 * mib
    assert big > small + 2 * mib
    # grad_x (a forward pass, kept) + grad_w's bands, which also hold grad_out's tiles,
    # and its sums over tiles (36*C_out*C_in values, twice per thread)
    assert small_back < 2 * out + 2 * mib
    assert big_back > small_back + 2 * mib


def test_choose_method_picks_winograd_where_it_pays():
    with transforms("compiled"):
        assert choose_method((8, 64, 56, 56), (64, 64, 3, 3), dtype=np.float32) == "winograd"
        assert choose_method((8, 128, 28, 28), (128, 128, 3, 3), dtype=np.float64) == "winograd"
        assert choose_method((8, 64, 14, 14), (64, 64, 3, 3), dtype=np.float32) == "winograd"
        # few channels: the transforms cost more than they save; 7x7 maps: 4 tiles per
        # image, a third of them padding, and skinny GEMMs
        assert choose_method((2, 3, 16, 16), (4, 3, 3, 3), dtype=np.float32) == "im2col"
        assert choose_method((8, 512, 7, 7), (512, 512, 3, 3), dtype=np.float32) == "im2col"
        # grouped layers with several channels per group take it, depthwise ones do not
        assert choose_method((8, 128, 28, 28), (128, 4, 3, 3), dtype=np.float32) == "winograd"
        assert choose_method((4, 32, 56, 56), (32, 1, 3, 3), dtype=np.float32) == "im2col"
    with transforms("numpy"):  # the NumPy path's chunks cost more: small images stay im2col
        assert choose_method((8, 64, 56, 56), (64, 64, 3, 3), dtype=np.float32) == "winograd"
        assert choose_method((8, 64, 14, 14), (64, 64, 3, 3), dtype=np.float32) == "im2col"
    # not a 3x3 stride-1 layer, or an integer input that must stay exact
    assert choose_method((8, 64, 56, 56), (64, 64, 3, 3), stride=2) == "im2col"
    assert choose_method((8, 64, 56, 56), (64, 64, 5, 5)) == "im2col"
    assert choose_method((8, 64, 56, 56), (64, 64, 3, 3), dilation=2) == "im2col"
    assert choose_method((8, 64, 56, 56), (64, 64, 3, 3), dtype=np.int32) == "im2col"


@pytest.mark.parametrize("path", PATHS)
def test_auto_runs_winograd_where_it_pays(path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 128, 28, 28), dtype=np.float32)
    w = rng.standard_normal((128, 128, 3, 3), dtype=np.float32)
    g = rng.standard_normal((2, 128, 28, 28), dtype=np.float32)
    with transforms(path):
        assert choose_method(x.shape, w.shape, dtype=x.dtype) == "winograd"
        assert np.array_equal(conv2d(x, w, padding=1), conv2d(x, w, padding=1, method="winograd"))
        # backward: grad_x by Winograd (a stride-1 3x3 correlation of grad_out); grad_w
        # by Winograd's adjoint on the compiled transforms, by im2col on the NumPy path
        auto_gx, auto_gw, _ = conv2d_backward(g, x, w, padding=1)
        winograd_gx, winograd_gw, _ = conv2d_backward(g, x, w, padding=1, method="winograd")
        im2col_gw = conv2d_backward(g, x, w, padding=1, method="im2col")[1]
    assert np.array_equal(auto_gx, winograd_gx)
    assert np.array_equal(auto_gw, winograd_gw if path == "compiled" else im2col_gw)
    assert not np.array_equal(winograd_gw, im2col_gw)  # the two differ in rounding: the check can fail


@pytest.mark.parametrize("before", [None, "1", "0"])
def test_numpy_transforms_switches_path_and_restores_the_environment(monkeypatch, before):
    if before is None:
        monkeypatch.delenv("CONV_LIB_JIT", raising=False)
    else:
        monkeypatch.setenv("CONV_LIB_JIT", before)
    with winograd_kernels.numpy_transforms():
        assert not winograd_kernels.available()
    assert os.environ.get("CONV_LIB_JIT") == before
    assert winograd_kernels.available() == (before != "0")


def test_compiled_kernels_are_compiled_once_per_dtype():
    """The compiled path really runs numba's kernels: one set per float dtype."""
    rng = np.random.default_rng(4)
    with transforms("compiled"):
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal((1, 4, 9, 9)).astype(dtype)
            conv2d(x, rng.standard_normal((2, 4, 3, 3)).astype(dtype), padding=1, method="winograd")
    compiled = {char for char in "fd" if winograd_kernels.kernels(char).input_transform.signatures}
    assert winograd_kernels.kernels("f") is winograd_kernels.kernels("f")  # one set per dtype
    assert compiled == {"f", "d"}


@pytest.mark.parametrize(
    ("kwargs", "w_shape", "message"),
    [
        (
            dict(dilation=(1, 2)),
            (2, 2, 3, 3),
            r"dilation: got \(1, 2\) with method='winograd'; expected \(1, 1\)",
        ),
        (
            dict(),
            (2, 2, 5, 5),
            r"weight: got kernel size \(5, 5\) with method='winograd' at stride 1; expected \(3, 3\)",
        ),
    ],
)
def test_unsupported_layers_are_refused(kwargs, w_shape, message):
    x, w = np.ones((1, 2, 9, 9)), np.ones(w_shape)
    with pytest.raises(ValueError, match=message):
        conv2d(x, w, method="winograd", **kwargs)
    out = conv2d(x, w, **kwargs)
    with pytest.raises(ValueError, match=message):
        conv2d_backward(np.ones_like(out), x, w, method="winograd", **kwargs)


def test_bad_tile_and_tile_input():
    with pytest.raises(ValueError, match=r"m: got 3; expected an output tile size in \(2, 4\)"):
        winograd_matrices(3)
    with pytest.raises(ValueError, match=r"d, g: got shapes \(5,\) and \(3,\); expected \(4,\) and \(3,\)"):
        winograd_1d(np.ones(5), np.ones(3), 2)
