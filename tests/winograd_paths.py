"""Helpers shared by the Winograd tests: the two paths (compiled transforms, NumPy),
the stated tolerance, and the peak memory of one call."""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np

from conv_lib import release_workspaces, winograd_kernels
from conv_lib.winograd import FLOAT32_RTOL

RTOL = {np.float32: FLOAT32_RTOL, np.float64: 1e-12}
PATHS = ["compiled", "numpy"]


@contextlib.contextmanager
def transforms(path):
    """Run Winograd on the compiled transforms (numba is a dependency: they must be
    available) or on the NumPy path (:func:`conv_lib.winograd_kernels.numpy_transforms`)."""
    if path == "compiled":
        assert winograd_kernels.available()
        yield
        return
    with winograd_kernels.numpy_transforms():
        assert not winograd_kernels.available()
        yield


def close(got, want, dtype):
    """Largest error within the stated tolerance, relative to the largest |value|."""
    assert got.dtype == dtype and got.shape == want.shape
    scale = max(1e-30, float(np.abs(want).max()))
    assert float(np.abs(got - want).max()) <= RTOL[dtype] * scale


def peak(fn):
    """Result and peak traced bytes of ``fn()``, from no kept work arrays (each thread
    keeps its work arrays between calls; here they are allocated, and counted, anew)."""
    release_workspaces()
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
