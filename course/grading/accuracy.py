"""Assignment 4's accuracy question, judged on data the student's code never receives.

:func:`check_accuracy` (grader only) trains the student's network by calling their
``train`` on the course's training digits with the ten classes renamed by a secret
permutation (drawn from :func:`~course.grading.context.hidden_rng`, so it differs per
student and cannot be known in advance), then calls their ``predict`` on the test
digits, whose labels never leave the grader. A hard-coded model or a lookup table of the
public digits therefore scores 0 (the renaming moves every class); code that learns the
renaming from the training labels it is given is not stopped (that is training, helped by
public knowledge: see README's threat model). The accuracy is kept in the grading
context's cache, so several accuracy cells train once.

:func:`check_validation_accuracy` is the visible (local) version: it trains on part of the
training digits and measures on the rest, without renaming.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

import conv_lib as cl
from course.grading.compare import Case, GradingError, answer_shape
from course.grading.context import current_context, hidden_rng

__all__ = [
    "check_accuracy",
    "check_loss_and_grads",
    "check_validation_accuracy",
    "digits_split",
    "secret_relabelling",
]

#: How many of the 1797 digits are the test set (the rest is the training set the students get).
TEST_SIZE = 360
#: How many of the training digits :func:`check_validation_accuracy` holds out.
VALIDATION_SIZE = 287


def digits_split(
    seed: int = 0, test_size: int = TEST_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The course's fixed split of :func:`conv_lib.load_digits`: (X_train, y_train, X_test, y_test).

    Students get the training part only (``coursekit.load_digits_train``); the test part
    stays with the grader.
    """
    X, y = cl.load_digits()
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:test_size], order[test_size:]
    return X[train], y[train], X[test], y[test]


def secret_relabelling() -> np.ndarray:
    """The submission's secret renaming of the 10 digit classes: a permutation without fixed points.

    Raises :class:`GradingError` outside a grading context.
    """
    rng = hidden_rng("digits:relabelling")
    while True:
        perm = rng.permutation(10)
        if not np.any(perm == np.arange(10)):
            return perm


def _check_min_accuracy(min_accuracy: Any) -> float:
    if (
        isinstance(min_accuracy, bool)
        or not isinstance(min_accuracy, (int, float))
        or not 0 < min_accuracy <= 1
    ):
        raise ValueError(f"min_accuracy: got {min_accuracy!r}; expected a number in (0, 1]")
    return float(min_accuracy)


#: The public renaming of the classes of the visible accuracy check: digit d is called (d + 3) % 10.
VISIBLE_RELABELLING = (np.arange(10) + 3) % 10


def _measure(
    train: Callable[..., Any],
    predict: Callable[..., Any],
    fit: tuple[np.ndarray, np.ndarray],
    evaluate: tuple[np.ndarray, np.ndarray],
    what: str,
    original: np.ndarray | None = None,
) -> tuple[float, float]:
    """``params = train(*fit)``, then the accuracy of ``predict(params, X)`` on ``evaluate``.

    The labels of ``evaluate`` stay here: only its images reach student code. Also returns
    the accuracy against ``original`` (the labels before renaming; NaN without them): a
    network that scores there learned from something other than the labels it was given.
    """
    X_fit, y_fit = fit
    X_eval, y_eval = evaluate
    params = Case(
        f"train(X, y) on {len(y_fit)} {what}, X {X_fit.shape}", {"X": X_fit, "y": y_fit}, ("X", "y")
    ).call(train, "train")
    if params is None:
        raise GradingError(
            "train returned None: it must return the trained parameters (what predict receives as `params`)."
        )
    got = Case(
        f"predict(params, X) on {len(y_eval)} digits, X {X_eval.shape}, params from your train",
        {"params": params, "X": X_eval},
        ("params", "X"),
    ).call(predict, "predict")
    try:
        labels = np.asarray(got)
    except Exception as err:  # noqa: BLE001
        raise GradingError(f"predict should return an array of labels; got {type(got).__name__}.") from err
    if labels.shape != y_eval.shape:
        raise GradingError(
            f"predict should return one label per image, shape {y_eval.shape}; got {labels.shape}. "
            "Take the argmax of the logits over axis 1."
        )
    if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
        raise GradingError(f"predict should return integer labels 0-9; got dtype {labels.dtype}.")
    on_original = float(np.mean(labels == original)) if original is not None else float("nan")
    return float(np.mean(labels == y_eval)), on_original


_TRAIN_BETTER = "Check the gradients (the gradient check), then train longer or adjust the learning rate."
_OWN_DATA = (
    "\n  Likely bug (not trained on the data it is given): your predictions match the digits' "
    "ORIGINAL names ({orig:.3f} of them), not the renamed classes that train(X, y) received. train "
    "must learn from its own arguments X and y only (not from load_digits_train() or other data "
    "it finds itself), and predict must use only what train returned."
)


