"""Comparing a student's answer with the reference, and the message a failure shows.

:class:`Case` calls a student's function on copies of its arguments (and explains an
exception or an input modified in place); :func:`compare_arrays` compares shapes, then
values, and names the first :class:`Diagnosis` (a known mistake) whose output equals the
student's. A failed check raises :class:`GradingError`, an ``AssertionError``, so nbgrader
scores the cell zero.
"""

from __future__ import annotations

import math
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Case",
    "Diagnosis",
    "DtypeRule",
    "GradingError",
    "answer_shape",
    "compare_arrays",
    "format_value",
    "passed",
    "run_cases",
    "tolerances",
]

#: The folder of this package: its frames are the grader's internals, never shown to students.
_PACKAGE_DIR = Path(__file__).resolve().parent


def _is_grader_frame(filename: str) -> bool:
    try:
        return Path(filename).resolve().parent == _PACKAGE_DIR
    except (OSError, ValueError):
        return False


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
            frames = [
                f for f in traceback.extract_tb(cause.__traceback__) if not _is_grader_frame(f.filename)
            ]
            if frames:
                lines.append("Your code raised an error (most recent call last):")
                lines += [ln.rstrip("\n") for ln in traceback.format_list(frames)]
                lines += [f"{type(cause).__name__}: {cause}", ""]
        lines.append(f"GradingError: {self}")
        return lines


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
                f"  called as {name}({self.signature()})" + _error_hint(err)
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


def _error_hint(err: BaseException) -> str:
    """A hint for an error that a known mistake causes (only when the message says so plainly)."""
    text = str(err)
    if "could not broadcast" in text and re.search(r"into shape \([^)]*\b0\b", text):
        return (
            "\n  Likely bug (empty slice): the target of your assignment is empty. With padding 0, a "
            "slice like `a[p:-p]` is `a[0:0]` (because -0 == 0); write `a[p:p + n]` instead."
        )
    return ""


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _short(value: Any) -> str:
    if isinstance(value, np.generic):
        return format_value(value)
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

    def computable(self) -> bool:
        """Whether this mistake can be recognised in this case at all."""
        if self.expected is None:
            return self.shape is not None
        return self.value() is not None

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


def tolerances(expected: np.ndarray) -> tuple[float, float]:
    """(rtol, atol) for comparing with ``expected``: float32 looser, atol scaled by its magnitude."""
    expected = np.asarray(expected)
    finite = expected.size and np.issubdtype(expected.dtype, np.number) and np.isfinite(expected).all()
    scale = float(np.max(np.abs(expected))) if finite else 1.0
    scale = max(scale, 1.0)
    if expected.dtype == np.float32:
        return 1e-4, 1e-5 * scale
    return 1e-6, 1e-9 * scale


def format_value(value: Any) -> str:
    """A value as a student reads it: ``44.0`` (not ``np.float64(44.0)``), ``True``, arrays by shape."""
    digits = 12
    if isinstance(value, np.generic):
        if isinstance(value, np.floating) and value.itemsize < 8:
            digits = 8  # float32 / float16: what the value really holds
        value = value.item()
    if isinstance(value, float):
        return repr(value) if not math.isfinite(value) else repr(float(f"{value:.{digits}g}"))
    if isinstance(value, (bool, int, complex)):
        return repr(value)
    return _short(value)


@dataclass(frozen=True)
class DtypeRule:
    """What dtype a result must have, once its values are right, and the hint when it does not.

    ``dtype`` is a NumPy dtype (exactly that one) or ``"floating"`` (any float dtype).
    """

    dtype: Any
    hint: str

    def accepts(self, got: np.dtype) -> bool:
        if isinstance(self.dtype, str) and self.dtype == "floating":
            return bool(np.issubdtype(got, np.floating))
        return got == np.dtype(self.dtype)

    def describe(self) -> str:
        return "a float dtype" if isinstance(self.dtype, str) else np.dtype(self.dtype).name


@dataclass
class _Failure:
    """One case's wrong answer: the message lines, and what recognising a mistake needs."""

    lines: list[str]
    got: np.ndarray
    diagnoses: Sequence[Diagnosis]
    rtol: float
    atol: float
    shape_mismatch: bool
    expected_shape: tuple[int, ...] = ()

    def status(self, d: Diagnosis) -> bool | None:
        """True: the mistake explains this answer; False: it does not; None: it cannot tell here."""
        if d.expected is None and not self.shape_mismatch:
            return None  # a shape alone says nothing once the shape is right
        if not d.computable():
            return None
        return d.matches(self.got, self.rtol, self.atol)


