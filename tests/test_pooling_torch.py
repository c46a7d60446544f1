"""max_pool2d / avg_pool2d and their backward passes against torch (CPU) autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_lib import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

# (x_shape, kernel_size, stride, padding): overlapping (stride < kernel), non-dividing
# strides, non-square kernels, padding up to half the kernel, batch 1
CASES = [
    ((2, 3, 8, 8), 2, None, 0),
    ((1, 2, 9, 7), 3, 1, 1),
    ((2, 1, 10, 9), (3, 2), (2, 1), (1, 0)),
    ((1, 4, 7, 11), 3, 2, 1),
    ((3, 2, 6, 5), (2, 3), (3, 2), (1, 1)),
    ((1, 1, 5, 5), 5, 1, 2),
    ((2, 2, 13, 6), (4, 1), (3, 1), (2, 0)),
    ((1, 3, 4, 9), (1, 3), None, (0, 1)),
]


def _tied_input(shape, seed, dtype):
    """Small integer values, so most windows contain several equal maxima."""
    return np.random.default_rng(seed).integers(0, 3, size=shape).astype(dtype)


def _torch_pool(fn, x, g, **kwargs):
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt, **kwargs)
    out.backward(torch.tensor(g))
    return out.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_max_pool_with_ties_vs_torch(case, dtype):
    x_shape, k, s, p = CASES[case]
    x = _tied_input(x_shape, case, dtype)
    out = max_pool2d(x, k, s, p)
    g = np.random.default_rng(50 + case).standard_normal(out.shape).astype(dtype)
    want, want_grad = _torch_pool(F.max_pool2d, x, g, kernel_size=k, stride=s, padding=p)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, want)
    grad = max_pool2d_backward(g, x, k, s, p)
    assert grad.dtype == dtype and grad.shape == x.shape
    np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_max_pool_continuous_vs_torch(case):
    x_shape, k, s, p = CASES[case]
    rng = np.random.default_rng(70 + case)
    x = rng.standard_normal(x_shape)
    out = max_pool2d(x, k, s, p)
    g = rng.standard_normal(out.shape)
    want, want_grad = _torch_pool(F.max_pool2d, x, g, kernel_size=k, stride=s, padding=p)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_allclose(grad := max_pool2d_backward(g, x, k, s, p), want_grad, rtol=1e-12, atol=1e-12)
    assert np.count_nonzero(grad) <= g.size


def test_max_pool_first_max_wins():
    """All-equal window: torch CPU gives the whole gradient to the top-left element."""
    x = np.ones((1, 1, 2, 2))
    grad = max_pool2d_backward(np.array([[[[5.0]]]]), x, 2)
    np.testing.assert_array_equal(grad, [[[[5.0, 0.0], [0.0, 0.0]]]])


def test_max_pool_all_neg_inf_window_matches_torch():
    x = np.full((1, 1, 3, 3), -np.inf)
    x[0, 0, 2, 2] = 1.0
    g = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # 4x4 windows, most of them all -inf
    want_out, want_grad = _torch_pool(F.max_pool2d, x, g, kernel_size=2, stride=1, padding=1)
    np.testing.assert_array_equal(max_pool2d(x, 2, 1, 1), want_out)
    np.testing.assert_array_equal(max_pool2d_backward(g, x, 2, 1, 1), want_grad)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_avg_pool_vs_torch(case, dtype, count_include_pad):
    x_shape, k, s, p = CASES[case]
    rng = np.random.default_rng(90 + case)
    x = rng.standard_normal(x_shape).astype(dtype)
    out = avg_pool2d(x, k, s, p, count_include_pad=count_include_pad)
    g = rng.standard_normal(out.shape).astype(dtype)
    want, want_grad = _torch_pool(
        F.avg_pool2d, x, g, kernel_size=k, stride=s, padding=p, count_include_pad=count_include_pad
    )
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, want, **tol)
    grad = avg_pool2d_backward(g, x.shape, k, s, p, count_include_pad=count_include_pad)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, want_grad, **tol)


def test_int_input_becomes_float64():
    x = np.arange(16).reshape(1, 1, 4, 4)
    assert max_pool2d(x, 2).dtype == np.float64
    np.testing.assert_array_equal(max_pool2d(x, 2), [[[[5.0, 7.0], [13.0, 15.0]]]])
    np.testing.assert_array_equal(avg_pool2d(x, 2), [[[[2.5, 4.5], [10.5, 12.5]]]])