def _cached(key: tuple[Any, ...], compute: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """``compute()`` once per grading context (its result or its GradingError); no cache outside one."""
    ctx = current_context()
    if ctx is None:
        return compute()
    if key not in ctx.cache:
        try:
            ctx.cache[key] = compute()
        except GradingError as err:
            ctx.cache[key] = err
    outcome = ctx.cache[key]
    if isinstance(outcome, GradingError):
        raise GradingError(str(outcome)) from outcome.__cause__
    return outcome


def _key(what: str, train: Callable[..., Any], predict: Callable[..., Any]) -> tuple[str, str, str]:
    return (what, str(getattr(train, "__name__", "train")), str(getattr(predict, "__name__", "predict")))


def check_accuracy(train: Callable[..., Any], predict: Callable[..., Any], min_accuracy: float) -> None:
    """Grader only: accuracy on the test digits, with secret labels, ``>= min_accuracy``.

    ``train(X_train, y_train) -> params`` is called on the training digits with the
    classes renamed by :func:`secret_relabelling`; ``predict(params, X_test) -> labels``
    on the test digits (``y_test`` is never passed to student code). ``params`` is
    whatever ``train`` returned (an opaque handle is fine). Inside a grading context the
    accuracy is computed once and cached, so the 0.85 and 0.93 cells train once.
    """
    min_accuracy = _check_min_accuracy(min_accuracy)
    perm = secret_relabelling()  # raises outside the grader
    X_train, y_train, X_test, y_test = digits_split()

    def compute() -> tuple[float, float]:
        return _measure(
            train, predict, (X_train, perm[y_train]), (X_test, perm[y_test]), "training digits", y_test
        )

    acc, orig = _cached(_key("digits:test", train, predict), compute)
    if acc < min_accuracy:
        raise GradingError(
            f"test accuracy {acc:.3f} is below {min_accuracy:.2f}. The grader trained your network with "
            f"your train on the {len(y_train)} training digits (with the ten classes renamed, so the "
            f"network has to learn them from the labels it is given) and measured predict on "
            f"{len(y_test)} digits it never saw. "
            + (_OWN_DATA.format(orig=orig) if orig > max(0.5, acc + 0.3) else _TRAIN_BETTER)
        )
    print(
        f"OK: test accuracy {acc:.3f} >= {min_accuracy:.2f} ({len(y_test)} unseen digits, classes renamed)."
    )


def check_validation_accuracy(
    train: Callable[..., Any], predict: Callable[..., Any], min_accuracy: float
) -> None:
    """Visible version of :func:`check_accuracy`: train on part of the training digits, measure on the rest.

    ``train`` gets the training digits minus ``VALIDATION_SIZE`` held out (a fixed
    choice), with the classes renamed by the public :data:`VISIBLE_RELABELLING` (so a
    ``train`` that learns from other data than its arguments fails here too);
    ``predict(params, X_val)`` is compared with their renamed labels. The grader's test
    (:func:`check_accuracy`) uses digits you do not have and a secret renaming.
    """
    min_accuracy = _check_min_accuracy(min_accuracy)
    X_train, y_train, _, _ = digits_split()
    order = np.random.default_rng(zlib.crc32(b"digits:validation")).permutation(len(y_train))
    val, fit = order[:VALIDATION_SIZE], order[VALIDATION_SIZE:]
    rename = VISIBLE_RELABELLING

    def compute() -> tuple[float, float]:
        return _measure(
            train,
            predict,
            (X_train[fit], rename[y_train[fit]]),
            (X_train[val], rename[y_train[val]]),
            "of the training digits (classes renamed: digit d is called (d + 3) % 10)",
            y_train[val],
        )

    acc, orig = _cached(_key("digits:validation", train, predict), compute)
    if acc < min_accuracy:
        raise GradingError(
            f"validation accuracy {acc:.3f} is below {min_accuracy:.2f} (trained with your train on "
            f"{len(fit)} of the training digits, with the classes renamed: digit d is called (d + 3) % 10; "
            f"measured on the other {len(val)}). "
            + (_OWN_DATA.format(orig=orig) if orig > max(0.5, acc + 0.3) else _TRAIN_BETTER)
        )
    print(
        f"OK: validation accuracy {acc:.3f} >= {min_accuracy:.2f} ({len(fit)} training digits, "
        f"{len(val)} held out, classes renamed). The grader measures on test digits you do not have."
    )


# ---------------------------------------------------------------------------------------
# The network's gradients
# ---------------------------------------------------------------------------------------

#: Step and tolerance of the directional gradient check of loss_and_grads.
GRAD_EPS, GRAD_RTOL = 1e-5, 1e-4


# The grader widens the parameters to float64 and moves them along random directions in
# its own process: at most this many values (8 MiB in float64; the notebook's network
# has about 1.4k), whatever dtype (e.g. float16, 8x smaller than float64) they came in.
_MAX_PARAM_ELEMENTS = 2**20


def _float_arrays(params: Any, what: str) -> dict[str, np.ndarray]:
    if not isinstance(params, dict):
        raise GradingError(
            f"{what} should be a dict of NumPy arrays (name -> array, e.g. {{'W1': ..., 'b1': ...}}); "
            f"got {type(params).__name__}."
        )
    out = {}
    elements = 0
    for k, v in params.items():
        if isinstance(v, list) and answer_shape(v, _MAX_PARAM_ELEMENTS - elements) is None:
            continue  # not numbers, or more than the bound: never converted (left out below)
        arr = np.asarray(v) if isinstance(v, (np.ndarray, list)) else None
        if arr is not None and np.issubdtype(arr.dtype, np.floating):
            elements += arr.size
            if elements > _MAX_PARAM_ELEMENTS:  # checked before anything is widened to float64
                raise GradingError(
                    f"{what} holds over {_MAX_PARAM_ELEMENTS:,} float values; the notebook's network "
                    "has a few thousand. Return the network the notebook describes."
                )
            out[str(k)] = arr.astype(np.float64)
    if not out:
        raise GradingError(f"{what} holds no float arrays: nothing to train.")
    return out


def _reference_grads(
    p: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, mask: str
) -> dict[str, np.ndarray]:
    """The gradients of the notebook's network (conv 3x3 pad 1, ReLU, max-pool 2, dense) with conv_lib.

    ``mask`` "relu" is right; "none" and "pool_on_z" are WRONG on purpose (no ReLU mask in
    the backward pass; without it and with max-pool backward taken on z instead of relu(z)).
    """
    z = cl.conv2d(X, p["W1"], p["b1"], padding=1)
    a = np.maximum(z, 0)
    pooled = cl.max_pool2d(a, 2)
    flat = pooled.reshape(len(X), -1)
    _, dlogits = cl.softmax_cross_entropy(flat @ p["W2"] + p["b2"], y)
    grads = {"W2": flat.T @ dlogits, "b2": dlogits.sum(axis=0)}
    dp = (dlogits @ p["W2"].T).reshape(pooled.shape)
    if mask == "relu":
        dz = cl.max_pool2d_backward(dp, a, 2) * (z > 0)
    else:
        dz = cl.max_pool2d_backward(dp, a if mask == "none" else z, 2)
    _, grads["W1"], grads["b1"] = cl.conv2d_backward(dz, X, p["W1"], padding=1)
    return grads


# The notebook's network has 8 filters; the diagnosis below recomputes the network's
# gradients in the grader's process on the shapes the student's init_params chose, so
# it runs only up to this many (a 64 MiB answer could otherwise hold ~50k filters).
_NAMED_BUG_MAX_FILTERS = 256


def _named_network_bug(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> str | None:
    """A known mistake of the notebook's network, if the parameters have its structure."""
    shapes = {k: v.shape for k, v in params.items()}
    f = shapes.get("W1", (0,))[0]
    if shapes != {"W1": (f, 1, 3, 3), "b1": (f,), "W2": (16 * f, 10), "b2": (10,)}:
        return None
    if f > _NAMED_BUG_MAX_FILTERS:  # the answer chose the size: no diagnosis on huge networks
        return None
    try:
        right = _reference_grads(params, X, y, "relu")
        if not all(np.allclose(grads[k], right[k], rtol=1e-5, atol=1e-8) for k in ("W2", "b2")):
            return None  # a different network (or loss): nothing to say about the ReLU
        for variant in ("none", "pool_on_z"):
            wrong = _reference_grads(params, X, y, variant)
            if all(np.allclose(grads[k], wrong[k], rtol=1e-5, atol=1e-8) for k in ("W1", "b1")):
                return (
                    "the ReLU mask is missing in the backward pass: a = max(z, 0) passes the gradient "
                    "only where z > 0, so dz = (gradient with respect to a) * (z > 0)."
                )
    except Exception:  # noqa: BLE001 - not the notebook's network after all
        return None
    return None


def check_loss_and_grads(
    init_params: Callable[..., Any], loss_and_grads: Callable[..., Any], hidden: bool = False
) -> None:
    """``loss_and_grads(params, X, y) -> (loss, grads)``: are the gradients those of the loss?

    ``params = init_params()`` (slightly moved at random, so that no bias is exactly 0) must be a
    dict of float arrays and ``grads`` a dict with the same keys and shapes. For each parameter,
    along random directions v, ``sum(grads[k] * v)`` is compared with the central difference of
    the student's own loss, ``(L(p + eps v) - L(p - eps v)) / (2 eps)``, on 16 training digits
    (a fixed batch, or a secret one when ``hidden``).
    """
    from course.grading.cases import case_rng

    rng = case_rng("network:gradients", hidden)
    X_train, y_train, _, _ = digits_split()
    pick = rng.choice(len(y_train), size=16, replace=False)
    X, y = X_train[pick], y_train[pick]
    raw = Case("init_params()", {}, ()).call(init_params, "init_params")
    floats = _float_arrays(raw, "init_params()")
    params = dict(raw)
    for k, v in floats.items():
        params[k] = v + 0.05 * rng.standard_normal(v.shape)

    def run(p: dict[str, Any], label: str) -> tuple[float, dict[str, Any]]:
        got = Case(
            f"loss_and_grads(params, X, y) with {label}, X (16, 1, 8, 8), y (16,)",
            {"params": p, "X": X, "y": y},
            ("params", "X", "y"),
        ).call(loss_and_grads, "loss_and_grads")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise GradingError(f"loss_and_grads must return (loss, grads); got {type(got).__name__}.")
        loss, grads = got
        try:
            loss = float(loss)
        except (TypeError, ValueError) as err:
            raise GradingError(
                f"loss_and_grads: the loss should be a number, got {type(loss).__name__}."
            ) from err
        if not math.isfinite(loss):
            raise GradingError(f"loss_and_grads: the loss is {loss} with {label}; it should be finite.")
        return loss, grads

    loss, grads = run(params, "init_params() moved slightly")
    if not isinstance(grads, dict):
        raise GradingError(f"loss_and_grads: grads should be a dict like params; got {type(grads).__name__}.")
    for k, v in floats.items():
        shape = answer_shape(grads[k], v.size) if k in grads else "missing"
        if shape != v.shape:
            raise GradingError(
                f"loss_and_grads: grads[{k!r}] should have the shape of params[{k!r}], {v.shape}; "
                f"got {shape}."
            )
    grads64 = {k: np.asarray(grads[k], dtype=np.float64) for k in floats}
    largest_numeric = 0.0
    for k in floats:
        worst = None
        for trial in range(2):
            v = rng.standard_normal(floats[k].shape)
            v /= np.linalg.norm(v)
            plus = run(params | {k: params[k] + GRAD_EPS * v}, f"params[{k!r}] + eps * v")[0]
            minus = run(params | {k: params[k] - GRAD_EPS * v}, f"params[{k!r}] - eps * v")[0]
            numeric = (plus - minus) / (2 * GRAD_EPS)
            largest_numeric = max(largest_numeric, abs(numeric))
            analytic = float(np.sum(grads64[k] * v))
            err = abs(analytic - numeric) / max(abs(analytic) + abs(numeric), 1e-8)
            if worst is None or err < worst[0] or not math.isfinite(worst[0]):
                worst = (err, analytic, numeric, trial)
        assert worst is not None
        err, analytic, numeric, _ = worst
        if not err <= GRAD_RTOL:  # NaN (a non-finite loss or gradient) fails too
            named = _named_network_bug({kk: np.asarray(params[kk], float) for kk in floats}, grads64, X, y)
            hint = (
                f"Likely bug (ReLU mask missing): {named}"
                if named
                else (
                    f"Hint: go backwards from the loss to params[{k!r}] and check each layer's backward "
                    "pass on its own with your numeric_gradient (assignment 3): the dense layer, the "
                    "reshape, max_pool2d_backward (on the ReLU's output), the ReLU mask (z > 0), "
                    "conv2d_backward (with the padding of the forward pass)."
                )
            )
            raise GradingError(
                f"grads[{k!r}] is not the gradient of your loss: along a random direction v (unit length), "
                f"sum(grads[{k!r}] * v) = {analytic:.6g}, but (L(p + eps v) - L(p - eps v)) / (2 eps) = "
                f"{numeric:.6g} with eps = {GRAD_EPS} (relative difference {err:.2g}; at most {GRAD_RTOL} "
                f"expected), on 16 training digits.\n  {hint}"
            )
    if largest_numeric < 1e-9:
        raise GradingError(
            "loss_and_grads: your loss does not change when the parameters move (every numeric "
            "derivative above is 0), so it is not the network's loss: a network's cross-entropy "
            "depends on its weights. Compute the loss from the network's scores."
        )
    print(
        f"OK: loss_and_grads: the gradients of {len(floats)} parameters agree with the numeric "
        f"derivatives of your loss ({'hidden' if hidden else 'visible'} batch of 16 digits)."
    )
