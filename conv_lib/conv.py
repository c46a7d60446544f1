"""Convolution layers on NCHW batches, with ``torch.nn.functional`` semantics.

Like every deep-learning library, ``conv2d`` computes a *cross-correlation* (no kernel
flip)::

    out[n, o, y, x] = bias[o] + sum_{c, i, j} x_pad[n, g*C_in/groups + c, s*y + d*i, s*x + d*j]
                                               * weight[o, c, i, j]

where ``g = o // (C_out/groups)`` is the group of output channel ``o``.

Shapes: ``x: (N, C_in, H, W)``, ``weight: (C_out, C_in/groups, kH, kW)``, ``bias: (C_out,)``,
output ``(N, C_out, H_out, W_out)`` with
``H_out = floor((H + pad_top + pad_bottom - dilation*(kH-1) - 1) / stride) + 1``.

Dtypes: float32 stays float32, float64 stays float64, integers and bools become
float64; mixed float32/float64 give float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conv_lib import winograd_kernels
from conv_lib.algorithms import (
    LAYER_METHODS,
    choose_method,
    corr_nchw,
    grad_input,
    grad_weight_bias,
    resolve_layer_method,
)
from conv_lib.layout import Pads, out_len, result_dtype
from conv_lib.validation import as_array, as_pair, check_choice, check_groups
from conv_lib.winograd import check_winograd, corr_winograd, grad_input_winograd, grad_weight_winograd
from conv_lib.winograd_strided import corr_strided_winograd
from conv_lib.workspace import get_memory_budget

__all__ = ["conv2d", "conv2d_backward", "conv_transpose2d"]

IntPair = int | tuple[int, int]


def _check_bias(bias: Any, c_out: int) -> np.ndarray | None:
    """``bias`` as a 1-D float array of length ``c_out`` (or ``None``), else a clear error."""
    if bias is None:
        return None
    bias = as_array("bias", bias, ndim=1, floating=True)
    if bias.shape != (c_out,):
        raise ValueError(f"bias: got shape {bias.shape}; expected ({c_out},), one value per output channel")
    return bias


def _padding_pairs(
    padding: Any, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> Pads:
    """``((top, bottom), (left, right))`` zero padding; strings follow torch."""
    if isinstance(padding, str):
        check_choice("padding", padding, ("valid", "same"))
        if padding == "valid":
            return (0, 0), (0, 0)
        if stride != (1, 1):
            raise ValueError(
                f"padding: got 'same' with stride {stride}; expected stride 1 "
                "(padding='same' is not supported for strided convolutions, as in torch)"
            )
        pairs = []
        for k, d in zip(kernel, dilation, strict=True):
            total = d * (k - 1)
            pairs.append((total // 2, total - total // 2))  # torch: the extra zero goes right/bottom
        return pairs[0], pairs[1]
    ph, pw = as_pair("padding", padding, minimum=0)
    return (ph, ph), (pw, pw)


def _choice_dtype(values: tuple[Any, ...], dtype: np.dtype) -> np.dtype:
    """The dtype :func:`~conv_lib.choose_method` is told: integer when every input was
    integer or bool (validation has already turned them into float64, but ``"auto"``
    must keep the exact methods for them), else ``dtype``."""
    if all(np.asarray(v).dtype.kind in "biu" for v in values):
        return np.dtype(np.int64)
    return dtype


def _check_conv(x, weight, bias, stride, padding, dilation, groups):
    """Validate a conv2d call; return normalised arrays and geometry."""
    x = as_array("x", x, ndim=4, floating=True)
    weight = as_array("weight", weight, ndim=4, floating=True)
    stride = as_pair("stride", stride)
    dilation = as_pair("dilation", dilation)
    n, c_in, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    if min(c_in, h, w) < 1 or min(weight.shape) < 1:
        raise ValueError(
            f"x, weight: got shapes {x.shape} and {weight.shape}; expected non-zero channels, "
            "height, width and kernel size"
        )
    groups = check_groups(groups, c_in, c_out)
    if c_per_group * groups != c_in:
        raise ValueError(
            f"weight: got shape {weight.shape}; expected (C_out, C_in/groups, kH, kW) = "
            f"({c_out}, {c_in // groups}, kH, kW) for x with {c_in} input channels and groups={groups}"
        )
    bias = _check_bias(bias, c_out)
    pads = _padding_pairs(padding, (kh, kw), stride, dilation)
    hp, wp = h + sum(pads[0]), w + sum(pads[1])
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if eh > hp or ew > wp:
        raise ValueError(
            f"weight: got kernel size {(kh, kw)} (dilated {(eh, ew)}); expected at most the padded "
            f"input size {(hp, wp)} (x spatial size {(h, w)}, padding {pads})"
        )
    out_hw = (out_len(hp, kh, stride[0], dilation[0]), out_len(wp, kw, stride[1], dilation[1]))
    return x, weight, bias, stride, pads, dilation, groups, out_hw


def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: IntPair = 1,
    padding: IntPair | str = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    method: str = "auto",
) -> np.ndarray:
    """2-D convolution layer (cross-correlation), like ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : array_like, shape (N, C_in, H, W)
    weight : array_like, shape (C_out, C_in/groups, kH, kW)
    bias : array_like, shape (C_out,), optional
    stride : int or (int, int)
        Step between windows, >= 1.
    padding : int, (int, int), "valid" or "same"
        Zeros added on both sides. ``"same"`` keeps ``H, W`` (stride 1 only); when the
        dilated kernel size is even, the extra zero goes at the bottom/right, like torch.
    dilation : int or (int, int)
        Spacing between kernel taps, >= 1.
    groups : int
        Channels split into ``groups`` independent convolutions; must divide C_in and C_out.
    method : {"auto", "direct", "im2col", "fft", "winograd"}
        Algorithm (:mod:`conv_lib.algorithms`). ``"winograd"`` needs dilation 1 and
        either 3x3 kernels at stride 1 (:mod:`conv_lib.winograd`, ``F(4x4, 3x3)``) or a
        stride above 1 with kernels of at most 4 times the stride, e.g. 7x7 at stride 2
        (:mod:`conv_lib.winograd_strided`: ``F(4x4, 4x4)`` over the input's polyphase
        components); its float32 results carry a larger rounding error, up to
        :data:`conv_lib.winograd.FLOAT32_RTOL` of the largest output, and as its
        transforms mix neighbouring inputs, an inf or NaN in ``x`` reaches more outputs
        (an inf may come out as NaN) than with the other methods.

    Returns
    -------
    out : ndarray, shape (N, C_out, H_out, W_out)

    Raises
    ------
    ValueError
        Wrong ndim, channel/group mismatch, bad bias shape, kernel larger than the padded
        input, non-positive stride/dilation, negative padding, "same" with stride > 1,
        unknown method, "winograd" for a layer it does not compute (above).
    """
    given = (x, weight)
    x, weight, bias, stride, pads, dilation, groups, _ = _check_conv(
        x, weight, bias, stride, padding, dilation, groups
    )
    choice_dtype = _choice_dtype(given, x.dtype)
    if x.shape[0] == 0:  # an empty batch: the other methods plan their chunks per image
        if method == "winograd":
            check_winograd(weight.shape[2:], stride, dilation)
        check_choice("method", method, ("auto",) + LAYER_METHODS)
        method = "direct"
    method = resolve_layer_method(method, x.shape, weight.shape, stride, dilation, choice_dtype)
    dtype = result_dtype(x, weight)
    # the bias is added inside the chunks when it does not widen the result's dtype
    fused = bias is not None and np.result_type(dtype, bias) == dtype
    fused_bias = bias.astype(dtype) if fused else None
    if method == "winograd":
        check_winograd(weight.shape[2:], stride, dilation)
        x, weight = x.astype(dtype, copy=False), weight.astype(dtype, copy=False)
        if stride == (1, 1):
            out = corr_winograd(x, pads, weight, groups, get_memory_budget(), bias=fused_bias)
        else:
            out = corr_strided_winograd(x, pads, weight, stride, groups, get_memory_budget(), bias=fused_bias)
    else:
        out = corr_nchw(x, weight, stride, dilation, groups, method, pads, fused_bias)
    if bias is not None and not fused:
        out = out.astype(np.result_type(out, bias), copy=False)
        out += bias[:, None, None]
    return out


def conv2d_backward(
    grad_out: Any,
    x: Any,
    weight: Any,
    stride: IntPair = 1,
    padding: IntPair | str = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` given the upstream gradient ``grad_out``.

    Parameters
    ----------
    grad_out : array_like, shape (N, C_out, H_out, W_out)
        dLoss/dout.
    x : array_like, shape (N, C_in, H, W)
        The forward input.
    weight : array_like, shape (C_out, C_in/groups, kH, kW)
    stride, padding, dilation, groups
        As given to :func:`conv2d`.
    method : {"auto", "direct", "im2col", "fft", "winograd"}
        ``"fft"`` uses ``"im2col"`` (chunked GEMMs) for the backward pass: ``grad_w`` is
        one GEMM per chunk of columns; ``grad_x`` is, for stride 1, the forward GEMM
        applied to ``grad_out`` (a "full" correlation with the flipped kernel), for
        larger strides ``W^T @ grad_out`` scattered back (col2im). ``"winograd"`` (3x3,
        stride 1, dilation 1): ``grad_x`` is that "full" correlation by Winograd, and
        ``grad_w`` the adjoint of Winograd's transforms (strided layers, which
        :func:`conv2d` computes by Winograd forward, raise here: use ``"auto"`` or
        ``"im2col"``). ``"auto"`` computes ``grad_x`` of a stride-1 layer by Winograd
        where :func:`~conv_lib.choose_method` picks it for that "full" correlation;
        then ``grad_w`` by Winograd's adjoint too if the forward layer is also picked
        for Winograd and its transforms are compiled
        (:mod:`conv_lib.winograd_kernels`), else by ``"im2col"`` (faster than the NumPy
        adjoint; see bench/README.md).

    Returns
    -------
    grad_x : ndarray, shape (N, C_in, H, W)
        Rows/columns of ``x`` that no window reads (stride that does not divide) get 0.
    grad_weight : ndarray, shape (C_out, C_in/groups, kH, kW)
    grad_bias : ndarray, shape (C_out,)
        ``grad_out`` summed over batch and space (the bias gradient, whether or not the
        forward pass had a bias).
    """
    given = (grad_out, x, weight)
    x, weight, _, stride, pads, dilation, groups, out_hw = _check_conv(
        x, weight, None, stride, padding, dilation, groups
    )
    grad_out = as_array("grad_out", grad_out, ndim=4, floating=True)
    expected = (x.shape[0], weight.shape[0]) + out_hw
    if grad_out.shape != expected:
        raise ValueError(
            f"grad_out: got shape {grad_out.shape}; expected {expected}, the shape of conv2d's output"
        )
    dtype = np.result_type(grad_out, x, weight)
    choice_dtype = _choice_dtype(given, dtype)
    check_choice("method", method, ("auto",) + LAYER_METHODS)
    grad_out, x, weight = (a.astype(dtype, copy=False) for a in (grad_out, x, weight))
    if x.shape[0] == 0:  # an empty batch: the other methods plan their chunks per image
        if method == "winograd":
            check_winograd(weight.shape[2:], stride, dilation, backward=True)
        method = "direct"
    if method == "winograd":
        check_winograd(weight.shape[2:], stride, dilation, backward=True)
        budget = get_memory_budget()
        grad_x = grad_input_winograd(grad_out, weight, pads, groups, budget)
        grad_w, grad_b = grad_weight_winograd(grad_out, x, pads, weight.shape, groups, budget)
        return grad_x, grad_w, grad_b
    if method == "auto":
        # grad_x of a stride-1 3x3 layer is itself a stride-1 3x3 correlation (of grad_out
        # with the flipped kernel): Winograd where the forward choice would take it.
        # grad_w: Winograd's adjoint where the forward choice takes Winograd and its
        # transforms are compiled (conv_lib.winograd_kernels); im2col otherwise (the
        # NumPy adjoint was slower than im2col's single GEMM, bench/bench_conv.py).
        transposed_w = (weight.shape[1] * groups, weight.shape[0] // groups, *weight.shape[2:])
        stride_one = stride == (1, 1)
        transposed_choice = choose_method(grad_out.shape, transposed_w, stride, dilation, choice_dtype)
        if stride_one and transposed_choice == "winograd":
            grad_x = grad_input_winograd(grad_out, weight, pads, groups, get_memory_budget())
            forward = choose_method(x.shape, weight.shape, stride, dilation, choice_dtype)
            if forward == "winograd" and winograd_kernels.available():
                budget = get_memory_budget()
                grad_w, grad_b = grad_weight_winograd(grad_out, x, pads, weight.shape, groups, budget)
            else:
                grad_w, grad_b = grad_weight_bias(
                    grad_out, x, pads, weight.shape, stride, dilation, groups, "im2col"
                )
            return grad_x, grad_w, grad_b
    method = "direct" if method == "direct" else "im2col"
    grad_x = grad_input(grad_out, weight, x.shape[2:], pads, stride, dilation, groups, method)
    grad_w, grad_b = grad_weight_bias(grad_out, x, pads, weight.shape, stride, dilation, groups, method)
    return grad_x, grad_w, grad_b


def conv_transpose2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> np.ndarray:
    """Transposed convolution, like ``torch.nn.functional.conv_transpose2d``.

    The adjoint of :func:`conv2d` with respect to its input: every input pixel spreads
    ``weight``-weighted copies over the output ("fractionally strided" convolution).

    Parameters
    ----------
    x : array_like, shape (N, C_in, H, W)
    weight : array_like, shape (C_in, C_out/groups, kH, kW)
        Note the order: input channels first (torch's layout for transposed convs).
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or (int, int), >= 1
    padding : int or (int, int), >= 0
        Crops ``padding`` rows/columns from each side of the full output.
    output_padding : int or (int, int)
        Extra rows/columns added at the bottom/right; each must be smaller than the
        stride or the dilation of its axis (torch's rule).
    groups : int

    Returns
    -------
    out : ndarray, shape (N, C_out, H_out, W_out)
        ``H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1``.
    """
    x = as_array("x", x, ndim=4, floating=True)
    weight = as_array("weight", weight, ndim=4, floating=True)
    stride = as_pair("stride", stride)
    dilation = as_pair("dilation", dilation)
    ph, pw = as_pair("padding", padding, minimum=0)
    oph, opw = as_pair("output_padding", output_padding, minimum=0)
    n, c_in, h, w = x.shape
    if min(c_in, h, w) < 1 or min(weight.shape) < 1:
        raise ValueError(
            f"x, weight: got shapes {x.shape} and {weight.shape}; expected non-zero channels, "
            "height, width and kernel size"
        )
    _, c_per_group, kh, kw = weight.shape
    if weight.shape[0] != c_in:
        raise ValueError(
            f"weight: got shape {weight.shape}; expected (C_in, C_out/groups, kH, kW) with "
            f"C_in = {c_in}, the channels of x"
        )
    groups = check_groups(groups, c_in, c_in)  # C_out = groups * weight.shape[1] always divides
    c_out = c_per_group * groups
    for axis, op, s, d in (("height", oph, stride[0], dilation[0]), ("width", opw, stride[1], dilation[1])):
        if op >= s and op >= d:
            raise ValueError(
                f"output_padding: got {(oph, opw)}; expected each entry smaller than the stride "
                f"{stride} or the dilation {dilation} (fails for the {axis})"
            )
    bias = _check_bias(bias, c_out)
    h_out = (h - 1) * stride[0] - 2 * ph + dilation[0] * (kh - 1) + oph + 1
    w_out = (w - 1) * stride[1] - 2 * pw + dilation[1] * (kw - 1) + opw + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"padding: got {(ph, pw)}; expected a padding that leaves a non-empty output "
            f"(output size would be {(h_out, w_out)})"
        )
    out = grad_input(x, weight, (h_out, w_out), ((ph, ph), (pw, pw)), stride, dilation, groups, "im2col")
    if bias is not None:
        out = out.astype(np.result_type(out, bias), copy=False)
        out += bias[:, None, None]
    return out
