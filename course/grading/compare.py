"""Comparing a student's answer with the reference, and the message a failure shows.

:class:`Case` calls a student's function on copies of its arguments (and explains an
exception or an input modified in place); :func:`compare_arrays` compares shapes, then
values, and names the first :class:`Diagnosis` (a known mistake) whose output equals the
student's. A failed check raises :class:`GradingError`, an ``AssertionError``, so nbgrader
scores the cell zero.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Case", "Diagnosis", "GradingError", "compare_arrays", "passed", "run_cases", "tolerances"]

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


def tolerances(expected: np.ndarray) -> tuple[float, float]:
    """(rtol, atol) for comparing with ``expected``: float32 looser, atol scaled by its magnitude."""
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
        d_rtol, d_atol = tolerances(expected)
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
) -> None:
    """Call ``fn`` on every case and compare with ``reference(case)``, diagnosing with ``variants``."""
    for case in cases:
        got = case.call(fn, name)
        compare_arrays(got, reference(case), case=case.label, name=name, diagnoses=variants(case))
    passed(what, len(cases), hidden)
