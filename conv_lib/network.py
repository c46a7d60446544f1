"""A small convolutional network in NumPy, built only from conv_lib's layers.

Layers follow cs231n's ``layers.py`` style: every ``*_forward`` returns ``(out, cache)``
and the matching ``*_backward`` takes ``(dout, cache)`` and returns the gradients. The
convolution and pooling arithmetic is never re-implemented here: it is
:func:`conv_lib.conv.conv2d`, :func:`conv_lib.conv.conv2d_backward`,
:func:`conv_lib.pooling.max_pool2d` and :func:`conv_lib.pooling.max_pool2d_backward`.

Two models share one interface (``params`` dict, ``loss(X, y=None)``):

- :class:`SmallCNN`: conv -> ReLU -> max pool -> dense (the chapters' digit classifier);
- :class:`DenseNet`: dense -> ReLU -> ... -> dense (the fully connected baseline).

:func:`train` runs minibatch training with :class:`Adam` or :class:`SGDMomentum`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from conv_lib.conv import conv2d, conv2d_backward
from conv_lib.pooling import max_pool2d, max_pool2d_backward
from conv_lib.validation import as_array, check_positive_int

__all__ = [
    "Adam",
    "DenseNet",
    "SGDMomentum",
    "SmallCNN",
    "TrainHistory",
    "accuracy",
    "affine_backward",
    "affine_forward",
    "conv_backward",
    "conv_forward",
    "max_pool_backward",
    "max_pool_forward",
    "param_count",
    "predict",
    "relu_backward",
    "relu_forward",
    "softmax_cross_entropy",
    "train",
]


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------
def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Fully connected (dense) layer.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        Input; each example is flattened to ``D = d_1 * ... * d_k`` features.
    w : ndarray, shape (D, M)
        Weights.
    b : ndarray, shape (M,)
        Biases.

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(x, w)`` for :func:`affine_backward`.
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`affine_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
        Upstream gradient.
    cache : tuple
        From :func:`affine_forward`.

    Returns
    -------
    dx : ndarray, shape (N, d_1, ..., d_k)
    dw : ndarray, shape (D, M)
    db : ndarray, shape (M,)
    """
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rectified linear unit, elementwise ``max(x, 0)``.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, same shape as ``x``
    cache : ndarray
        ``x``, for :func:`relu_backward`.
    """
    return np.maximum(x, 0), x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward pass of :func:`relu_forward`; the gradient at exactly 0 is taken as 0.

    Parameters
    ----------
    dout : ndarray, same shape as the ReLU's input
    cache : ndarray
        The ReLU's input.

    Returns
    -------
    dx : ndarray, same shape as ``dout``
    """
    return dout * (cache > 0)


def conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0
) -> tuple[np.ndarray, tuple]:
    """Convolution layer (cross-correlation, as in every deep-learning library).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, kH, kW)
    b : ndarray, shape (F,)
    stride, padding : int
        As in :func:`conv_lib.conv.conv2d`.

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
        ``H' = (H + 2 * padding - kH) // stride + 1``, likewise ``W'``.
    cache : tuple
        ``(x, w, stride, padding)`` for :func:`conv_backward`.
    """
    out = conv2d(x, w, b, stride=stride, padding=padding)
    return out, (x, w, stride, padding)


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward`, via :func:`conv_lib.conv.conv2d_backward`.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H', W')
    cache : tuple
        From :func:`conv_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dw : ndarray, shape (F, C, kH, kW)
    db : ndarray, shape (F,)
    """
    x, w, stride, padding = cache
    return conv2d_backward(dout, x, w, stride=stride, padding=padding)


def max_pool_forward(x: np.ndarray, pool: int = 2, stride: int | None = None) -> tuple[np.ndarray, tuple]:
    """Max pooling layer, via :func:`conv_lib.pooling.max_pool2d`.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    pool : int
        Window size.
    stride : int, optional
        Defaults to ``pool`` (non-overlapping windows).

    Returns
    -------
    out : ndarray, shape (N, C, H', W')
    cache : tuple
        ``(x, pool, stride)`` for :func:`max_pool_backward`.
    """
    return max_pool2d(x, pool, stride), (x, pool, stride)


def max_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward pass of :func:`max_pool_forward` (gradient goes to each window's maximum).

    Parameters
    ----------
    dout : ndarray, shape (N, C, H', W')
    cache : tuple
        From :func:`max_pool_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    x, pool, stride = cache
    return max_pool2d_backward(dout, x, pool, stride)


def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy loss and its gradient.

    Parameters
    ----------
    scores : ndarray, shape (N, K)
        Unnormalised class scores (logits).
    y : ndarray of int, shape (N,)
        Labels in ``0 .. K-1``.

    Returns
    -------
    loss : float
        ``-mean_i log softmax(scores_i)[y_i]``.
    dscores : ndarray, shape (N, K)
        Gradient of ``loss`` with respect to ``scores``: ``(softmax - onehot) / N``.
    """
    scores = as_array("scores", scores, ndim=2, floating=True)
    y = np.asarray(y)
    n, k = scores.shape
    if y.shape != (n,):
        raise ValueError(f"y: got shape {y.shape}; expected ({n},) to match scores of shape {scores.shape}")
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"y: got labels in [{y.min()}, {y.max()}]; expected integers in [0, {k - 1}]")
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(log_probs[np.arange(n), y].mean())
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    return loss, dscores / n


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
class Model(Protocol):
    """What :func:`train` needs: a parameter dict and a loss function."""

    params: dict[str, np.ndarray]

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any: ...


class SmallCNN:
    """conv(F filters, k x k, 'same' padding) -> ReLU -> max pool -> dense(K).

    Parameters
    ----------
    input_shape : tuple (C, H, W)
        Shape of one example.
    num_filters : int
        ``F``, the number of convolution filters.
    kernel_size : int
        Odd filter size ``k``; padding ``k // 2`` keeps ``H x W``.
    pool : int
        Max-pool window and stride.
    num_classes : int
        ``K``.
    reg : float
        L2 weight decay on the weights (not the biases) added to the loss.
    seed : int
        Seed of the He-normal initialisation.

    Notes
    -----
    Parameters: ``W1 (F, C, k, k)``, ``b1 (F,)``, ``W2 (F * H/pool * W/pool, K)``, ``b2 (K,)``.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] = (1, 8, 8),
        num_filters: int = 8,
        kernel_size: int = 3,
        pool: int = 2,
        num_classes: int = 10,
        reg: float = 0.0,
        seed: int = 0,
    ) -> None:
        c, h, w = (check_positive_int("input_shape", v) for v in input_shape)
        self.num_filters = check_positive_int("num_filters", num_filters)
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: got {kernel_size}; expected an odd integer ('same' padding)")
        self.pool = check_positive_int("pool", pool)
        self.padding = self.kernel_size // 2
        self.reg = float(reg)
        rng = np.random.default_rng(seed)
        fan_in = c * self.kernel_size**2
        hp, wp = h // self.pool, w // self.pool
        flat = self.num_filters * hp * wp
        k = self.kernel_size
        self.params = {
            "W1": rng.normal(0, np.sqrt(2 / fan_in), (self.num_filters, c, k, k)),
            "b1": np.zeros(self.num_filters),
            "W2": rng.normal(0, np.sqrt(2 / flat), (flat, num_classes)),
            "b2": np.zeros(num_classes),
        }

    def feature_maps(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Intermediate activations for inspection.

        Parameters
        ----------
        X : ndarray, shape (N, C, H, W)

        Returns
        -------
        dict
            ``"conv"`` (N, F, H, W) before ReLU, ``"relu"`` (N, F, H, W),
            ``"pool"`` (N, F, H/pool, W/pool).
        """
        p = self.params
        conv, _ = conv_forward(X, p["W1"], p["b1"], padding=self.padding)
        relu, _ = relu_forward(conv)
        pooled, _ = max_pool_forward(relu, self.pool)
        return {"conv": conv, "relu": relu, "pool": pooled}

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
        p = self.params
        h1, c1 = conv_forward(X, p["W1"], p["b1"], padding=self.padding)
        a1, cr = relu_forward(h1)
        m1, cp = max_pool_forward(a1, self.pool)
        scores, ca = affine_forward(m1, p["W2"], p["b2"])
        if y is None:
            return scores
        loss, ds = softmax_cross_entropy(scores, y)
        loss += 0.5 * self.reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        dm1, dW2, db2 = affine_backward(ds, ca)
        da1 = max_pool_backward(dm1, cp)
        dh1 = relu_backward(da1, cr)
        _, dW1, db1 = conv_backward(dh1, c1)
        grads = {
            "W1": dW1 + self.reg * p["W1"],
            "b1": db1,
            "W2": dW2 + self.reg * p["W2"],
            "b2": db2,
        }
        return float(loss), grads


