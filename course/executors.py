"""Where submissions are graded: a local pool of processes, or a Dask cluster.

Both run :func:`course.grader.grade_one` (one submission: its sandbox, the instructor's
tests, the graded notebook) somewhere else and hand each result to ``finish(k, result,
reason)`` in the coordinating process, which alone writes the gradebook. So both give the
same grades; they differ only in where ``grade_one`` runs and how a failure is seen:

* :func:`run_local`: a ``ProcessPoolExecutor`` of spawned processes that die with the
  grader. A pool whose worker dies breaks with every submission it held; those are graded
  again, each in a pool of its own, so a worker that dies again costs only its submission.
* :func:`run_cluster`: Dask's distributed scheduler (``tcp://host:8786``, or ``local:N`` for
  a local cluster of N worker processes). A worker that dies mid-grade has its task run
  again elsewhere by the scheduler (up to ``distributed.scheduler.allowed-failures``
  times); a task running longer than ``task_seconds`` is cancelled; a lost scheduler ends
  the run. Every submission affected is reported as not graded, never scored.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

Finish = Callable[[int, "dict | None", str], None]

#: Address space of a local grading worker (the grader's code, NumPy, one submission's answers).
WORKER_MEMORY_BYTES = 4 * 2**30


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _die_with_parent() -> None:
    """Pool initializer: the worker (and, through bubblewrap's --die-with-parent, its sandbox)
    is killed by the kernel as soon as the grader dies, even by ``kill -9``."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the grader died before the line above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grader's to handle
    # A worker decodes and judges one student's answers: cap its memory, so that an answer
    # built to blow up in the checks raises MemoryError in that submission's test instead of
    # waking the kernel's OOM killer (which may pick any process of the machine).
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))


def _outcome(fut: Any) -> tuple[dict | None, str]:
    """(result, "") or (None, why not graded) of a finished future."""
    from course.grader import GradingMachineryError, clean

    try:
        return fut.result(), ""
    except GradingMachineryError as err:
        return None, str(err)
    except Exception as err:  # noqa: BLE001 - confined to this submission
        return None, f"the grader failed on it ({type(err).__name__}: {clean(str(err))[:300]})"


def run_local(jobs: Sequence[Any], labels: Sequence[str], finish: Finish, bar: Any, width: int) -> None:
    """Grade ``jobs`` in local worker processes, ``width`` at a time."""
    from course.grader import grade_one

    ctx = multiprocessing.get_context("spawn")

    def run_pool(group: list[int], last: bool) -> list[int]:
        """Grade ``group`` in one pool; return what a broken pool left ungraded (or, if
        ``last``, report it as not graded)."""
        broken: list[int] = []
        with cf.ProcessPoolExecutor(
            max_workers=min(width, len(group)), mp_context=ctx, initializer=_die_with_parent
        ) as pool:
            running: dict[cf.Future, int] = {}
            queue = list(group)
            while queue or running:
                while queue and len(running) < width:
                    try:
                        fut = pool.submit(grade_one, jobs[queue[0]])
                    except cf.process.BrokenProcessPool:
                        break
                    k = queue.pop(0)
                    running[fut] = k
                    bar.start(labels[k])
                if not running:  # the pool is broken: nothing more can be submitted to it
                    broken += queue
                    queue = []
                    break
                done, _ = cf.wait(running, timeout=1.0, return_when=cf.FIRST_COMPLETED)
                bar.tick()
                for fut in done:
                    k = running.pop(fut)
                    if isinstance(fut.exception(), cf.process.BrokenProcessPool):
                        bar.running.pop(labels[k], None)
                        if last:
                            finish(k, None, f"a grading worker process died ({fut.exception()})")
                        else:
                            broken.append(k)
                        continue
                    result, why = _outcome(fut)
                    finish(k, result, why)
        return broken

    for k in run_pool(list(range(len(jobs))), last=False):
        run_pool([k], last=True)


