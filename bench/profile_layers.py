"""Where the time of conv_lib's fast paths goes, on the benchmark's first 3x3 layer.

Run ``python bench/profile_layers.py``. A script, not a test. It prints:

* per thread, the time of each stage of ``conv2d(method="winograd")`` (on the compiled
  transforms of conv_lib.winograd_kernels, and on the NumPy path with CONV_LIB_JIT=0),
  of Winograd's and im2col's weight gradients on (8,64,56,56) -> 64, 3x3, pad 1, and of
  the im2col forward of (1,3,224,224) -> 64, 7x7, stride 2 (the GEMMs by their shapes,
  the transforms and copies), summed over 20 calls and divided by 20;
* the stages of the strided Winograd forward of that 7x7 layer, each alone on one
  thread, and the whole layer on one and two threads;
* the GEMM rate, alone on one thread, of each of those GEMM shapes, next to a
  4096x4096 GEMM's.

``bench/README.md`` ("What made the 3x3 layers fast", and the section on the 7x7
forward) quotes its output.
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


def strided_stages() -> None:
    """Per stage, one thread: conv2d(method="winograd") on (1,3,224,224) -> 64, 7x7,
    stride 2, pad 3 by its compiled kernels (conv_lib.winograd_kernels.strided_layer runs
    them all in one call on numba's threads; here each stage runs alone over the whole
    layer, in units of 4 tile rows, 20 times), then the whole layer on 1 and on 2
    threads."""
    from numba import njit

    import conv_lib.winograd_strided as strided
    from conv_lib.workspace import thread_workspace

    compiled = winograd_kernels.kernels("f")
    split, sub_kernels = compiled.split_phases, compiled.transform_sub_kernels
    tiles, columns, write = compiled.input_tiles44, compiled.columns_at4, compiled.write_tiles4

    @njit(nogil=True)
    def stage(which, x, w, gm, p, line, kk, tt, u, bias, out, units, tw, v, m, s, y, h):
        c, o = p.shape[1], out.shape[1]
        if which == 0:
            split(x, 3, 3, 2, 2, p, line, 0, x.shape[1])
            sub_kernels(w, 2, 2, gm, kk, tt, u.reshape(49, -1), 0, w.shape[0])
            return
        for unit in range(units.shape[0]):
            n, t0, t1 = units[unit, 0], units[unit, 1], units[unit, 2]
            count = (t1 - t0) * tw
            vc = v[: 49 * c * count].reshape(49, c, count)
            mg = m[: 49 * o * count].reshape(49, o, count)
            if which == 1:
                tiles(p, n, t0, t1, tw, vc, h)
            elif which == 2:
                for q in range(49):
                    np.dot(u[q, 0], vc[q], mg[q])
            else:
                mk = mg.reshape(49, o * count)
                step = max(1, s.shape[2] // count)
                for o0 in range(0, o, step):
                    o1 = min(o, o0 + step)
                    if which == 3:
                        columns(mk, o0 * count, o1 * count, s, y)
                    else:
                        write(y, bias, out, n, o0, o1, t0, t1, tw)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 224, 224), dtype=np.float32)
    w = rng.standard_normal((64, 3, 7, 7), dtype=np.float32)
    b = rng.standard_normal(64, dtype=np.float32)
    plan = strided._Plan(x.shape, (7, 7), (2, 2), ((3, 3), (3, 3)))
    tw, th = plan.tw, plan.th
    p = np.zeros((1, 12, plan.hp, 4 * (tw + 1)), np.float32)
    u = np.zeros((49, 1, 64, 12), np.float32)
    out = np.zeros((1, 64, plan.ho, plan.wo), np.float32)
    units = np.array([(0, t, min(th, t + 4)) for t in range(0, th, 4)], dtype=np.int64)
    count = 4 * tw
    args = (
        x, w, strided._matrix_g("f"), p, np.zeros(p.shape[3], np.float32),
        np.zeros((4, 4, 1024), np.float32), np.zeros((7, 4, 1024), np.float32), u, b, out, units, tw,
        np.zeros(49 * 12 * count, np.float32), np.zeros(49 * 64 * count, np.float32),
        np.zeros((7, 4, count), np.float32), np.zeros((4, 4, count), np.float32),
        np.zeros((7, p.shape[3]), np.float32),
    )  # fmt: skip
    print("\nconv2d winograd (strided, compiled), (1,3,224,224) -> 64, 7x7, stride 2: stages on one thread")
    total = 0.0
    names = ["polyphase split + sub-kernel transform", "input transform", "49 GEMMs (np.dot)",
             "output transform A^T M A", "write output tiles"]  # fmt: skip
    with threadpool_limits(1):
        for which, name in enumerate(names):
            stage(which, *args)
            start = time.perf_counter()
            for _ in range(CALLS):
                stage(which, *args)
            seconds = (time.perf_counter() - start) / CALLS
            total += seconds
            print(f"  {name:40s} {seconds * 1e3:7.3f} ms")
    print(f"  {'sum of the stages':40s} {total * 1e3:7.3f} ms")
    ws = thread_workspace(np.float32)
    gm = strided._matrix_g("f")
    for workers in (1, 2):
        layer_args = (x, plan.pads, plan.stride, w, gm, b, p, u, out, units, tw, workers, ws)
        winograd_kernels.strided_layer(*layer_args)
        start = time.perf_counter()
        for _ in range(CALLS):
            winograd_kernels.strided_layer(*layer_args)
        label = f"whole layer, {workers} thread" + ("s" if workers > 1 else "")
        print(f"  {label:40s} {(time.perf_counter() - start) / CALLS * 1e3:7.3f} ms")


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
    strided_stages()
    gemm_rates()


if __name__ == "__main__":
    main()