class DenseNet:
    """Fully connected baseline: (dense -> ReLU) x len(hidden) -> dense(K).

    Parameters
    ----------
    in_features : int
        ``D``; inputs of shape (N, d_1, ...) are flattened to (N, D).
    hidden : tuple of int
        Widths of the hidden layers (empty: multinomial logistic regression).
    num_classes : int
        ``K``.
    reg : float
        L2 weight decay on the weights.
    seed : int
        Seed of the He-normal initialisation.

    Notes
    -----
    Parameters ``W{i} (fan_in, fan_out)`` and ``b{i} (fan_out,)`` for ``i = 1 .. len(hidden) + 1``.
    """

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...] = (32,),
        num_classes: int = 10,
        reg: float = 0.0,
        seed: int = 0,
    ) -> None:
        sizes = [check_positive_int("in_features", in_features)]
        sizes += [check_positive_int("hidden", h) for h in hidden]
        sizes += [check_positive_int("num_classes", num_classes)]
        self.reg = float(reg)
        self.num_layers = len(sizes) - 1
        rng = np.random.default_rng(seed)
        self.params = {}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            self.params[f"W{i}"] = rng.normal(0, np.sqrt(2 / a), (a, b))
            self.params[f"b{i}"] = np.zeros(b)

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Class scores, or loss and gradients (see :meth:`SmallCNN.loss`).

        Parameters
        ----------
        X : ndarray, shape (N, d_1, ...)
        y : ndarray of int, shape (N,), optional
        """
        p = self.params
        caches = []
        h = X
        for i in range(1, self.num_layers + 1):
            h, ca = affine_forward(h, p[f"W{i}"], p[f"b{i}"])
            cr = None
            if i < self.num_layers:
                h, cr = relu_forward(h)
            caches.append((ca, cr))
        if y is None:
            return h
        loss, dh = softmax_cross_entropy(h, y)
        grads = {}
        for i in range(self.num_layers, 0, -1):
            ca, cr = caches[i - 1]
            if cr is not None:
                dh = relu_backward(dh, cr)
            dh, dw, db = affine_backward(dh, ca)
            grads[f"W{i}"] = dw + self.reg * p[f"W{i}"]
            grads[f"b{i}"] = db
            loss += 0.5 * self.reg * float(np.sum(p[f"W{i}"] ** 2))
        return float(loss), grads


def param_count(model: Model) -> int:
    """Total number of trainable numbers in ``model.params``."""
    return int(sum(v.size for v in model.params.values()))


# --------------------------------------------------------------------------------------
# Optimisers and training
# --------------------------------------------------------------------------------------
class SGDMomentum:
    """Stochastic gradient descent with (heavy-ball) momentum.

    ``v = momentum * v - lr * g``; ``w = w + v``.
    """

    def __init__(self, lr: float = 0.05, momentum: float = 0.9) -> None:
        self.lr, self.momentum = float(lr), float(momentum)
        self.velocity: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update ``params`` in place from ``grads`` (same keys and shapes)."""
        for k, g in grads.items():
            v = self.velocity.setdefault(k, np.zeros_like(g))
            v *= self.momentum
            v -= self.lr * g
            params[k] += v


