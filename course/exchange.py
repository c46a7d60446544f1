"""nbgrader's exchange for the course: where it is, what ``course collect`` takes from it and
what ``course feedback`` needs to publish feedback to it.

The exchange is nbgrader's shared folder ``<exchange>/<course id>/{outbound,inbound,feedback}``
(see ``nbgrader_config.py``). Students write ``inbound/<student>+<assignment>+<timestamp>+<random>/``
with ``nbgrader submit``: the notebook, ``timestamp.txt`` and ``submission_secret.txt``. Every
byte of it comes from the student's process, so it is read here as untrusted input: only
real folders and regular files (no symbolic links, FIFOs or devices), safe student ids, a
parseable timestamp and a plain secret are taken, and a submission owned by another user
than the student's Unix account (when the student has one) is refused.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.config import GRADING

#: The environment variable that names the exchange folder (read by ``nbgrader_config.py``).
EXCHANGE_ENV = "COURSE_EXCHANGE"
#: nbgrader's own default, used when a configuration does not set ``c.Exchange.root``.
NBGRADER_DEFAULT_EXCHANGE = "/usr/local/share/nbgrader/exchange"
#: The files of a submission besides its notebook that nbgrader needs (collect, late
#: penalties, ``release_feedback``) and their size limits in bytes.
EXTRAS = {"timestamp.txt": 200, "submission_secret.txt": 1024}
#: A submission secret: what ``nbgrader submit`` writes (128 hex digits), or any short token
#: of letters and digits.
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,512}")
#: Seconds a submission's claimed time may precede the last change of its exchange folder.
CLOCK_SLACK = 600.0


def exchange_root(root: Path, override: Path | str | None = None) -> Path:
    """The exchange folder: ``override`` (``--exchange``), else ``c.Exchange.root`` of the
    course's ``nbgrader_config.py`` (which reads ``COURSE_EXCHANGE``)."""
    if override:
        return Path(override).resolve()
    from course.instructor import load_config

    config = load_config(root)
    return Path(config.Exchange.get("root", NBGRADER_DEFAULT_EXCHANGE))


def exchange_named(override: Path | str | None = None) -> bool:
    """True if the exchange was named on purpose (``--exchange`` or ``COURSE_EXCHANGE``), not
    left at the configuration's default."""
    return bool(override) or bool(os.environ.get(EXCHANGE_ENV))