class _DtypeError(GradingError):
    """Right values of the wrong dtype: reported only if no case has wrong values."""


def _numeric_leaves(value: Any, budget: list[int]) -> bool:
    """True if a nested list/tuple holds only numbers and numeric arrays (at most
    ``budget[0]`` items in all): no strings or bytes, which ``np.asarray`` would pad to the
    longest one, whatever their count (a small answer, a huge array)."""
    if isinstance(value, (list, tuple)):
        budget[0] -= len(value)
        return budget[0] >= 0 and all(_numeric_leaves(v, budget) for v in value)
    if isinstance(value, np.ndarray):
        budget[0] -= value.size
        return budget[0] >= 0 and (np.issubdtype(value.dtype, np.number) or value.dtype == bool)
    return isinstance(value, (bool, int, float, complex, np.number, np.bool_))


def answer_shape(value: Any, most: int) -> tuple[int, ...] | None:
    """The shape of a student's array answer without converting more than ``most`` items:
    an array's own shape; a nested list's only if it holds numbers and numeric arrays,
    ``most`` values with room for the lists themselves (:func:`_numeric_leaves`;
    ``np.shape`` would convert it, and a list mixing strings or dtypes can grow far
    beyond its size when converted); else ``None`` (treat as a wrong shape)."""
    if isinstance(value, np.ndarray):
        return value.shape
    if isinstance(value, (list, tuple)) and not _numeric_leaves(value, [2 * most + 16]):
        return None
    try:
        return np.shape(value)
    except (ValueError, TypeError):  # a ragged list
        return None


def _as_array(got: Any, name: str, where: str) -> np.ndarray:
    if got is None:
        raise GradingError(f"{name}{where}: got None. Did you forget `return`?")
    if isinstance(got, (list, tuple)) and not _numeric_leaves(got, [10**7]):
        raise GradingError(
            f"{name}{where}: expected a numeric array, got a {type(got).__name__} holding something else."
        )
    try:
        got_arr = np.asarray(got)
    except Exception as err:  # noqa: BLE001
        raise GradingError(f"{name}{where}: could not convert your result to an array ({err}).") from err
    if got_arr.dtype == object or not (np.issubdtype(got_arr.dtype, np.number) or got_arr.dtype == bool):
        raise GradingError(
            f"{name}{where}: expected a numeric array, got {type(got).__name__} with dtype {got_arr.dtype}."
        )
    return got_arr


def _integer_result(got: np.ndarray, expected: np.ndarray) -> list[Diagnosis]:
    """The mistake every float result can make: stored in an integer array (values cut)."""
    if not (np.issubdtype(got.dtype, np.integer) and np.issubdtype(expected.dtype, np.floating)):
        return []
    return [
        Diagnosis(
            "integer result",
            f"your result is an integer array ({got.dtype}), so every value was cut to an integer "
            "when it was stored (an output made with np.zeros_like(image) of an integer image, for "
            "instance). Make the output a float array: np.zeros(shape), or dtype=np.result_type(image, "
            "kernel, np.float64).",
            lambda: np.trunc(expected),
        )
    ]


