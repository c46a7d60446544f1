"""Property tests (hypothesis): linearity, shift equivariance, flip relation, method
agreement, and adjointness (backward and transposed convolution are the adjoint of
the forward convolution: the dot-product test)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conv_lib import (
    METHODS,
    col2im,
    conv2d,
    conv2d_backward,
    conv_transpose2d,
    convolve2d,
    correlate2d,
    im2col,
)

SETTINGS = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2**32 - 1)


@st.composite
def image_kernel(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    h, w = draw(st.integers(kh, kh + 8)), draw(st.integers(kw, kw + 8))
    rng = np.random.default_rng(draw(seeds))
    return rng.standard_normal((h, w)), rng.standard_normal((kh, kw)), rng


@st.composite
def conv_config(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 7))
    w = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 7))
    n = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(seeds))
    kwargs = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in // groups, kh, kw))
    return x, weight, kwargs, rng


@SETTINGS
@given(image_kernel(), st.sampled_from(["valid", "same", "full"]), st.sampled_from(METHODS))
def test_correlate2d_linear(data, mode, method):
    image, kernel, rng = data
    other = rng.standard_normal(image.shape)
    a, b = 1.5, -0.25
    lhs = correlate2d(a * image + b * other, kernel, mode, method)
    rhs = a * correlate2d(image, kernel, mode, method) + b * correlate2d(other, kernel, mode, method)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)
    # and linear in the kernel
    k2 = rng.standard_normal(kernel.shape)
    lhs = correlate2d(image, kernel + k2, mode, method)
    np.testing.assert_allclose(
        lhs, correlate2d(image, kernel, mode, method) + correlate2d(image, k2, mode, method), atol=1e-10
    )


@SETTINGS
@given(image_kernel(), st.integers(0, 3), st.integers(0, 3))
def test_correlate2d_shift_equivariant(data, dy, dx):
    """Shifting the image shifts the "valid" output, away from the borders."""
    image, kernel, rng = data
    big = rng.standard_normal((image.shape[0] + dy, image.shape[1] + dx))
    shifted = big[dy:, dx:]
    out_big = correlate2d(big, kernel)
    out_shifted = correlate2d(shifted, kernel)
    np.testing.assert_allclose(out_shifted, out_big[dy:, dx:], rtol=1e-12, atol=1e-12)


@SETTINGS
@given(image_kernel(), st.sampled_from(["valid", "same", "full"]), st.sampled_from(METHODS))
def test_convolve_is_correlate_with_flipped_kernel(data, mode, method):
    image, kernel, _ = data
    if mode == "same" and any(k % 2 == 0 for k in kernel.shape):
        # scipy centres "same" differently for even kernels: compare through "full"
        full = convolve2d(image, kernel, "full", method)
        np.testing.assert_allclose(full, correlate2d(image, kernel[::-1, ::-1], "full", method), atol=1e-10)
        return
    np.testing.assert_allclose(
        convolve2d(image, kernel, mode, method),
        correlate2d(image, kernel[::-1, ::-1], mode, method),
        rtol=1e-10,
        atol=1e-10,
    )


@SETTINGS
@given(image_kernel(), st.sampled_from(["valid", "same", "full"]))
def test_all_methods_agree_2d(data, mode):
    image, kernel, _ = data
    results = [correlate2d(image, kernel, mode, m) for m in METHODS]
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=1e-10, atol=1e-10)


@SETTINGS
@given(conv_config())
def test_all_methods_agree_conv2d(cfg):
    x, weight, kwargs, _ = cfg
    results = [conv2d(x, weight, method=m, **kwargs) for m in METHODS]
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=1e-10, atol=1e-10)


@SETTINGS
@given(conv_config(), st.sampled_from(["direct", "im2col"]))
def test_backward_is_adjoint_of_forward(cfg, method):
    """<conv(x, W), g> == <x, dx(g)> and == <W, dW(g)> (conv is bilinear)."""
    x, weight, kwargs, rng = cfg
    out = conv2d(x, weight, method=method, **kwargs)
    g = rng.standard_normal(out.shape)
    gx, gw, gb = conv2d_backward(g, x, weight, method=method, **kwargs)
    lhs = np.vdot(out, g)
    scale = np.abs(out).sum() * np.abs(g).max() + 1.0
    assert abs(lhs - np.vdot(x, gx)) <= 1e-11 * scale
    assert abs(lhs - np.vdot(weight, gw)) <= 1e-11 * scale
    np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(conv_config())
def test_conv_transpose_is_adjoint_of_conv(cfg):
    """<conv2d(x, W), y> == <x, conv_transpose2d(y, W)> with output_padding chosen so
    the transposed convolution returns x's shape."""
    x, weight, kwargs, rng = cfg
    out = conv2d(x, weight, **kwargs)
    y = rng.standard_normal(out.shape)
    (sh, sw), (ph, pw), (dh, dw) = kwargs["stride"], kwargs["padding"], kwargs["dilation"]
    kh, kw = weight.shape[2:]
    oph = x.shape[2] - ((out.shape[2] - 1) * sh - 2 * ph + dh * (kh - 1) + 1)
    opw = x.shape[3] - ((out.shape[3] - 1) * sw - 2 * pw + dw * (kw - 1) + 1)
    assert 0 <= oph < sh and 0 <= opw < sw
    back = conv_transpose2d(y, weight, output_padding=(oph, opw), **kwargs)
    assert back.shape == x.shape
    scale = np.abs(out).sum() * np.abs(y).max() + 1.0
    assert abs(np.vdot(out, y) - np.vdot(x, back)) <= 1e-11 * scale


@SETTINGS
@given(conv_config())
def test_col2im_is_adjoint_of_im2col(cfg):
    x, weight, kwargs, rng = cfg
    k = weight.shape[2:]
    cols = im2col(x, k, kwargs["stride"], kwargs["padding"], kwargs["dilation"])
    c = rng.standard_normal(cols.shape)
    back = col2im(c, x.shape, k, kwargs["stride"], kwargs["padding"], kwargs["dilation"])
    assert abs(np.vdot(cols, c) - np.vdot(x, back)) <= 1e-10 * (np.abs(cols).sum() * np.abs(c).max() + 1)