def course_id(root: Path) -> str:
    """``c.CourseDirectory.course_id`` of the course's ``nbgrader_config.py``."""
    from course.instructor import load_config

    cid = load_config(root).CourseDirectory.get("course_id", "")
    if not cid:
        raise SystemExit(f"{root / 'nbgrader_config.py'} sets no c.CourseDirectory.course_id")
    return cid


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a symlink, FIFO or device) of at
    most ``limit`` bytes; else ``ValueError`` (or ``OSError``) saying why."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > limit:
            raise ValueError(f"larger than {limit} bytes")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ValueError(f"larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_timestamp(data: bytes) -> datetime.datetime:
    """The time in a ``timestamp.txt`` (nbgrader's format, e.g. ``2026-03-01 17:02:11.5 UTC``),
    as an aware UTC datetime; ``ValueError`` naming the text and what was expected."""
    from nbgrader.utils import parse_utc

    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError(
            "timestamp.txt: not ASCII text; expected a time like '2026-03-01 17:02:11.5 UTC'"
        ) from None
    try:
        when = parse_utc(text)
    except (ValueError, OverflowError, TypeError):
        when = None
    if when is None or not text:
        raise ValueError(
            f"timestamp.txt: got {text[:60]!r}; expected a time like '2026-03-01 17:02:11.5 UTC'"
        )
    return when.replace(tzinfo=datetime.UTC) if when.tzinfo is None else when


def check_extra(name: str, data: bytes) -> bytes:
    """``data`` if it is a valid ``timestamp.txt`` or ``submission_secret.txt``, else ``ValueError``."""
    if len(data) > EXTRAS[name]:
        raise ValueError(f"{name}: larger than {EXTRAS[name]} bytes")
    if name == "timestamp.txt":
        parse_timestamp(data)
    elif not _SECRET.fullmatch(data.decode("ascii", "replace").strip()):
        raise ValueError(f"{name}: expected 16 to 512 letters, digits, '_' or '-'")
    return data


def read_extras(folder: Path, refuse: Any = None) -> dict[str, bytes]:
    """The valid ``timestamp.txt`` and ``submission_secret.txt`` of a submission ``folder``;
    each one missing is left out, each one invalid is left out and reported to ``refuse(what, why)``
    (default: a line on stderr)."""
    refuse = refuse or (lambda what, why: print(f"dropped {what}: {why}", file=sys.stderr))
    found: dict[str, bytes] = {}
    for name, limit in EXTRAS.items():
        path = folder / name
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            found[name] = check_extra(name, read_regular(path, limit))
        except (OSError, ValueError) as err:
            refuse(str(path), "a symbolic link" if path.is_symlink() else str(err))
    return found


def autograded_extras(root: Path, assignment: str, student: str) -> dict[str, bytes]:
    """What the autograded folder ``grading/autograded/<student>/<assignment>/`` must hold
    besides the notebook for nbgrader's ``generate_feedback``/``release_feedback`` and late
    penalties: the submission's ``timestamp.txt`` and ``submission_secret.txt`` from
    ``grading/submitted/<student>/<assignment>/`` (file name -> bytes; each one missing or
    invalid is left out)."""
    return read_extras(Path(root) / GRADING / "submitted" / student / assignment, lambda what, why: None)


@dataclass
class Inbound:
    """One submission in the exchange's ``inbound/`` folder."""

    student: str
    folder: Path
    timestamp: datetime.datetime  # from the folder's name


def _owner_ok(student: str, st: os.stat_result) -> str:
    """'' if the submission may be the student's; else why not."""
    import pwd

    try:
        account = pwd.getpwnam(student)
    except KeyError:
        return ""  # students without a Unix account of their own: nothing to compare
    if st.st_uid == account.pw_uid:
        return ""
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = f"uid {st.st_uid}"
    return f"owned by {owner}, not by the student's account {student}"


def latest_inbound(exchange: Path, cid: str, assignment: str, refuse: Any) -> list[Inbound]:
    """The latest submission of each student of ``assignment`` in ``<exchange>/<cid>/inbound``
    (by the time in the folder's name, as ``nbgrader collect``), sorted by student.

    Names that are not nbgrader's, unsafe student ids, symbolic links, anything that is not
    a folder and folders owned by someone else than the student's account are refused with
    ``refuse(what, why)``.
    """
    from nbgrader.utils import parse_utc

    from course.instructor import check_student_id

    inbound = Path(exchange) / cid / "inbound"
    if not inbound.is_dir():
        raise SystemExit(
            f"no exchange at {inbound}: release an assignment first (course release), or name the "
            "exchange with --exchange PATH or COURSE_EXCHANGE"
        )
    latest: dict[str, Inbound] = {}
    with os.scandir(inbound) as entries:
        for entry in entries:
            parts = entry.name.split("+")
            if len(parts) not in (3, 4) or parts[1] != assignment:
                continue
            student = parts[0]
            try:
                check_student_id(student)
            except ValueError as err:
                refuse(repr(entry.name), str(err))
                continue
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                refuse(entry.name, "a symbolic link or not a folder")
                continue
            why = _owner_ok(student, st)
            if why:
                refuse(entry.name, why)
                continue
            try:
                when = parse_utc(parts[2])
            except (ValueError, OverflowError, TypeError):
                refuse(entry.name, f"the time in its name, {parts[2]!r}, is not a time")
                continue
            when = when.replace(tzinfo=datetime.UTC) if when.tzinfo is None else when
            if student not in latest or when > latest[student].timestamp:
                latest[student] = Inbound(student, Path(entry.path), when)
    return [latest[s] for s in sorted(latest)]


def clock_warning(folder: Path, claimed: datetime.datetime) -> str:
    """A warning if a submission claims a time well before its exchange folder last changed
    (the student's process writes ``timestamp.txt``; the folder's change time is the kernel's)."""
    changed = datetime.datetime.fromtimestamp(os.lstat(folder).st_ctime, datetime.UTC)
    if (changed - claimed).total_seconds() > CLOCK_SLACK:
        return (
            f"{folder.name}: timestamp.txt says {claimed:%Y-%m-%d %H:%M:%S} UTC but the folder was "
            f"written at {changed:%Y-%m-%d %H:%M:%S} UTC; check this submission's time"
        )
    return ""
