"""The course's late-work rule, as an nbgrader late-submission plugin.

nbgrader's own plugin knows only "no penalty" and "zero". This one takes a share of the
score per started day late (``percent_per_day``, default 10), up to ``max_percent``
(default 100). It is selected in ``nbgrader_config.py``::

    c.AssignLatePenalties.plugin_class = "course.late.PerDayPenalty"
    c.PerDayPenalty.percent_per_day = 10

``course autograde`` applies it (with the submission's ``timestamp.txt`` and the due date
set by ``course duedate``); nbgrader's feedback and CSV export show the penalty.
"""

from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class PerDayPenalty(LateSubmissionPlugin):
    """``percent_per_day`` of the score per started day late, at most ``max_percent``."""

    percent_per_day = Float(10.0, help="percent of the score taken per started day late").tag(config=True)
    max_percent = Float(100.0, help="the largest penalty, in percent of the score").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        if total_seconds_late <= 0:
            return 0.0
        days = math.ceil(total_seconds_late / 86400)
        return score * min(self.max_percent, days * self.percent_per_day) / 100
