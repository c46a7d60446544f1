"""Run untrusted student code in a throw-away sandbox.

Stock nbgrader executes a submission with the grader's rights. This module runs each
submission instead in its own `bubblewrap <https://github.com/containers/bubblewrap>`_
sandbox (Debian package ``bubblewrap``), with the user switch done by util-linux's
``setpriv`` and the resource limits set by util-linux's ``prlimit``:

* **Own, unprivileged user.** When the grader is root, the sandboxed process runs as a
  uid of its own (``60000 + slot``, a uid no account and no other running sandbox uses),
  with every capability dropped (effective, permitted, inheritable, ambient and the
  bounding set) and ``no_new_privs`` set. A uid of its own makes ``RLIMIT_NPROC`` (which
  the kernel counts per real uid, machine-wide) a budget of this run alone, and makes the
  kernel's ordinary permission checks apply to it. When the grader is not root, bubblewrap
  creates a user namespace in which the code runs as ``nobody`` (65534) with no
  capabilities; see :func:`sandbox_mode`.
* **Only what it needs, read-only.** The sandbox's root is an empty tmpfs. Into it are
  bound read-only: ``/usr`` (with the ``/bin``, ``/lib*`` and ``/sbin`` links), a handful of
  files from ``/etc`` (dynamic loader cache, alternatives, fonts, time zone), a generated
  ``passwd``/``group``/``hosts``, and the paths the caller lists (typically the venv, the
  Python installation it links to, and the course library). Nothing else of the host is
  visible: not ``/root``, not the repository's ``solutions/``, not the gradebook, not other
  submissions, not ``/sys``, not the host's ``/proc``.
* **A writable work directory** bound at :data:`SANDBOX_WORKDIR` (``/sandbox/work``), and a
  private, size-limited tmpfs ``/tmp``, both gone from the sandbox's view when it ends.
* **No network.** A private network namespace that has only a loopback interface (which
  bubblewrap brings up, so Jupyter kernels can talk ZMQ over 127.0.0.1 inside it).
* **Private PID, IPC and UTS namespaces**, a new session (no ``TIOCSTI`` into the grader's
  terminal), and a seccomp filter (:func:`_seccomp_program`) that refuses the system calls
  a grading job never needs and that widen the kernel's attack surface (creating
  namespaces, ``ptrace``, ``bpf``, ``keyctl``, ``io_uring``, ``perf_event_open``, ...).
* **Limits.** Address space, CPU seconds, processes/threads, file size, open files and no
  core dumps (``prlimit``), a size for ``/tmp``, and a wall-clock limit the grader
  enforces. Output is read incrementally through pipes and capped.
* **Nothing survives.** The sandbox's PID 1 is bubblewrap's reaper; when it dies (because
  the command finished, or the grader killed it, or the grader itself died:
  ``--die-with-parent``) the kernel kills every process left in the PID namespace,
  daemons that double-forked and called ``setsid`` included.

Every way a run can end gives a :class:`SandboxResult`; :func:`run_sandboxed` never
hangs past the wall-clock limit (plus a few seconds to reap). When the sandbox cannot be
created on a machine, :func:`run_sandboxed` raises :class:`SandboxUnavailableError`
saying why, unless the caller passes ``allow_unsandboxed=True``.

After a run the grader reads results out of the work directory. Everything there was
written by the student's code, so open it with :func:`read_result_file`, which refuses
symbolic links (at any path component), non-regular files and oversized files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import pwd
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "SANDBOX_WORKDIR",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailableError",
    "UnsafeResultError",
    "execute_notebook_sandboxed",
    "python_readonly_paths",
    "read_result_file",
    "run_sandboxed",
    "sandbox_available",
    "sandbox_mode",
]

#: Where the work directory appears inside the sandbox (also the working directory).
SANDBOX_WORKDIR = PurePosixPath("/sandbox/work")

#: First uid handed to sandboxes when the grader is root; slot ``n`` runs as ``UID_BASE + n``.
UID_BASE = 60000
#: Number of uids (so of sandboxes that can run at once on one machine).
UID_SLOTS = 1000

#: Marker appended to a captured stream that hit :attr:`SandboxLimits.max_output_bytes`.
TRUNCATION_MARKER = "\n[... output truncated: the sandbox's output limit of {limit} bytes was reached ...]\n"

_GiB = 1 << 30
_MiB = 1 << 20

# Files of /etc the sandbox may see (those that exist are bound read-only).
_ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "timezone",
    "fonts",
    "mime.types",
    "nsswitch.conf",
)
# Top-level links or directories of a merged-/usr Debian (bound or re-created as links).
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Paths a caller may not bind: they would expose the whole host or clash with the layout.
_FORBIDDEN_BINDS = ("/", "/proc", "/dev", "/sys", "/tmp", "/sandbox", "/etc", "/usr")

_KILL_GRACE_SECONDS = 5.0
# Successful availability probes, by (bwrap path, mode): a probe costs a sandbox start.
_AVAILABLE: dict[tuple[str, str], str] = {}


class SandboxUnavailableError(RuntimeError):
    """The sandbox cannot be created on this machine (and unsandboxed runs were not allowed)."""


class UnsafeResultError(OSError):
    """A result file in a work directory is a symlink, not a regular file, or too large."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed run.

    Parameters
    ----------
    memory_bytes
        Address-space limit (``RLIMIT_AS``) of each process. Allocations beyond it fail
        (Python raises ``MemoryError``). It is per process: see the module's README on
        why this is not a limit on the sum over processes.
    cpu_seconds
        CPU-time limit (``RLIMIT_CPU``) of each process; at it the process gets
        ``SIGXCPU``, two seconds later ``SIGKILL``.
    wall_seconds
        Wall-clock limit of the whole run, enforced by the grader, which then kills the
        sandbox's PID namespace.
    max_processes
        ``RLIMIT_NPROC``: processes *and threads* the sandbox's uid may have at once.
    max_file_bytes
        ``RLIMIT_FSIZE``: largest file any process may write.
    max_output_bytes
        Largest stdout and largest stderr kept; a run that writes more to either is killed
        and reported with ``killed_reason == "output limit"``.
    tmp_bytes
        Size of the private ``/tmp`` (a tmpfs, so it is memory).
    max_open_files
        ``RLIMIT_NOFILE``.
    total_memory_bytes
        Memory (resident, swap, ``/tmp`` pages and page cache) of all the sandbox's
        processes together, enforced by a memory cgroup *when the grader can create one*
        (root with cgroup v1, or a cgroup v2 with the memory controller delegated); past it
        the kernel's OOM killer kills a process of the sandbox. See
        ``SandboxResult.memory_cgroup``.
    """

    memory_bytes: int = 2 * _GiB
    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    max_processes: int = 64
    max_file_bytes: int = 64 * _MiB
    max_output_bytes: int = 1 * _MiB
    tmp_bytes: int = 256 * _MiB
    max_open_files: int = 1024
    total_memory_bytes: int = 3 * _GiB

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class SandboxResult:
    """How one sandboxed run ended.

    Attributes
    ----------
    returncode
        Exit status as bubblewrap reports it: the command's exit code, or ``128 + N`` when
        the command was killed by signal ``N``; ``-9`` when the grader killed the sandbox
        (wall time, output limit).
    stdout, stderr
        Captured output, decoded as UTF-8 (undecodable bytes replaced), each cut at
        ``max_output_bytes`` with :data:`TRUNCATION_MARKER` appended when cut.
    timed_out
        The wall-clock limit was reached and the sandbox was killed.
    killed_reason
        ``None`` for an ordinary exit, else one of ``"wall time"``, ``"output limit"``,
        ``"cpu time"``, ``"file size"``, ``"memory"`` or ``"signal N"``. ``"memory"`` is
        inferred from a ``MemoryError``/``Cannot allocate memory`` in stderr of a failed
        run; ``"signal 9"`` may also be the kernel's OOM killer or the CPU hard limit.
    duration
        Wall-clock seconds from start to reaping.
    sandboxed
        False only for a run made with ``allow_unsandboxed=True`` on a machine without a
        working sandbox.
    uid
        The uid the code ran as (host view).
    stdout_truncated, stderr_truncated
        Whether the stream was cut.
    memory_cgroup
        Whether ``total_memory_bytes`` was enforced by a memory cgroup (else only the
        per-process ``RLIMIT_AS`` bounded memory).
    """

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None
    duration: float
    sandboxed: bool = True
    uid: int | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    memory_cgroup: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0 and was not killed."""
        return self.returncode == 0 and self.killed_reason is None