class Adam:
    """Adam optimiser (Kingma and Ba, 2015) with bias correction."""

    def __init__(self, lr: float = 1e-2, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update ``params`` in place from ``grads`` (same keys and shapes)."""
        self.t += 1
        for k, g in grads.items():
            m = self.m.setdefault(k, np.zeros_like(g))
            v = self.v.setdefault(k, np.zeros_like(g))
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            m_hat = m / (1 - self.beta1**self.t)
            v_hat = v / (1 - self.beta2**self.t)
            params[k] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


@dataclass
class TrainHistory:
    """What :func:`train` records.

    Attributes
    ----------
    loss : list of float
        Training loss of every minibatch.
    train_acc, val_acc : list of float
        Accuracy after every epoch (``val_acc`` empty without validation data).
    seconds : float
        Wall-clock training time.
    """

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0


def predict(model: Model, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Predicted labels, shape (N,), computed in batches."""
    batch_size = check_positive_int("batch_size", batch_size)
    out = [np.argmax(model.loss(X[i : i + batch_size]), axis=1) for i in range(0, len(X), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def accuracy(model: Model, X: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Fraction of examples of ``X`` whose predicted label equals ``y``."""
    return float(np.mean(predict(model, X, batch_size) == np.asarray(y)))


def train(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: Adam | SGDMomentum | None = None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    seed: int = 0,
    track_train: bool = True,
    blas_threads: int | None = None,
) -> TrainHistory:
    """Minibatch training; ``model.params`` are updated in place.

    Parameters
    ----------
    model : SmallCNN or DenseNet (anything with ``params`` and ``loss``)
    X : ndarray, shape (N, ...)
    y : ndarray of int, shape (N,)
    epochs, batch_size : int
    optimizer : Adam or SGDMomentum, optional
        Defaults to ``Adam(lr=1e-2)``.
    X_val, y_val : ndarray, optional
        Evaluated after every epoch.
    seed : int
        Seed of the shuffling.
    track_train : bool
        Record the accuracy on all of ``X`` after every epoch (``TrainHistory.train_acc``);
        False skips that extra pass over the training set (``train_acc`` stays empty).
    blas_threads : int, optional
        Limit BLAS to this many threads while training (threadpoolctl). The matrices of
        small networks are too small to share among threads, and on a busy machine a
        BLAS thread waiting for a core stalls every step; ``1`` is then several times
        faster. None keeps the current setting.

    Returns
    -------
    TrainHistory
    """
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if len(X) != len(y):
        raise ValueError(f"y: got {len(y)} labels; expected {len(X)} to match X")
    if blas_threads is not None:
        blas_threads = check_positive_int("blas_threads", blas_threads)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=blas_threads, user_api="blas"):
            return train(model, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                         X_val=X_val, y_val=y_val, seed=seed, track_train=track_train)
    optimizer = optimizer if optimizer is not None else Adam()
    rng = np.random.default_rng(seed)
    hist = TrainHistory()
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for i in range(0, len(X), batch_size):
            idx = order[i : i + batch_size]
            loss, grads = model.loss(X[idx], y[idx])
            optimizer.step(model.params, grads)
            hist.loss.append(loss)
        if track_train:
            hist.train_acc.append(accuracy(model, X, y))
        if X_val is not None and y_val is not None:
            hist.val_acc.append(accuracy(model, X_val, y_val))
    hist.seconds = time.perf_counter() - start
    return hist
