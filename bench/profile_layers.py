"""Where the time of conv_lib's fast paths goes, on the benchmark's first 3x3 layer.

Run ``python bench/profile_layers.py``. A script, not a test. It prints:

* per thread, the time of each stage of ``conv2d(method="winograd")`` (on the compiled
  transforms of conv_lib.winograd_kernels, and on the NumPy path with CONV_LIB_JIT=0),
  of Winograd's and im2col's weight gradients on (8,64,56,56) -> 64, 3x3, pad 1, and of
  the im2col forward of (1,3,224,224) -> 64, 7x7, stride 2 (the GEMMs by their shapes,
  the transforms and copies), summed over 20 calls and divided by 20;
* the GEMM rate, alone on one thread, of each of those GEMM shapes, next to a
  4096x4096 GEMM's.

``bench/README.md`` ("What made the 3x3 layers fast", "Why the 7x7 forward is still
missed") quotes its output.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import conv_lib.im2col_gemm as im2col_gemm  # noqa: E402
import conv_lib.winograd as winograd  # noqa: E402
import conv_lib.winograd_kernels as winograd_kernels  # noqa: E402
from conv_lib import conv2d, get_memory_budget  # noqa: E402
from conv_lib.algorithms import grad_weight_bias  # noqa: E402

CALLS = 20
STAGES: dict[int, dict[str, float]] = {}
GEMM_SHAPES: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()


def _add(name: str, seconds: float) -> None:
    stages = STAGES.setdefault(threading.get_ident(), {})
    stages[name] = stages.get(name, 0.0) + seconds


def _timed(name: str, fn: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - start)

    return wrapper


def _timed_matmul(a, b, out=None):
    start = time.perf_counter()
    result = np.matmul(a, b, out=out)
    shape = (tuple(a.shape), tuple(b.shape[-2:]))
    GEMM_SHAPES.add(shape)
    _add(f"GEMM {shape[0]} @ {shape[1]}", time.perf_counter() - start)
    return result


def _instrument(module: types.ModuleType, functions: dict[str, str]) -> None:
    """Time ``module``'s NumPy matmuls and the named functions (name -> stage label)."""
    module.np = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    module.np.matmul = _timed_matmul
    for name, label in functions.items():
        setattr(module, name, _timed(label, getattr(module, name)))


def profile(title: str, fn: Callable[[], object]) -> None:
    for _ in range(3):
        fn()
    STAGES.clear()
    start = time.perf_counter()
    for _ in range(CALLS):
        fn()
    per_call = (time.perf_counter() - start) / CALLS * 1e3
    print(f"\n{title}: {per_call:.2f} ms per call; per thread, ms per call:")
    for k, stages in enumerate(STAGES.values()):
        gemms = sum(v for name, v in stages.items() if name.startswith("GEMM"))
        copies = sum(v for name, v in stages.items() if not name.startswith("GEMM"))
        print(
            f"  thread {k}: GEMMs {gemms / CALLS * 1e3:.2f} ms, "
            f"transforms and copies {copies / CALLS * 1e3:.2f} ms"
        )
        for name, seconds in sorted(stages.items(), key=lambda item: -item[1]):
            print(f"    {seconds / CALLS * 1e3:6.2f}  {name}")


def gemm_rates() -> None:
    print("\nGEMM rates alone, one thread (GFLOP/s):")
    rng = np.random.default_rng(0)
    shapes = sorted(GEMM_SHAPES) + [((4096, 4096), (4096, 4096))]
    with threadpool_limits(1):
        for a_shape, b_shape in shapes:
            a = rng.standard_normal(a_shape, dtype=np.float32)
            b = rng.standard_normal(a_shape[:-2] + b_shape, dtype=np.float32)
            np.matmul(a, b)
            rounds = 3 if a_shape[-1] == 4096 else 20
            start = time.perf_counter()
            for _ in range(rounds):
                np.matmul(a, b)
            seconds = (time.perf_counter() - start) / rounds
            flops = 2 * int(np.prod(a_shape)) * b_shape[-1]
            print(f"  {str(a_shape):>18s} @ {str(b_shape):<14s} {flops / seconds / 1e9:7.1f}")


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 64, 56, 56), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
    b = rng.standard_normal(64, dtype=np.float32)
    g = rng.standard_normal((8, 64, 56, 56), dtype=np.float32)
    _instrument(
        winograd, {"_input_tiles": "pad the chunk, gather its tiles", "_write_output": "write output rows"}
    )
    for name, label in {
        "input_transform": "input transform B^T d B (compiled)",
        "output_transform": "output transform A^T M A + bias (compiled)",
        "grad_output_transform": "grad_out transform A dY A^T (compiled)",
    }.items():
        setattr(winograd_kernels, name, _timed(label, getattr(winograd_kernels, name)))
    _instrument(im2col_gemm, {"_fill_phases": "pad the chunk", "_fill_flat_cols": "build the columns"})
    pads = ((1, 1), (1, 1))
    profile("conv2d winograd, (8,64,56,56) -> 64, 3x3", lambda: conv2d(x, w, b, padding=1, method="winograd"))
    profile(
        "grad_w + grad_b by Winograd, same layer",
        lambda: winograd.grad_weight_winograd(g, x, pads, w.shape, 1, get_memory_budget()),
    )
    with winograd_kernels.numpy_transforms():
        profile(
            "conv2d winograd on the NumPy path (CONV_LIB_JIT=0), same layer",
            lambda: conv2d(x, w, b, padding=1, method="winograd"),
        )
    profile(
        "grad_w + grad_b by im2col, same layer",
        lambda: grad_weight_bias(g, x, pads, w.shape, (1, 1), (1, 1), 1, "im2col"),
    )
    x7 = rng.standard_normal((1, 3, 224, 224), dtype=np.float32)
    w7 = rng.standard_normal((64, 3, 7, 7), dtype=np.float32)
    profile(
        "conv2d im2col, (1,3,224,224) -> 64, 7x7, stride 2, pad 3",
        lambda: conv2d(x7, w7, b, stride=2, padding=3, method="im2col"),
    )
    gemm_rates()


if __name__ == "__main__":
    main()
