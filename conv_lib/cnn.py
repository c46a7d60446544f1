"""A deeper convolutional network in NumPy: a stack of conv blocks, then one dense layer.

Each block is ``conv(k x k, stride, padding) -> ReLU -> max pool`` and is described by a
:class:`ConvBlock`; :class:`ConvNet` stacks any number of them and ends with a dense layer
to the classes. The convolutions are :func:`conv_lib.conv.conv2d` and
:func:`conv_lib.conv.conv2d_backward` (with a choosable algorithm), the other layers
:mod:`conv_lib.network`'s cs231n-style layer functions (ReLU, max pooling through
:func:`conv_lib.pooling.max_pool2d`, dense, softmax cross-entropy); nothing here
re-implements a convolution. The model has the interface of :mod:`conv_lib.network`'s
models (``params``, ``loss(X, y=None)``), so :func:`conv_lib.network.train` trains it.

Costs come from :mod:`conv_lib.arithmetic` (:meth:`ConvNet.macs`), and
:func:`dense_width_for_budget` sizes the fully connected baseline that gets at least the
same number of parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conv_lib.arithmetic import conv2d_macs, conv2d_param_count, dense_macs, dense_param_count, output_size
from conv_lib.conv import conv2d, conv2d_backward
from conv_lib.network import (
    affine_backward,
    affine_forward,
    max_pool_backward,
    max_pool_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)
from conv_lib.validation import check_choice, check_positive_int

__all__ = ["ConvBlock", "ConvNet", "dense_width_for_budget"]


@dataclass(frozen=True)
class ConvBlock:
    """One block of :class:`ConvNet`: ``conv -> ReLU -> max pool``.

    Attributes
    ----------
    filters : int
        Number of output channels ``F`` of the convolution.
    kernel_size : int
        Square kernel ``k x k``.
    stride : int
        Step of the convolution's window.
    padding : int or "same"
        Zeros on each side; ``"same"`` (odd ``k``, stride 1 only) is ``k // 2``.
    pool : int
        Max-pool window and stride; ``1`` means no pooling.
    """

    filters: int
    kernel_size: int = 3
    stride: int = 1
    padding: int | str = "same"
    pool: int = 2

    def pad(self) -> int:
        """Padding as a number of zeros on each side.

        Raises
        ------
        ValueError
            If ``padding`` is ``"same"`` with an even kernel or a stride above 1, or is
            neither ``"same"`` nor a non-negative integer.
        """
        if self.padding == "same":
            if self.kernel_size % 2 == 0 or self.stride != 1:
                raise ValueError(
                    f"padding: got 'same' with kernel_size={self.kernel_size}, stride={self.stride}; "
                    "expected an odd kernel_size and stride 1 (or give padding as an integer)"
                )
            return self.kernel_size // 2
        is_int = isinstance(self.padding, (int, np.integer)) and not isinstance(self.padding, bool)
        if not is_int or self.padding < 0:
            raise ValueError(f"padding: got {self.padding!r}; expected 'same' or an integer >= 0")
        return int(self.padding)


class ConvNet:
    """``[conv -> ReLU -> max pool] x len(blocks) -> dense(K)``, trained by backpropagation.

    Parameters
    ----------
    input_shape : tuple (C, H, W)
        Shape of one example.
    blocks : sequence of ConvBlock
        The convolutional blocks, first to last (at least one).
    num_classes : int
        ``K``.
    reg : float
        L2 weight decay on the weights (not the biases) added to the loss.
    seed : int
        Seed of the He-normal initialisation.
    forward_method, backward_method : {"auto", "direct", "im2col", "fft"}
        Algorithms of :func:`conv_lib.conv.conv2d` and :func:`conv_lib.conv.conv2d_backward`
        (see :mod:`conv_lib.algorithms`). The default backward is ``"direct"`` (one BLAS
        call per kernel tap), the faster choice for the few channels of the course's
        networks; every method gives the same gradients up to rounding.

    Attributes
    ----------
    params : dict of ndarray
        ``W1 (F1, C, k1, k1)``, ``b1 (F1,)``, ..., ``W{L} (F_L, F_{L-1}, k_L, k_L)``,
        ``b{L}``, then the dense layer ``W{L+1} (D, K)``, ``b{L+1} (K,)`` with ``D`` the
        number of features after the last block.
    shapes : list of (str, tuple)
        Shape of one example after every layer, e.g. ``("conv1", (8, 28, 28))``.

    Raises
    ------
    ValueError
        If a block's output would be empty (kernel or pool larger than its input).
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        blocks: Sequence[ConvBlock] = (ConvBlock(8), ConvBlock(16)),
        num_classes: int = 10,
        reg: float = 0.0,
        seed: int = 0,
        forward_method: str = "auto",
        backward_method: str = "direct",
    ) -> None:
        c, h, w = (check_positive_int("input_shape", v) for v in input_shape)
        methods = ("auto", "direct", "im2col", "fft")
        self.forward_method = check_choice("forward_method", forward_method, methods)
        self.backward_method = check_choice("backward_method", backward_method, methods)
        if len(blocks) == 0 or not all(isinstance(b, ConvBlock) for b in blocks):
            raise ValueError(f"blocks: got {blocks!r}; expected a non-empty sequence of ConvBlock")
        self.input_shape = (c, h, w)
        self.blocks = tuple(blocks)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.reg = float(reg)
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        self.shapes: list[tuple[str, tuple[int, int, int]]] = []
        for i, block in enumerate(self.blocks, start=1):
            f = check_positive_int("filters", block.filters)
            k = check_positive_int("kernel_size", block.kernel_size)
            s = check_positive_int("stride", block.stride)
            pool = check_positive_int("pool", block.pool)
            p = block.pad()
            if k > min(h, w) + 2 * p:
                raise ValueError(
                    f"blocks[{i - 1}].kernel_size: got {k}; expected at most {min(h, w) + 2 * p}, "
                    f"the padded size of its {h}x{w} input"
                )
            h, w = output_size(h, k, s, p), output_size(w, k, s, p)
            self.shapes.append((f"conv{i}", (f, h, w)))
            if pool > min(h, w):
                raise ValueError(
                    f"blocks[{i - 1}].pool: got {pool}; expected at most {min(h, w)}, the size of its input"
                )
            h, w = h // pool, w // pool
            self.shapes.append((f"pool{i}", (f, h, w)))
            self.params[f"W{i}"] = rng.normal(0, np.sqrt(2 / (c * k * k)), (f, c, k, k))
            self.params[f"b{i}"] = np.zeros(f)
            c = f
        self.features = c * h * w
        last = len(self.blocks) + 1
        self.params[f"W{last}"] = rng.normal(0, np.sqrt(2 / self.features), (self.features, self.num_classes))
        self.params[f"b{last}"] = np.zeros(self.num_classes)

    # ----------------------------------------------------------------------------------
    def param_count(self) -> int:
        """Number of trainable numbers, from :mod:`conv_lib.arithmetic` (equals the sizes in ``params``)."""
        total, c = 0, self.input_shape[0]
        for block in self.blocks:
            total += conv2d_param_count(c, block.filters, block.kernel_size)
            c = block.filters
        return total + dense_param_count(self.features, self.num_classes)

    def macs(self) -> dict[str, int]:
        """Multiply-adds of one forward pass on one image, per layer.

        Returns
        -------
        dict
            ``{"conv1": ..., "conv2": ..., "dense": ..., "total": ...}`` from
            :func:`conv_lib.conv2d_macs` and :func:`conv_lib.dense_macs` (pooling and ReLU
            need comparisons, not multiply-adds, and are not counted).
        """
        out: dict[str, int] = {}
        c = self.input_shape[0]
        for i, block in enumerate(self.blocks, start=1):
            shape = dict(self.shapes)[f"conv{i}"]
            out[f"conv{i}"] = conv2d_macs(c, block.filters, block.kernel_size, shape[1:])
            c = block.filters
        out["dense"] = dense_macs(self.features, self.num_classes)
        out["total"] = sum(out.values())
        return out

    # ----------------------------------------------------------------------------------
    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, list[dict[str, np.ndarray]], list[tuple]]:
        p = self.params
        h = X
        maps: list[dict[str, np.ndarray]] = []
        caches: list[tuple] = []
        for i, block in enumerate(self.blocks, start=1):
            stride, pad = block.stride, block.pad()
            conv = conv2d(h, p[f"W{i}"], p[f"b{i}"], stride=stride, padding=pad, method=self.forward_method)
            cc = (h, p[f"W{i}"], stride, pad)
            relu, cr = relu_forward(conv)
            if block.pool > 1:
                h, cp = max_pool_forward(relu, block.pool)
            else:
                h, cp = relu, None
            maps.append({"conv": conv, "relu": relu, "pool": h})
            caches.append((cc, cr, cp))
        last = len(self.blocks) + 1
        scores, ca = affine_forward(h, p[f"W{last}"], p[f"b{last}"])
        caches.append(ca)
        return scores, maps, caches

    def feature_maps(self, X: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Activations of every block, for inspection.

        Parameters
        ----------
        X : ndarray, shape (N, C, H, W)

        Returns
        -------
        list of dict
            One dict per block: ``"conv"`` (before the ReLU), ``"relu"`` and ``"pool"``
            (the block's output; the ReLU output itself when ``pool == 1``), each of shape
            ``(N, F_i, H_i, W_i)``.
        """
        return self._forward(X)[1]

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Class scores, or loss and gradients.

        Parameters
        ----------
        X : ndarray, shape (N, C, H, W)
        y : ndarray of int, shape (N,), optional

        Returns
        -------
        scores : ndarray, shape (N, K)
            If ``y`` is None.
        (loss, grads) : (float, dict)
            Otherwise; ``grads[name]`` has the shape of ``params[name]``.
        """
        scores, _, caches = self._forward(X)
        if y is None:
            return scores
        p = self.params
        loss, dout = softmax_cross_entropy(scores, y)
        last = len(self.blocks) + 1
        grads: dict[str, np.ndarray] = {}
        dh, grads[f"W{last}"], grads[f"b{last}"] = affine_backward(dout, caches[-1])
        for i in range(len(self.blocks), 0, -1):
            cc, cr, cp = caches[i - 1]
            if cp is not None:
                dh = max_pool_backward(dh, cp)
            dh = relu_backward(dh, cr)
            x, weight, stride, pad = cc
            dh, grads[f"W{i}"], grads[f"b{i}"] = conv2d_backward(
                dh, x, weight, stride=stride, padding=pad, method=self.backward_method
            )
        for name in grads:
            if name.startswith("W") and self.reg:
                grads[name] = grads[name] + self.reg * p[name]
                loss += 0.5 * self.reg * float(np.sum(p[name] ** 2))
        return float(loss), grads


def dense_width_for_budget(in_features: int, budget: int, num_classes: int = 10) -> int:
    """Smallest hidden width ``h`` whose ``in -> h -> K`` dense network has ``>= budget`` parameters.

    The network :class:`conv_lib.network.DenseNet` with ``hidden=(h,)`` has
    ``(in + 1) * h + (h + 1) * K`` parameters; this returns the smallest ``h`` for which
    that is at least ``budget``, so the baseline never gets fewer parameters than the
    model it is compared with.

    Parameters
    ----------
    in_features, budget, num_classes : int
        ``>= 1``.

    Returns
    -------
    int
    """
    in_features = check_positive_int("in_features", in_features)
    budget = check_positive_int("budget", budget)
    num_classes = check_positive_int("num_classes", num_classes)
    per_unit = in_features + 1 + num_classes
    return max(1, -(-(budget - num_classes) // per_unit))
