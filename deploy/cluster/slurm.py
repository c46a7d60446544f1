"""Grade a class on a Slurm cluster: Dask workers as Slurm jobs, then `course autograde`.

Run on a login node that can submit jobs (``sbatch``) and that reaches the compute nodes,
from the course folder, with the course's environment (``make setup``) on a file system the
compute nodes share::

    .venv/bin/python deploy/cluster/slurm.py --jobs 8 --account cs101 -- 01_convolution_by_hand
    .venv/bin/python deploy/cluster/slurm.py --jobs 8 --dry-run     # print the job script only

The scheduler (in this process), the workers and the grader talk TLS with the certificates of
``--tls-dir`` (make a CA and one certificate, e.g. with openssl, on the shared file system,
key mode 0600): no other account can join the cluster or send it code.

Each Slurm job starts ``--processes`` Dask worker processes (one thread each: one
submission at a time per process); each needs bubblewrap on its node (``apt-get install
bubblewrap``, and unprivileged user namespaces enabled, or run the workers as root). The
coordinator (this process) alone writes the gradebook; the workers receive the release, the
test code and the instructor secret (trusted machines only), never the students' sandboxes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_cluster(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from dask_jobqueue import SLURMCluster
    from distributed import Security

    tls = Path(args.tls_dir).resolve()
    security = Security(
        tls_ca_file=str(tls / "ca.pem"),
        tls_scheduler_cert=str(tls / "cert.pem"),
        tls_scheduler_key=str(tls / "key.pem"),
        tls_worker_cert=str(tls / "cert.pem"),
        tls_worker_key=str(tls / "key.pem"),
        tls_client_cert=str(tls / "cert.pem"),
        tls_client_key=str(tls / "key.pem"),
        require_encryption=True,
    )
    return SLURMCluster(
        protocol="tls://",
        security=security,
        cores=args.processes,
        processes=args.processes,
        memory=f"{4 * args.processes}GB",  # 2 GiB per sandbox and the worker itself
        walltime=args.walltime,
        account=args.account,
        queue=args.partition,
        job_script_prologue=[f"cd {ROOT}", f"source {ROOT / '.venv' / 'bin' / 'activate'}"],
        worker_extra_args=["--nthreads", "1"],
        scheduler_options={"dashboard_address": None},
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=4, help="Slurm jobs (nodes) to start (default: %(default)s)")
    p.add_argument("--processes", type=int, default=4, help="worker processes per job (default: %(default)s)")
    p.add_argument("--walltime", default="02:00:00")
    p.add_argument("--account")
    p.add_argument("--partition")
    p.add_argument(
        "--tls-dir",
        default=str(ROOT / "grading" / "cluster-tls"),
        help="ca.pem, cert.pem, key.pem (mode 0600) on a file system the nodes share; the workers accept "
        "only peers with a certificate of this CA (default: %(default)s)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the Slurm job script and stop")
    p.add_argument("autograde_args", nargs="*", help="passed to `course autograde` (after --)")
    args = p.parse_args()
    cluster = make_cluster(args)
    try:
        if args.dry_run:
            print(cluster.job_script())
            return 0
        cluster.scale(jobs=args.jobs)
        cmd = [sys.executable, "-m", "course", "autograde", "--cluster", cluster.scheduler_address]
        tls = Path(args.tls_dir).resolve()
        env = dict(
            os.environ,
            DASK_DISTRIBUTED__COMM__TLS__CA_FILE=str(tls / "ca.pem"),
            DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=str(tls / "cert.pem"),
            DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=str(tls / "key.pem"),
        )
        return subprocess.call([*cmd, *args.autograde_args], cwd=ROOT, env=env)
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
