"""Grading helpers for the course's assignments (nbgrader test cells call these).

Every check compares a student's function with :mod:`conv_lib` (the only reference) over
fixed *visible* cases or seeded random *hidden* cases, and fails with a message that
teaches: the case (shapes, stride, padding, ...), the first mismatching index, expected vs
got, and, when the wrong answer matches a known mistake, the name of that mistake and a
hint. Wrong variants are recomputed with :mod:`conv_lib` where possible (a flipped kernel,
stride 1 instead of the requested stride, ...); the few that conv_lib cannot produce
(tie handling in max-pool backward, ...) are written here, clearly marked as *wrong*.

Test cells stay one or two lines long, e.g.::

    check_correlate2d(correlate2d, modes=("valid",))               # visible
    check_correlate2d(correlate2d, modes=("valid",), hidden=True)  # hidden

A check passes silently apart from a one-line summary and raises :class:`GradingError`
(an ``AssertionError``) otherwise, so nbgrader scores the cell zero. Checks return None:
nbgrader would read a number left as a cell's value as partial credit.
"""

from __future__ import annotations

import builtins
import functools
import math
import traceback
import types
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_ALLOWED",
    "DEFAULT_FORBIDDEN",
    "KERNEL_CANDIDATES",
    "Case",
    "Diagnosis",
    "GradingError",
    "check_accuracy",
    "check_avg_pool2d",
    "check_avg_pool2d_backward",
    "check_conv2d",
    "check_conv2d_backward",
    "check_convolve2d",
    "check_correlate2d",
    "check_detect_edges",
    "check_edge_magnitude",
    "check_gradient_error",
    "check_max_pool2d",
    "check_max_pool2d_backward",
    "check_numeric_gradient",
    "check_output_size",
    "check_param_counts",
    "check_pieces",
    "check_softmax_cross_entropy",
    "check_symmetric_kernels",
    "check_window_value",
    "check_zero_pad",
    "compare_arrays",
    "diagnose_conv_bug",
    "digits_split",
    "forbid_reference",
]

#: The kernels of assignment 1's question "which kernels give the same result under correlation and
#: convolution?" (the answer is computed from conv_lib.get_kernel, never typed in).
KERNEL_CANDIDATES: tuple[str, ...] = (
    "box",
    "sobel_x",
    "gaussian",
    "emboss",
    "laplacian",
    "summary_edge",
    "sharpen",
)

#: Names a student's function may not use (modules, or functions whose name contains them).
DEFAULT_FORBIDDEN: tuple[str, ...] = ("conv_lib", "scipy", "torch", "convolve", "correlate")
#: conv_lib's data and kernel helpers: allowed inside students' functions.
DEFAULT_ALLOWED: tuple[str, ...] = (
    "get_kernel",
    "gaussian_kernel",
    "load_image",
    "load_digits",
    "digits_split",
)
_A4_FORBIDDEN = (*DEFAULT_FORBIDDEN, "sklearn", "tensorflow", "jax", "keras")


def _lib() -> types.ModuleType:
    """conv_lib itself (imported late: this module is imported by conv_lib/__init__)."""
    import conv_lib

    return conv_lib


class GradingError(AssertionError):
    """A failed check; the message says what was tested, what went wrong and a hint.

    In a notebook, IPython shows only this message (and, when the student's own code
    raised, the student's frames of that error), not the grader's internals: see
    :meth:`_render_traceback_`.
    """

    def _render_traceback_(self) -> list[str]:
        """What IPython prints instead of the full traceback (its documented hook)."""
        lines: list[str] = []
        cause = self.__cause__
        if cause is not None and not isinstance(cause, NotImplementedError):
            frames = [f for f in traceback.extract_tb(cause.__traceback__) if f.filename != __file__]
            if frames:
                lines.append("Your code raised an error (most recent call last):")
                lines += [ln.rstrip("\n") for ln in traceback.format_list(frames)]
                lines += [f"{type(cause).__name__}: {cause}", ""]
        lines.append(f"GradingError: {self}")
        return lines


# ---------------------------------------------------------------------------------------
# Cases and diagnoses
# ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """One call of a student's function.

    ``params`` maps parameter names to values; ``positional`` names those passed by
    position (the rest go by keyword). ``label`` describes the case in messages.
    """

    label: str
    params: dict[str, Any]
    positional: tuple[str, ...] = ()

    def call(self, fn: Callable[..., Any], name: str) -> Any:
        """Call ``fn`` on copies of the arguments; explain exceptions and modified inputs."""
        args = [_copy(self.params[p]) for p in self.positional]
        kwargs = {k: _copy(v) for k, v in self.params.items() if k not in self.positional}
        try:
            result = fn(*args, **kwargs)
        except GradingError:
            raise
        except NotImplementedError as err:
            raise GradingError(f"{name} is not written yet (it raised NotImplementedError).") from err
        except Exception as err:  # noqa: BLE001 - any student error becomes a message
            raise GradingError(
                f"{name} raised {type(err).__name__}: {err}\n  case: {self.label}\n"
                f"  called as {name}({self.signature()})"
            ) from err
        for pname, before, after in zip(
            self.positional, [self.params[p] for p in self.positional], args, strict=True
        ):
            if isinstance(before, np.ndarray) and not np.array_equal(before, after, equal_nan=True):
                raise GradingError(
                    f"{name} modified its argument `{pname}` in place (case: {self.label}). "
                    "Work on a copy (e.g. `x = x.copy()` or build a new array) and leave the input alone."
                )
        return result

    def signature(self) -> str:
        parts = [_short(self.params[p]) for p in self.positional]
        parts += [f"{k}={_short(v)}" for k, v in self.params.items() if k not in self.positional]
        return ", ".join(parts)


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"<array {value.shape} {value.dtype}>"
    if callable(value):
        return getattr(value, "__name__", "<function>")
    return repr(value)


@dataclass
class Diagnosis:
    """A known mistake: what the buggy code would return, and a hint.

    ``expected`` is the buggy output (an array, or a zero-argument function computing it;
    a function that raises means "this mistake cannot be recognised in this case"), or
    ``shape`` alone when only the shape is telling.
    """

    name: str
    hint: str
    expected: Any = None
    shape: tuple[int, ...] | None = None
    _value: Any = field(default=None, init=False, repr=False)
    _done: bool = field(default=False, init=False, repr=False)

    def value(self) -> np.ndarray | None:
        if not self._done:
            self._done = True
            try:
                v = self.expected() if callable(self.expected) else self.expected
                self._value = None if v is None else np.asarray(v)
            except Exception:  # noqa: BLE001 - variant not computable for this case
                self._value = None
        return self._value

    def matches(self, got: np.ndarray, rtol: float, atol: float) -> bool:
        if self.expected is None:
            return self.shape is not None and tuple(got.shape) == tuple(self.shape)
        v = self.value()
        if v is None or v.shape != got.shape:
            return False
        try:
            return bool(np.allclose(got, v, rtol=rtol, atol=atol))
        except TypeError:
            return False


def _tolerances(expected: np.ndarray) -> tuple[float, float]:
    scale = float(np.max(np.abs(expected))) if expected.size and np.isfinite(expected).all() else 1.0
    scale = max(scale, 1.0)
    if expected.dtype == np.float32:
        return 1e-4, 1e-5 * scale
    return 1e-6, 1e-9 * scale


def _format_hints(diagnoses: Sequence[Diagnosis], got: np.ndarray, rtol: float, atol: float) -> list[str]:
    found = [d for d in diagnoses if d.matches(got, rtol, atol)]
    return [f"  Likely bug ({d.name}): {d.hint}" for d in found[:2]]


def compare_arrays(
    got: Any,
    expected: Any,
    *,
    case: str = "",
    name: str = "result",
    diagnoses: Sequence[Diagnosis] = (),
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Raise :class:`GradingError` unless ``got`` equals ``expected`` (shape, then values).

    The message names the case, the first mismatching index, expected vs got, and the
    hint of the first :class:`Diagnosis` whose buggy output equals ``got``. Generic hints
    recognise an empty result (``a[p:-p]`` with ``p == 0``), H and W swapped and
    off-by-one shapes.
    """
    where = f" for {case}" if case else ""
    if got is None:
        raise GradingError(f"{name}{where}: got None. Did you forget `return`?")
    expected = np.asarray(expected)
    try:
        got_arr = np.asarray(got)
    except Exception as err:  # noqa: BLE001
        raise GradingError(f"{name}{where}: could not convert your result to an array ({err}).") from err
    if got_arr.dtype == object or not (np.issubdtype(got_arr.dtype, np.number) or got_arr.dtype == bool):
        raise GradingError(
            f"{name}{where}: expected a numeric array, got {type(got).__name__} with dtype {got_arr.dtype}."
        )
    if rtol is None or atol is None:
        d_rtol, d_atol = _tolerances(expected)
        rtol = d_rtol if rtol is None else rtol
        atol = d_atol if atol is None else atol
    lines: list[str] = []
    if got_arr.shape != expected.shape:
        lines.append(f"{name}{where}: wrong shape: expected {expected.shape}, got {got_arr.shape}.")
        hints = _format_hints(diagnoses, got_arr, rtol, atol)
        if not hints:
            hints = _shape_hints(got_arr.shape, expected.shape)
        lines += hints
        raise GradingError("\n".join(lines))
    if expected.dtype == bool or got_arr.dtype == bool:
        mismatch = got_arr.astype(bool) != expected.astype(bool)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.isclose(got_arr.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol)
        mismatch = ~close
    if not mismatch.any():
        return
    idx = tuple(int(i) for i in np.argwhere(mismatch)[0])
    n_bad = int(mismatch.sum())
    lines.append(
        f"{name}{where}: wrong values. First mismatch at index {idx}: expected {expected[idx]!r}, "
        f"got {got_arr[idx]!r} ({n_bad} of {expected.size} values differ)."
    )
    if not np.isfinite(got_arr.astype(np.float64)).all() and np.isfinite(expected.astype(np.float64)).all():
        lines.append("  Your result contains nan or inf where the expected one is finite.")
    hints = _format_hints(diagnoses, got_arr, rtol, atol)
    lines += hints or [
        "  No common bug recognised: compare your indices and loop bounds with the "
        "definition, on the small case above by hand."
    ]
    raise GradingError("\n".join(lines))


