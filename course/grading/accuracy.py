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

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

import conv_lib as cl
from course.grading.compare import Case, GradingError
from course.grading.context import current_context, hidden_rng

__all__ = ["check_accuracy", "check_validation_accuracy", "digits_split", "secret_relabelling"]

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


def _measure(
    train: Callable[..., Any],
    predict: Callable[..., Any],
    fit: tuple[np.ndarray, np.ndarray],
    evaluate: tuple[np.ndarray, np.ndarray],
    what: str,
) -> float:
    """``params = train(*fit)``, then the accuracy of ``predict(params, X)`` on ``evaluate``.

    The labels of ``evaluate`` stay here: only its images reach student code.
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
    return float(np.mean(labels == y_eval))


def _cached(key: tuple[Any, ...], compute: Callable[[], float]) -> float:
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

    def compute() -> float:
        return _measure(train, predict, (X_train, perm[y_train]), (X_test, perm[y_test]), "training digits")

    acc = _cached(_key("digits:test", train, predict), compute)
    if acc < min_accuracy:
        raise GradingError(
            f"test accuracy {acc:.3f} is below {min_accuracy:.2f}. The grader trained your network with "
            f"your train on the {len(y_train)} training digits (with the ten classes renamed, so the "
            f"network has to learn them from the labels it is given) and measured predict on "
            f"{len(y_test)} digits it never saw. Check the gradients (the gradient check), then "
            "train longer or adjust the learning rate."
        )
    print(
        f"OK: test accuracy {acc:.3f} >= {min_accuracy:.2f} ({len(y_test)} unseen digits, classes renamed)."
    )


def check_validation_accuracy(
    train: Callable[..., Any], predict: Callable[..., Any], min_accuracy: float
) -> None:
    """Visible version of :func:`check_accuracy`: train on part of the training digits, measure on the rest.

    ``train`` gets the training digits minus ``VALIDATION_SIZE`` held out (a fixed
    choice); ``predict(params, X_val)`` is compared with their labels. The grader's
    test (:func:`check_accuracy`) uses digits you do not have.
    """
    min_accuracy = _check_min_accuracy(min_accuracy)
    X_train, y_train, _, _ = digits_split()
    order = np.random.default_rng(zlib.crc32(b"digits:validation")).permutation(len(y_train))
    val, fit = order[:VALIDATION_SIZE], order[VALIDATION_SIZE:]

    def compute() -> float:
        return _measure(
            train,
            predict,
            (X_train[fit], y_train[fit]),
            (X_train[val], y_train[val]),
            "of the training digits",
        )

    acc = _cached(_key("digits:validation", train, predict), compute)
    if acc < min_accuracy:
        raise GradingError(
            f"validation accuracy {acc:.3f} is below {min_accuracy:.2f} (trained with your train on "
            f"{len(fit)} of the training digits, measured on the other {len(val)}). Check the gradients "
            "(the gradient check), then train longer or adjust the learning rate."
        )
    print(
        f"OK: validation accuracy {acc:.3f} >= {min_accuracy:.2f} ({len(fit)} training digits, "
        f"{len(val)} held out). The grader measures on test digits you do not have."
    )
