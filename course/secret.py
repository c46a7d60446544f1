"""The instructor secret: the key hidden test cases are derived from.

It lives outside the repository and the release, in a file only the instructor can read:

1. ``$COURSE_SECRET_FILE`` when set, else
2. ``${XDG_CONFIG_HOME:-~/.config}/conv-course/convolution-in-deep-learning.secret``.

The file holds 32 random bytes as 64 hex digits, mode 0600, in a folder of mode 0700.
``python -m course release`` (the instructor's first command) creates it when it is
missing and prints where. Keep a backup: regrading with another secret gives every student
other hidden cases. Anyone holding the secret can compute every student's hidden cases.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path

__all__ = [
    "COURSE_ID",
    "SECRET_ENV",
    "SecretError",
    "create_secret",
    "ensure_secret",
    "load_secret",
    "secret_path",
]

#: Names the secret file; one secret per course.
COURSE_ID = "convolution-in-deep-learning"
#: Environment variable that overrides the secret's location.
SECRET_ENV = "COURSE_SECRET_FILE"
#: Random bytes in a new secret.
SECRET_BYTES = 32

#: The repository (and release) root: the secret must never be inside it.
_REPOSITORY = Path(__file__).resolve().parents[1]


class SecretError(RuntimeError):
    """The instructor secret is missing, unreadable, malformed, too open or in the repository."""


def secret_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Where the secret is: ``path``, else ``$COURSE_SECRET_FILE``, else the XDG config folder."""
    if path is None:
        env = os.environ.get(SECRET_ENV)
        if env:
            path = env
        else:
            config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
            path = Path(config) / "conv-course" / f"{COURSE_ID}.secret"
    return Path(path).expanduser().absolute()


def _refuse_inside_repository(path: Path) -> None:
    resolved = path.resolve()
    if resolved == _REPOSITORY or _REPOSITORY in resolved.parents:
        raise SecretError(
            f"the instructor secret must live outside the repository ({_REPOSITORY}); got {path}. "
            f"Set {SECRET_ENV} to a path outside it (or unset it for the default in ~/.config)."
        )


def create_secret(path: str | os.PathLike[str] | None = None) -> Path:
    """Create a new secret file (32 random bytes, hex) with mode 0600; refuse to overwrite one.

    Missing parent folders are created with mode 0700; a folder named ``conv-course``
    (the default one) is set to 0700 even when it exists.
    """
    target = secret_path(path)
    _refuse_inside_repository(target)
    parent = target.parent
    existed = parent.is_dir()
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not existed or parent.name == "conv-course":  # a folder of ours: owner only
        os.chmod(parent, 0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (secrets.token_hex(SECRET_BYTES) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


def load_secret(path: str | os.PathLike[str] | None = None) -> bytes:
    """The instructor secret (32 bytes) from :func:`secret_path`.

    Raises
    ------
    SecretError
        The file is missing (run ``python -m course release``, which creates it), is not a
        regular file, is readable by others than its owner, lies inside the repository or
        does not hold 64 hex digits.
    """
    target = secret_path(path)
    _refuse_inside_repository(target)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SecretError(
            f"no instructor secret at {target}. Run `python -m course release` (the instructor's first "
            f"command creates it), or set {SECRET_ENV} to the secret file of this course."
        ) from None
    except OSError as err:
        raise SecretError(f"cannot open the instructor secret at {target}: {err}") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"the instructor secret at {target} is not a regular file")
        if info.st_mode & 0o077:
            raise SecretError(
                f"the instructor secret at {target} has mode {stat.S_IMODE(info.st_mode):04o}: other users "
                f"may read it. Run `chmod 600 {target}`."
            )
        text = os.read(fd, 4096).decode("ascii", errors="replace").strip()
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != SECRET_BYTES:
        raise SecretError(
            f"the instructor secret at {target} should hold {2 * SECRET_BYTES} hex digits; it does not"
        )
    return key


def ensure_secret(path: str | os.PathLike[str] | None = None) -> Path:
    """The secret's path, creating the secret first (and saying where on stderr) when it is missing."""
    target = secret_path(path)
    if target.exists() or target.is_symlink():
        load_secret(target)  # fails clearly if it is unusable
        return target
    create_secret(target if path is not None else None)
    print(
        f"created the instructor secret at {target} (mode 0600). Hidden test cases are derived from it: "
        "keep it outside the repository, back it up, and use the same one when you regrade.",
        file=sys.stderr,
    )
    return target