def _check_one(
    got: Any,
    expected: Any,
    *,
    case: str,
    name: str,
    diagnoses: Sequence[Diagnosis],
    rtol: float | None,
    atol: float | None,
    dtype: DtypeRule | None,
) -> _Failure | None:
    """None if ``got`` equals ``expected`` (shape, values, then ``dtype``), else what is wrong.

    A wrong dtype with right values raises :class:`GradingError` at once (nothing to diagnose).
    """
    where = f" for {case}" if case else ""
    expected = np.asarray(expected)
    got_arr = _as_array(got, name, where)
    if rtol is None or atol is None:
        d_rtol, d_atol = tolerances(expected)
        rtol = d_rtol if rtol is None else rtol
        atol = d_atol if atol is None else atol
    if got_arr.shape != expected.shape:
        lines = [f"{name}{where}: wrong shape: expected {expected.shape}, got {got_arr.shape}."]
        return _Failure(lines, got_arr, list(diagnoses), rtol, atol, True, expected.shape)
    if expected.dtype == bool:  # a mask: True/False, or exactly 1/0
        mismatch = got_arr != expected
    elif got_arr.dtype == bool:  # booleans are no answer to a question about numbers
        raise GradingError(
            f"{name}{where}: expected numbers ({expected.dtype}), got a boolean array: "
            "did you return a comparison (==, <, >) instead of the values?"
        )
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.isclose(got_arr.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol)
        mismatch = ~close
    if not mismatch.any():
        if dtype is not None and not dtype.accepts(got_arr.dtype):
            raise _DtypeError(
                f"{name}{where}: the values are right, but the result's dtype is {got_arr.dtype}; "
                f"expected {dtype.describe()}.\n  Hint: {dtype.hint}"
            )
        return None
    idx = tuple(int(i) for i in np.argwhere(mismatch)[0])
    n_bad = int(mismatch.sum())
    lines = [
        f"{name}{where}: wrong values. First mismatch at index {idx}: expected "
        f"{format_value(expected[idx])}, got {format_value(got_arr[idx])} ({n_bad} of {expected.size} "
        "values differ)."
    ]
    if not np.isfinite(got_arr.astype(np.float64)).all() and np.isfinite(expected.astype(np.float64)).all():
        lines.append("  Your result contains nan or inf where the expected one is finite.")
    return _Failure(
        lines,
        got_arr,
        _integer_result(got_arr, expected) + list(diagnoses),
        rtol,
        atol,
        False,
        expected.shape,
    )


def _named_mistake(failures: Sequence[_Failure]) -> Diagnosis | None:
    """The known mistake that explains the wrong answers, or None.

    A mistake is named only if it reproduces the answer of at least one failing case and
    is contradicted by none (it was computable there but gave something else), so that a
    coincidence on one small case never names the wrong bug. Diagnoses with the same name
    are alternatives of one mistake. Among several, the one explaining most cases wins.
    """
    order: list[str] = []
    hint_of: dict[str, Diagnosis] = {}
    matched: set[str] = set()  # names whose hint comes from their first matching case
    score: dict[str, int] = {}
    contradicted: set[str] = set()
    for f in failures:
        status: dict[str, bool | None] = {}
        for d in f.diagnoses:
            if d.name not in hint_of:
                hint_of[d.name] = d
                order.append(d.name)
            s = f.status(d)
            if s:
                status[d.name] = True
                if d.name not in matched:
                    matched.add(d.name)
                    hint_of[d.name] = d
            elif status.get(d.name) is None:
                status[d.name] = s
        for n, s in status.items():
            if s:
                score[n] = score.get(n, 0) + 1
            elif s is False:
                contradicted.add(n)
    candidates = [n for n in order if score.get(n) and n not in contradicted]
    if not candidates:
        return None
    best = max(candidates, key=lambda n: (score[n], -order.index(n)))
    return hint_of[best]


def _raise(failures: Sequence[_Failure]) -> None:
    first = failures[0]
    lines = list(first.lines)
    mistake = _named_mistake(failures)
    if mistake is not None:
        lines.append(f"  Likely bug ({mistake.name}): {mistake.hint}")
    elif first.shape_mismatch and _shape_hints(failures):
        lines += _shape_hints(failures)
    elif first.shape_mismatch:
        lines.append(
            "  No common bug recognised: work out the expected shape of this small case by hand "
            "and compare it with your loop bounds and padding."
        )
    else:
        lines.append(
            "  No common bug recognised: compare your indices and loop bounds with the "
            "definition, on the small case above by hand."
        )
    raise GradingError("\n".join(lines))


def compare_arrays(
    got: Any,
    expected: Any,
    *,
    case: str = "",
    name: str = "result",
    diagnoses: Sequence[Diagnosis] = (),
    rtol: float | None = None,
    atol: float | None = None,
    dtype: DtypeRule | None = None,
) -> None:
    """Raise :class:`GradingError` unless ``got`` equals ``expected`` (shape, values, then dtype).

    The message names the case, the first mismatching index, expected vs got, and the
    hint of the :class:`Diagnosis` (a known mistake) whose buggy output equals ``got``.
    Generic hints recognise an empty result (``a[p:-p]`` with ``p == 0``), H and W
    swapped, a wrong batch size and off-by-one shapes. ``dtype`` (a :class:`DtypeRule`)
    is checked once the values are right.
    """
    failure = _check_one(
        got, expected, case=case, name=name, diagnoses=diagnoses, rtol=rtol, atol=atol, dtype=dtype
    )
    if failure is not None:
        _raise([failure])