@dataclass
class _Capture:
    limit: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    truncated: bool = False

    def add(self, data: bytes) -> None:
        room = self.limit - self.size
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        self.chunks.append(data)
        self.size += len(data)

    def text(self) -> str:
        out = b"".join(self.chunks).decode("utf-8", errors="replace")
        if self.truncated:
            out += TRUNCATION_MARKER.format(limit=self.limit)
        return out


# --------------------------------------------------------------------------- availability


def sandbox_mode() -> str:
    """How the sandbox drops privileges on this machine.

    Returns
    -------
    str
        ``"root"`` when the grader runs as root: no user namespace; ``setpriv`` switches to
        a uid of the run's own and drops every capability (strongest mode). ``"userns"``
        otherwise: bubblewrap makes an unprivileged user namespace and runs the code as
        ``nobody`` inside it; the code's processes then belong to the grader's own uid on
        the host (so ``RLIMIT_NPROC`` is shared with the grader's other processes).
    """
    return "root" if os.geteuid() == 0 else "userns"


def _find_tool(name: str, explicit: str | os.PathLike[str] | None = None) -> str | None:
    if explicit is not None:
        path = Path(explicit)
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


def sandbox_available(bwrap: str | os.PathLike[str] | None = None) -> tuple[bool, str]:
    """Check that a sandbox can really be created here.

    Looks for ``bwrap`` (and, in root mode, ``setpriv``; always ``prlimit``) and then creates
    a real sandbox with the same options :func:`run_sandboxed` uses, running ``true`` in it.

    Parameters
    ----------
    bwrap
        Path of the bubblewrap binary; default: ``bwrap`` on ``PATH``.

    Returns
    -------
    tuple of (bool, str)
        Whether it works, and a one-line reason (what was found, or what is missing and how
        to fix it).
    """
    exe = _find_tool("bwrap", bwrap)
    if exe is not None and (exe, sandbox_mode()) in _AVAILABLE:
        return True, _AVAILABLE[(exe, sandbox_mode())]
    if exe is None:
        where = f"at {bwrap}" if bwrap is not None else "on PATH"
        return False, f"bubblewrap (bwrap) not found {where}; install it with `apt-get install -y bubblewrap`"
    for tool in ("prlimit", "setpriv") if sandbox_mode() == "root" else ("prlimit",):
        if shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin") is None:
            return False, f"{tool} (util-linux) not found; install it with `apt-get install -y util-linux`"
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as tmp:
        try:
            result = _run_bwrap(
                exe, ["true"], workdir=Path(tmp), readonly=(), limits=SandboxLimits(wall_seconds=20), env=None
            )
        except OSError as exc:
            return False, f"could not start bubblewrap ({exe}): {exc}"
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        return False, f"bubblewrap ({exe}) cannot create the sandbox's namespaces here: {detail}"
    reason = f"bubblewrap sandbox works ({exe}, mode {sandbox_mode()})"
    _AVAILABLE[(exe, sandbox_mode())] = reason
    return True, reason


