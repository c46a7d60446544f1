"""The course's commands for instructors and students: ``python -m course --help``.

Instructors (one command each, run from anywhere; they change into the course folder
because nbgrader reads ``nbgrader_config.py`` from the current directory)::

    python -m course release            # solutions/ -> exercises/ (student notebooks)
    python -m course collect FOLDER     # FOLDER/<student>/<assignment>/<notebook>.ipynb
    python -m course autograde          # every submission, with a progress bar
    python -m course feedback           # HTML feedback per submission
    python -m course export             # grades to CSV

Students::

    python -m course check exercises/01_convolution_by_hand/convolution_by_hand.ipynb
"""

from course.config import ASSIGNMENTS, DEFAULT_ROOT, notebook_name

__all__ = ["ASSIGNMENTS", "DEFAULT_ROOT", "notebook_name"]
