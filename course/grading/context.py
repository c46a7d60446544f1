"""The grading context: who is being graded, and the secret their hidden cases come from.

The grader enters :func:`grading_context` around one submission's test cells::

    with grading_context(load_secret(), student="alice", assignment="01_convolution_by_hand"):
        ...  # run the instructor's test cells

Inside it, :func:`hidden_rng` gives the random generator of one hidden case generator,
seeded from ``HMAC-SHA256(secret, assignment + "\\0" + student + "\\0" + tag)``: without
the instructor's secret nobody can know a student's hidden cases (their own included),
two students get different cases, and regrading gives the same ones. Outside a context
:func:`hidden_rng` refuses, so hidden cases are generated only by the grader.

The context also holds a per-submission ``cache`` (a dict), e.g. for parameters trained
once and judged by two test cells.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from course.grading.compare import GradingError

__all__ = ["GradingContext", "current_context", "grading_context", "hidden_rng"]

#: The shortest secret accepted (bytes); :func:`course.secret.create_secret` makes 32.
MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class GradingContext:
    """One submission being graded. ``cache`` lives as long as the context."""

    student: str
    assignment: str
    _secret: bytes = field(repr=False)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    submission: str = ""  # a fingerprint of the answers graded (see grading_context)

    def seed(self, tag: str) -> int:
        """The 256-bit seed of the hidden case generator named ``tag``."""
        parts = (self.assignment, self.student, tag) + ((self.submission,) if self.submission else ())
        message = "\0".join(parts).encode("utf-8")
        return int.from_bytes(hmac.new(self._secret, message, hashlib.sha256).digest(), "big")


_lock = threading.Lock()
_active: GradingContext | None = None


def _check_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: got {value!r}; expected a non-empty string")
    if "\0" in value:
        raise ValueError(f"{name}: got {value!r}; expected a string without NUL characters")
    return value


@contextlib.contextmanager
def grading_context(
    secret: bytes, student: str, assignment: str, submission: str = ""
) -> Iterator[GradingContext]:
    """Grade one submission of ``student`` for ``assignment`` with the instructor's ``secret``.

    Parameters
    ----------
    secret : bytes
        The instructor secret (:func:`course.secret.load_secret`), at least 16 bytes.
    student, assignment : str
        Non-empty, without NUL characters (they are joined with NUL to seed the cases).
    submission : str, optional
        A fingerprint of the answers being graded (the grader passes a hash of the answer
        cells). Mixed into the seeds, so a resubmission with other code gets other hidden
        cases: what a student learns of their hidden cases from one round of feedback does
        not carry over to the next, while grading the same answers again gives the same
        cases.

    Yields
    ------
    GradingContext
        With ``cache``, a dict that lives as long as the context.

    Contexts do not nest: entering one while another is active (in this process) raises
    :class:`GradingError`.
    """
    global _active
    if not isinstance(secret, (bytes, bytearray)) or len(secret) < MIN_SECRET_BYTES:
        shown = (
            f"{len(secret)} bytes" if isinstance(secret, (bytes, bytearray)) else repr(type(secret).__name__)
        )
        raise ValueError(f"secret: got {shown}; expected bytes, at least {MIN_SECRET_BYTES} of them")
    ctx = GradingContext(
        _check_name("student", student),
        _check_name("assignment", assignment),
        bytes(secret),
        submission=str(submission).replace("\0", ""),
    )
    with _lock:
        if _active is not None:
            raise GradingError(
                f"a grading context is already active (student {_active.student!r}, assignment "
                f"{_active.assignment!r}); grade one submission at a time in a process"
            )
        _active = ctx
    try:
        yield ctx
    finally:
        with _lock:
            _active = None


def current_context() -> GradingContext | None:
    """The active grading context, or None outside the grader."""
    return _active


def hidden_rng(tag: str) -> np.random.Generator:
    """The random generator of the hidden case generator ``tag``, for the submission being graded.

    Raises
    ------
    GradingError
        Outside :func:`grading_context`.
    """
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"tag: got {tag!r}; expected a non-empty string")
    ctx = _active
    if ctx is None:
        raise GradingError(
            "hidden cases are generated only by the grader, inside grading_context(secret, student, "
            "assignment); the hidden tests run when your notebook is graded (run the visible tests "
            "with `python -m course check`)."
        )
    return np.random.default_rng(ctx.seed(tag))
