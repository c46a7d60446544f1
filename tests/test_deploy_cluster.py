"""The example files for grading on Slurm and Kubernetes (deploy/cluster/) are consistent.

Neither Slurm nor Kubernetes runs here: the Slurm script is run for real up to the job
script dask-jobqueue would submit (``--dry-run``), and the Kubernetes manifest and the
image's Dockerfile are checked against each other and the project.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "cluster"


def test_slurm_job_script_starts_single_threaded_workers_in_the_course_env(tmp_path):
    from distributed import Security

    sec = Security.temporary()
    pems = {"ca.pem": sec.tls_ca_file, "cert.pem": sec.tls_client_cert, "key.pem": sec.tls_client_key}
    for name, pem in pems.items():
        (tmp_path / name).write_text(pem)
    out = subprocess.run(
        [sys.executable, str(DEPLOY / "slurm.py"), "--dry-run", "--processes", "3", "--account", "cs101",
         "--tls-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert str(tmp_path / "ca.pem") in out
    assert out.startswith("#!/usr/bin/env bash")
    assert "#SBATCH -A cs101" in out and "#SBATCH -n 1" in out and "--cpus-per-task=3" in out
    assert f"source {ROOT / '.venv' / 'bin' / 'activate'}" in out and f"cd {ROOT}" in out
    assert "distributed.cli.dask_worker tls://" in out and "--nworkers 3" in out and "--nthreads 1" in out
    assert "--tls-ca-file" in out and "--tls-key" in out  # the workers refuse peers without a certificate


def test_kubernetes_workers_reach_the_scheduler_service():
    docs = {
        d["kind"] + "/" + d["metadata"]["name"]: d
        for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())
    }
    service = docs["Service/course-dask-scheduler"]
    scheduler = docs["Deployment/course-dask-scheduler"]
    workers = docs["Deployment/course-dask-workers"]
    assert service["spec"]["selector"] == scheduler["spec"]["template"]["metadata"]["labels"]
    port = service["spec"]["ports"][0]["port"]
    sched_cmd = " ".join(scheduler["spec"]["template"]["spec"]["containers"][0]["command"])
    assert f"--port {port}" in sched_cmd and "--protocol tls" in sched_cmd
    command = workers["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["dask", "worker", f"tls://course-dask-scheduler:{port}"]
    for deployment in (scheduler, workers):
        spec = deployment["spec"]["template"]["spec"]
        cmd = spec["containers"][0]["command"]
        assert cmd[cmd.index("--tls-ca-file") + 1] == "/tls/ca.pem"
        assert spec["volumes"][0]["secret"]["secretName"] == "course-dask-tls"
    assert command[command.index("--nthreads") + 1] == "1"
    image = {c["image"] for d in (scheduler, workers) for c in d["spec"]["template"]["spec"]["containers"]}
    assert image == {"conv-course-grader:latest"}
    assert "conv-course-grader:latest" in (DEPLOY / "Dockerfile").read_text()


def test_image_installs_what_a_worker_imports():
    text = (DEPLOY / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package in project["tool"]["setuptools"]["packages"]:
        top = package.split(".")[0]
        assert f"COPY {top} {top}" in text, top
    assert "bubblewrap" in text and '".[grading,cluster]"' in text and "-c requirements.lock" in text
    assert "cluster" in project["project"]["optional-dependencies"]
