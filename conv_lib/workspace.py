"""Where conv_lib's chunked work runs: the memory budget, the threads, the work arrays.

The fast paths (``"im2col"``, ``"winograd"``, ``"fft"``) cut a layer into chunks whose
intermediates fit the memory budget (:func:`set_memory_budget`) and a size measured
fastest (16-32 MiB where each chunk costs a few dozen NumPy calls, whatever its size, so
chunks are as large as that and of equal size; 4 MiB, which stays in a core's cache,
for Winograd's compiled transforms, whose chunks cost almost nothing; 2**19 values, one
core's L2 cache in float32, for those of strided layers, which run on numba's threads).
:func:`run_chunks` hands the chunks to conv_lib's threads, each with single-threaded BLAS;
each thread keeps its work arrays between calls (:func:`thread_workspace`), so that a
layer called again reuses memory that is already mapped instead of paying the operating
system's page faults on fresh memory.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from conv_lib.validation import check_positive_int

__all__ = [
    "Workspace",
    "get_memory_budget",
    "release_workspaces",
    "row_chunks",
    "run_chunks",
    "run_parallel",
    "set_memory_budget",
    "single_threaded_blas",
    "thread_workspace",
    "worker_count",
]

_DEFAULT_BUDGET = 256 * 2**20
_memory_budget = _DEFAULT_BUDGET
# Chunks of the textbook im2col matrix (the "direct" backward's grad_input_nchw and
# grad_weight_nchw) are kept near this size even when the budget is larger.
_CACHE_CHUNK = 4 * 2**20
# Column matrices of the flat "im2col" path are built up to 4M elements at a time (16 MiB
# in float32, all threads together): measured fastest for the benchmark layers
# (bench/bench_conv.py, 1M-8M tried): every chunk costs a few NumPy calls per tap.
_FLAT_CHUNK_ELEMENTS = 2**22


# ----------------------------------------------------------------------------------
# memory budget
# ----------------------------------------------------------------------------------
def set_memory_budget(nbytes: int) -> None:
    """Set the largest intermediate (in bytes) a chunked path may allocate at once.

    Applies to the im2col matrices of ``"im2col"``, the transformed tiles of
    ``"winograd"`` (all threads' chunks together) and the spectra of ``"fft"``
    (forward and backward). The chunk is never smaller than one output row of one
    image (im2col), one row of tiles of one image (winograd) or one image (fft), so a
    tiny budget is honoured as far as that allows. Default 256 MiB.

    The work arrays of ``"im2col"`` and ``"winograd"`` are kept per thread between
    calls (at most one chunk's worth each: up to 32 MiB per thread for ``"winograd"``
    on its NumPy path, 4 MiB on its compiled one (8 MiB in float64; 2 and 4 MiB for
    strided layers), 16 MiB of column matrices for all of ``"im2col"``'s threads, plus
    their products, within the budget);
    :func:`release_workspaces` frees them. Winograd's weight gradient also sums, per
    thread and call, two arrays of ``36 * C_out * C_in/groups`` values (4x the weight),
    and Winograd on a strided layer transforms the weights into ``49 * C_out *
    C_in/groups * s_h*s_w`` values per call (4x the weight at stride 2), whatever the
    budget.

    Parameters
    ----------
    nbytes : int
        Budget in bytes, >= 1.
    """
    global _memory_budget
    _memory_budget = check_positive_int("nbytes", nbytes)


def get_memory_budget() -> int:
    """Return the current memory budget in bytes (see :func:`set_memory_budget`)."""
    return _memory_budget


# ----------------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------------
_executor: ThreadPoolExecutor | None = None


def worker_count() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_parallel(
    fn: Callable[[int, int], None], total: int, min_per_worker: int, tasks_per_worker: int = 1
) -> None:
    """Call ``fn(start, stop)`` on contiguous parts of ``range(total)``, in threads.

    NumPy and BLAS release the GIL, so row bands of an image run truly in parallel.
    With ``tasks_per_worker > 1`` the range is cut into more parts than threads and
    handed out as threads become free, so one thread slowed down (another process on
    its core) does not hold up the others.
    """
    global _executor
    workers = min(worker_count(), max(1, total // max(1, min_per_worker)))
    if workers <= 1:
        fn(0, total)
        return
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=worker_count(), thread_name_prefix="conv_lib")
    parts = min(total, workers * max(1, tasks_per_worker))
    bounds = [total * k // parts for k in range(parts + 1)]
    futures = [_executor.submit(fn, bounds[k], bounds[k + 1]) for k in range(parts)]
    for fut in futures:
        fut.result()


_blas_controller: Any = None


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """Context in which BLAS calls run on the calling thread only (threadpoolctl).

    OpenBLAS splits every GEMM statically over its threads and waits for all of them:
    on a loaded machine one thread that loses its core stalls every call. Running
    chunks on conv_lib's own threads (:func:`run_chunks`), each with single-threaded
    BLAS, hands the work out dynamically and also runs the copies in parallel.

    SciPy's BLAS (the one numba's compiled ``np.dot`` calls, in
    :mod:`conv_lib.winograd_kernels`) is loaded first, so that it is limited too."""
    global _blas_controller
    if _blas_controller is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401
            from threadpoolctl import ThreadpoolController

            _blas_controller = ThreadpoolController().select(user_api="blas")
        except Exception:  # pragma: no cover - threadpoolctl missing or broken
            _blas_controller = False
    if not _blas_controller:
        return contextlib.nullcontext()
    return _blas_controller.limit(limits=1)


def run_chunks(fn: Callable[[int, int], Any], count: int) -> list[Any]:
    """``[fn(k0, k1), ...]`` over contiguous parts of ``range(count)`` (chunks of work),
    on conv_lib's threads with single-threaded BLAS; one part in the caller's thread
    (BLAS keeps its own threads) when there is a single chunk or a single core."""
    if count <= 1 or worker_count() <= 1:
        return [fn(0, count)]
    results: dict[int, Any] = {}

    def part(k0: int, k1: int) -> None:
        results[k0] = fn(k0, k1)

    with single_threaded_blas():
        run_parallel(part, count, min_per_worker=1, tasks_per_worker=2)
    return [results[k] for k in sorted(results)]


def row_chunks(n: int, rows: int, per_row: int, limit: int, workers: int = 1, fewest: int = 1) -> list:
    """``[(n0, n1, y0, y1), ...]``: blocks of (images, rows) of at most ``limit`` (in the
    unit of ``per_row``, the size of one row of one image's buffers): several whole
    images if they fit, else bands of rows of one image (at least one row).

    Blocks are of equal size and, where the images allow it, as many as a multiple of
    ``workers`` (so that the threads finish together); at least ``fewest`` of them when
    the images allow it (1: a single block when everything fits)."""
    per_image = max(1, per_row * rows)
    if per_image <= limit:
        count = fewest if n * per_image <= limit else workers  # the fewest that fit
        while -(-n // count) * per_image > limit and count < n:
            count += workers
        step = -(-n // min(count, n))
        return [(n0, min(n, n0 + step), 0, rows) for n0 in range(0, n, step)]
    bands = -(-rows // max(1, limit // max(per_row, 1)))
    if (n * bands) % workers and bands < rows:
        bands += 1  # one image: as many bands per thread
    band = -(-rows // bands)  # equal bands: no small remainder block
    return [(n0, n0 + 1, y0, min(rows, y0 + band)) for n0 in range(n) for y0 in range(0, rows, band)]


class Workspace:
    """Work arrays of one task, reused by its chunks (each array is allocated, and its
    memory touched, once per task rather than once per chunk). Contents are undefined."""

    def __init__(self, dtype: Any):
        self.dtype = np.dtype(dtype)
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        size = math.prod(shape)
        buf = self._arrays.get(name)
        if buf is None or buf.size < size:
            buf = self._arrays[name] = np.empty(size, dtype=self.dtype)
        return buf[:size].reshape(shape)


_thread_state = threading.local()
_all_workspaces: list[dict[str, Workspace]] = []
_workspaces_lock = threading.Lock()


def thread_workspace(dtype: Any) -> Workspace:
    """The calling thread's :class:`Workspace` for ``dtype``, kept between calls.

    Its arrays are reused by every chunk this thread computes, in this call and the
    next ones: a chunk never returns them (results go to fresh arrays), and a thread
    computes one chunk at a time."""
    spaces = getattr(_thread_state, "spaces", None)
    if spaces is None:
        spaces = _thread_state.spaces = {}
        with _workspaces_lock:
            _all_workspaces.append(spaces)
    key = np.dtype(dtype).str
    space = spaces.get(key)
    if space is None:
        space = spaces[key] = Workspace(dtype)
    return space


def release_workspaces() -> None:
    """Free the work arrays every thread keeps between calls (:func:`thread_workspace`)."""
    with _workspaces_lock:
        for spaces in _all_workspaces:
            spaces.clear()
