"""nbgrader configuration of the course (read by nbgrader from the current directory).

Run nbgrader through ``python -m course ...`` (it changes into this folder first); see the
README's "Assignments" section.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by nbgrader's config loader

ROOT = Path(__file__).resolve().parent

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "convolution-in-deep-learning"
# nbgrader's exchange: the shared folder where `course release` publishes the assignments,
# students fetch and submit (`nbgrader fetch_assignment` / `submit`), `course collect` takes the
# submissions and `course feedback` publishes the feedback (`nbgrader fetch_feedback`).
# Which folder: `python -m course --exchange PATH ...`, else the environment variable
# COURSE_EXCHANGE, else /srv/nbgrader/exchange. It must be writable by the instructor and every
# student (mode 1777); make it once: `sudo install -d -m 1777 /srv/nbgrader/exchange`.
# Students' nbgrader needs the same two settings: hub/nbgrader_config.py (see the README).
c.Exchange.root = os.environ.get("COURSE_EXCHANGE") or "/srv/nbgrader/exchange"
# Instructor notebooks (solutions and hidden tests) -> student notebooks (committed).
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Runtime folders, never committed (/grading/ is in .gitignore).
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.solution_directory = "grading/solution"
c.CourseDirectory.source_with_tests_directory = "grading/source_with_tests"
c.CourseDirectory.db_url = f"sqlite:///{ROOT / 'grading' / 'gradebook.db'}"
# Only notebooks are released or collected: no stray files reach students' folders.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "*.py", "*.md"]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding: a notebook may run at most this long (assignment 4 trains a small network).
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120

# Late work (course/late.py): 10% of the score per started day past the due date set with
# `python -m course duedate ASSIGNMENT WHEN`, applied by `python -m course autograde`.
c.AssignLatePenalties.plugin_class = "course.late.PerDayPenalty"
c.PerDayPenalty.percent_per_day = 10.0

# formgrader's "Autograde" button would run stock nbgrader (student code unsandboxed, with
# the grader's rights): it is refused with a message; grade with `python -m course autograde`.
c.Autograde.sanitize_preprocessors = ["course.formgrader_guard.RefuseStockAutograde"]