def _shape_kind(got: tuple[int, ...], expected: tuple[int, ...]) -> str | None:
    """What a wrong shape says by itself: "empty", "axes", "batch", "swapped", "one fewer" or None."""
    if math.prod(got) == 0 and math.prod(expected) > 0:
        return "empty"
    if len(got) != len(expected):
        return "axes"
    if len(got) >= 3 and got[1:] == expected[1:] and got[0] != expected[0]:
        return "batch"
    if len(got) >= 2 and got[:-2] == expected[:-2] and got[-2:] == expected[-2:][::-1] and got[-2] != got[-1]:
        return "swapped"
    if (
        len(got) >= 2
        and got[:-2] == expected[:-2]
        and all(g == e - 1 for g, e in zip(got[-2:], expected[-2:], strict=True))
    ):
        return "one fewer"
    return None


_SHAPE_HINTS = {
    "empty": "  Likely bug (empty slice): your result is empty. With padding 0, a slice like "
    "`a[p:-p]` is `a[0:0]` (because -0 == 0), which is empty; write `a[p:a.shape[0] - p]` "
    "or `a[p:p + n]` instead.",
    "batch": "  Likely bug (batch axis): your result has {got0} entries along axis 0 (the batch); "
    "expected {exp0}. Compute every sample x[b] of the batch, keeping axis 0.",
    "swapped": "  Likely bug (H and W swapped): your height and width are exchanged. Rows (H) "
    "come first, columns (W) second, for the image, the kernel, stride and padding.",
    "one fewer": "  Likely bug (off-by-one window count): one window too few along each axis. A window "
    "of size k fits n - k + 1 times along an axis of size n (loop over range(n - k + 1), not "
    "range(n - k)); with stride s the count is (n - k) // s + 1.",
    "axes": "  Your result has {ngot} axes; expected {nexp}.",
}


def _shape_hints(failures: Sequence[_Failure]) -> list[str]:
    """The hint a wrong shape gives, if every wrong-shaped case tells the same story."""
    wrong = [f for f in failures if f.shape_mismatch]
    kinds = {_shape_kind(tuple(f.got.shape), f.expected_shape) for f in wrong}
    if len(kinds) != 1 or None in kinds:
        return []
    first = wrong[0]
    got, exp = tuple(first.got.shape), first.expected_shape
    return [
        _SHAPE_HINTS[kinds.pop()].format(
            got0=got[0] if got else 0, exp0=exp[0] if exp else 0, ngot=len(got), nexp=len(exp)
        )
    ]


def passed(what: str, n: int, hidden: bool) -> None:
    """Print the one-line summary of a passed check."""
    kind = "hidden" if hidden else "visible"
    print(f"OK: {what}: {n} {kind} case{'s' if n != 1 else ''} passed.")


def run_cases(
    fn: Callable[..., Any],
    name: str,
    cases: Sequence[Case],
    reference: Callable[[Case], Any],
    variants: Callable[[Case], list[Diagnosis]],
    what: str,
    hidden: bool,
    *,
    dtype: Callable[[Case], DtypeRule | None] | None = None,
    extract: Callable[[Any, Case], Any] | None = None,
    tolerance: Callable[[Case], tuple[float | None, float | None]] | None = None,
    result_name: str | None = None,
) -> None:
    """Call ``fn`` on every case and compare with ``reference(case)``, diagnosing with ``variants``.

    Every case runs (unless the student's function raises): the message shows the first
    wrong case, and names a mistake only if no failing case contradicts it. ``extract``
    picks the compared part of the answer (and may raise :class:`GradingError` for an
    answer of the wrong kind); ``dtype`` gives the :class:`DtypeRule` of a case.
    """
    failures: list[_Failure] = []
    dtype_error: _DtypeError | None = None
    for case in cases:
        try:
            got = case.call(fn, name)
            if extract is not None:
                got = extract(got, case)
        except GradingError:
            if failures:
                break  # report the wrong value seen first
            raise
        rtol, atol = tolerance(case) if tolerance is not None else (None, None)
        try:
            failure = _check_one(
                got,
                reference(case),
                case=case.label,
                name=result_name or name,
                diagnoses=variants(case),
                rtol=rtol,
                atol=atol,
                dtype=dtype(case) if dtype is not None else None,
            )
        except _DtypeError as err:
            dtype_error = dtype_error or err
            continue
        if failure is not None:
            failures.append(failure)
    if failures:
        _raise(failures)
    if dtype_error is not None:
        raise GradingError(str(dtype_error))
    passed(what, len(cases), hidden)
