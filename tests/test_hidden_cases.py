"""Hidden cases depend on the secret, the student and the answers submitted.

What a student sees of their hidden cases in one round of feedback (the failing input, an
expected value) must not carry over to a resubmission: the grader mixes a fingerprint of
the answer cells into the seed, so other answers get other cases, and the same answers
(a regrade) get the same ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.grader import Reconstructed, answers_fingerprint  # noqa: E402
from course.grading.context import grading_context, hidden_rng  # noqa: E402

SECRET = b"s" * 32


def draws(submission: str, student: str = "alice") -> np.ndarray:
    with grading_context(SECRET, student, "01_convolution_by_hand", submission=submission):
        return hidden_rng("correlate2d valid").standard_normal(8)


def test_other_answers_get_other_hidden_cases_and_a_regrade_the_same():
    first = Reconstructed({}, {"correlate2d": "def correlate2d(i, k):\n    return 1\n"})
    second = Reconstructed({}, {"correlate2d": "def correlate2d(i, k):\n    return 2\n"})
    a, b = answers_fingerprint(first), answers_fingerprint(second)
    assert a != b and a == answers_fingerprint(Reconstructed({}, dict(first.answers)))
    assert not np.allclose(draws(a), draws(b))
    np.testing.assert_array_equal(draws(a), draws(a))
    assert not np.allclose(draws(a, "alice"), draws(a, "bob"))


def test_without_a_fingerprint_the_seed_is_the_students():
    np.testing.assert_array_equal(draws(""), draws(""))
    assert not np.allclose(draws(""), draws("x"))