def _shape_hints(got: tuple[int, ...], expected: tuple[int, ...]) -> list[str]:
    hints: list[str] = []
    if math.prod(got) == 0 and math.prod(expected) > 0:
        hints.append(
            "  Likely bug (empty slice): your result is empty. With padding 0, a slice like "
            "`a[p:-p]` is `a[0:0]` (because -0 == 0), which is empty; write `a[p:a.shape[0] - p]` "
            "or `a[p:p + n]` instead."
        )
    elif len(got) == len(expected) >= 2 and got[:-2] == expected[:-2] and got[-2:] == expected[-2:][::-1]:
        hints.append(
            "  Likely bug (H and W swapped): your height and width are exchanged. Rows (H) "
            "come first, columns (W) second, for the image, the kernel, stride and padding."
        )
    elif len(got) == len(expected) and all(abs(g - e) <= 1 for g, e in zip(got, expected, strict=True)):
        hints.append(
            "  Likely bug (off-by-one window count): a window of size k fits n - k + 1 times "
            "along an axis of size n (loop over range(n - k + 1), not range(n - k)); with "
            "stride s the count is (n - k) // s + 1."
        )
    elif len(got) != len(expected):
        hints.append(f"  Your result has {len(got)} axes; expected {len(expected)}.")
    return hints


def _check_ndarray_like(got: Any, name: str, case: Case) -> None:
    if got is None:
        raise GradingError(f"{name} returned None for {case.label}. Did you forget `return`?")


# ---------------------------------------------------------------------------------------
# forbid_reference: student code must not call a reference implementation
# ---------------------------------------------------------------------------------------


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def forbid_reference(
    func: Callable[..., Any], names: Iterable[str] = DEFAULT_FORBIDDEN, allow: Iterable[str] = DEFAULT_ALLOWED
) -> None:
    """Fail if ``func`` (or a helper it calls from the same notebook) uses a reference.

    Inspects the code objects, globals, closures and string constants of ``func`` and
    of every function of the student's own module it reaches. A module, function or
    attribute whose (module) name contains one of ``names`` (default: conv_lib, scipy,
    torch, convolve, correlate) is forbidden; so are ``__import__``/``importlib``/
    ``eval``/``exec``. The student's own functions are allowed whatever their name, and so
    are the data helpers named in ``allow`` (get_kernel, load_image, ...).
    """
    names = tuple(names)
    allowed = set(allow)
    if func is None:
        raise GradingError("Expected a function, got None.")
    source = getattr(func, "__student_source__", None)
    if isinstance(source, str):
        # The trusted autograder's stand-in for a student function (course/trusted.py): the
        # function itself ran in the sandbox, so the check reads the student's source.
        problems = _forbidden_in_source_cached(
            getattr(func, "__name__", "?"), source, str(getattr(func, "__given_source__", "")), names, allowed
        )
        _raise_forbidden(getattr(func, "__name__", "?"), problems)
        return
    root = _unwrap(func)
    home = getattr(root, "__module__", None)
    top = getattr(func, "__name__", repr(func))
    problems: list[str] = []
    seen: set[int] = set()

    def bad(text: str | None) -> str | None:
        if not text:
            return None
        for n in names:
            if n in text:
                return n
        return None

    def check_object(obj: Any, via: str, owner: str) -> None:
        obj = _unwrap(obj)
        if getattr(obj, "__name__", None) in allowed and not isinstance(obj, types.ModuleType):
            return
        if isinstance(obj, types.ModuleType):
            hit = bad(obj.__name__)
            if hit:
                problems.append(f"`{owner}` uses the module {obj.__name__} (through the name `{via}`)")
            elif obj.__name__ == "importlib":
                problems.append(f"`{owner}` imports modules dynamically (importlib)")
            return
        if isinstance(obj, types.FunctionType):
            if obj.__module__ == home:
                visit(obj)
                return
            mod = obj.__module__ or ""
            hit = bad(mod) or bad(obj.__name__)
            if hit:
                problems.append(f"`{owner}` calls {mod}.{obj.__qualname__} (through the name `{via}`)")
            return
        if isinstance(obj, type):
            if obj.__module__ == home:
                for attr in vars(obj).values():
                    if isinstance(attr, (types.FunctionType, staticmethod, classmethod, property)):
                        target = attr.fget if isinstance(attr, property) else _unwrap(attr)
                        if isinstance(target, types.FunctionType):
                            visit(target)
            elif bad(obj.__module__):
                problems.append(f"`{owner}` uses {obj.__module__}.{obj.__qualname__} (through `{via}`)")
            return
        if callable(obj):
            mod = getattr(obj, "__module__", None) or type(obj).__module__ or ""
            hit = bad(mod) or bad(getattr(obj, "__name__", None))
            if hit:
                problems.append(f"`{owner}` calls {mod}.{getattr(obj, '__name__', obj)} (through `{via}`)")

    def visit(f: types.FunctionType) -> None:
        if id(f) in seen:
            return
        seen.add(id(f))
        owner = f.__name__
        globs = f.__globals__
        for code in _codes(f.__code__):
            for n in code.co_names:
                if n in globs:
                    check_object(globs[n], n, owner)
                elif n in ("__import__", "eval", "exec", "compile", "importlib", "import_module"):
                    problems.append(f"`{owner}` uses `{n}` (dynamic code or imports are not allowed here)")
                elif hasattr(builtins, n):
                    continue
                else:
                    hit = bad(n)
                    if hit:
                        problems.append(f"`{owner}` uses `{n}`")
            for const in code.co_consts:
                if isinstance(const, str) and const.replace(".", "").replace("_", "").isalnum():
                    hit = bad(const)
                    if hit and const != owner:
                        problems.append(f"`{owner}` mentions '{const}'")
        for cell in f.__closure__ or ():
            try:
                check_object(cell.cell_contents, "<closure>", owner)
            except ValueError:  # empty cell
                continue
        for default in f.__defaults__ or ():
            if callable(default):
                check_object(default, "<default>", owner)

    if isinstance(root, types.FunctionType):
        visit(root)
    else:
        check_object(root, top, top)
    _raise_forbidden(top, problems)


_DYNAMIC = ("__import__", "eval", "exec", "compile", "importlib", "import_module")


#: Verdicts of :func:`_forbidden_in_source` (the grader checks the same source once per
#: test call); keyed on everything the verdict depends on, ``len(sys.modules)`` included.
_SOURCE_VERDICTS: dict[tuple, tuple[str, ...]] = {}


def _forbidden_in_source_cached(
    top: str, source: str, given: str, names: tuple[str, ...], allowed: set[str]
) -> list[str]:
    import sys

    key = (top, source, given, names, frozenset(allowed), len(sys.modules))
    if key not in _SOURCE_VERDICTS:
        if len(_SOURCE_VERDICTS) >= 512:
            _SOURCE_VERDICTS.clear()
        _SOURCE_VERDICTS[key] = tuple(_forbidden_in_source(top, source, given, names, allowed))
    return list(_SOURCE_VERDICTS[key])


