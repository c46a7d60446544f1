"""Red-team reproducer: the local Dask cluster of ``course autograde --cluster local:N`` has no
authentication, so any local account (a student on the same machine, e.g. the course's
JupyterHub) can run code on its workers as the grader, and read the instructor secret.

Shown by hand (uid 65534, /usr/bin/python3 with the venv's site-packages on PYTHONPATH):
``Client(addr).run(lambda: course.secret.load_secret().hex())`` returned the secret that the
same account could not read from its 0600 file. Asserts the SAFE behaviour: a client without
the cluster's credentials cannot run anything on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

pytest.importorskip("distributed")


SCENARIO = """
import os, sys
sys.path.insert(0, sys.argv[1])
import distributed
from course.executors import connect

client, cluster = connect("local:1")
try:
    outsider = None
    try:
        # What any local user can do: connect to the address (found with `ss -ltn`) and run code.
        outsider = distributed.Client(cluster.scheduler_address, timeout=20)
        ran = outsider.run(os.getuid)
    except Exception:  # refused: the safe behaviour
        ran = None
    finally:
        if outsider is not None:
            outsider.close()
    print("RAN" if ran is not None else "REFUSED", ran)
finally:
    client.close()
    cluster.close()
"""


def test_a_client_without_credentials_cannot_run_code_on_the_local_cluster() -> None:
    # In a process of its own: a Dask client here would leave an asyncio loop behind that
    # Playwright's sync API (the browser tests of the same session) refuses to run beside.
    out = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(ROOT)], capture_output=True, text=True, timeout=300
    )
    assert "REFUSED" in out.stdout, f"an unauthenticated client ran code on the grader's workers: {out}"