# --------------------------------------------------------------------------- helpers


def python_readonly_paths(python: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories a Python interpreter needs inside the sandbox.

    Parameters
    ----------
    python
        Interpreter whose installation to expose; default: the running one
        (``sys.executable``). For a venv this is the venv's prefix *and* the base
        installation its ``python`` links to (e.g. ``/root/.pyenv/versions/3.11.7``).

    Returns
    -------
    list of Path
        Directories to pass in ``readonly=``.
    """
    if python is None or Path(python) == Path(sys.executable):
        candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    else:
        out = subprocess.run(
            [
                str(python),
                "-c",
                "import sys; print(sys.prefix); print(sys.base_prefix); print(sys.exec_prefix);"
                " print(sys.base_exec_prefix)",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        candidates = out.stdout.split()
    paths: list[Path] = []
    for cand in candidates:
        for p in (Path(cand), Path(cand).resolve()):
            if p not in paths and p.is_dir():
                paths.append(p)
    return paths


def _default_env(extra: Mapping[str, str] | None, readonly: Sequence[Path]) -> dict[str, str]:
    path = ["/usr/local/bin", "/usr/bin", "/bin"]
    for p in readonly:
        if (p / "bin").is_dir() and (p / "pyvenv.cfg").is_file():
            path.insert(0, str(p / "bin"))
    env = {
        "PATH": ":".join(path),
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter/runtime",
        "JUPYTER_DATA_DIR": "/tmp/jupyter/data",
        "JUPYTER_CONFIG_DIR": "/tmp/jupyter/config",
        "IPYTHONDIR": "/tmp/ipython",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "XDG_CONFIG_HOME": "/tmp/.config",
        # BLAS/OpenMP threads count against RLIMIT_NPROC and the CPU budget: keep them at one.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if extra:
        env.update(extra)
    return env


def _uid_in_use(uid: int) -> bool:
    """True if an account has this uid or any process runs with it (real/effective/saved)."""
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        pass
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"Uid:"):
                        if str(uid).encode() in line.split()[1:]:
                            return True
                        break
        except OSError:
            continue
    return False


def _lock_dir() -> Path:
    candidates = [os.environ.get("COURSE_SANDBOX_LOCK_DIR"), "/run/course-sandbox"]
    candidates.append(os.path.join(tempfile.gettempdir(), f"course-sandbox-locks-{os.geteuid()}"))
    for cand in candidates:
        if not cand:
            continue
        path = Path(cand)
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            return path
        except OSError:
            continue
    raise SandboxUnavailableError("no directory for the sandbox's uid locks")  # pragma: no cover


@contextlib.contextmanager
def _lease_uid() -> Iterator[int]:
    """Hold an exclusive lock on a free sandbox uid for the duration of a run."""
    lock_dir = _lock_dir()
    for slot in range(UID_SLOTS):
        uid = UID_BASE + slot
        fd = os.open(lock_dir / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if _uid_in_use(uid):
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)
        return
    raise SandboxUnavailableError(f"all {UID_SLOTS} sandbox uids from {UID_BASE} are in use")


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give the sandbox's uid the work directory (never following symlinks)."""
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def _check_binds(readonly: Sequence[os.PathLike[str] | str]) -> list[Path]:
    paths: list[Path] = []
    for raw in readonly:
        p = Path(raw)
        if not p.is_absolute():
            raise ValueError(f"read-only path must be absolute: {raw}")
        p = Path(os.path.normpath(p))
        if str(p) in _FORBIDDEN_BINDS or str(SANDBOX_WORKDIR).startswith(str(p) + "/"):
            raise ValueError(f"refusing to bind {p} into the sandbox (would expose or hide too much)")
        if not p.exists():
            raise FileNotFoundError(f"read-only path does not exist: {p}")
        for q in (p, p.resolve()):
            if q not in paths:
                paths.append(q)
    return sorted(paths, key=lambda q: (len(q.parts), str(q)))


def _etc_files(tmp: Path, uid: int) -> list[tuple[Path, str]]:
    """Generated passwd/group/hosts for the sandbox, so getpwuid() etc. work."""
    files = {
        "passwd": (
            "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
            f"sandbox:x:{uid}:{uid}:sandbox:/tmp:/usr/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "group": f"root:x:0:\nsandbox:x:{uid}:\nnogroup:x:65534:\n",
        "hosts": "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    }
    out = []
    for name, text in files.items():
        path = tmp / name
        path.write_text(text)
        path.chmod(0o644)
        out.append((path, f"/etc/{name}"))
    return out


# --------------------------------------------------------------------------- seccomp

# Syscall numbers per architecture for the deny list (name -> number).
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "ptrace": 101, "unshare": 272, "setns": 308, "mount": 165, "umount2": 166,
        "pivot_root": 155, "chroot": 161, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "fsopen": 430, "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428,
        "mount_setattr": 442, "process_vm_readv": 310, "process_vm_writev": 311,
        "acct": 163, "swapon": 167, "swapoff": 168, "reboot": 169, "syslog": 103,
        "personality": 135, "clone": 56, "clone3": 435, "ioctl": 16,
    },
    "aarch64": {
        "ptrace": 117, "unshare": 97, "setns": 268, "mount": 40, "umount2": 39,
        "pivot_root": 41, "chroot": 51, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "fsopen": 430, "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428,
        "mount_setattr": 442, "process_vm_readv": 270, "process_vm_writev": 271,
        "acct": 89, "swapon": 224, "swapoff": 225, "reboot": 142, "syslog": 116,
        "personality": 92, "clone": 220, "clone3": 435, "ioctl": 29,
    },
}  # fmt: skip
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Denied outright (EPERM).
_DENY = (
    "ptrace", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "bpf",
    "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at", "fsopen",
    "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "process_vm_readv",
    "process_vm_writev", "acct", "swapon", "swapoff", "reboot", "syslog",
)  # fmt: skip
_CLONE_NS_FLAGS = 0x10000000 | 0x20000000 | 0x40000000 | 0x04000000 | 0x08000000 | 0x00020000 | 0x02000000
# CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWCGROUP
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C


def _seccomp_program() -> bytes | None:
    """A classic-BPF seccomp filter (for ``bwrap --seccomp``), or None on an unknown arch.

    Allows everything except: the syscalls in ``_DENY`` (``EPERM``), ``clone`` with any
    namespace flag (``EPERM``), ``clone3`` (``ENOSYS``, so libc falls back to ``clone``,
    whose flags the filter can see), ``ioctl(TIOCSTI/TIOCLINUX)`` (``EPERM``), and any
    syscall of a foreign ABI (x32 / 32-bit compat: ``KILL``).
    """
    arch = os.uname().machine
    if arch not in _SYSCALLS:
        return None
    nr = _SYSCALLS[arch]
    # struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }
    ld_w_abs, jeq_k, jset_k, ret_k, alu_and_k = 0x20, 0x15, 0x45, 0x06, 0x54
    allow, kill = 0x7FFF0000, 0x80000000  # SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS  # SECCOMP_RET_ERRNO
    prog: list[tuple[int, int, int, int]] = []

    def ins(code: int, jt: int, jf: int, k: int) -> None:
        prog.append((code, jt, jf, k))

    # seccomp_data: nr @0, arch @4, args[i] @16 + 8 i (low 32 bits first on little endian).
    ins(ld_w_abs, 0, 0, 4)
    ins(jeq_k, 1, 0, _AUDIT_ARCH[arch])
    ins(ret_k, 0, 0, kill)
    ins(ld_w_abs, 0, 0, 0)
    if arch == "x86_64":  # x32 ABI syscalls have bit 30 set
        ins(jset_k, 0, 1, 0x40000000)
        ins(ret_k, 0, 0, kill)
    for name in _DENY:
        ins(jeq_k, 0, 1, nr[name])
        ins(ret_k, 0, 0, eperm)
    ins(jeq_k, 0, 1, nr["clone3"])
    ins(ret_k, 0, 0, enosys)
    # clone: flags are args[0] on both x86_64 and aarch64.
    ins(jeq_k, 0, 4, nr["clone"])
    ins(ld_w_abs, 0, 0, 16)
    ins(jset_k, 0, 1, _CLONE_NS_FLAGS)
    ins(ret_k, 0, 0, eperm)
    ins(ret_k, 0, 0, allow)
    # ioctl: request is args[1]; compare its low 32 bits.
    ins(jeq_k, 0, 5, nr["ioctl"])
    ins(ld_w_abs, 0, 0, 24)
    ins(alu_and_k, 0, 0, 0xFFFFFFFF)
    ins(jeq_k, 1, 0, _TIOCSTI)
    ins(jeq_k, 0, 1, _TIOCLINUX)
    ins(ret_k, 0, 0, eperm)
    ins(ret_k, 0, 0, allow)
    return b"".join(struct.pack("=HBBI", *i) for i in prog)


# --------------------------------------------------------------------------- memory cgroup


class _MemoryCgroup:
    """Best effort: a child memory cgroup of the grader's own, capping the sandbox's total.

    cgroup v1 (``memory.limit_in_bytes``) and v2 (``memory.max``, needs the memory
    controller enabled in the grader's cgroup's ``cgroup.subtree_control``). :meth:`create`
    returns None when neither can be set up; the run then goes on with rlimits only.
    """

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    @classmethod
    def create(cls, name: str, limit: int) -> _MemoryCgroup | None:
        try:
            found = cls._locate()
            if found is None:
                return None
            parent, version = found
            path = parent / name
            path.mkdir()
        except OSError:
            return None
        group = cls(path, version)
        try:
            if version == 1:
                (path / "memory.limit_in_bytes").write_text(str(limit))
                with contextlib.suppress(OSError):  # no swap accounting: nothing to cap
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
            else:
                (path / "memory.max").write_text(str(limit))
                with contextlib.suppress(OSError):
                    (path / "memory.swap.max").write_text("0")
        except OSError:
            group.destroy()
            return None
        return group

    @staticmethod
    def _locate() -> tuple[Path, int] | None:
        """The grader's own memory cgroup directory and the cgroup version, if writable."""
        v1_mount = v2_mount = None
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3].split(",")
            if fstype == "cgroup" and "memory" in options:
                v1_mount = Path(fields[4])
            elif fstype == "cgroup2" and v2_mount is None:
                v2_mount = Path(fields[4])
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            rel_path = rel.lstrip("/")
            if v1_mount is not None and "memory" in controllers.split(","):
                candidate = v1_mount / rel_path
                if os.access(candidate, os.W_OK):
                    return candidate, 1
            if v2_mount is not None and controllers == "" and v1_mount is None:
                candidate = v2_mount / rel_path
                subtree = (candidate / "cgroup.subtree_control").read_text().split()
                if "memory" in subtree and os.access(candidate, os.W_OK):
                    return candidate, 2
        return None

    def join_self(self) -> None:
        """Move the calling process in (used between fork and exec of bubblewrap)."""
        with open(self.path / "cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def destroy(self) -> None:
        for _ in range(40):  # the PID namespace's last processes may still be exiting
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.025)