def connect(address: str) -> tuple[Any, Any]:
    """A Dask client for ``address``; returns ``(client, cluster)``.

    Workers receive the release, the tests and the instructor secret, and run code they are
    sent: a cluster anyone can connect to would let any account that reaches it run code as
    the grader. So:

    * ``local:N`` starts N local worker processes behind TLS with a certificate made for this
      run (``Security.temporary()``): only this process holds the key.
    * ``tls://host:port`` connects with the certificates of Dask's configuration
      (``distributed.comm.tls.ca-file``, ``.client.cert``, ``.client.key``, e.g. the environment
      variables ``DASK_DISTRIBUTED__COMM__TLS__CA_FILE``, ...); the scheduler and workers must
      be started with the same CA, so that they refuse clients without a certificate.
    * ``tcp://`` (no encryption, no authentication) is refused, unless the environment sets
      ``COURSE_CLUSTER_INSECURE=1`` for a private network that only the grader can reach.
    """
    from distributed import Client, LocalCluster, Security

    check_address(address)
    if address.startswith("local:"):
        n = int(address.partition(":")[2] or default_jobs())
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            security=Security.temporary(),
        )
        return Client(cluster, security=cluster.security), cluster
    security = Security(require_encryption=True) if address.startswith("tls://") else None
    try:
        return Client(address, timeout="30s", security=security), None
    except (OSError, TimeoutError, ValueError) as err:
        raise SystemExit(f"cluster: cannot reach the Dask scheduler at {address!r} ({err})") from err


def check_address(address: str) -> None:
    """Refuse a cluster address that is unknown, or plain ``tcp://`` (see :func:`connect`)."""
    if not address.startswith(("local:", "tls://", "tcp://")):
        raise SystemExit(f"cluster: got {address!r}; expected local:N, tls://host:port or tcp://host:port")
    if address.startswith("tcp://") and os.environ.get("COURSE_CLUSTER_INSECURE") != "1":
        raise SystemExit(
            f"cluster: refusing {address!r}: a plain tcp:// cluster has no authentication, so anyone "
            "who reaches it can run code as the grader and read the instructor secret. Start the "
            "scheduler and workers with TLS (--tls-ca-file, --tls-cert, --tls-key) and use tls://, with "
            "the grader's certificate in Dask's config (see the README), or set COURSE_CLUSTER_INSECURE=1 "
            "on a private network only the grader can reach."
        )


def run_cluster(
    jobs: Sequence[Any],
    labels: Sequence[str],
    finish: Finish,
    bar: Any,
    address: str,
    task_seconds: float,
) -> None:
    """Grade ``jobs`` on the Dask cluster at ``address``; see the module's docstring."""
    from distributed import wait
    from distributed.client import FutureCancelledError

    from course.grader import grade_one

    client, cluster = connect(address)
    try:
        futures = {
            client.submit(grade_one, job, pure=False, key=f"grade-{k}-{os.urandom(6).hex()}"): k
            for k, job in enumerate(jobs)
        }
        started: dict[str, float] = {}
        pending = dict(futures)
        while pending:
            try:
                done, _ = wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            except Exception as err:  # noqa: BLE001 - the scheduler is gone: lost connection, cancelled futures
                why = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
                for k in pending.values():
                    bar.running.pop(labels[k], None)
                    finish(k, None, f"the connection to the Dask scheduler was lost ({why})")
                return
            try:
                running = {key for keys in client.processing().values() for key in keys}
            except OSError:
                running = set()
            now = time.monotonic()
            for fut, k in list(pending.items()):
                if fut.key in running and fut.key not in started:
                    started[fut.key] = now
                    bar.start(labels[k])
                if fut.key in started and now - started[fut.key] > task_seconds and fut not in done:
                    fut.cancel()
                    del pending[fut]
                    bar.running.pop(labels[k], None)
                    finish(k, None, f"no answer from its cluster worker within {task_seconds:g} s")
            bar.tick()
            for fut in done:
                k = pending.pop(fut, None)
                if k is None:
                    continue
                try:
                    result = fut.result()
                    why = ""
                except FutureCancelledError as err:
                    result, why = None, f"the cluster cancelled it ({err})"
                except Exception as err:  # noqa: BLE001 - KilledWorker, GradingMachineryError, ...
                    if type(err).__name__ == "KilledWorker":
                        result, why = None, f"the cluster workers grading it died ({err})"
                    else:
                        result, why = _outcome(fut)
                if labels[k] not in bar.running:
                    bar.start(labels[k])
                finish(k, result, why)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
