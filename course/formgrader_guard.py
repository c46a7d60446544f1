"""Stock ``nbgrader autograde`` refused, so formgrader's Autograde button cannot run it.

Stock autograding executes the student's notebook, tests included, with the grader's rights
and believes what it reports. The course grades with ``python -m course autograde`` (the
trusted, sandboxed grader) instead. ``nbgrader_config.py`` puts this preprocessor first in
nbgrader's autograde pipeline, so formgrader's button (and ``nbgrader autograde``) stop at
once with the message below, before any student code runs. ``course autograde --stock``
(benchmarks only) removes it explicitly.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor

MESSAGE = (
    "Stock nbgrader autograding is disabled for this course: it would run student code "
    "unsandboxed, with your rights. Grade with `python -m course autograde` on the grading "
    "server; formgrader then shows the results, and hand grading works as usual."
)


class RefuseStockAutograde(NbGraderPreprocessor):
    """Raises at the first notebook, with :data:`MESSAGE`."""

    def preprocess(self, nb, resources):  # type: ignore[no-untyped-def]
        raise RuntimeError(MESSAGE)