def _forbidden_in_source(
    top: str, source: str, given: str, names: tuple[str, ...], allowed: set[str]
) -> list[str]:
    """:func:`forbid_reference` on source text: the names ``top`` (and the notebook
    functions it reaches) use, resolved against the notebook's top-level bindings.

    Imported names of modules the grader has already imported are looked up and judged
    like the live check does; other imports are judged by their module's name. A syntax
    error or a missing function is reported as such.
    """
    import ast
    import sys

    def parse(text: str) -> ast.Module:
        lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in text.split("\n")]
        return ast.parse("\n".join(lines))

    bindings: dict[str, Any] = {}
    try:
        trees = [parse(given)]
    except SyntaxError:
        trees = []
    try:
        trees.append(parse(source))
    except SyntaxError as err:
        return [f"your code does not parse ({err.msg}, line {err.lineno})"]
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bindings[node.name] = node
            elif isinstance(node, ast.Import):
                for a in node.names:
                    bindings[(a.asname or a.name).split(".")[0]] = (
                        "module",
                        a.name if a.asname else a.name.split(".")[0],
                    )
            elif isinstance(node, ast.ImportFrom):
                for a in node.names:
                    bindings[a.asname or a.name] = ("from", node.module or "", a.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for sub in ast.walk(t):
                        if isinstance(sub, ast.Name) and node.value is not None:
                            bindings[sub.id] = node.value

    def bad(text: str | None) -> str | None:
        return next((n for n in names if text and n in text), None)

    problems: list[str] = []
    seen: set[int] = set()

    def judge_module(mod: str, via: str, owner: str) -> None:
        if bad(mod):
            problems.append(f"`{owner}` uses the module {mod} (through the name `{via}`)")
        elif mod.split(".")[0] == "importlib":
            problems.append(f"`{owner}` imports modules dynamically (importlib)")

    def judge_from(mod: str, attr: str, via: str, owner: str) -> None:
        if attr in allowed:
            return
        obj = getattr(sys.modules.get(mod), attr, None) if mod in sys.modules else None
        if obj is None:
            if bad(mod) or bad(attr):
                problems.append(f"`{owner}` calls {mod}.{attr} (through the name `{via}`)")
            return
        if isinstance(obj, types.ModuleType):
            judge_module(obj.__name__, via, owner)
        elif callable(obj):
            omod = getattr(obj, "__module__", None) or mod
            if bad(omod) or bad(getattr(obj, "__name__", attr)):
                problems.append(
                    f"`{owner}` calls {omod}.{getattr(obj, '__name__', attr)} (through the name `{via}`)"
                )

    def visit(node: Any, owner: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        used: list[str] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                used.append(sub.id)
            elif isinstance(sub, ast.Attribute):
                used.append(sub.attr)
            elif isinstance(sub, ast.Import):
                for a in sub.names:
                    judge_module(a.name, a.asname or a.name, owner)
            elif isinstance(sub, ast.ImportFrom):
                for a in sub.names:
                    judge_module(sub.module or "", a.asname or a.name, owner)
                    if not bad(sub.module or ""):
                        judge_from(sub.module or "", a.name, a.asname or a.name, owner)
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                const = sub.value
                if const.replace(".", "").replace("_", "").isalnum() and bad(const) and const != owner:
                    problems.append(f"`{owner}` mentions '{const}'")
        local = {
            a.arg
            for sub in ast.walk(node)
            if isinstance(sub, ast.arguments)
            for a in (*sub.posonlyargs, *sub.args, *sub.kwonlyargs)
        }
        local |= {
            sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)
        }
        used = [n for n in used if n not in local]
        for n in dict.fromkeys(used):
            target = bindings.get(n)
            if isinstance(target, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(target, target.name)
            elif isinstance(target, tuple) and target[0] == "module":
                judge_module(target[1], n, owner)
            elif isinstance(target, tuple):
                judge_from(target[1], target[2], n, owner)
            elif isinstance(target, ast.AST):
                visit(target, owner)
            elif n in _DYNAMIC:
                problems.append(f"`{owner}` uses `{n}` (dynamic code or imports are not allowed here)")
            elif hasattr(builtins, n) or n in local:
                continue
            elif bad(n):
                problems.append(f"`{owner}` uses `{n}`")

    start = bindings.get(top)
    if start is None:
        return []  # not defined by a def in the source (the replay fails on its own if it is missing)
    visit(start, top)
    return problems


def _raise_forbidden(top: str, problems: list[str]) -> None:
    if problems:
        listed = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
        raise GradingError(
            f"`{top}` must be written by you with numpy, without a reference implementation:\n{listed}\n"
            "Calling a reference implementation here (conv_lib, scipy, torch, numpy's convolve/correlate, "
            "a learning library) scores zero for this test. Replace it with your own loops or array "
            "operations."
        )


def _unwrap(obj: Any) -> Any:
    while True:
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, (types.MethodType, staticmethod, classmethod)):
            obj = obj.__func__
        elif hasattr(obj, "__wrapped__") and isinstance(obj, types.FunctionType):
            obj = obj.__wrapped__
        else:
            return obj


# ---------------------------------------------------------------------------------------
# Random cases
# ---------------------------------------------------------------------------------------


def _rng(tag: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(tag.encode()))


def _array(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _out(n: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    span = n + 2 * p - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


def _passed(what: str, n: int, hidden: bool) -> None:
    kind = "hidden" if hidden else "visible"
    print(f"OK: {what}: {n} {kind} case{'s' if n != 1 else ''} passed.")


def _run_cases(
    fn: Callable[..., Any],
    name: str,
    cases: Sequence[Case],
    reference: Callable[[Case], Any],
    variants: Callable[[Case], list[Diagnosis]],
    what: str,
    hidden: bool,
    forbid: Iterable[str] | None = DEFAULT_FORBIDDEN,
) -> None:
    if forbid is not None:
        forbid_reference(fn, forbid)
    for case in cases:
        got = case.call(fn, name)
        compare_arrays(got, reference(case), case=case.label, name=name, diagnoses=variants(case))
    _passed(what, len(cases), hidden)


# ---------------------------------------------------------------------------------------
# Assignment 1: convolution by hand
# ---------------------------------------------------------------------------------------


def _zero_pad_cases(hidden: bool) -> list[Case]:
    if not hidden:
        img = np.arange(1.0, 7.0).reshape(2, 3)
        return [
            Case("image 2x3, padding=1", {"image": img, "padding": 1}, ("image", "padding")),
            Case("image 2x3, padding=(2, 1)", {"image": img, "padding": (2, 1)}, ("image", "padding")),
        ]
    rng = _rng("zero_pad")
    cases = []
    specs = [
        ((5, 3), 0),
        ((4, 7), (0, 2)),
        ((3, 6), (2, 0)),
        ((6, 4), 3),
        ((2, 3, 5), (1, 2)),
        ((1, 2, 4, 3), 1),
        ((7, 2), (1, 3)),
    ]
    for k, (shape, pad) in enumerate(specs):
        dtype = np.float32 if k % 2 else np.float64
        img = _array(rng, shape, dtype)
        cases.append(
            Case(
                f"image {shape} {np.dtype(dtype).name}, padding={pad!r}",
                {"image": img, "padding": pad},
                ("image", "padding"),
            )
        )
    return cases


def check_zero_pad(zero_pad: Callable[..., Any], hidden: bool = False) -> None:
    """Compare ``zero_pad(image, padding)`` with :func:`conv_lib.zero_pad`."""
    cl = _lib()

    def variants(case: Case) -> list[Diagnosis]:
        img, pad = case.params["image"], case.params["padding"]
        ph, pw = _pair(pad)
        return [
            Diagnosis(
                "(pH, pW) swapped",
                "padding=(pH, pW) adds pH rows (top and bottom) and pW columns "
                "(left and right); you used them the other way round.",
                lambda: cl.zero_pad(img, (pw, ph)) if ph != pw else None,
            ),
            Diagnosis(
                "one side only",
                "pad both sides: p rows above AND below, p columns left AND right (the shape grows by 2p).",
                lambda: np.pad(img, [(0, 0)] * (img.ndim - 2) + [(0, ph), (0, pw)]) if ph or pw else None,
            ),
            Diagnosis(
                "one side only",
                "pad both sides: p rows above AND below, p columns left AND right (the shape grows by 2p).",
                lambda: np.pad(img, [(0, 0)] * (img.ndim - 2) + [(ph, 0), (pw, 0)]) if ph or pw else None,
            ),
            Diagnosis(
                "all axes padded",
                "only the last two axes (H, W) are padded; leading axes (batch, channels) keep their size.",
                lambda: (
                    np.pad(img, [(ph, ph)] * (img.ndim - 2) + [(ph, ph), (pw, pw)])
                    if img.ndim > 2 and ph
                    else None
                ),
            ),
        ]

    _run_cases(
        zero_pad,
        "zero_pad",
        _zero_pad_cases(hidden),
        lambda c: cl.zero_pad(c.params["image"], c.params["padding"]),
        variants,
        "zero_pad",
        hidden,
    )


def _window_value_cases(hidden: bool) -> list[Case]:
    cl = _lib()
    pos = ("image", "kernel", "i", "j")
    if not hidden:
        img = np.asarray(cl.SUMMARY_IMAGE, dtype=float)
        ker = np.asarray(cl.SUMMARY_KERNEL, dtype=float)
        return [
            Case(
                "seed image 5x5, seed kernel 3x3, (i, j)=(0, 0)",
                {"image": img, "kernel": ker, "i": 0, "j": 0},
                pos,
            ),
            Case(
                "seed image 5x5, seed kernel 3x3, (i, j)=(1, 2)",
                {"image": img, "kernel": ker, "i": 1, "j": 2},
                pos,
            ),
        ]
    rng = _rng("window_value")
    cases = []
    for k, (hw, kk, ij) in enumerate(
        [
            ((5, 7), (2, 3), (3, 1)),
            ((6, 4), (3, 2), (0, 2)),
            ((4, 4), (1, 3), (3, 1)),
            ((7, 5), (3, 3), (4, 2)),
            ((3, 6), (3, 1), (0, 5)),
        ]
    ):
        dtype = np.float32 if k % 2 else np.float64
        cases.append(
            Case(
                f"image {hw} {np.dtype(dtype).name}, kernel {kk}, (i, j)={ij}",
                {"image": _array(rng, hw, dtype), "kernel": _array(rng, kk, dtype), "i": ij[0], "j": ij[1]},
                pos,
            )
        )
    return cases


def check_window_value(window_value: Callable[..., Any], hidden: bool = False) -> None:
    """``window_value(image, kernel, i, j)``: one step (multiply and sum) of a valid correlation."""
    cl = _lib()

    def ref_at(image: np.ndarray, kernel: np.ndarray, i: int, j: int, flip: bool = False) -> float:
        walk = cl.walk_windows(image, kernel, flip=flip)
        return walk[i * walk.output_shape[1] + j].value

    def reference(c: Case) -> Any:
        p = c.params
        return np.float64(ref_at(p["image"], p["kernel"], p["i"], p["j"]))

    def variants(c: Case) -> list[Diagnosis]:
        p = c.params
        return [
            Diagnosis(
                "kernel flipped",
                "one step of correlate2d multiplies the window by the kernel as it is; do not flip it here.",
                lambda: ref_at(p["image"], p["kernel"], p["i"], p["j"], True),
            ),
            Diagnosis(
                "i and j swapped",
                "i is the row (first axis), j the column: the window is image[i:i + kH, j:j + kW].",
                lambda: ref_at(p["image"], p["kernel"], p["j"], p["i"]),
            ),
            Diagnosis(
                "products not summed", "step 3: sum the products to one number.", shape=np.shape(p["kernel"])
            ),
        ]

    _run_cases(
        window_value, "window_value", _window_value_cases(hidden), reference, variants, "window_value", hidden
    )


_MODE_HINT = {
    "valid": "'valid' keeps only windows fully inside the image: (H - kH + 1, W - kW + 1).",
    "same": "'same' has the image's shape (H, W): the 'full' result cropped so that the kernel element "
    "K[(kH - 1) // 2, (kW - 1) // 2] sits on each output pixel (like scipy): from row kH // 2 for a "
    "correlation, from row (kH - 1) // 2 for a convolution (the same for odd kernels).",
    "full": "'full' has every overlap of kernel and image: (H + kH - 1, W + kW - 1); pad the image with "
    "kH - 1 rows and kW - 1 columns of zeros on each side.",
}


def _signal_cases(kind: str, modes: Sequence[str], hidden: bool) -> list[Case]:
    cl = _lib()
    pos = ("image", "kernel")
    cases: list[Case] = []
    if not hidden:
        img = np.asarray(cl.SUMMARY_IMAGE, dtype=float)
        ker = np.asarray(cl.SUMMARY_KERNEL, dtype=float)
        small = np.arange(1.0, 13.0).reshape(3, 4)
        k2 = np.array([[1.0, 2.0], [3.0, 4.0]])
        for mode in modes:
            cases.append(
                Case(
                    f"the one-page summary image 5x5 and seed kernel 3x3, mode='{mode}'",
                    {"image": img, "kernel": ker, "mode": mode},
                    pos,
                )
            )
            cases.append(
                Case(
                    f"image 3x4 = arange(1, 13), kernel [[1, 2], [3, 4]], mode='{mode}'",
                    {"image": small, "kernel": k2, "mode": mode},
                    pos,
                )
            )
        return cases
    rng = _rng(f"{kind}:{','.join(modes)}")
    shapes = [
        ((5, 7), (2, 3)),
        ((6, 4), (3, 2)),
        ((4, 4), (1, 3)),
        ((7, 5), (4, 4)),
        ((3, 6), (3, 1)),
        ((8, 9), (2, 2)),
        ((1, 5), (1, 2)),
    ]
    for k, (hw, kk) in enumerate(shapes):
        mode = modes[k % len(modes)]
        dtype = np.float32 if k % 2 else np.float64
        cases.append(
            Case(
                f"image {hw[0]}x{hw[1]} {np.dtype(dtype).name}, kernel {kk[0]}x{kk[1]}, mode='{mode}'",
                {"image": _array(rng, hw, dtype), "kernel": _array(rng, kk, dtype), "mode": mode},
                pos,
            )
        )
    return cases


def _signal_variants(kind: str, c: Case) -> list[Diagnosis]:
    cl = _lib()
    img, ker, mode = c.params["image"], c.params["kernel"], c.params["mode"]
    ref = cl.correlate2d if kind == "correlate2d" else cl.convolve2d
    other = cl.convolve2d if kind == "correlate2d" else cl.correlate2d
    out: list[Diagnosis] = []
    if kind == "convolve2d":
        out.append(
            Diagnosis(
                "kernel not flipped",
                "you computed cross-correlation. Convolution flips the kernel "
                "(K[::-1, ::-1], a 180-degree rotation) before sliding it: that is the minus sign in "
                "K(i - m, j - n).",
                lambda: other(img, ker, mode),
            )
        )
        out.append(
            Diagnosis(
                "flipped one axis only",
                "flip BOTH axes: K[::-1, ::-1], not K[::-1] or K[:, ::-1].",
                lambda: other(img, ker[::-1, :], mode),
            )
        )
        out.append(
            Diagnosis(
                "flipped one axis only",
                "flip BOTH axes: K[::-1, ::-1], not K[::-1] or K[:, ::-1].",
                lambda: other(img, ker[:, ::-1], mode),
            )
        )
        out.append(
            Diagnosis(
                "transposed instead of flipped",
                "K.T swaps rows and columns; a flip is K[::-1, ::-1].",
                lambda: other(img, ker.T, mode),
            )
        )
    else:
        out.append(
            Diagnosis(
                "kernel flipped",
                "you flipped the kernel: that is convolution. Cross-correlation slides K as it "
                "is: out[i, j] = sum over m, n of image[i + m, j + n] * K[m, n].",
                lambda: other(img, ker, mode),
            )
        )
        out.append(
            Diagnosis(
                "kernel transposed",
                "you used K.T (rows and columns of the kernel swapped); use K as it is.",
                lambda: ref(img, ker.T, mode),
            )
        )
    for m in ("valid", "same", "full"):
        if m != mode:
            out.append(
                Diagnosis(
                    f"'{m}' instead of '{mode}'",
                    f"you returned the '{m}' result for mode='{mode}'. {_MODE_HINT[mode]}",
                    functools.partial(ref, img, ker, m),
                )
            )
    if mode == "same":
        kh, kw = ker.shape
        h, w = img.shape

        # scipy crops 'full' from k // 2 (correlation) or (k - 1) // 2 (convolution); the
        # wrong variant uses the other one (they differ for even kernel sizes only).
        right, wrong = ("kH // 2", "(kH - 1) // 2") if kind == "correlate2d" else ("(kH - 1) // 2", "kH // 2")

        def other_centre() -> np.ndarray | None:
            if kh % 2 and kw % 2:
                return None
            full = ref(img, ker, "full")
            r0, c0 = ((kh - 1) // 2, (kw - 1) // 2) if kind == "correlate2d" else (kh // 2, kw // 2)
            return full[r0 : r0 + h, c0 : c0 + w]

        out.append(
            Diagnosis(
                "'same' centred the other way",
                f"for an even kernel size the 'same' crop is not symmetric. For {kind} keep the 'full' "
                f"result from row {right} and column {right.replace('H', 'W')} (you started at {wrong}): "
                "the kernel element K[(kH - 1) // 2, (kW - 1) // 2] sits on the output pixel, like scipy.",
                other_centre,
            )
        )
    return out


def check_correlate2d(
    correlate2d: Callable[..., Any], modes: Sequence[str] = ("valid",), hidden: bool = False
) -> None:
    """Compare ``correlate2d(image, kernel, mode)`` with :func:`conv_lib.correlate2d`."""
    cl = _lib()
    _run_cases(
        correlate2d,
        "correlate2d",
        _signal_cases("correlate2d", modes, hidden),
        lambda c: cl.correlate2d(c.params["image"], c.params["kernel"], c.params["mode"]),
        lambda c: _signal_variants("correlate2d", c),
        f"correlate2d, mode {'/'.join(modes)}",
        hidden,
    )


def check_convolve2d(
    convolve2d: Callable[..., Any], modes: Sequence[str] = ("valid",), hidden: bool = False
) -> None:
    """Compare ``convolve2d(image, kernel, mode)`` with :func:`conv_lib.convolve2d`."""
    cl = _lib()
    _run_cases(
        convolve2d,
        "convolve2d",
        _signal_cases("convolve2d", modes, hidden),
        lambda c: cl.convolve2d(c.params["image"], c.params["kernel"], c.params["mode"]),
        lambda c: _signal_variants("convolve2d", c),
        f"convolve2d, mode {'/'.join(modes)}",
        hidden,
    )


def check_symmetric_kernels(answer: Any, candidates: Sequence[str] = KERNEL_CANDIDATES) -> None:
    """``answer``: the names among ``candidates`` for which correlation equals convolution.

    The truth is computed from :func:`conv_lib.get_kernel`: correlating with K equals
    convolving with K exactly when K equals K rotated by 180 degrees.
    """
    cl = _lib()
    if answer is None or isinstance(answer, str) or not isinstance(answer, Iterable):
        raise GradingError(f"Expected a list of kernel names, got {answer!r}.")
    given = set(answer)
    unknown = given - set(candidates)
    if unknown:
        raise GradingError(f"Unknown names {sorted(unknown)}; choose among {list(candidates)}.")
    truth = {n for n in candidates if np.allclose(cl.get_kernel(n), cl.get_kernel(n)[::-1, ::-1])}
    missing, extra = truth - given, given - truth
    if missing or extra:
        lines = ["Not quite:"]
        if extra:
            lines.append(
                f"  {sorted(extra)}: rotate each by 180 degrees (K[::-1, ::-1]); is it still the same "
                "kernel? If not, correlation and convolution give different results."
            )
        if missing:
            lines.append(
                f"  {len(missing)} kernel(s) that stay the same under a 180-degree rotation are missing."
            )
        raise GradingError("\n".join(lines))
    print(f"OK: the {len(truth)} kernels unchanged by a 180-degree rotation.")


def _output_size_cases(hidden: bool) -> list[Case]:
    pos = ("n", "kernel")
    if not hidden:
        specs = [(5, 3, 1, 0, 1), (32, 5, 1, 2, 1), (7, 3, 2, 0, 1)]
    else:
        specs = [
            (8, 3, 3, 0, 1),
            (10, 4, 3, 1, 1),
            (9, 3, 1, 0, 2),
            (11, 3, 2, 2, 3),
            (6, 6, 1, 0, 1),
            (28, 5, 2, 0, 1),
            (13, 2, 4, 3, 2),
            (224, 7, 2, 3, 1),
            (1, 1, 1, 0, 1),
        ]
    return [
        Case(
            f"n={n}, kernel={k}, stride={s}, padding={p}, dilation={d}",
            {"n": n, "kernel": k, "stride": s, "padding": p, "dilation": d},
            pos,
        )
        for n, k, s, p, d in specs
    ]


# Wrong output-size formulas: (name, formula(n, k, s, p, d), hint).
_OUTPUT_SIZE_BUGS: list[tuple[Callable[[int, int, int, int, int], int], str]] = [
    (
        lambda n, k, s, p, d: _out(n, k, s, p, d, ceil=True),
        "you rounded up (ceil). A window that would stick out past the padded border is dropped: "
        "floor((n + 2p - d(k - 1) - 1) / s) + 1, i.e. `//`.",
    ),
    (
        lambda n, k, s, p, d: _out(n, k, s, p, 1),
        "dilation ignored: a kernel of size k with dilation d spans d(k - 1) + 1 pixels.",
    ),
    (
        lambda n, k, s, p, d: _out(n, k, s, 0, d),
        "padding ignored: padding p adds p pixels on EACH side (2p in total).",
    ),
    (
        lambda n, k, s, p, d: _out(n + p, k, s, 0, d),
        "padding counted once: it is added on both sides, so n + 2p.",
    ),
    (
        lambda n, k, s, p, d: _out(n, k, 1, p, d),
        "stride ignored: with stride s only every s-th window position is used.",
    ),
    (
        lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s,
        "off by one: the first window is at position 0, so add 1 to the number of strides: "
        "(n + 2p - d(k - 1) - 1) // s + 1.",
    ),
    (
        lambda n, k, s, p, d: (n + 2 * p - d * (k - 1)) // s + 1,
        "off by one: the kernel spans d(k - 1) + 1 pixels, so subtract 1: (n + 2p - d(k - 1) - 1) // s + 1.",
    ),
]


def check_output_size(output_size: Callable[..., Any], hidden: bool = False) -> None:
    """Compare ``output_size(n, kernel, stride, padding, dilation)`` with :func:`conv_lib.output_size`.

    A wrong answer is explained by the known wrong formula that reproduces the student's
    answers on every case (not just the failing one).
    """
    cl = _lib()
    forbid_reference(output_size)
    cases = _output_size_cases(hidden)
    answers: list[tuple[Case, tuple[int, ...], int, Any]] = []
    for c in cases:
        args = tuple(c.params[x] for x in ("n", "kernel", "stride", "padding", "dilation"))
        expected = cl.output_size(*args)
        got = c.call(output_size, "output_size")
        if isinstance(got, (float, np.floating)) and float(got).is_integer() and int(got) == expected:
            raise GradingError(
                f"output_size({c.signature()}) returned {got!r}, a float: use integer division "
                "`//` so that the size is an int."
            )
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            extra = " Use integer division `//`." if isinstance(got, (float, np.floating)) else ""
            raise GradingError(
                f"output_size({c.signature()}) returned {got!r}; expected an int ({expected}).{extra}"
            )
        answers.append((c, args, expected, int(got)))
    wrong = [(c, exp, got) for c, _, exp, got in answers if got != exp]
    if wrong:
        c, expected, got = wrong[0]
        hint = next(
            (h for f, h in _OUTPUT_SIZE_BUGS if all(f(*args) == g for _, args, _, g in answers)),
            "check the formula floor((n + 2p - d(k - 1) - 1) / s) + 1 on this case by hand.",
        )
        raise GradingError(
            f"output_size({c.signature()}): expected {expected}, got {got}.\n  Likely bug: {hint}"
        )
    _passed("output_size", len(cases), hidden)


# ---------------------------------------------------------------------------------------
# Assignment 2: convolution layers (NCHW)
# ---------------------------------------------------------------------------------------

_CONV_FEATURES = ("basic", "channels", "stride_padding", "dilation")


def _conv_label(x: np.ndarray, w: np.ndarray, b: Any, s: Any, p: Any, d: Any) -> str:
    return (
        f"x {x.shape} {x.dtype.name}, weight {w.shape}, bias {'None' if b is None else b.shape}, "
        f"stride={s!r}, padding={p!r}, dilation={d!r}"
    )


def _conv_cases(feature: str, hidden: bool) -> list[Case]:
    pos = ("x", "weight")
    cases: list[Case] = []

    def add(x: np.ndarray, w: np.ndarray, b: Any = None, s: Any = 1, p: Any = 0, d: Any = 1) -> None:
        cases.append(
            Case(
                _conv_label(x, w, b, s, p, d),
                {"x": x, "weight": w, "bias": b, "stride": s, "padding": p, "dilation": d},
                pos,
            )
        )

    if not hidden:
        x = np.arange(16.0).reshape(1, 1, 4, 4)
        w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
        if feature == "basic":
            add(x, w)
        elif feature == "channels":
            x2 = np.stack([x[0, 0], -x[0, 0]])[None]
            w2 = np.arange(16.0).reshape(2, 2, 2, 2) / 10
            add(x2, w2, np.array([0.5, -1.0]))
        elif feature == "stride_padding":
            add(x, w, None, 2, 1)
        else:
            add(x, w, None, 1, 0, 2)
        return cases
    rng = _rng(f"conv2d:{feature}")
    for k in range(6):
        dtype = np.float32 if k % 2 else np.float64
        n = 1 if k % 3 == 0 else 2
        if feature == "basic":
            h, wd = rng.integers(3, 9, size=2)
            kh, kw = rng.integers(1, 4, size=2)
            kh, kw = min(kh, h), min(kw, wd)
            add(_array(rng, (1, 1, h, wd), dtype), _array(rng, (1, 1, kh, kw), dtype))
            continue
        c_in, c_out = rng.integers(1, 4, size=2)
        h, wd = (int(v) for v in rng.integers(5, 11, size=2))
        kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
        x = _array(rng, (n, c_in, h, wd), dtype)
        w = _array(rng, (c_out, c_in, kh, kw), dtype)
        if feature == "channels":
            add(x, w, _array(rng, (c_out,), dtype) if k != 5 else None)
        elif feature == "stride_padding":
            stride = [(2, 3), 3, 2, (1, 2), (3, 1), 2][k]
            padding = [(1, 0), 0, 2, (0, 1), 1, (2, 1)][k]
            add(x, w, None, stride, padding)
        else:
            dil = [2, (1, 2), (2, 3), 3, (2, 1), 2][k]
            dh, dw = _pair(dil)
            if dh * (kh - 1) + 1 > h or dw * (kw - 1) + 1 > wd:
                kh, kw = 2, 2
                w = _array(rng, (c_out, c_in, kh, kw), dtype)
            add(x, w, None, 1, 0 if k < 5 else 1, dil)  # stride 1: this cell is about dilation
    return cases


def _conv_variants(c: Case) -> list[Diagnosis]:
    cl = _lib()
    p = c.params
    x, w, b, s, pad, d = p["x"], p["weight"], p["bias"], p["stride"], p["padding"], p["dilation"]
    sh, sw = _pair(s)
    ph, pw = _pair(pad)
    dh, dw = _pair(d)
    kh, kw = w.shape[-2:]
    n, c_out = x.shape[0], w.shape[0]

    def conv(**over: Any) -> Callable[[], np.ndarray]:
        args = {"x": x, "weight": w, "bias": b, "stride": s, "padding": pad, "dilation": d} | over
        return lambda: cl.conv2d(
            args["x"],
            args["weight"],
            args["bias"],
            stride=args["stride"],
            padding=args["padding"],
            dilation=args["dilation"],
        )

    ceil_shape = (n, c_out, _out(x.shape[2], kh, sh, ph, dh, True), _out(x.shape[3], kw, sw, pw, dw, True))
    out = [
        Diagnosis(
            "kernel flipped",
            "conv2d in deep learning (torch, conv_lib) is cross-correlation: do not flip the weights.",
            conv(weight=w[..., ::-1, ::-1]),
        ),
        Diagnosis(
            "stride ignored",
            "move the window by the stride: output (i, j) reads rows i*sH ... and columns "
            "j*sW ... of the padded input.",
            conv(stride=1) if (sh, sw) != (1, 1) else None,
        ),
        Diagnosis(
            "stride (sH, sW) swapped",
            "stride=(sH, sW): sH along H (rows), sW along W (columns).",
            conv(stride=(sw, sh)) if sh != sw else None,
        ),
        Diagnosis(
            "padding ignored",
            "pad the input with zeros (padding rows top and bottom, columns left and right) before sliding.",
            conv(padding=0) if (ph, pw) != (0, 0) else None,
        ),
        Diagnosis(
            "padding (pH, pW) swapped",
            "padding=(pH, pW): pH rows, pW columns.",
            conv(padding=(pw, ph)) if ph != pw else None,
        ),
        Diagnosis(
            "dilation ignored",
            "with dilation d the kernel taps are d pixels apart: rows i*sH + m*dH for m in range(kH).",
            conv(dilation=1) if (dh, dw) != (1, 1) else None,
        ),
        Diagnosis(
            "dilation (dH, dW) swapped",
            "dilation=(dH, dW): dH between rows, dW between columns.",
            conv(dilation=(dw, dh)) if dh != dw else None,
        ),
        Diagnosis(
            "bias ignored",
            "add bias[c_out] to every pixel of output channel c_out.",
            conv(bias=None) if b is not None else None,
        ),
        Diagnosis(
            "kernel transposed",
            "weight is (C_out, C_in, kH, kW): kH rows, kW columns; you swapped them.",
            conv(weight=w.swapaxes(-1, -2)),
        ),
        Diagnosis(
            "input channels not summed",
            "each output channel sums over ALL input channels: "
            "out[n, co] = sum over ci of correlate(x[n, ci], weight[co, ci]).",
            conv(x=x[:, :1], weight=w[:, :1]) if x.shape[1] > 1 else None,
        ),
        Diagnosis(
            "output size rounded up",
            "the output size uses floor: (n + 2p - d(k - 1) - 1) // s + 1; a window "
            "sticking out past the padded border is dropped.",
            shape=ceil_shape
            if ceil_shape[2:] != cl.conv2d(x, w, b, stride=s, padding=pad, dilation=d).shape[2:]
            else None,
        ),
    ]
    return out


def check_conv2d(conv2d: Callable[..., Any], feature: str = "basic", hidden: bool = False) -> None:
    """Compare ``conv2d(x, weight, bias, stride, padding, dilation)`` with :func:`conv_lib.conv2d`.

    ``feature`` selects the cases: "basic" (one channel, stride 1, no padding),
    "channels" (several input/output channels, batch, bias), "stride_padding" (stride
    that does not divide, padding 0 / int / pair), "dilation".
    """
    if feature not in _CONV_FEATURES:
        raise ValueError(f"feature: got {feature!r}; expected one of {_CONV_FEATURES}")
    cl = _lib()
    _run_cases(
        conv2d,
        "conv2d",
        _conv_cases(feature, hidden),
        lambda c: cl.conv2d(
            c.params["x"],
            c.params["weight"],
            c.params["bias"],
            stride=c.params["stride"],
            padding=c.params["padding"],
            dilation=c.params["dilation"],
        ),
        _conv_variants,
        f"conv2d ({feature.replace('_', ' and ')})",
        hidden,
    )


def diagnose_conv_bug(student_fn: Callable[..., Any], case: Case, kind: str = "conv2d") -> Diagnosis | None:
    """Run ``student_fn`` on ``case`` and name the known mistake it makes.

    ``kind`` is "conv2d" (case params x, weight, bias, stride, padding, dilation),
    "correlate2d" or "convolve2d" (params image, kernel, mode). The likely-wrong variants
    are recomputed with conv_lib. Returns the first :class:`Diagnosis` whose output
    equals the student's, or None (a correct result, or an unrecognised mistake).
    """
    cl = _lib()
    got = np.asarray(case.call(student_fn, getattr(student_fn, "__name__", "function")))
    p = case.params
    if kind == "conv2d":
        expected = cl.conv2d(
            p["x"], p["weight"], p["bias"], stride=p["stride"], padding=p["padding"], dilation=p["dilation"]
        )
        variants = _conv_variants(case)
    else:
        expected = getattr(cl, kind)(p["image"], p["kernel"], p["mode"])
        variants = _signal_variants(kind, case)
    rtol, atol = _tolerances(np.asarray(expected))
    if got.shape == expected.shape and np.allclose(got, expected, rtol=rtol, atol=atol):
        return None
    return next((d for d in variants if d.matches(got, rtol, atol)), None)


def _pool_cases(kind: str, feature: str, hidden: bool) -> list[Case]:
    pos = ("x", "kernel_size")
    cases: list[Case] = []

    def add(x: np.ndarray, k: Any, s: Any) -> None:
        cases.append(
            Case(
                f"x {x.shape} {x.dtype.name}, kernel_size={k!r}, stride={s!r}",
                {"x": x, "kernel_size": k, "stride": s},
                pos,
            )
        )

    if not hidden:
        x = np.array([[[[1.0, 2, 5, 0], [3, 4, 1, -1], [0, 1, 9, 8], [2, 3, 7, 6]]]])
        if feature == "basic":
            add(x, 2, None)
        else:
            add(x, 3, 1)
        return cases
    rng = _rng(f"{kind}:{feature}")
    specs = {
        "basic": [
            ((1, 1, 4, 6), 2, None),
            ((2, 3, 6, 9), 3, None),
            ((1, 2, 8, 4), (2, 1), None),
            ((2, 1, 6, 6), (3, 2), None),
        ],
        "overlap": [
            ((1, 1, 5, 7), 3, 1),
            ((2, 2, 7, 6), (3, 2), (2, 1)),
            ((1, 3, 9, 8), 3, 2),
            ((2, 1, 6, 7), (2, 3), (1, 2)),
            ((1, 2, 5, 5), 2, (1, 3)),
        ],
    }[feature]
    for k, (shape, ks, st) in enumerate(specs):
        add(_array(rng, shape, np.float32 if k % 2 else np.float64), ks, st)
    if kind == "max" and feature == "overlap":  # ties: a quantised input
        add(rng.integers(0, 3, size=(1, 2, 6, 5)).astype(np.float64), 3, 1)
    return cases


def _pool_variants(kind: str, c: Case) -> list[Diagnosis]:
    cl = _lib()
    x, ks, st = c.params["x"], c.params["kernel_size"], c.params["stride"]
    kh, kw = _pair(ks)
    fn = cl.max_pool2d if kind == "max" else cl.avg_pool2d
    other = cl.avg_pool2d if kind == "max" else cl.max_pool2d
    eff = (kh, kw) if st is None else _pair(st)
    return [
        Diagnosis(
            "stride=None treated as 1",
            "stride=None means stride = kernel_size (non-overlapping windows), as in torch.",
            (lambda: fn(x, ks, 1)) if st is None and (kh, kw) != (1, 1) else None,
        ),
        Diagnosis(
            "stride ignored",
            "move the window by the stride, not by the kernel size.",
            (lambda: fn(x, ks, None)) if st is not None and eff != (kh, kw) else None,
        ),
        Diagnosis(
            "max and average confused",
            f"this is {kind} pooling: take the {'maximum' if kind == 'max' else 'mean'} of each window.",
            lambda: other(x, ks, st),
        ),
        Diagnosis(
            "kernel (kH, kW) swapped",
            "kernel_size=(kH, kW): kH rows, kW columns.",
            (lambda: fn(x, (kw, kh), st)) if kh != kw else None,
        ),
        Diagnosis(
            "stride (sH, sW) swapped",
            "stride=(sH, sW): sH along rows, sW along columns.",
            (lambda: fn(x, ks, (eff[1], eff[0]))) if eff[0] != eff[1] else None,
        ),
        Diagnosis(
            "sum instead of mean",
            "average pooling divides each window's sum by kH * kW.",
            (lambda: cl.avg_pool2d(x, ks, st) * (kh * kw)) if kind == "avg" else None,
        ),
        Diagnosis(
            "output size rounded up",
            "the number of windows is (n - k) // s + 1 (floor): a window "
            "sticking out of the input is dropped.",
            shape=x.shape[:2]
            + (_out(x.shape[2], kh, eff[0], 0, 1, True), _out(x.shape[3], kw, eff[1], 0, 1, True)),
        ),
    ]


def check_max_pool2d(max_pool2d: Callable[..., Any], feature: str = "basic", hidden: bool = False) -> None:
    """Compare ``max_pool2d(x, kernel_size, stride=None)`` with :func:`conv_lib.max_pool2d`.

    ``feature``: "basic" (stride None, i.e. non-overlapping) or "overlap" (stride smaller
    than the kernel, not dividing, non-square, ties).
    """
    cl = _lib()
    _run_cases(
        max_pool2d,
        "max_pool2d",
        _pool_cases("max", feature, hidden),
        lambda c: cl.max_pool2d(c.params["x"], c.params["kernel_size"], c.params["stride"]),
        lambda c: _pool_variants("max", c),
        f"max_pool2d ({feature})",
        hidden,
    )


def check_avg_pool2d(avg_pool2d: Callable[..., Any], feature: str = "basic", hidden: bool = False) -> None:
    """Compare ``avg_pool2d(x, kernel_size, stride=None)`` with :func:`conv_lib.avg_pool2d`."""
    cl = _lib()
    _run_cases(
        avg_pool2d,
        "avg_pool2d",
        _pool_cases("avg", feature, hidden),
        lambda c: cl.avg_pool2d(c.params["x"], c.params["kernel_size"], c.params["stride"]),
        lambda c: _pool_variants("avg", c),
        f"avg_pool2d ({feature})",
        hidden,
    )


# ---------------------------------------------------------------------------------------
# Assignment 3: backpropagation
# ---------------------------------------------------------------------------------------

_BACKWARD_PARTS = {"dx": 0, "dw": 1, "db": 2}


def _backward_cases(feature: str, hidden: bool) -> list[Case]:
    cl = _lib()
    pos = ("grad_out", "x", "weight")
    fwd_cases = _conv_cases(feature, hidden)
    if feature == "basic" and hidden:  # several channels too, stride 1, no padding
        fwd_cases += _conv_cases("channels", True)[:4]
    rng = _rng(f"backward:{feature}")
    cases = []
    for fc in fwd_cases:
        p = fc.params
        out = cl.conv2d(
            p["x"], p["weight"], None, stride=p["stride"], padding=p["padding"], dilation=p["dilation"]
        )
        g = _array(rng, out.shape, p["x"].dtype)
        cases.append(
            Case(
                f"grad_out {g.shape}, "
                + _conv_label(p["x"], p["weight"], None, p["stride"], p["padding"], p["dilation"]).replace(
                    ", bias None", ""
                ),
                {
                    "grad_out": g,
                    "x": p["x"],
                    "weight": p["weight"],
                    "stride": p["stride"],
                    "padding": p["padding"],
                    "dilation": p["dilation"],
                },
                pos,
            )
        )
    return cases


def _backward_variants(part: str, c: Case) -> list[Diagnosis]:
    cl = _lib()
    p = c.params
    g, x, w = p["grad_out"], p["x"], p["weight"]
    kw_args = {"stride": p["stride"], "padding": p["padding"], "dilation": p["dilation"]}
    ph, pw = _pair(p["padding"])

    def ref(gg: np.ndarray = g, xx: np.ndarray = x, ww: np.ndarray = w) -> tuple[np.ndarray, ...]:
        return cl.conv2d_backward(gg, xx, ww, **kw_args)

    if part == "db":
        return [
            Diagnosis(
                "summed over the batch only",
                "the bias touches every output pixel: "
                "grad_bias = grad_out.sum(axis=(0, 2, 3)), shape (C_out,).",
                shape=g.shape[1:],
            ),
            Diagnosis(
                "mean instead of sum",
                "add up the gradient of every pixel and every sample (sum, not mean).",
                lambda: g.mean(axis=(0, 2, 3)),
            ),
            Diagnosis(
                "batch not summed",
                "sum over the batch axis too: grad_out.sum(axis=(0, 2, 3)).",
                lambda: g[0].sum(axis=(1, 2)) if g.shape[0] > 1 else None,
            ),
        ]
    if part == "dw":
        n = x.shape[0]
        return [
            Diagnosis(
                "weight gradient flipped",
                "dW[co, ci, m, n] = sum over batch and positions of "
                "grad_out[b, co, i, j] * x_pad[b, ci, i*sH + m*dH, j*sW + n*dW]; it is not flipped.",
                lambda: ref()[1][..., ::-1, ::-1],
            ),
            Diagnosis(
                "batch not summed",
                "every sample of the batch contributes to dW: sum over the batch.",
                (lambda: ref(g[:1], x[:1])[1]) if n > 1 else None,
            ),
            Diagnosis(
                "batch averaged",
                "sum over the batch (the loss's own averaging is already in grad_out).",
                (lambda: ref()[1] / n) if n > 1 else None,
            ),
        ]
    return [
        Diagnosis(
            "kernel not flipped in dx",
            "the input gradient is a FULL convolution of grad_out with the "
            "kernel, i.e. a correlation with the flipped kernel: scatter-add grad_out[b, co, i, j] * "
            "W[co] into each window (or flip W if you use a correlation).",
            lambda: ref(ww=w[..., ::-1, ::-1])[0],
        ),
        Diagnosis(
            "padding not cropped",
            "dx must have x's shape: compute the gradient of the padded input, then "
            "keep dx_pad[..., pH:pH + H, pW:pW + W].",
            shape=x.shape[:2] + (x.shape[2] + 2 * ph, x.shape[3] + 2 * pw) if ph or pw else None,
        ),
        Diagnosis(
            "batch mixed",
            "each sample's gradient depends only on its own grad_out: do not sum over the batch for dx.",
            (lambda: np.broadcast_to(ref()[0].sum(axis=0), x.shape)) if x.shape[0] > 1 else None,
        ),
    ]


def check_conv2d_backward(
    conv2d_backward: Callable[..., Any], part: str = "dx", feature: str = "basic", hidden: bool = False
) -> None:
    """Compare one part ("dx", "dw" or "db") of ``conv2d_backward`` with :func:`conv_lib.conv2d_backward`.

    ``conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1)`` returns
    ``(grad_x, grad_weight, grad_bias)``. ``feature`` as for :func:`check_conv2d`;
    "strided" means stride, padding and dilation together.
    """
    cl = _lib()
    if part not in _BACKWARD_PARTS:
        raise ValueError(f"part: got {part!r}; expected one of {tuple(_BACKWARD_PARTS)}")
    features = ("stride_padding", "dilation") if feature == "strided" else (feature,)
    cases = [c for f in features for c in _backward_cases(f, hidden)]
    if feature == "strided" and hidden:
        cases = cases[::2] + cases[1::4]
    forbid_reference(conv2d_backward)
    k = _BACKWARD_PARTS[part]
    names = {"dx": "grad_x", "dw": "grad_weight", "db": "grad_bias"}
    for c in cases:
        got = c.call(conv2d_backward, "conv2d_backward")
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise GradingError(
                f"conv2d_backward must return a tuple (grad_x, grad_weight, grad_bias); got "
                f"{type(got).__name__} for {c.label}."
            )
        p = c.params
        expected = cl.conv2d_backward(
            p["grad_out"],
            p["x"],
            p["weight"],
            stride=p["stride"],
            padding=p["padding"],
            dilation=p["dilation"],
        )[k]
        compare_arrays(
            got[k],
            expected,
            case=c.label,
            name=f"conv2d_backward -> {names[part]}",
            diagnoses=_backward_variants(part, c),
        )
    _passed(f"conv2d_backward {names[part]} ({feature})", len(cases), hidden)


def _wrong_max_pool_backward(g: np.ndarray, x: np.ndarray, ks: Any, st: Any, mode: str) -> np.ndarray:
    """WRONG on purpose (to recognise mistakes): max-pool backward with a known bug.

    mode "all_ties": every maximum of a window gets the gradient; "last_tie": the last
    maximum; "overwrite": overlapping windows overwrite instead of accumulating.
    """
    kh, kw = _pair(ks)
    sh, sw = (kh, kw) if st is None else _pair(st)
    dx = np.zeros(x.shape, dtype=np.float64)
    for b in range(g.shape[0]):
        for ch in range(g.shape[1]):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    win = x[b, ch, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    target = dx[b, ch, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    if mode == "all_ties":
                        target += (win == win.max()) * g[b, ch, i, j]
                        continue
                    flat = win.ravel()
                    k = (
                        len(flat) - 1 - int(np.argmax(flat[::-1]))
                        if mode == "last_tie"
                        else int(np.argmax(flat))
                    )
                    m, n = divmod(k, kw)
                    if mode == "overwrite":
                        target[m, n] = g[b, ch, i, j]
                    else:
                        target[m, n] += g[b, ch, i, j]
    return dx


def _wrong_avg_pool_backward(g: np.ndarray, shape: tuple[int, ...], ks: Any, st: Any) -> np.ndarray:
    """WRONG on purpose: average-pool backward where overlapping windows overwrite."""
    kh, kw = _pair(ks)
    sh, sw = (kh, kw) if st is None else _pair(st)
    dx = np.zeros(shape, dtype=np.float64)
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] = g[:, :, i : i + 1, j : j + 1] / (kh * kw)
    return dx


def _pool_backward_cases(kind: str, feature: str, hidden: bool) -> list[Case]:
    cl = _lib()
    rng = _rng(f"{kind}_backward:{feature}")
    cases = []
    for fc in _pool_cases(kind, feature, hidden):
        x, ks, st = fc.params["x"], fc.params["kernel_size"], fc.params["stride"]
        out = (cl.max_pool2d if kind == "max" else cl.avg_pool2d)(x, ks, st)
        g = _array(rng, out.shape, x.dtype)
        if kind == "max":
            cases.append(
                Case(
                    f"grad_out {g.shape}, {fc.label}",
                    {"grad_out": g, "x": x, "kernel_size": ks, "stride": st},
                    ("grad_out", "x", "kernel_size"),
                )
            )
        else:
            cases.append(
                Case(
                    f"grad_out {g.shape}, x_shape={x.shape}, kernel_size={ks!r}, stride={st!r}",
                    {"grad_out": g, "x_shape": x.shape, "kernel_size": ks, "stride": st},
                    ("grad_out", "x_shape", "kernel_size"),
                )
            )
    return cases


def check_max_pool2d_backward(
    max_pool2d_backward: Callable[..., Any], feature: str = "basic", hidden: bool = False
) -> None:
    """Compare ``max_pool2d_backward(grad_out, x, kernel_size, stride=None)`` with conv_lib.

    "overlap" cases have overlapping windows (gradients accumulate) and ties (the first
    maximum in row-major order gets the gradient, like torch and conv_lib).
    """
    cl = _lib()

    def variants(c: Case) -> list[Diagnosis]:
        p = c.params
        args = (p["grad_out"], p["x"], p["kernel_size"], p["stride"])
        return [
            Diagnosis(
                "ties: every maximum got the gradient",
                "when several values tie for the maximum, only the "
                "FIRST one (row-major order, what np.argmax returns) receives the gradient.",
                lambda: _wrong_max_pool_backward(*args, "all_ties"),
            ),
            Diagnosis(
                "ties: last maximum got the gradient",
                "use the FIRST maximum (np.argmax), not the last.",
                lambda: _wrong_max_pool_backward(*args, "last_tie"),
            ),
            Diagnosis(
                "overlapping windows overwrite",
                "windows overlap when stride < kernel: ADD (+=) each window's gradient, do not assign (=).",
                lambda: _wrong_max_pool_backward(*args, "overwrite"),
            ),
        ]

    _run_cases(
        max_pool2d_backward,
        "max_pool2d_backward",
        _pool_backward_cases("max", feature, hidden),
        lambda c: cl.max_pool2d_backward(
            c.params["grad_out"], c.params["x"], c.params["kernel_size"], c.params["stride"]
        ),
        variants,
        f"max_pool2d_backward ({feature})",
        hidden,
    )


def check_avg_pool2d_backward(
    avg_pool2d_backward: Callable[..., Any], feature: str = "basic", hidden: bool = False
) -> None:
    """Compare ``avg_pool2d_backward(grad_out, x_shape, kernel_size, stride=None)`` with conv_lib."""
    cl = _lib()

    def variants(c: Case) -> list[Diagnosis]:
        p = c.params
        kh, kw = _pair(p["kernel_size"])
        ref = cl.avg_pool2d_backward(p["grad_out"], p["x_shape"], p["kernel_size"], p["stride"])
        return [
            Diagnosis(
                "not divided by the window size",
                "each input of a window gets grad / (kH * kW).",
                lambda: ref * (kh * kw),
            ),
            Diagnosis(
                "overlapping windows overwrite",
                "windows overlap when stride < kernel: ADD (+=) each window's share.",
                lambda: _wrong_avg_pool_backward(p["grad_out"], p["x_shape"], p["kernel_size"], p["stride"]),
            ),
        ]

    _run_cases(
        avg_pool2d_backward,
        "avg_pool2d_backward",
        _pool_backward_cases("avg", feature, hidden),
        lambda c: cl.avg_pool2d_backward(
            c.params["grad_out"], c.params["x_shape"], c.params["kernel_size"], c.params["stride"]
        ),
        variants,
        f"avg_pool2d_backward ({feature})",
        hidden,
    )


def _test_functions() -> list[tuple[str, Callable[[np.ndarray], float], np.ndarray]]:
    rng = _rng("numeric_gradient")
    a = rng.standard_normal((2, 3))
    return [
        ("f(x) = sum(x**3), x of shape (3,)", lambda x: float(np.sum(x**3)), rng.standard_normal(3)),
        (
            "f(x) = sum(sin(x) * A), x of shape (2, 3)",
            lambda x: float(np.sum(np.sin(x) * a)),
            rng.standard_normal((2, 3)),
        ),
        (
            "f(x) = sum(exp(x)) * x[0, 1, 0, 0], x of shape (1, 2, 2, 3)",
            lambda x: float(np.sum(np.exp(x)) * x[0, 1, 0, 0]),
            rng.standard_normal((1, 2, 2, 3)),
        ),
    ]


def check_numeric_gradient(numeric_gradient: Callable[..., Any], hidden: bool = False) -> None:
    """Compare ``numeric_gradient(f, x, eps)`` with :func:`conv_lib.numeric_gradient`."""
    cl = _lib()
    forbid_reference(numeric_gradient, (*DEFAULT_FORBIDDEN, "numeric_gradient", "check_gradient"))
    funcs = _test_functions()
    if not hidden:
        funcs = funcs[:1]
    n = 0
    for label, f, x in funcs:
        for eps in (1e-4,) if not hidden else (1e-4, 1e-3):
            c = Case(f"{label}, eps={eps}", {"f": f, "x": x, "eps": eps}, ("f", "x"))
            got = c.call(numeric_gradient, "numeric_gradient")
            ref = cl.numeric_gradient(f, x, eps=eps)
            forward = np.zeros_like(x)
            base = f(x)
            for idx in np.ndindex(x.shape):
                xp = x.copy()
                xp[idx] += eps
                forward[idx] = (f(xp) - base) / eps
            compare_arrays(
                got,
                ref,
                case=c.label,
                name="numeric_gradient",
                rtol=1e-6,
                atol=1e-8,
                diagnoses=[
                    Diagnosis(
                        "one-sided difference",
                        "use the central difference (f(x + eps) - f(x - eps)) / (2 eps): "
                        "its error is O(eps**2) instead of O(eps).",
                        forward,
                    ),
                    Diagnosis(
                        "divided by eps instead of 2 eps",
                        "the two probes are 2 eps apart: divide by 2 * eps.",
                        2 * ref,
                    ),
                ],
            )
            n += 1
    _passed("numeric_gradient", n, hidden)


def check_gradient_error(gradient_error: Callable[..., Any], hidden: bool = False) -> None:
    """``gradient_error(f, x, analytic_grad, eps)``: the cs231n max relative error.

    Compared with ``conv_lib.check_gradient(...).max_rel_error``: equal within 1e-3
    relative when the error is larger than 1e-6, and also below 1e-6 otherwise.
    """
    cl = _lib()
    forbid_reference(gradient_error, (*DEFAULT_FORBIDDEN, "check_gradient"))
    rng = _rng("gradient_error")
    x = rng.standard_normal((1, 2, 5, 4))
    w = rng.standard_normal((3, 2, 2, 3))
    g = rng.standard_normal(cl.conv2d(x, w, stride=(1, 2)).shape)

    def loss_of_w(ww: np.ndarray) -> float:
        return float(np.sum(cl.conv2d(x, ww, stride=(1, 2)) * g))

    dw = cl.conv2d_backward(g, x, w, stride=(1, 2))[1]
    trials = [
        ("the correct weight gradient of a conv2d", dw),
        ("a flipped weight gradient", dw[..., ::-1, ::-1]),
        ("the correct gradient times 2", 2 * dw),
    ]
    if hidden:
        trials.append(
            (
                "the correct gradient plus 1e-3 at one element",
                dw + np.where(np.arange(dw.size).reshape(dw.shape) == 5, 1e-3, 0.0),
            )
        )
    for label, analytic in trials:
        c = Case(
            f"f = sum(conv2d(x, w, stride=(1, 2)) * g) as a function of w {w.shape}, analytic = {label}",
            {"f": loss_of_w, "x": w, "analytic_grad": analytic, "eps": 1e-6},
            ("f", "x", "analytic_grad"),
        )
        got = c.call(gradient_error, "gradient_error")
        try:
            got = float(got)
        except (TypeError, ValueError) as err:
            raise GradingError(f"gradient_error should return a float, got {got!r} ({c.label}).") from err
        ref = cl.check_gradient(loss_of_w, w, analytic, eps=1e-6).max_rel_error
        ok = got < 1e-6 if ref < 1e-6 else abs(got - ref) <= 1e-3 * ref
        if not ok:
            hint = (
                "relative error = max |a - n| / max(|a| + |n|, 1e-12), element-wise, then the maximum."
                if not math.isclose(got, 2 * ref, rel_tol=1e-3)
                else "you seem to divide by max(|a|, |n|) or similar: divide by |a| + |n|."
            )
            raise GradingError(
                f"gradient_error for {c.label}: expected {ref:.6g}, got {got:.6g}.\n  Hint: {hint}"
            )
    _passed("gradient_error", len(trials), hidden)


# ---------------------------------------------------------------------------------------
# Assignment 4: applications
# ---------------------------------------------------------------------------------------


def _magnitude(image: np.ndarray) -> np.ndarray:
    cl = _lib()
    gx = cl.correlate2d(image, cl.get_kernel("sobel_x"), "same")
    gy = cl.correlate2d(image, cl.get_kernel("sobel_y"), "same")
    return np.sqrt(gx**2 + gy**2)


def _edge_images(hidden: bool) -> list[tuple[str, np.ndarray]]:
    cl = _lib()
    step = np.zeros((6, 7))
    step[:, 3:] = 1.0
    if not hidden:
        return [("a 6x7 vertical step edge", step)]
    rng = _rng("edges")
    cam = cl.load_image("camera")
    return [
        ("a 6x7 vertical step edge transposed (7x6)", step.T.copy()),
        ("random 9x5 image", rng.random((9, 5))),
        ("the 'camera' image, rows 100:164, columns 200:248", np.array(cam[100:164, 200:248])),
    ]


def check_edge_magnitude(edge_magnitude: Callable[..., Any], hidden: bool = False) -> None:
    """``edge_magnitude(image)``: sqrt(gx**2 + gy**2) of the Sobel responses, same size as the image.

    The reference uses :func:`conv_lib.correlate2d` (mode "same") with
    ``get_kernel("sobel_x")`` and ``"sobel_y"`` (the sign and the x/y order do not matter).
    """
    cl = _lib()
    forbid_reference(edge_magnitude, _A4_FORBIDDEN)
    images = _edge_images(hidden)
    for label, img in images:
        c = Case(label, {"image": img}, ("image",))
        got = c.call(edge_magnitude, "edge_magnitude")
        sx, sy = cl.get_kernel("sobel_x"), cl.get_kernel("sobel_y")
        gx, gy = cl.correlate2d(img, sx, "same"), cl.correlate2d(img, sy, "same")
        compare_arrays(
            got,
            _magnitude(img),
            case=label,
            name="edge_magnitude",
            diagnoses=[
                Diagnosis("one direction only", "combine both directions: sqrt(gx**2 + gy**2).", np.abs(gx)),
                Diagnosis("one direction only", "combine both directions: sqrt(gx**2 + gy**2).", np.abs(gy)),
                Diagnosis(
                    "no square root", "the magnitude is the square root of gx**2 + gy**2.", gx**2 + gy**2
                ),
                Diagnosis(
                    "|gx| + |gy|",
                    "the magnitude is sqrt(gx**2 + gy**2), not |gx| + |gy|.",
                    np.abs(gx) + np.abs(gy),
                ),
                Diagnosis(
                    "'valid' instead of 'same'",
                    "keep the image's size: pad by 1 (padding=1, or mode 'same').",
                    shape=(img.shape[0] - 2, img.shape[1] - 2),
                ),
            ],
        )
    _passed("edge_magnitude", len(images), hidden)


def check_detect_edges(detect_edges: Callable[..., Any], hidden: bool = False) -> None:
    """``detect_edges(image, threshold)``: boolean map of magnitude > threshold * magnitude.max()."""
    forbid_reference(detect_edges, _A4_FORBIDDEN)
    images = _edge_images(hidden)
    n = 0
    for label, img in images:
        for thr in (0.5,) if not hidden else (0.25, 0.6):
            c = Case(f"{label}, threshold={thr}", {"image": img, "threshold": thr}, ("image",))
            got = c.call(detect_edges, "detect_edges")
            mag = _magnitude(img)
            got_arr = np.asarray(got)
            if got_arr.dtype != bool:
                raise GradingError(
                    f"detect_edges should return a boolean array (e.g. `magnitude > t`); got dtype "
                    f"{got_arr.dtype} for {c.label}."
                )
            compare_arrays(
                got_arr,
                mag > thr * mag.max(),
                case=c.label,
                name="detect_edges",
                diagnoses=[
                    Diagnosis(
                        "absolute threshold",
                        "the threshold is a fraction of the largest magnitude: "
                        "magnitude > threshold * magnitude.max().",
                        mag > thr,
                    ),
                ],
            )
            n += 1
    _passed("detect_edges", n, hidden)


def check_softmax_cross_entropy(softmax_cross_entropy: Callable[..., Any], hidden: bool = False) -> None:
    """``softmax_cross_entropy(logits, y) -> (mean loss, d loss / d logits)``.

    Compared with :func:`conv_lib.softmax_cross_entropy`.
    """
    forbid_reference(softmax_cross_entropy, _A4_FORBIDDEN)
    rng = _rng("softmax")
    cases = [("logits (4, 3), y=[0, 2, 1, 2]", rng.standard_normal((4, 3)), np.array([0, 2, 1, 2]))]
    if hidden:
        cases += [
            ("logits (16, 10)", 3 * rng.standard_normal((16, 10)), rng.integers(0, 10, 16)),
            (
                "large logits (5, 10), values around 1000",
                1000 + 50 * rng.standard_normal((5, 10)),
                rng.integers(0, 10, 5),
            ),
            ("one sample (1, 10)", rng.standard_normal((1, 10)), np.array([7])),
        ]
    for label, logits, y in cases:
        c = Case(label, {"logits": logits, "y": y}, ("logits", "y"))
        got = c.call(softmax_cross_entropy, "softmax_cross_entropy")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise GradingError(
                f"softmax_cross_entropy must return (loss, dlogits); got {type(got).__name__}."
            )
        loss, dlogits = got
        ref_loss, ref_d = _lib().softmax_cross_entropy(logits, y)
        ref_d = np.array(ref_d, dtype=np.float64)
        n = logits.shape[0]
        try:
            loss = float(loss)
        except (TypeError, ValueError) as err:
            raise GradingError(f"the loss should be a number, got {loss!r} ({label}).") from err
        if not math.isfinite(loss):
            raise GradingError(
                f"loss for {label} is {loss}: exp overflows for large logits. Subtract each row's "
                "maximum before exponentiating (softmax does not change)."
            )
        if not math.isclose(loss, ref_loss, rel_tol=1e-6, abs_tol=1e-9):
            hint = (
                "you summed over the batch: return the MEAN loss."
                if math.isclose(loss, ref_loss * n, rel_tol=1e-6)
                else "loss = mean over samples of -log(softmax(logits)[i, y[i]])."
            )
            raise GradingError(f"loss for {label}: expected {ref_loss:.8g}, got {loss:.8g}.\n  Hint: {hint}")
        probs = ref_d * n
        probs[np.arange(n), y] += 1.0
        compare_arrays(
            dlogits,
            ref_d,
            case=label,
            name="dlogits",
            diagnoses=[
                Diagnosis(
                    "not divided by the batch size",
                    "the loss is a mean over N samples: divide the gradient by N.",
                    ref_d * n,
                ),
                Diagnosis(
                    "forgot the -1 at the label", "d loss / d logits = (softmax - one_hot(y)) / N.", probs / n
                ),
            ],
        )
    _passed("softmax_cross_entropy", len(cases), hidden)


def check_param_counts(
    conv_params: Callable[..., Any], dense_params: Callable[..., Any], hidden: bool = False
) -> None:
    """``conv_params(c_in, c_out, k)`` and ``dense_params(n_in, n_out)`` (bias included) vs conv_lib."""
    cl = _lib()
    for f in (conv_params, dense_params):
        forbid_reference(f, (*_A4_FORBIDDEN, "param_count"))
    conv_specs = [(1, 8, 3), (3, 64, 3)] + ([(16, 32, 5), (2, 1, 1), (64, 128, 7)] if hidden else [])
    dense_specs = [(72, 10), (784, 100)] + ([(1, 1), (4096, 1000)] if hidden else [])
    for ci, co, k in conv_specs:
        exp = cl.conv2d_param_count(ci, co, k)
        got = conv_params(ci, co, k)
        if got != exp:
            hint = (
                "the bias adds one parameter per output channel."
                if got == exp - co
                else "each output channel has a k x k kernel per INPUT channel: c_out * c_in * k * k + c_out."
                if got in (co * k * k + co, ci * k * k + co)
                else "count weights c_out * c_in * k * k plus c_out biases."
            )
            raise GradingError(f"conv_params({ci}, {co}, {k}): expected {exp}, got {got!r}.\n  Hint: {hint}")
    for ni, no in dense_specs:
        exp = cl.dense_param_count(ni, no)
        got = dense_params(ni, no)
        if got != exp:
            hint = "the bias adds one parameter per output." if got == exp - no else "n_in * n_out + n_out."
            raise GradingError(f"dense_params({ni}, {no}): expected {exp}, got {got!r}.\n  Hint: {hint}")
    _passed("conv_params and dense_params", len(conv_specs) + len(dense_specs), hidden)


def check_pieces(
    conv2d: Callable[..., Any],
    conv2d_backward: Callable[..., Any],
    max_pool2d: Callable[..., Any],
    max_pool2d_backward: Callable[..., Any],
    hidden: bool = False,
) -> None:
    """Your own layers, pasted from assignments 2 and 3: no reference inside, right results."""
    for f in (conv2d, conv2d_backward, max_pool2d, max_pool2d_backward):
        forbid_reference(f, _A4_FORBIDDEN)
    check_conv2d(conv2d, "channels", hidden)
    if hidden:
        check_conv2d(conv2d, "stride_padding", hidden)
    for part in ("dx", "dw", "db"):
        check_conv2d_backward(conv2d_backward, part, "basic", hidden)
    check_max_pool2d(max_pool2d, "basic", hidden)
    check_max_pool2d_backward(max_pool2d_backward, "basic", hidden)


def digits_split(
    seed: int = 0, test_size: int = 360
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The course's fixed split of :func:`conv_lib.load_digits`: (X_train, y_train, X_test, y_test)."""
    X, y = _lib().load_digits()
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:test_size], order[test_size:]
    return X[train], y[train], X[test], y[test]


def check_accuracy(
    predict: Callable[..., Any], params: Any, min_accuracy: float, train: Callable[..., Any] | None = None
) -> None:
    """Accuracy of ``predict(params, X_test)`` on :func:`digits_split`'s test set: ``>= min_accuracy``.

    ``predict`` and, when given, the student's ``train`` must not use a reference (conv_lib
    has a trainable network of its own, which would do the work).
    """
    forbid_reference(predict, _A4_FORBIDDEN)
    if train is not None:
        forbid_reference(train, _A4_FORBIDDEN)
    if params is None:
        raise GradingError("params is None: run your training cell (it must set `params`).")
    _, _, X_test, y_test = digits_split()
    c = Case(
        f"the {len(y_test)} test digits, X_test {X_test.shape}",
        {"params": params, "X": X_test},
        ("params", "X"),
    )
    got = np.asarray(c.call(predict, "predict"))
    if got.shape != y_test.shape:
        raise GradingError(
            f"predict should return one label per image, shape {y_test.shape}; got {got.shape}. "
            "Take the argmax of the logits over axis 1."
        )
    acc = float(np.mean(got == y_test))
    if acc < min_accuracy:
        raise GradingError(
            f"test accuracy {acc:.3f} is below {min_accuracy:.2f}. Check the gradients (the "
            "gradient check), then train longer or adjust the learning rate."
        )
    print(f"OK: test accuracy {acc:.3f} >= {min_accuracy:.2f}.")
