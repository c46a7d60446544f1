"""The bubblewrap primitives of the grading sandbox: everything needed to *build* one.

:mod:`course.sandbox` runs a command to its end in a sandbox and
:mod:`course.sandbox_session` keeps one running as a server; both describe the isolation
they give. This module holds what they share to set a sandbox up:

* the layout (:data:`SANDBOX_WORKDIR`, which ``/etc`` files and root links are bound,
  which binds are refused: :func:`_check_binds`) and the sandbox's fixed environment
  (:func:`_default_env`, :func:`python_readonly_paths`);
* in root mode, a uid of the run's own, leased under a file lock (:func:`_lease_uid`), and
  the work directory handed to it (:func:`_chown_tree`);
* generated ``passwd``/``group``/``hosts`` (:func:`_etc_files`);
* the seccomp filter (:func:`_seccomp_program`);
* a best-effort memory cgroup (:class:`_MemoryCgroup`);
* bubblewrap's, ``setpriv``'s and ``prlimit``'s command line (:func:`_bwrap_argv`,
  :func:`_prlimit_args`) from :class:`SandboxLimits`;
* :func:`bwrap_launch`, the one context manager that does all of the above for a run and
  undoes it, in order, when the run's process is dead.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "SANDBOX_WORKDIR",
    "UID_BASE",
    "UID_SLOTS",
    "BwrapLaunch",
    "SandboxLimits",
    "SandboxUnavailableError",
    "bwrap_launch",
    "python_readonly_paths",
    "sandbox_mode",
]

#: Where the work directory appears inside the sandbox (also the working directory).
SANDBOX_WORKDIR = PurePosixPath("/sandbox/work")

#: First uid handed to sandboxes when the grader is root; slot ``n`` runs as ``UID_BASE + n``.
UID_BASE = 60000
#: Number of uids (so of sandboxes that can run at once on one machine).
UID_SLOTS = 1000

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


class SandboxUnavailableError(RuntimeError):
    """The sandbox cannot be created on this machine (and unsandboxed runs were not allowed)."""


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


# --------------------------------------------------------------------------- tools


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
        # conv_lib's Winograd path on NumPy, never numba's compiler: a student's call
        # must not spend its time limit compiling (conv_lib.winograd_kernels)
        "CONV_LIB_JIT": "0",
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


# --------------------------------------------------------------------------- command line


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
            if str(parent) not in made and not any(
                Path(str(parent)) == b or b in Path(str(parent)).parents for b in bound
            ):
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


# --------------------------------------------------------------------------- launch


@dataclass(frozen=True)
class BwrapLaunch:
    """What :func:`bwrap_launch` prepared: how to start the sandbox's process.

    Attributes
    ----------
    argv
        bubblewrap's full command line (``bwrap ... -- [setpriv ... --] prlimit ... -- argv``).
    env
        The environment to start it with (:func:`_default_env`; never the grader's own).
    pass_fds
        File descriptors the process must inherit (the seccomp filter's).
    cgroup
        The run's memory cgroup, or None when none could be created.
    uid
        The run's own uid (root mode), or None (user-namespace mode: ``nobody``).
    """

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...]
    cgroup: _MemoryCgroup | None
    uid: int | None

    @property
    def preexec_fn(self) -> Callable[[], None] | None:
        """Run between fork and exec: moves the process into the memory cgroup, if any."""
        return self.cgroup.join_self if self.cgroup is not None else None


@contextlib.contextmanager
def bwrap_launch(
    bwrap: str,
    argv: Sequence[str],
    *,
    workdir: Path | None,
    readonly: Sequence[os.PathLike[str] | str],
    limits: SandboxLimits,
    env: Mapping[str, str] | None,
    mounts: Sequence[tuple[str, str, str]] = (),
    cgroup_prefix: str = "course-sandbox",
) -> Iterator[BwrapLaunch]:
    """Set up one sandbox for ``argv`` and undo the set-up on exit.

    Leases a uid (root mode), writes the generated ``/etc`` files, hands ``workdir`` to the
    uid (and makes it private), writes the seccomp filter to a file passed by descriptor,
    creates the memory cgroup and builds bubblewrap's command line. The caller starts the
    process from the yielded :class:`BwrapLaunch` and must leave the ``with`` block only
    once that process is dead: on exit the cgroup is destroyed first, then the seccomp file
    and the ``/etc`` files go, and the uid lease is released last.

    Parameters
    ----------
    bwrap
        Path of the bubblewrap binary.
    argv
        Command inside the sandbox.
    workdir
        Host directory bound read-write at :data:`SANDBOX_WORKDIR`, or None for a private
        tmpfs there (see :func:`_bwrap_argv`).
    readonly
        Host paths bound read-only (checked by :func:`_check_binds`).
    limits
        Resource limits.
    env
        Extra environment variables (see :func:`_default_env`).
    mounts
        Extra ``("ro", host, dest)`` binds and ``("tmpfs", "", dest)`` hides.
    cgroup_prefix
        First part of the memory cgroup's name (tells runs and sessions apart).

    Yields
    ------
    BwrapLaunch
    """
    binds = _check_binds(readonly)
    full_env = _default_env(env, binds)
    program = _seccomp_program()
    with contextlib.ExitStack() as stack:
        uid = stack.enter_context(_lease_uid()) if sandbox_mode() == "root" else None
        etc_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sandbox-etc-")))
        etc_dir.chmod(0o755)
        etc = _etc_files(etc_dir, uid if uid is not None else 65534)
        if workdir is not None:
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
            f"{cgroup_prefix}-{uid if uid is not None else os.getpid()}-{os.urandom(4).hex()}",
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
            mounts=mounts,
        )
        yield BwrapLaunch(argv=cmd, env=full_env, pass_fds=tuple(pass_fds), cgroup=cgroup, uid=uid)
