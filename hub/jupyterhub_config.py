"""JupyterHub for the course: local Unix accounts, nbgrader's exchange and extensions.

Run it as root from the repository (the README's "Running the course on a JupyterHub"):

    .venv/bin/jupyterhub -f hub/jupyterhub_config.py

* Accounts: the machine's Unix users, logged in with their password (PAM); each user's
  Jupyter server runs as that user (``LocalProcessSpawner``), in their home folder.
  ``COURSE_HUB_INSTRUCTORS`` (comma-separated user names) are the hub's admins;
  ``COURSE_HUB_STUDENTS`` (comma-separated) and the instructors are the only users allowed
  to log in (neither set: any local account with a password may log in).
* The exchange and the course id come from the course's ``nbgrader_config.py`` (the one
  place they are written down; ``COURSE_EXCHANGE`` overrides the exchange there, as for
  ``python -m course``). Every server gets them (``hub/exchange_config``), so students'
  Assignments tab and ``nbgrader fetch_assignment / submit / fetch_feedback`` use that
  exchange; students' servers also have nbgrader's formgrader switched off
  (``hub/student_config``). Instructors grade with ``python -m course`` (see the README).
* The proxy is configurable-http-proxy from npm, pinned in ``hub/package.json`` and
  installed into ``hub/node_modules`` by ``make hub``.
* Where: ``COURSE_HUB_URL`` (default ``http://127.0.0.1:8000``; put a TLS-terminating
  reverse proxy in front for real use), the hub's API on ``COURSE_HUB_API_URL`` (default
  ``http://127.0.0.1:8081``), the proxy's API on ``COURSE_HUB_PROXY_API_URL`` (default
  ``http://127.0.0.1:8001``); the hub's database and cookie secret in ``COURSE_HUB_STATE``
  (default ``/srv/jupyterhub``).
* The users' servers run ``COURSE_HUB_USER_PYTHON -m jupyterhub.singleuser`` (default: this
  Python). Users must be able to execute it; when this Python lives where they cannot (a
  pyenv build under ``/root``, say), name a system Python of the same version
  (``/usr/bin/python3.11``): it then runs the environment's packages (``PYTHONPATH``).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

c = get_config()  # noqa: F821 - provided by JupyterHub's config loader

HUB = Path(__file__).resolve().parent
COURSE_ROOT = Path(os.environ.get("COURSE_ROOT", HUB.parent))
_course = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_ROOT)).load_config()
COURSE_ID = _course.CourseDirectory.course_id
EXCHANGE = _course.Exchange.root
STATE = Path(os.environ.get("COURSE_HUB_STATE", "/srv/jupyterhub"))


def _names(variable: str) -> set[str]:
    return {n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()}


# Where the hub listens.
c.JupyterHub.bind_url = os.environ.get("COURSE_HUB_URL", "http://127.0.0.1:8000")
c.JupyterHub.hub_bind_url = os.environ.get("COURSE_HUB_API_URL", "http://127.0.0.1:8081")
c.ConfigurableHTTPProxy.api_url = os.environ.get("COURSE_HUB_PROXY_API_URL", "http://127.0.0.1:8001")
c.ConfigurableHTTPProxy.command = [str(HUB / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")

# Who may log in: local accounts.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.admin_users = _names("COURSE_HUB_INSTRUCTORS")
_allowed = _names("COURSE_HUB_STUDENTS") | _names("COURSE_HUB_INSTRUCTORS")
if _allowed:
    c.Authenticator.allowed_users = _allowed
else:
    c.Authenticator.allow_all = True

# Each user's server: their own Unix account, their home folder, the course's exchange.
c.JupyterHub.spawner_class = "localprocess"
USER_PYTHON = os.environ.get("COURSE_HUB_USER_PYTHON", sys.executable)
c.Spawner.cmd = [USER_PYTHON, "-m", "jupyterhub.singleuser"]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

_environment: dict[str, str] = {"COURSE_ID": COURSE_ID, "COURSE_EXCHANGE": EXCHANGE}
_environment_config: list[str] = []
if USER_PYTHON != sys.executable:
    # Another interpreter: this environment's packages, and its Jupyter configuration (which
    # enables nbgrader's server extensions) and data (JupyterLab's extensions).
    _environment["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    _environment["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    _environment_config.append(str(Path(sys.prefix) / "etc" / "jupyter"))


def _config_path(spawner) -> str:
    """Everyone gets the exchange's settings; students also lose nbgrader's formgrader."""
    paths = [str(HUB / "exchange_config"), *_environment_config]
    if spawner.user.name not in _names("COURSE_HUB_INSTRUCTORS"):
        paths.insert(0, str(HUB / "student_config"))
    return os.pathsep.join(paths)


c.Spawner.environment = {**_environment, "JUPYTER_CONFIG_PATH": _config_path}