# --------------------------------------------------------------------------- running


def _bwrap_argv(
    bwrap: str,
    argv: Sequence[str],
    *,
    workdir: Path | None,
    readonly: Sequence[Path],
    limits: SandboxLimits,
    uid: int | None,
    etc_files: Sequence[tuple[Path, str]],
    seccomp_fd: int | None,
    mounts: Sequence[tuple[str, str, str]] = (),
) -> list[str]:
    """bubblewrap's command line. ``workdir=None``: the work directory is a private tmpfs of
    ``limits.tmp_bytes`` (nothing written there reaches the host's disk). ``mounts``:
    ``("ro", host, dest)`` binds a host path read-only at ``dest``; ``("tmpfs", "", dest)``
    hides ``dest`` (e.g. a ``site-packages`` inside a bound Python) under an empty tmpfs."""
    cmd = [
        bwrap,
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "sandbox",
        "--die-with-parent", "--new-session",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    if uid is None:  # userns mode
        cmd += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns", "--cap-drop", "ALL"]
    for name in _ROOT_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            cmd += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            cmd += ["--ro-bind", str(host), str(host)]
    cmd += ["--perms", "0755", "--dir", "/etc"]
    for name in _ETC_FILES:
        host = Path("/etc") / name
        if host.exists():
            cmd += ["--ro-bind", str(host), str(host)]
    for src, dest in etc_files:
        cmd += ["--ro-bind", str(src), dest]
    # The private /tmp (and /dev, /proc) come before the caller's read-only binds, so that a
    # bind below /tmp (a checkout or venv under /tmp) is mounted on top of the tmpfs rather
    # than hidden by it.
    cmd += [
        "--dev", "/dev",
        "--proc", "/proc",
        "--size", str(limits.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp",
    ]  # fmt: skip
    made: set[str] = {"/", "/usr", "/etc", "/dev", "/proc", "/tmp"}
    bound: list[Path] = []
    for path in readonly:
        for parent in reversed(path.parents):
            inside_bind = any(parent == b or b in parent.parents for b in bound)
            if str(parent) not in made and not inside_bind:
                cmd += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        cmd += ["--ro-bind", str(path), str(path)]
        bound.append(path)
    for kind, src, dest in mounts:
        for parent in reversed(PurePosixPath(dest).parents):
            if str(parent) not in made and not any(Path(str(parent)) == b or b in Path(str(parent)).parents
                                                   for b in bound):
                cmd += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        if kind == "ro":
            cmd += ["--ro-bind", src, dest]
        elif kind == "tmpfs":
            cmd += ["--size", "1048576", "--perms", "0555", "--tmpfs", dest]
        else:
            raise ValueError(f"mounts: got kind {kind!r}; expected 'ro' or 'tmpfs'")
    if str(SANDBOX_WORKDIR.parent) not in made:
        cmd += ["--perms", "0755", "--dir", str(SANDBOX_WORKDIR.parent)]
    if workdir is None:
        cmd += ["--size", str(limits.tmp_bytes), "--perms", "0777", "--tmpfs", str(SANDBOX_WORKDIR)]
    else:
        cmd += ["--bind", str(workdir), str(SANDBOX_WORKDIR)]
    cmd += ["--chdir", str(SANDBOX_WORKDIR)]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    cmd.append("--")
    if uid is not None:
        cmd += [
            "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
        ]  # fmt: skip
    cmd += ["/usr/bin/prlimit", *_prlimit_args(limits), "--", *argv]
    return cmd


def _prlimit_args(limits: SandboxLimits) -> list[str]:
    return [
        f"--as={limits.memory_bytes}:{limits.memory_bytes}",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 2}",
        f"--nproc={limits.max_processes}:{limits.max_processes}",
        f"--fsize={limits.max_file_bytes}:{limits.max_file_bytes}",
        f"--nofile={limits.max_open_files}:{limits.max_open_files}",
        "--core=0:0",
    ]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _supervise(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    limits: SandboxLimits,
    pass_fds: Sequence[int] = (),
    preexec_fn: object = None,
    sandboxed: bool,
    uid: int | None,
) -> SandboxResult:
    """Start ``cmd`` in a new session, capture its output with caps, enforce wall time."""
    start = time.monotonic()
    deadline = start + limits.wall_seconds
    proc = subprocess.Popen(  # noqa: S603 - the whole point: run a given argv
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        pass_fds=tuple(pass_fds),
        start_new_session=True,
        preexec_fn=preexec_fn,  # type: ignore[arg-type]
    )
    assert proc.stdout is not None and proc.stderr is not None
    caps = {
        proc.stdout.fileno(): _Capture(limits.max_output_bytes),
        proc.stderr.fileno(): _Capture(limits.max_output_bytes),
    }
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    reason: str | None = None
    exited_at: float | None = None
    with selectors.DefaultSelector() as sel:
        for fd in caps:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                reason = "wall time"
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            # Unsandboxed only: a leftover child may hold the pipes open after the main
            # process exited; give it a moment, then stop reading (it gets killed below).
            if exited_at is not None and now - exited_at > 1.0:
                break
            for key, _ in sel.select(timeout=min(deadline - now, 0.25)):
                try:
                    data = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(key.fd)
                    continue
                caps[key.fd].add(data)
                if caps[key.fd].truncated:
                    reason = "output limit"
            if reason:
                break
    if reason is not None:
        _kill_group(proc)
    try:
        returncode = proc.wait(timeout=max(deadline - time.monotonic(), 0) + _KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        reason = reason or "wall time"
        _kill_group(proc)
        returncode = proc.wait()
    if not sandboxed:
        _kill_group(proc)  # same-session leftovers; setsid() daemons can escape (no PID namespace)
    proc.stdout.close()
    proc.stderr.close()
    stderr_text = caps[err_fd].text()
    if reason is None:
        reason = _reason_from_status(returncode, stderr_text)
    return SandboxResult(
        returncode=returncode,
        stdout=caps[out_fd].text(),
        stderr=stderr_text,
        timed_out=reason == "wall time",
        killed_reason=reason,
        duration=time.monotonic() - start,
        sandboxed=sandboxed,
        uid=uid,
        stdout_truncated=caps[out_fd].truncated,
        stderr_truncated=caps[err_fd].truncated,
    )


def _reason_from_status(returncode: int, stderr: str) -> str | None:
    """Interpret bubblewrap's exit status (``128 + N`` for death by signal ``N``)."""
    sig = returncode - 128 if 128 < returncode < 128 + 65 else (-returncode if returncode < 0 else None)
    if sig == signal.SIGXCPU:
        return "cpu time"
    if sig == signal.SIGXFSZ:
        return "file size"
    if sig is not None:
        return f"signal {sig}"
    if returncode != 0 and ("MemoryError" in stderr or "Cannot allocate memory" in stderr):
        return "memory"
    return None


def _run_bwrap(
    bwrap: str,
    argv: Sequence[str],
    *,
    workdir: Path,
    readonly: Sequence[os.PathLike[str] | str],
    limits: SandboxLimits,
    env: Mapping[str, str] | None,
) -> SandboxResult:
    binds = _check_binds(readonly)
    full_env = _default_env(env, binds)
    program = _seccomp_program()
    with contextlib.ExitStack() as stack:
        uid = stack.enter_context(_lease_uid()) if sandbox_mode() == "root" else None
        etc_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sandbox-etc-")))
        etc_dir.chmod(0o755)
        etc = _etc_files(etc_dir, uid if uid is not None else 65534)
        if uid is not None:
            _chown_tree(workdir, uid, uid)
        os.chmod(workdir, 0o700)
        pass_fds: list[int] = []
        seccomp_fd = None
        if program is not None:
            seccomp_file = stack.enter_context(tempfile.TemporaryFile())
            seccomp_file.write(program)
            seccomp_file.flush()
            seccomp_file.seek(0)
            seccomp_fd = seccomp_file.fileno()
            pass_fds.append(seccomp_fd)
        cgroup = _MemoryCgroup.create(
            f"course-sandbox-{uid if uid is not None else os.getpid()}-{os.urandom(4).hex()}",
            limits.total_memory_bytes,
        )
        if cgroup is not None:
            stack.callback(cgroup.destroy)
        cmd = _bwrap_argv(
            bwrap,
            argv,
            workdir=workdir,
            readonly=binds,
            limits=limits,
            uid=uid,
            etc_files=etc,
            seccomp_fd=seccomp_fd,
        )
        result = _supervise(
            cmd,
            env=full_env,
            cwd=None,
            limits=limits,
            pass_fds=pass_fds,
            preexec_fn=cgroup.join_self if cgroup is not None else None,
            sandboxed=True,
            uid=uid,
        )
        if cgroup is None:
            return result
        oom = cgroup.oom_kills() > 0 and result.killed_reason not in ("wall time", "output limit")
        return dataclasses.replace(
            result, memory_cgroup=True, killed_reason="memory" if oom else result.killed_reason
        )


def _run_unsandboxed(
    argv: Sequence[str], *, workdir: Path, limits: SandboxLimits, env: Mapping[str, str] | None
) -> SandboxResult:
    import resource

    def set_limits() -> None:  # runs in the child between fork and exec
        for res, value in (
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_NPROC, limits.max_processes),
            (resource.RLIMIT_FSIZE, limits.max_file_bytes),
            (resource.RLIMIT_NOFILE, limits.max_open_files),
            (resource.RLIMIT_CORE, 0),
        ):
            hard = value + 2 if res == resource.RLIMIT_CPU else value
            resource.setrlimit(res, (value, hard))

    full_env = _default_env(env, [])
    full_env.update({"HOME": str(workdir), "TMPDIR": str(workdir)})
    return _supervise(
        list(argv),
        env=full_env,
        cwd=workdir,
        limits=limits,
        preexec_fn=set_limits,
        sandboxed=False,
        uid=os.getuid(),
    )


def run_sandboxed(
    argv: Sequence[str],
    *,
    workdir: str | os.PathLike[str],
    readonly: Sequence[str | os.PathLike[str]] = (),
    limits: SandboxLimits | None = None,
    env: Mapping[str, str] | None = None,
    allow_unsandboxed: bool = False,
    bwrap: str | os.PathLike[str] | None = None,
) -> SandboxResult:
    """Run ``argv`` in a fresh sandbox and report how it ended.

    Parameters
    ----------
    argv
        Command and arguments, as seen *inside* the sandbox (use absolute paths of bound
        executables, e.g. the venv's ``python``, or names on the sandbox's ``PATH``).
    workdir
        Host directory bound read-write at :data:`SANDBOX_WORKDIR`, which is also the
        working directory. In root mode it (and everything in it) is handed to the run's
        uid first. Use one fresh directory per submission; read results back with
        :func:`read_result_file`.
    readonly
        Host paths bound read-only at the same paths inside (absolute; their symlink-free
        form is bound too). Typically :func:`python_readonly_paths` plus the course library.
        ``/``, ``/etc``, ``/usr``, ``/proc``, ``/dev``, ``/sys`` and ``/tmp`` are refused.
    limits
        Resource limits; default :class:`SandboxLimits()`.
    env
        Extra environment variables (on top of a small fixed environment: ``PATH`` with the
        venv's ``bin`` first, ``HOME=/tmp``, Jupyter/IPython/Matplotlib dirs under ``/tmp``,
        one BLAS thread). The grader's own environment is never passed in.
    allow_unsandboxed
        When the sandbox cannot be created: False (default) raises
        :class:`SandboxUnavailableError`; True runs the command *without isolation* (only
        rlimits, wall time and output caps; ``SandboxResult.sandboxed`` is False) and warns.
    bwrap
        Path of the bubblewrap binary; default: ``bwrap`` on ``PATH``.

    Returns
    -------
    SandboxResult

    Raises
    ------
    SandboxUnavailableError
        No working sandbox and ``allow_unsandboxed`` is False.
    ValueError, FileNotFoundError
        A bad ``readonly`` entry or a missing ``workdir``.
    """
    limits = limits or SandboxLimits()
    work = Path(workdir)
    if work.is_symlink() or not work.is_dir():
        raise FileNotFoundError(f"workdir must be an existing directory (not a symlink): {work}")
    work = work.resolve()
    if not argv:
        raise ValueError("argv is empty")
    ok, why = sandbox_available(bwrap)
    if not ok:
        if not allow_unsandboxed:
            raise SandboxUnavailableError(
                f"refusing to run student code: the sandbox is not available ({why}). "
                "Fix that, or pass allow_unsandboxed=True (the grading command's --allow-unsandboxed) "
                "to run it WITHOUT isolation, with the grader's rights."
            )
        warnings.warn(
            f"running WITHOUT a sandbox ({why}); only rlimits, wall time and output caps apply",
            RuntimeWarning,
            stacklevel=2,
        )
        return _run_unsandboxed(argv, workdir=work, limits=limits, env=env)
    exe = _find_tool("bwrap", bwrap)
    assert exe is not None
    return _run_bwrap(exe, argv, workdir=work, readonly=readonly, limits=limits, env=env)


# --------------------------------------------------------------------------- results


def read_result_file(workdir: str | os.PathLike[str], name: str, max_bytes: int) -> bytes:
    """Read a file the sandboxed code left in its work directory, safely.

    Every component of ``name`` is opened relative to the previous one with
    ``O_NOFOLLOW``, so a symlink anywhere (pointing at ``/etc/passwd``, the gradebook, or
    another submission) is refused rather than followed; so are ``..``, absolute names,
    FIFOs and devices (opened non-blocking, then checked to be a regular file), and files
    larger than ``max_bytes`` (checked before and while reading).

    Parameters
    ----------
    workdir
        The run's work directory (the host path given to :func:`run_sandboxed`).
    name
        Relative path inside it, e.g. ``"results.json"`` or ``"out/a.txt"``.
    max_bytes
        Largest size accepted.

    Returns
    -------
    bytes

    Raises
    ------
    UnsafeResultError
        A symlink, a non-regular file, a bad name, or a file over ``max_bytes``.
    FileNotFoundError
        No such file.
    """
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in ("..", ".") for p in parts):
        raise UnsafeResultError(f"unsafe result name: {name!r}")
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fds: list[int] = []
    try:
        fds.append(os.open(workdir, flags_dir))
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = (os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC) if last else flags_dir
            try:
                fds.append(os.open(part, flags, dir_fd=fds[-1]))
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(
                    os.path.join(os.fspath(workdir), *parts[: i + 1])
                ):
                    raise UnsafeResultError(f"refusing to follow a symlink: {name!r}") from exc
                raise
        fd = fds[-1]
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeResultError(f"not a regular file: {name!r}")
        if st.st_size > max_bytes:
            raise UnsafeResultError(f"{name!r} is {st.st_size} bytes, over the limit of {max_bytes}")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - size) or 1):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise UnsafeResultError(f"{name!r} grew over the limit of {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        for fd in reversed(fds):
            os.close(fd)


# --------------------------------------------------------------------------- notebooks

_NOTEBOOK_DRIVER = r"""
import sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

src, dst, timeout, kernel = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
nb = nbformat.read(src, as_version=4)
current = {"index": None}

def on_cell_start(cell, cell_index, **kwargs):
    current["index"] = cell_index

client = NotebookClient(
    nb, timeout=timeout, allow_errors=True, interrupt_on_timeout=False, kernel_name=kernel,
    startup_timeout=60, resources={"metadata": {"path": "."}}, on_cell_start=on_cell_start,
    shutdown_kernel="immediate",
)
status, message = 0, ""
try:
    client.execute()
except CellTimeoutError:
    status, message = 3, f"CellTimeoutError: the cell ran longer than {timeout} s"
except DeadKernelError as exc:
    status, message = 4, f"DeadKernelError: the kernel died ({exc})"
except Exception as exc:
    status, message = 5, f"{type(exc).__name__}: {exc}"
finally:
    if status:
        if current["index"] is not None:
            nb.cells[current["index"]].setdefault("outputs", []).append(nbformat.v4.new_output(
                "error", ename=message.split(":")[0], evalue=message, traceback=[message]))
        print(message, file=sys.stderr)
    nbformat.write(nb, dst)
sys.exit(status)
"""


#: ``killed_reason`` of notebook runs, by the driver's exit status.
_NOTEBOOK_STATUS = {3: "cell timeout", 4: "kernel died"}


def execute_notebook_sandboxed(
    notebook_path: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    readonly: Sequence[str | os.PathLike[str]] | None = None,
    limits: SandboxLimits | None = None,
    timeout_per_cell: int = 30,
    *,
    python: str | os.PathLike[str] | None = None,
    kernel_name: str = "python3",
    env: Mapping[str, str] | None = None,
    allow_unsandboxed: bool = False,
    bwrap: str | os.PathLike[str] | None = None,
) -> tuple[Path | None, SandboxResult]:
    """Execute a notebook with nbclient inside the sandbox.

    The notebook is copied into ``workdir`` and executed there (``allow_errors``, so a
    failing cell does not stop the rest), by ``python`` inside the sandbox, with the kernel
    also inside it (ZMQ over the sandbox's private loopback).

    Parameters
    ----------
    notebook_path
        The notebook to run (host path; it is copied, not modified).
    workdir
        Empty host directory for this run (bound at :data:`SANDBOX_WORKDIR`).
    readonly
        Read-only binds; default :func:`python_readonly_paths` of ``python``. Must include
        the interpreter's installation and whatever the notebook imports.
    limits
        Limits of the whole run (kernel included); the wall limit covers every cell.
    timeout_per_cell
        Seconds one cell may run; at the first cell over it execution stops, the cell gets
        an error output ``CellTimeoutError`` and the partial notebook is written
        (``returncode`` 3, ``killed_reason`` ``"cell timeout"``). A dead kernel (e.g. killed
        by a limit) gives ``returncode`` 4, ``killed_reason`` ``"kernel died"``.
    python
        Interpreter (with nbclient and ipykernel) to run; default ``sys.executable``.
    kernel_name
        Kernel spec name.
    env, allow_unsandboxed, bwrap
        As for :func:`run_sandboxed`.

    Returns
    -------
    tuple of (Path or None, SandboxResult)
        Path of the executed notebook (a regular, grader-owned file in ``workdir``, re-written
        from a safe read), or None when none was produced (e.g. wall time), and the result.
    """
    src = Path(notebook_path)
    work = Path(workdir)
    python = str(python or sys.executable)
    if readonly is None:
        readonly = python_readonly_paths(python)
    name = "submission.ipynb"
    out_name = "submission.executed.ipynb"
    for leftover in (name, out_name):
        with contextlib.suppress(FileNotFoundError):
            (work / leftover).unlink()
    shutil.copyfile(src, work / name)
    result = run_sandboxed(
        [python, "-c", _NOTEBOOK_DRIVER, name, out_name, str(int(timeout_per_cell)), kernel_name],
        workdir=work,
        readonly=readonly,
        limits=limits,
        env=env,
        allow_unsandboxed=allow_unsandboxed,
        bwrap=bwrap,
    )
    if result.killed_reason is None and result.returncode in _NOTEBOOK_STATUS:
        result = dataclasses.replace(result, killed_reason=_NOTEBOOK_STATUS[result.returncode])
    limit = (limits or SandboxLimits()).max_file_bytes
    try:
        data = read_result_file(work, out_name, limit)
    except (FileNotFoundError, UnsafeResultError):
        return None, result
    # Replace the sandbox-owned file by a grader-owned copy of what was read.
    out = work / out_name
    out.unlink()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return out, result
