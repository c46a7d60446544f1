"""Figures and animations for the chapters, drawn from conv_lib's own computations.

All figures use :func:`use_course_style`: explicit white figure and axes backgrounds, so
figures stay readable on the website's dark theme too.
"""

from __future__ import annotations

import matplotlib as mpl

__all__ = ["use_course_style"]

COURSE_STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 11,
    "image.cmap": "gray",
    "animation.html": "jshtml",
    "animation.embed_limit": 20.0,
}


def use_course_style() -> None:
    """Apply the course's matplotlib settings (call once at the top of a chapter)."""
    mpl.rcParams.update(COURSE_STYLE)
