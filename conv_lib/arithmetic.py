"""Convolution arithmetic: output sizes, parameter counts, multiply-adds, receptive fields.

The size formulas are those of Dumoulin & Visin, *A guide to convolution arithmetic for
deep learning* (2016), with dilation as in ``torch.nn.Conv2d``. Along one axis, an input
of ``n`` pixels, a kernel of ``k`` taps spaced ``d`` apart (dilation), ``p`` zeros added on
each side (padding) and a step of ``s`` (stride) give::

    output = floor((n + 2p - d(k - 1) - 1) / s) + 1

A *multiply-add* (MAC) is one ``a * b`` added to a running sum. Papers that count FLOPs
usually count the multiplication and the addition separately, so ``FLOPs = 2 * MACs``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conv_lib.validation import as_pair, check_groups, check_positive_int

__all__ = [
    "ReceptiveField",
    "conv2d_macs",
    "conv2d_param_count",
    "conv_transpose2d_macs",
    "dense_macs",
    "dense_param_count",
    "depthwise_separable_macs",
    "depthwise_separable_param_count",
    "output_size",
    "receptive_field",
    "transposed_output_size",
]


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: got {value!r}; expected True or False")
    return value


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Length of a convolution's output along one axis.

    ``floor((n + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``, the same as
    ``torch.nn.Conv2d`` and as the number of positions the loops in
    :func:`conv_lib.correlate2d_loops` visit.

    Parameters
    ----------
    n : int
        Input length (pixels), ``>= 1``.
    kernel : int
        Kernel length (taps), ``>= 1``.
    stride : int
        Step between neighbouring windows, ``>= 1``.
    padding : int
        Zeros added at *each* end, ``>= 0``.
    dilation : int
        Spacing between kernel taps, ``>= 1`` (1 = an ordinary kernel). The kernel then
        spans ``dilation * (kernel - 1) + 1`` pixels.

    Returns
    -------
    int
        Number of output pixels, ``>= 1``.

    Raises
    ------
    ValueError
        If the (dilated) kernel is longer than the padded input ``n + 2*padding``.
    """
    n = check_positive_int("n", n)
    kernel = check_positive_int("kernel", kernel)
    stride = check_positive_int("stride", stride)
    padding = check_positive_int("padding", padding, minimum=0)
    dilation = check_positive_int("dilation", dilation)
    extent = dilation * (kernel - 1) + 1
    padded = n + 2 * padding
    if extent > padded:
        dilated = f" (spanning {extent} pixels with dilation {dilation})" if dilation > 1 else ""
        raise ValueError(
            f"kernel: got {kernel}{dilated}; expected at most the padded input length "
            f"n + 2*padding = {n} + 2*{padding} = {padded}"
        )
    return (padded - extent) // stride + 1


