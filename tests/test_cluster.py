"""Grading on a Dask cluster (``course autograde --cluster ADDRESS``), like a real one.

A ``dask scheduler`` and two ``dask worker`` processes run on the loopback as separate
processes. A mixed class (honest, wrong and hostile submissions) graded there gets exactly
the grades of the local process pool. Killing one worker (its whole process group) in the
middle of a run still ends with every submission graded or reported as not graded, never
scored by the dead worker; a run against a scheduler that is gone says so and stores nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_assignments_e2e import course, load_nb, solution_sources, student_notebook  # noqa: E402

from course.sandbox import sandbox_available  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox_available()[0], reason="the grading sandbox (bubblewrap) is unavailable"),
]

A = "01_convolution_by_hand"
NB = "convolution_by_hand.ipynb"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def class_answers() -> dict[str, dict | None]:
    """Honest, wrong and hostile submissions of assignment 1."""
    wrong = {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]}
    answers: dict[str, dict | None] = {f"honest{i}": solution_sources(A) for i in range(4)}
    answers["blank"] = None
    answers["noflip"] = solution_sources(A, wrong)
    crash = solution_sources(A)
    crash["zero_pad"] = crash["zero_pad"].replace(
        "    image = np.asarray(image)\n", "    import os\n    os._exit(3)\n"
    )
    answers["crash"] = crash
    reference = solution_sources(A)
    reference["correlate2d"] = "import scipy.signal\n" + reference["correlate2d"]
    answers["scipy"] = reference
    return answers


def make_course(base: Path) -> Path:
    root = base / "course"
    root.mkdir(parents=True)
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions", root / "solutions")
    shutil.copytree(ROOT / "exercises", root / "exercises")
    course("release", A, root=root)
    released = load_nb(root / "exercises" / A / NB)
    inbox = base / "inbox"
    for student, answers in class_answers().items():
        (inbox / student / A).mkdir(parents=True)
        nb = student_notebook(released, answers)
        (inbox / student / A / NB).write_text(json.dumps(nb), encoding="utf-8")
    course("collect", str(inbox), root=root)
    return root


def grades(root: Path) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
        with Gradebook(f"sqlite:///{root / 'grading' / 'gradebook.db'}") as gb:
            for sub in gb.find_assignment(A).submissions:
                for nb in sub.notebooks:
                    for g in nb.grades:
                        out[(sub.student.id, g.name)] = g.score
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A TLS scheduler and two single-threaded TLS workers, each a process group of its own;
    the coordinator's certificate is in the environment (Dask's configuration)."""
    certs = tmp_path_factory.mktemp("certs")
    sec = subprocess.run(
        [sys.executable, "-c", "from distributed import Security; s = Security.temporary(); "
         "print(s.tls_ca_file + '\\0' + s.tls_client_cert + '\\0' + s.tls_client_key)"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split("\0")  # fmt: skip
    # one self-signed certificate: the CA's and every party's
    (certs / "ca.pem").write_text(sec[0])
    (certs / "cert.pem").write_text(sec[1])
    (certs / "key.pem").write_text(sec[2].strip() + "\n")
    (certs / "key.pem").chmod(0o600)
    tls = ["--tls-ca-file", str(certs / "ca.pem"), "--tls-cert", str(certs / "cert.pem"),
           "--tls-key", str(certs / "key.pem")]  # fmt: skip
    port = free_port()
    address = f"tls://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    procs = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--protocol", "tls",
             "--no-dashboard", *tls],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    time.sleep(2)
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                 "--host", "127.0.0.1", *tls],
                env=env, cwd=ROOT, start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    client_env = {
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(certs / "ca.pem"),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(certs / "cert.pem"),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(certs / "key.pem"),
    }
    # Wait for the workers from another process: a Dask client in this one would leave an
    # asyncio loop behind, which Playwright's sync API (the browser tests) refuses to run beside.
    wait = (
        "import sys\nfrom distributed import Client\n"
        "Client(sys.argv[1], timeout=30).wait_for_workers(2, timeout=60)"
    )
    subprocess.run([sys.executable, "-c", wait, address], env=dict(os.environ, **client_env), check=True,
                   timeout=120)  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for k, v in client_env.items():
            mp.setenv(k, v)
        yield {"address": address, "workers": procs[1:], "scheduler": procs[0], "port": port}
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def test_only_a_client_with_the_course_certificate_gets_in(cluster, tmp_path):
    outsider_env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_DISTRIBUTED__COMM__TLS")}
    probe = (
        "import sys\nfrom distributed import Client\n"
        "try:\n    c = Client(sys.argv[1], timeout=10)\n    print('IN', c.run(lambda: 1))\n"
        "except Exception as e:\n    print('REFUSED', type(e).__name__)\n"
    )
    for addr in (cluster["address"], f"tcp://127.0.0.1:{cluster['port']}"):
        out = subprocess.run([sys.executable, "-c", probe, addr], env=outsider_env, capture_output=True,
                             text=True, timeout=120).stdout  # fmt: skip
        assert out.startswith("REFUSED"), (addr, out)
    grader = (
        "import sys\nfrom distributed import Client\n"
        "print('IN', len(Client(sys.argv[1], timeout=20).run(lambda: 1)))\n"
    )
    out = subprocess.run([sys.executable, "-c", grader, cluster["address"]], capture_output=True, text=True,
                         timeout=120).stdout  # fmt: skip
    assert out.startswith("IN"), out  # the grader's certificate (Dask's config, from the environment)
    refused = course("autograde", A, "--cluster", f"tcp://127.0.0.1:{cluster['port']}",
                     root=make_course(tmp_path / "tcp"), check=False)  # fmt: skip
    assert refused.returncode != 0 and "refusing 'tcp://" in refused.stderr


