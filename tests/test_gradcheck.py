"""Numerical gradient checking: it must pass right gradients and catch wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conv_lib import GradCheckResult, check_gradient, numeric_gradient


def cube_sum(x):
    return np.sum(x**3)


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 2, 2)])
def test_numeric_gradient_of_cube_sum(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    before = x.copy()
    grad = numeric_gradient(cube_sum, x)
    assert grad.shape == x.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(x, before)


@settings(max_examples=30, deadline=None)
@given(
    matrix=arrays(np.float64, (4, 4), elements=st.floats(-3, 3)),
    x=arrays(np.float64, (4,), elements=st.floats(-3, 3)),
)
def test_numeric_gradient_of_quadratic_form(matrix, x):
    grad = numeric_gradient(lambda v: v @ matrix @ v, x)
    np.testing.assert_allclose(grad, (matrix + matrix.T) @ x, rtol=1e-6, atol=1e-6)


def test_integer_and_list_input():
    np.testing.assert_allclose(numeric_gradient(cube_sum, [1, 2, 3]), [3.0, 12.0, 27.0], rtol=1e-8)


def test_x_is_left_unchanged_even_if_f_fails():
    x = np.arange(4.0)
    calls = []

    def fails_on_third_call(v):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError, match="boom"):
        numeric_gradient(fails_on_third_call, x)
    np.testing.assert_array_equal(x, np.arange(4.0))


def test_check_gradient_passes_on_a_correct_gradient():
    x = np.random.default_rng(1).standard_normal((3, 4))
    result = check_gradient(cube_sum, x, 3 * x**2)
    assert isinstance(result, GradCheckResult)
    assert result.passed and bool(result)
    assert result.max_abs_error < 1e-7 and result.max_rel_error < 1e-7
    assert str(result).startswith("gradient check PASSED: max abs error ")
    # a function giving the gradient works too
    assert check_gradient(cube_sum, x, lambda v: 3 * v**2).passed


def test_check_gradient_fails_on_a_wrong_gradient_and_finds_it():
    x = np.random.default_rng(2).standard_normal((3, 4))
    wrong = 3 * x**2
    wrong[2, 1] += 1e-3  # one wrong entry
    result = check_gradient(cube_sum, x, wrong)
    assert not result.passed and not bool(result)
    assert result.worst_index == (2, 1)
    assert result.max_abs_error == pytest.approx(1e-3, rel=1e-3)
    text = str(result)
    assert text.startswith("gradient check FAILED")
    assert "worst at index (2, 1)" in text
    # a common mistake: forgetting the factor 3
    assert not check_gradient(cube_sum, x, x**2).passed


def test_check_gradient_reports_nan():
    x = np.ones(3)
    analytic = 3 * x**2
    analytic[1] = np.nan
    result = check_gradient(cube_sum, x, analytic)
    assert not result.passed and result.worst_index == (1,)


def test_tolerances_decide():
    x = np.array([1.0, 2.0])
    slightly_off = 3 * x**2 * (1 + 1e-4)
    assert not check_gradient(cube_sum, x, slightly_off).passed
    assert check_gradient(cube_sum, x, slightly_off, rtol=1e-3).passed
    assert check_gradient(cube_sum, np.zeros((0, 2)), np.zeros((0, 2))).worst_index is None


def test_gradient_of_a_torch_convolution():
    """Numeric gradients of a real convolution agree with PyTorch's autograd."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 6))
    weight = rng.standard_normal((3, 2, 3, 2))
    upstream = rng.standard_normal((1, 3, 3, 4))

    def loss(x_, w_):
        out = torch.nn.functional.conv2d(torch.from_numpy(x_), torch.from_numpy(w_), stride=2, padding=1)
        return float((out * torch.from_numpy(upstream)).sum())

    x_t = torch.from_numpy(x).requires_grad_()
    w_t = torch.from_numpy(weight).requires_grad_()
    out = torch.nn.functional.conv2d(x_t, w_t, stride=2, padding=1)
    assert out.shape == upstream.shape
    (out * torch.from_numpy(upstream)).sum().backward()
    assert check_gradient(lambda x_: loss(x_, weight), x, x_t.grad.numpy()).passed
    assert check_gradient(lambda w_: loss(x, w_), weight, w_t.grad.numpy()).passed


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), ((2, 1), (0, 1), (1, 2), 2)],
)
def test_agrees_with_conv2d_backward(stride, padding, dilation, groups):
    try:
        from conv_lib import conv2d, conv2d_backward
    except ImportError:  # written in parallel: the module may exist before its export
        conv = pytest.importorskip("conv_lib.conv", reason="conv_lib.conv2d_backward not written yet")
        conv2d, conv2d_backward = conv.conv2d, conv.conv2d_backward
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 5))
    weight = rng.standard_normal((2, 4 // groups, 3, 2))
    bias = rng.standard_normal(2)
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    upstream = rng.standard_normal(conv2d(x, weight, bias, **kwargs).shape)
    grad_x, grad_w, grad_b = conv2d_backward(upstream, x, weight, **kwargs)

    def loss(x_=x, w_=weight, b_=bias):
        return float(np.sum(conv2d(x_, w_, b_, **kwargs) * upstream))

    for name, point, analytic, f in [
        ("x", x, grad_x, lambda v: loss(x_=v)),
        ("weight", weight, grad_w, lambda v: loss(w_=v)),
        ("bias", bias, grad_b, lambda v: loss(b_=v)),
    ]:
        result = check_gradient(f, point, analytic)
        assert result.passed, f"{name}: {result}"


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: numeric_gradient("f", np.ones(2)),
            TypeError,
            r"f: got 'f'; expected a function f\(x\) -> float",
        ),
        (
            lambda: numeric_gradient(lambda v: v, np.ones(2)),
            ValueError,
            r"f: returned an array of shape \(2,\); expected a scalar",
        ),
        (
            lambda: numeric_gradient(lambda v: "a", np.ones(2)),
            TypeError,
            r"f: returned 'a'; expected a real number",
        ),
        (
            lambda: numeric_gradient(cube_sum, np.ones(2), eps=0),
            ValueError,
            r"eps: got 0; expected a finite number > 0",
        ),
        (lambda: numeric_gradient(cube_sum, np.ones(2), eps="small"), TypeError, r"eps: got 'small'"),
        (lambda: numeric_gradient(cube_sum, "x"), TypeError, r"x: got 'x'; expected an array of numbers"),
        (
            lambda: check_gradient(cube_sum, np.ones(3), np.ones(2)),
            ValueError,
            r"analytic_grad: got shape \(2,\); expected the shape of x, \(3,\)",
        ),
        (
            lambda: check_gradient(cube_sum, np.ones(3), 3 * np.ones(3), rtol=-1),
            ValueError,
            r"rtol: got -1; expected a finite number >= 0",
        ),
        (
            lambda: check_gradient(cube_sum, np.ones(3), 3 * np.ones(3), atol=float("inf")),
            ValueError,
            r"atol: got inf",
        ),
        (lambda: check_gradient(cube_sum, np.ones(3), None), TypeError, r"analytic_grad: got None"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