def transposed_output_size(
    n: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> int:
    """Length of a transposed convolution's output along one axis (``torch.nn.ConvTranspose2d``).

    ``(n - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1``.
    A transposed convolution with these arguments undoes the *shape* change of the
    convolution with the same ``kernel``, ``stride``, ``padding`` and ``dilation``;
    ``output_padding`` picks among the input sizes that a strided convolution maps to the
    same output size.

    Parameters
    ----------
    n : int
        Input length, ``>= 1``.
    kernel, stride, padding, dilation : int
        As for the matching convolution (see :func:`output_size`).
    output_padding : int
        Extra pixels added at the end of the output, ``>= 0`` and smaller than ``stride``
        or ``dilation`` (the PyTorch rule).

    Returns
    -------
    int
        Output length, ``>= 1``.
    """
    n = check_positive_int("n", n)
    kernel = check_positive_int("kernel", kernel)
    stride = check_positive_int("stride", stride)
    padding = check_positive_int("padding", padding, minimum=0)
    output_padding = check_positive_int("output_padding", output_padding, minimum=0)
    dilation = check_positive_int("dilation", dilation)
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding: got {output_padding}; expected an integer smaller than stride ({stride}) "
            f"or dilation ({dilation})"
        )
    size = (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if size < 1:
        raise ValueError(
            f"padding: got {padding}; expected a value leaving a positive output length "
            f"(this one gives {size})"
        )
    return size


def conv2d_param_count(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    bias: bool = True,
    groups: int = 1,
) -> int:
    """Number of learnable parameters of a 2-D convolution layer (``torch.nn.Conv2d``).

    ``out_channels * (in_channels / groups) * kH * kW`` weights, plus ``out_channels``
    biases if ``bias``. It does not depend on the image size: that is parameter sharing.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts ``C_in`` and ``C_out``, ``>= 1``; both divisible by ``groups``.
    kernel_size : int or (int, int)
        ``k`` or ``(kH, kW)``.
    bias : bool
        Whether the layer has one bias per output channel.
    groups : int
        Number of channel groups (``groups == in_channels`` is a depthwise convolution).

    Returns
    -------
    int
    """
    in_channels = check_positive_int("in_channels", in_channels)
    out_channels = check_positive_int("out_channels", out_channels)
    kh, kw = as_pair("kernel_size", kernel_size)
    bias = _check_bool("bias", bias)
    groups = check_groups(groups, in_channels, out_channels)
    weights = out_channels * (in_channels // groups) * kh * kw
    return weights + (out_channels if bias else 0)


def dense_param_count(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of learnable parameters of a fully connected layer (``torch.nn.Linear``).

    ``in_features * out_features`` weights plus ``out_features`` biases if ``bias``.

    Parameters
    ----------
    in_features, out_features : int
        ``>= 1``. For an image flattened into a vector, ``in_features = C * H * W``.
    bias : bool

    Returns
    -------
    int
    """
    in_features = check_positive_int("in_features", in_features)
    out_features = check_positive_int("out_features", out_features)
    bias = _check_bool("bias", bias)
    return in_features * out_features + (out_features if bias else 0)


def conv2d_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    output_hw: int | tuple[int, int],
    groups: int = 1,
) -> int:
    """Multiply-adds of one 2-D convolution layer on **one** image (batch size 1).

    Each of the ``out_channels * H_out * W_out`` outputs needs
    ``(in_channels / groups) * kH * kW`` multiply-adds. Bias additions are not counted.
    ``FLOPs = 2 * MACs``; multiply by the batch size for a batch.

    Parameters
    ----------
    in_channels, out_channels : int
        ``>= 1``, both divisible by ``groups``.
    kernel_size : int or (int, int)
    output_hw : int or (int, int)
        Output height and width (use :func:`output_size` to get them).
    groups : int

    Returns
    -------
    int
    """
    in_channels = check_positive_int("in_channels", in_channels)
    out_channels = check_positive_int("out_channels", out_channels)
    kh, kw = as_pair("kernel_size", kernel_size)
    out_h, out_w = as_pair("output_hw", output_hw)
    groups = check_groups(groups, in_channels, out_channels)
    return out_channels * out_h * out_w * (in_channels // groups) * kh * kw


def dense_macs(in_features: int, out_features: int) -> int:
    """Multiply-adds of a fully connected layer on one input vector: ``in * out``.

    ``FLOPs = 2 * MACs``. Bias additions are not counted.

    Parameters
    ----------
    in_features, out_features : int
        ``>= 1``.

    Returns
    -------
    int
    """
    in_features = check_positive_int("in_features", in_features)
    out_features = check_positive_int("out_features", out_features)
    return in_features * out_features


def conv_transpose2d_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    input_hw: int | tuple[int, int],
    groups: int = 1,
) -> int:
    """Multiply-adds of one transposed convolution layer on **one** image.

    A transposed convolution scatters every input pixel: each of the
    ``in_channels * H_in * W_in`` inputs is multiplied by a ``kH x kW`` kernel for each of
    the ``out_channels / groups`` output channels of its group and added into the output,
    so it costs ``in_channels * (out_channels / groups) * kH * kW * H_in * W_in``
    multiply-adds, counted on the **input** grid (products that land in the cropped
    ``padding`` are counted too). This equals :func:`conv2d_macs` of the convolution whose
    adjoint it is. Bias additions are not counted.

    Parameters
    ----------
    in_channels, out_channels : int
        ``>= 1``, both divisible by ``groups``.
    kernel_size : int or (int, int)
    input_hw : int or (int, int)
        Height and width of the transposed convolution's input.
    groups : int

    Returns
    -------
    int
    """
    in_channels = check_positive_int("in_channels", in_channels)
    out_channels = check_positive_int("out_channels", out_channels)
    kh, kw = as_pair("kernel_size", kernel_size)
    in_h, in_w = as_pair("input_hw", input_hw)
    groups = check_groups(groups, in_channels, out_channels)
    return in_channels * in_h * in_w * (out_channels // groups) * kh * kw


def depthwise_separable_param_count(
    in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], bias: bool = True
) -> int:
    """Parameters of a depthwise-separable convolution (MobileNet's block, Howard et al. 2017).

    A depthwise ``kH x kW`` convolution (``groups = in_channels``, one filter per channel)
    followed by a pointwise ``1 x 1`` convolution from ``in_channels`` to ``out_channels``:
    ``in * kH * kW + in * out`` weights, plus ``in + out`` biases if ``bias``.

    Parameters
    ----------
    in_channels, out_channels : int
        ``>= 1``.
    kernel_size : int or (int, int)
        Kernel of the depthwise step.
    bias : bool
        Whether both steps have biases.

    Returns
    -------
    int
    """
    in_channels = check_positive_int("in_channels", in_channels)
    out_channels = check_positive_int("out_channels", out_channels)
    as_pair("kernel_size", kernel_size)
    bias = _check_bool("bias", bias)
    depthwise = conv2d_param_count(in_channels, in_channels, kernel_size, bias=bias, groups=in_channels)
    return depthwise + conv2d_param_count(in_channels, out_channels, 1, bias=bias)


def depthwise_separable_macs(
    in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], output_hw: int | tuple[int, int]
) -> int:
    """Multiply-adds of a depthwise-separable convolution on **one** image.

    ``in * kH * kW * H_out * W_out`` (depthwise) ``+ in * out * H_out * W_out``
    (pointwise); compared with :func:`conv2d_macs` of the full ``kH x kW`` convolution the
    ratio is ``1 / out + 1 / (kH * kW)``.

    Parameters
    ----------
    in_channels, out_channels : int
        ``>= 1``.
    kernel_size : int or (int, int)
        Kernel of the depthwise step.
    output_hw : int or (int, int)
        Output height and width (the pointwise step keeps them).

    Returns
    -------
    int
    """
    in_channels = check_positive_int("in_channels", in_channels)
    depthwise = conv2d_macs(in_channels, in_channels, kernel_size, output_hw, groups=in_channels)
    return depthwise + conv2d_macs(in_channels, out_channels, 1, output_hw)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units after one layer of a stack, along one axis.

    Attributes
    ----------
    size : int
        How many input pixels (first to last, holes included) one unit can see.
    jump : int
        Distance in input pixels between neighbouring units (product of the strides).
    start : float
        Input coordinate of the centre of unit 0's receptive field, with input pixel
        centres at 0, 1, 2, ...; unit ``i`` is centred at ``start + i * jump``.
        Negative when padding puts the centre outside the image; ``x.5`` for even sizes.
    """

    size: int
    jump: int
    start: float


_LAYER_KEYS = ("kernel", "stride", "dilation", "padding")


def _parse_layer(position: int, layer: Any) -> tuple[int, int, int, int]:
    name = f"layers[{position}]"
    if isinstance(layer, Mapping):
        unknown = sorted(set(map(str, layer)) - set(_LAYER_KEYS))
        if unknown:
            raise ValueError(f"{name}: got unknown keys {unknown}; expected keys among {list(_LAYER_KEYS)}")
        if "kernel" not in layer:
            raise ValueError(f"{name}: got {dict(layer)!r}; expected a 'kernel' entry")
        values = {"stride": 1, "dilation": 1, "padding": 0, **layer}
    elif isinstance(layer, (numbers.Integral, Sequence)) and not isinstance(layer, (str, bytes, bool)):
        items = (layer,) if isinstance(layer, numbers.Integral) else tuple(layer)
        if not 1 <= len(items) <= 4:
            raise ValueError(
                f"{name}: got {layer!r}; expected kernel or a tuple (kernel, stride, dilation, padding) "
                "of 1 to 4 integers"
            )
        values = {"stride": 1, "dilation": 1, "padding": 0, **dict(zip(_LAYER_KEYS, items, strict=False))}
    else:
        raise TypeError(
            f"{name}: got {layer!r}; expected an int, a tuple (kernel, stride, dilation, padding) or a dict"
        )
    return (
        check_positive_int(f"{name} kernel", values["kernel"]),
        check_positive_int(f"{name} stride", values["stride"]),
        check_positive_int(f"{name} dilation", values["dilation"]),
        check_positive_int(f"{name} padding", values["padding"], minimum=0),
    )


def receptive_field(layers: Sequence[Any]) -> list[ReceptiveField]:
    """Receptive field after each layer of a stack of convolutions / poolings (one axis).

    Starting from the input (``size = 1, jump = 1, start = 0``), layer ``l`` with kernel
    ``k``, stride ``s``, dilation ``d`` and padding ``p`` gives::

        size_l  = size_{l-1} + (k - 1) * d * jump_{l-1}
        jump_l  = jump_{l-1} * s
        start_l = start_{l-1} + ((k - 1) * d / 2 - p) * jump_{l-1}

    Pooling layers count as layers with the pool's kernel and stride.

    Parameters
    ----------
    layers : sequence
        One entry per layer, each either an int ``kernel``, a tuple
        ``(kernel, stride=1, dilation=1, padding=0)`` (1 to 4 integers, in that order) or a
        dict with keys ``"kernel"`` and optionally ``"stride"``, ``"dilation"``, ``"padding"``.
        Padding changes only ``start``.

    Returns
    -------
    list of ReceptiveField
        One per layer, in order.
    """
    if isinstance(layers, (str, bytes, Mapping)) or not isinstance(layers, Sequence):
        raise TypeError(f"layers: got {layers!r}; expected a list of layers (ints, tuples or dicts)")
    if len(layers) == 0:
        raise ValueError("layers: got an empty list; expected at least one layer")
    size, jump, start = 1, 1, 0.0
    fields = []
    for position, layer in enumerate(layers):
        kernel, stride, dilation, padding = _parse_layer(position, layer)
        start = start + ((kernel - 1) * dilation / 2 - padding) * jump
        size = size + (kernel - 1) * dilation * jump
        jump = jump * stride
        fields.append(ReceptiveField(size=size, jump=jump, start=start))
    return fields
