"""coursekit: the helpers and data the assignments' given cells use.

This is all the course code a student's notebook can import when it is graded: the
grading sandbox holds the Python standard library, NumPy and this package only (not
``conv_lib``, scipy or torch). It answers no graded question. It imports nothing but
NumPy and the standard library.

Contents
    pair(value)                     (v, v) for a number, (a, b) for a pair
    SUMMARY_IMAGE, SUMMARY_KERNEL   the one-page summary's 5x5 image and 3x3 edge kernel
    get_kernel(name), KERNEL_NAMES  classic 3x3 kernels by name ("sobel_x", "box", ...)
    KERNEL_CANDIDATES               the kernels of assignment 1's symmetry question
    load_digits_train()             the training split of the 8x8 digits (assignment 4)
    load_camera()                   a 256x256 grayscale photograph (assignment 4's edges)

The arrays come from ``data.npz``, generated from conv_lib by ``python -m course.kit``.
Data credits: the digits are scikit-learn's copy of the UCI "Optical Recognition of
Handwritten Digits" data set (E. Alpaydin, C. Kaynak; CC BY 4.0); the photograph is
scikit-image's ``camera`` (public domain), every second pixel.
"""

from __future__ import annotations

import numbers
import operator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "KERNEL_CANDIDATES",
    "KERNEL_NAMES",
    "SUMMARY_IMAGE",
    "SUMMARY_KERNEL",
    "get_kernel",
    "load_camera",
    "load_digits_train",
    "pair",
]

_DATA_FILE = Path(__file__).with_name("data.npz")


def _load() -> dict[str, np.ndarray]:
    with np.load(_DATA_FILE, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    for arr in arrays.values():
        arr.setflags(write=False)
    return arrays


_DATA = _load()

#: The one-page summary's 5x5 sample image (read-only; ``SUMMARY_IMAGE.copy()`` to change it).
SUMMARY_IMAGE: np.ndarray = _DATA["summary_image"]
#: The one-page summary's 3x3 "edge detection" kernel (read-only).
SUMMARY_KERNEL: np.ndarray = _DATA["summary_kernel"]
#: Every name :func:`get_kernel` accepts.
KERNEL_NAMES: tuple[str, ...] = tuple(str(n) for n in _DATA["kernel_names"])
#: The kernels of assignment 1's question "which give the same result under correlation and convolution?".
KERNEL_CANDIDATES: tuple[str, ...] = tuple(str(n) for n in _DATA["kernel_candidates"])


def pair(value: Any) -> tuple[int, int]:
    """``(v, v)`` for an int, the two values for a pair: ``stride=2`` means ``(2, 2)``."""
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        if isinstance(value, numbers.Integral):
            return int(value), int(value)
        first, second = value
        if any(isinstance(v, (bool, np.bool_)) for v in (first, second)):
            raise TypeError
        return operator.index(first), operator.index(second)
    except (TypeError, ValueError):
        raise ValueError(f"value: got {value!r}; expected an int or a pair of ints") from None


def get_kernel(name: str) -> np.ndarray:
    """A classic 3x3 kernel by name (a new float64 array), e.g. ``get_kernel("sobel_x")``.

    The kernels are written for cross-correlation: ``sobel_x`` responds positively where the
    image gets brighter from left to right, ``sobel_y`` from top to bottom.
    """
    if name not in KERNEL_NAMES:
        raise ValueError(f"name: got {name!r}; expected one of {list(KERNEL_NAMES)}")
    return np.array(_DATA[f"kernel_{name}"], dtype=np.float64)


def load_digits_train() -> tuple[np.ndarray, np.ndarray]:
    """The course's training digits (the grader keeps the test digits).

    Returns
    -------
    X : numpy.ndarray, shape (1437, 1, 8, 8), float64 in [0, 1]
        New, writable.
    y : numpy.ndarray, shape (1437,), int64
        The digit, 0 to 9.
    """
    X = _DATA["digits_train_sixteenths"].astype(np.float64)[:, None, :, :] / 16.0
    return X, _DATA["digits_train_labels"].astype(np.int64)


def load_camera() -> np.ndarray:
    """scikit-image's 'camera' photograph at half size: (256, 256) float64 in [0, 1], new and writable."""
    return _DATA["camera_half"].astype(np.float64) * (1.0 / 255.0)  # as scikit-image scales uint8
