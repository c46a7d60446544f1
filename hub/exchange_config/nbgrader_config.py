"""nbgrader's configuration for the hub users' Jupyter servers: which course, which exchange.

hub/jupyterhub_config.py puts this folder on every single-user server's JUPYTER_CONFIG_PATH
and sets COURSE_ID and COURSE_EXCHANGE from the course's own nbgrader_config.py (the one
place they are written down), so students' `nbgrader fetch_assignment`, `submit`, `list` and
`fetch_feedback` (and the Assignments tab) use the instructor's exchange. Outside the hub, a
student can use it the same way:

    JUPYTER_CONFIG_PATH=hub/exchange_config COURSE_ID=... COURSE_EXCHANGE=... nbgrader list
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader's config loader

if os.environ.get("COURSE_ID"):
    c.CourseDirectory.course_id = os.environ["COURSE_ID"]
if os.environ.get("COURSE_EXCHANGE"):
    c.Exchange.root = os.environ["COURSE_EXCHANGE"]