def test_cluster_grades_equal_the_local_pool(tmp_path, cluster):
    local = make_course(tmp_path / "local")
    remote = make_course(tmp_path / "remote")
    course("autograde", A, root=local)
    out = course("autograde", A, "--cluster", cluster["address"], root=remote)
    assert grades(remote) == grades(local)
    g = grades(remote)
    assert sum(v for (s, _), v in g.items() if s == "honest0") == 20
    assert sum(v for (s, _), v in g.items() if s in ("blank",)) == 0
    assert g[("crash", "test_zero_pad")] == 0 and g[("scipy", "test_correlate2d_valid")] == 0
    assert "NOT GRADED" not in out.stdout


def test_killing_a_worker_mid_run_loses_no_submission(tmp_path, cluster):
    root = make_course(tmp_path / "kill")
    slow = solution_sources(A)
    slow["output_size"] += "\nimport time\ntime.sleep(4)\n"  # each submission takes a few seconds
    released = load_nb(root / "exercises" / A / NB)
    inbox = tmp_path / "kill" / "inbox2"
    for i in range(6):
        (inbox / f"slow{i}" / A).mkdir(parents=True)
        (inbox / f"slow{i}" / A / NB).write_text(json.dumps(student_notebook(released, slow)))
    course("collect", str(inbox), root=root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "course", "--root", str(root), "autograde", A,
         "--cluster", cluster["address"]],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(8)  # both workers are busy by now
    victim = cluster["workers"][0]
    os.killpg(victim.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    students = sorted({s for s, _ in grades(root)})
    reported = [ln for ln in out.splitlines() if A in ln]
    assert len(reported) == len(class_answers()) + 6  # every submission has a line
    not_graded = [ln for ln in reported if "NOT GRADED" in ln]
    graded = [ln.split()[0] for ln in reported if "NOT GRADED" not in ln]
    assert sorted(graded) == students  # a score is stored exactly for those reported graded
    assert all(ln.split()[2] == "20/20" for ln in reported if ln.startswith("slow") and "NOT" not in ln)
    assert proc.returncode == (1 if not_graded else 0)
    # what was not graded is graded by a rerun on the surviving worker
    if not_graded:
        course("autograde", A, "--cluster", cluster["address"], root=root)
        assert len({s for s, _ in grades(root)}) == len(class_answers()) + 6


def test_a_scheduler_that_is_gone_stores_nothing(tmp_path):
    root = make_course(tmp_path / "gone")
    with pytest.MonkeyPatch.context() as mp:  # a trusted private network: plain tcp:// allowed
        mp.setenv("COURSE_CLUSTER_INSECURE", "1")
        proc = course("autograde", A, "--cluster", f"tcp://127.0.0.1:{free_port()}", root=root, check=False)
    assert proc.returncode != 0 and "cannot reach the Dask scheduler" in proc.stderr
    assert not (root / "grading" / "autograded").exists()


def test_a_scheduler_lost_mid_run_stores_nothing_for_what_it_held(tmp_path):
    """The scheduler dies while submissions are being graded: each of them is reported as
    not graded (nothing stored), the command exits 1 and prints how to grade them again."""
    root = make_course(tmp_path / "lost")
    slow = solution_sources(A)
    slow["output_size"] += "\nimport time\ntime.sleep(20)\n"
    released = load_nb(root / "exercises" / A / NB)
    inbox = tmp_path / "lost" / "inbox2"
    (inbox / "slowpoke" / A).mkdir(parents=True)
    (inbox / "slowpoke" / A / NB).write_text(json.dumps(student_notebook(released, slow)))
    course("collect", str(inbox), root=root)
    port = free_port()
    env = dict(os.environ, COURSE_CLUSTER_INSECURE="1")
    procs = [
        subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                          "--no-dashboard"], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    time.sleep(2)
    procs.append(
        subprocess.Popen([str(BIN / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                          "--no-dashboard", "--host", "127.0.0.1"], env=env, cwd=ROOT, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    )  # fmt: skip
    try:
        time.sleep(5)
        grader = subprocess.Popen(
            [sys.executable, "-m", "course", "--root", str(root), "autograde", A,
             "--cluster", f"tcp://127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(12)  # the worker is on its first submissions (slowpoke sleeps 20 s)
        os.killpg(procs[0].pid, signal.SIGKILL)
        out, err = grader.communicate(timeout=300)
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    reported = [ln for ln in out.splitlines() if A in ln]
    lost = [ln.split()[0] for ln in reported if "connection to the Dask scheduler was lost" in ln]
    graded = sorted(ln.split()[0] for ln in reported if "NOT GRADED" not in ln)
    assert "slowpoke" in lost and grader.returncode == 1
    assert len(reported) == len(class_answers()) + 1
    assert sorted({s for s, _ in grades(root)}) == graded  # scores exactly for what was graded
    assert "python -m course autograde 01_convolution_by_hand --student slowpoke" in err
