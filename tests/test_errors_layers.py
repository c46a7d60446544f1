"""Every documented error of signal2d, conv, pooling and algorithms, with its message."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conv_lib import (
    avg_pool2d,
    avg_pool2d_backward,
    choose_method,
    col2im,
    conv2d,
    conv2d_backward,
    conv_transpose2d,
    convolve2d,
    correlate2d,
    im2col,
    max_pool2d,
    max_pool2d_backward,
    set_memory_budget,
)

X = np.zeros((2, 4, 6, 5))
W = np.zeros((6, 2, 3, 3))


# ---- signal2d ---------------------------------------------------------------------
@pytest.mark.parametrize("fn", [correlate2d, convolve2d])
def test_kernel_larger_than_image_in_valid_mode(fn):
    msg = re.escape("kernel: got shape (4, 2), larger than the image of shape (3, 5)")
    with pytest.raises(ValueError, match=msg):
        fn(np.ones((3, 5)), np.ones((4, 2)))
    # "same" and "full" accept it, like scipy
    assert fn(np.ones((3, 5)), np.ones((4, 2)), "full").shape == (6, 6)


@pytest.mark.parametrize(
    "image, kernel, match",
    [
        (
            np.ones((3, 3, 1)),
            np.ones((2, 2)),
            (
                r"image: got 3-D input of shape \(3, 3, "
                r"1\); expected a 2-D array"
            ),
        ),
        (np.ones((3, 3)), np.ones(2), r"kernel: got 1-D input of shape \(2,\); expected a 2-D array"),
        (np.ones((0, 3)), np.ones((1, 1)), r"image: got shape \(0, 3\); expected a non-empty"),
    ],
)
def test_signal2d_shapes(image, kernel, match):
    with pytest.raises(ValueError, match=match):
        correlate2d(image, kernel)


def test_signal2d_unknown_mode_and_method():
    with pytest.raises(ValueError, match=r"mode: got 'circular'; expected one of 'valid', 'same', 'full'"):
        convolve2d(np.ones((3, 3)), np.ones((2, 2)), mode="circular")
    with pytest.raises(ValueError, match=r"method: got 'winograd'; expected one of 'auto', 'direct'"):
        correlate2d(np.ones((3, 3)), np.ones((2, 2)), method="winograd")


def test_signal2d_type_errors():
    with pytest.raises(TypeError, match=r"image: got an array of dtype complex128; expected real numbers"):
        correlate2d(np.ones((3, 3), complex), np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"kernel: got None"):
        correlate2d(np.ones((3, 3)), None)


# ---- conv2d -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (
            dict(x=np.zeros((4, 6, 5))),
            ValueError,
            (
                r"x: got 3-D input of shape \(4, 6, 5\); "
                r"expected a 4-D array"
            ),
        ),
        (dict(weight=np.zeros((6, 2, 3))), ValueError, r"weight: got 3-D input"),
        (dict(stride=0), ValueError, r"stride: got 0; expected positive integers \(>= 1\)"),
        (dict(stride=(1, -2)), ValueError, r"stride: got \(1, -2\); expected positive integers"),
        (dict(dilation=0), ValueError, r"dilation: got 0; expected positive integers"),
        (dict(padding=-1), ValueError, r"padding: got -1; expected integers >= 0"),
        (dict(padding=1.5), TypeError, r"padding: got 1.5; expected an int or a pair"),
        (dict(padding="circular"), ValueError, r"padding: got 'circular'; expected one of 'valid', 'same'"),
        (
            dict(padding="same", stride=2),
            ValueError,
            (
                r"padding: got 'same' with stride \(2, "
                r"2\); expected stride 1"
            ),
        ),
        (dict(groups=3), ValueError, r"groups: got 3; expected a divisor of the input channels \(4\)"),
        (dict(groups=0), ValueError, r"groups: got 0; expected an integer >= 1"),
        (
            dict(weight=np.zeros((6, 3, 3, 3))),
            ValueError,
            r"weight: got shape \(6, 3, 3, 3\); expected \(C_out, C_in/groups, kH, kW\) = \(6, 2, kH, kW\)",
        ),
        (dict(bias=np.zeros(5)), ValueError, r"bias: got shape \(5,\); expected \(6,\)"),
        (dict(bias=np.zeros((6, 1))), ValueError, r"bias: got 2-D input"),
        (
            dict(method="gemm"),
            ValueError,
            (
                r"method: got 'gemm'; expected one of 'auto', "
                r"'direct', 'im2col', 'fft'"
            ),
        ),
        (
            dict(weight=np.zeros((6, 2, 7, 3))),
            ValueError,
            (
                r"weight: got kernel size \(7, 3\) \(dilated \(7, 3\)\); "
                r"expected at most the padded input size \(6, 5\)"
            ),
        ),
        (
            dict(dilation=3),
            ValueError,
            r"weight: got kernel size \(3, 3\) \(dilated \(7, 7\)\); expected at most the padded input size",
        ),
    ],
)
def test_conv2d_errors(kwargs, exc, match):
    args = dict(x=X, weight=W, groups=2)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        conv2d(**args)


def test_conv2d_padding_makes_big_kernel_fit():
    assert conv2d(X, np.zeros((6, 2, 7, 3)), padding=1, groups=2).shape == (2, 6, 2, 5)


def test_conv2d_groups_must_divide_output_channels():
    with pytest.raises(ValueError, match=r"groups: got 4; expected a divisor of the output channels \(6\)"):
        conv2d(X, np.zeros((6, 1, 3, 3)), groups=4)


def test_conv2d_backward_grad_out_shape():
    with pytest.raises(ValueError, match=r"grad_out: got shape \(2, 6, 4, 4\); expected \(2, 6, 4, 3\)"):
        conv2d_backward(np.zeros((2, 6, 4, 4)), X, W, groups=2)
    with pytest.raises(ValueError, match=r"grad_out: got 3-D input"):
        conv2d_backward(np.zeros((6, 4, 3)), X, W, groups=2)
    with pytest.raises(ValueError, match=r"method: got 'x'"):
        conv2d_backward(np.zeros((2, 6, 4, 3)), X, W, groups=2, method="x")


# ---- conv_transpose2d -------------------------------------------------------------
def test_conv_transpose2d_errors():
    x, w = np.zeros((1, 4, 5, 5)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"output_padding: got \(2, 2\); expected each entry smaller than"):
        conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(
        ValueError,
        match=(
            r"output_padding: got \(1, 1\); expected .* "
            r"\(fails for the height\)"
        ),
    ):
        conv_transpose2d(x, w, output_padding=1)
    with pytest.raises(ValueError, match=r"weight: got shape \(3, 3, 3, 3\); expected \(C_in, C_out/groups"):
        conv_transpose2d(x, np.zeros((3, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"groups: got 3; expected a divisor of the input channels \(4\)"):
        conv_transpose2d(x, w, groups=3)
    with pytest.raises(ValueError, match=r"bias: got shape \(4,\); expected \(6,\)"):
        conv_transpose2d(x, w, bias=np.zeros(4), groups=2)
    with pytest.raises(
        ValueError,
        match=(
            r"padding: got \(4, 4\); expected a padding "
            r"that leaves a non-empty"
        ),
    ):
        conv_transpose2d(np.zeros((1, 4, 1, 1)), w, padding=4)
    with pytest.raises(ValueError, match=r"stride: got 0"):
        conv_transpose2d(x, w, stride=0)
    # dilation > output_padding is enough (torch's rule)
    assert conv_transpose2d(x, w, output_padding=1, dilation=2).shape == (1, 3, 10, 10)


# ---- pooling ----------------------------------------------------------------------
def test_pooling_errors():
    x = np.zeros((1, 2, 5, 5))
    for fn in (max_pool2d, avg_pool2d):
        with pytest.raises(
            ValueError,
            match=(
                r"padding: got \(2, 2\); expected at most "
                r"half the kernel size \(3, 3\)"
            ),
        ):
            fn(x, 3, padding=2)
        with pytest.raises(
            ValueError,
            match=(
                r"kernel_size: got \(6, 6\); expected at "
                r"most the padded input size"
            ),
        ):
            fn(x, 6)
        with pytest.raises(ValueError, match=r"kernel_size: got 0"):
            fn(x, 0)
        with pytest.raises(ValueError, match=r"stride: got 0"):
            fn(x, 2, 0)
        with pytest.raises(ValueError, match=r"x: got 3-D input"):
            fn(x[0], 2)
    with pytest.raises(ValueError, match=r"grad_out: got shape \(1, 2, 3, 3\); expected \(1, 2, 2, 2\)"):
        max_pool2d_backward(np.zeros((1, 2, 3, 3)), x, 2)
    with pytest.raises(ValueError, match=r"grad_out: got shape \(1, 2, 3, 3\); expected \(1, 2, 2, 2\)"):
        avg_pool2d_backward(np.zeros((1, 2, 3, 3)), x.shape, 2)
    with pytest.raises(ValueError, match=r"x_shape: got \(5, 5\); expected a tuple \(N, C, H, W\)"):
        avg_pool2d_backward(np.zeros((1, 2, 2, 2)), (5, 5), 2)


# ---- algorithms -------------------------------------------------------------------
def test_algorithms_errors():
    with pytest.raises(ValueError, match=r"nbytes: got 0; expected an integer >= 1"):
        set_memory_budget(0)
    with pytest.raises(ValueError, match=r"x_shape, weight_shape: got \(5, 5\) and \(1, 1, 3, 3\)"):
        choose_method((5, 5), (1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"kernel_size: got \(4, 4\) \(dilated \(4, 4\)\); expected at most"):
        im2col(np.zeros((1, 1, 3, 3)), 4)
    with pytest.raises(ValueError, match=r"cols: got shape \(1, 4, 3\); expected \(1, 4, 4\)"):
        col2im(np.zeros((1, 4, 3)), (1, 1, 3, 3), 2)
    with pytest.raises(ValueError, match=r"x: got 2-D input"):
        im2col(np.zeros((3, 3)), 2)
