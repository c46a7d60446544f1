"""The wire format between the grader and the sandboxed answer server (no pickle).

Used on both sides: by :mod:`course.grader` (outside) and by ``answer_server.py`` inside
the sandbox, where this file is bound read-only as the top-level module ``wire`` (the
sandbox holds only the standard library, NumPy and the student kit, so this module imports
nothing else).

A message is one frame::

    8 bytes   little-endian length H of the header
    H bytes   the header: UTF-8 JSON (an object)
    ...       the raw bytes of every array the header lists, in order

Values are encoded as JSON trees (:func:`encode`): ``None``, ``bool``, ``int``, ``float``,
``complex``, ``str``, ``bytes``, exact ``tuple``/``list``/``dict`` of these, NumPy arrays and
scalars of plain dtypes (bool, integers, floats, complex, fixed-width str/bytes; no objects,
no structured dtypes) as raw buffers. Anything else is refused (:class:`Unsupported`) or,
where the caller passes ``ref``, replaced by an opaque handle. The reader
(:func:`read_message`) checks every size against a budget *before* reading it, so a peer
cannot make the other side allocate more than the budget.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SAFE_KINDS = frozenset("biufcUS")
MAX_DEPTH = 32
MAX_ITEMS = 1_000_000
MAX_HEADER_BYTES = 8 * 1024 * 1024
_LEN = struct.Struct("<Q")


class Unsupported(TypeError):
    """A value that cannot cross the wire (its type is named in the message)."""


class WireError(OSError):
    """The peer broke the protocol: a malformed frame, a size over budget, or end of file."""


class WireTimeout(WireError):
    """The peer did not send a whole message before the deadline."""


# ------------------------------------------------------------------------------ values


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced, so it can always be written as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def encode(
    value: Any,
    buffers: list[bytes],
    ref: Callable[[Any], Any] | None = None,
    depth: int = 0,
) -> Any:
    """``value`` as a JSON tree; array bytes are appended to ``buffers``.

    Exact built-in types only: a subclass (say of ``float`` or ``list`` overriding
    ``__eq__``) is refused, or handed to ``ref`` (which returns the tree to send instead)
    when ``ref`` is given.
    """
    if depth > MAX_DEPTH:
        raise Unsupported(f"nesting deeper than {MAX_DEPTH} levels")
    t = type(value)
    if t is np.ndarray or isinstance(value, np.generic) and type(value).__module__ == "numpy":
        a = np.asarray(value)
        if a.dtype.kind not in SAFE_KINDS or a.dtype.fields is not None or a.dtype.subdtype is not None:
            if ref is not None:
                return ref(value)
            raise Unsupported(f"an array of dtype {a.dtype}")
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        buffers.append(a.tobytes())
        return {
            "t": "nd" if t is np.ndarray else "np",
            "d": a.dtype.str,
            "s": list(a.shape),
            "b": len(buffers) - 1,
        }
    if value is None:
        return {"t": "none"}
    if t is bool:
        return {"t": "bool", "v": value}
    if t is int:
        if abs(value).bit_length() > 4096:
            raise Unsupported("an int over 4096 bits")
        return {"t": "int", "v": str(value)}
    if t is float:
        return {"t": "float", "v": repr(value)}
    if t is complex:
        return {"t": "complex", "v": [repr(value.real), repr(value.imag)]}
    if t is str:
        return {"t": "str", "v": clean_text(value)}
    if t is bytes:
        buffers.append(value)
        return {"t": "bytes", "b": len(buffers) - 1}
    if t in (tuple, list):
        if len(value) > MAX_ITEMS:
            raise Unsupported(f"a {t.__name__} of over {MAX_ITEMS} items")
        return {"t": t.__name__, "v": [encode(v, buffers, ref, depth + 1) for v in value]}
    if t is dict:
        if len(value) > MAX_ITEMS:
            raise Unsupported(f"a dict of over {MAX_ITEMS} items")
        items = list(value.items())
        return {
            "t": "dict",
            "k": [encode(k, buffers, ref, depth + 1) for k, _ in items],
            "v": [encode(v, buffers, ref, depth + 1) for _, v in items],
        }
    if ref is not None:
        return ref(value)
    raise Unsupported(f"{t.__module__}.{t.__qualname__}")


def decode(
    tree: Any,
    buffers: list[bytes],
    deref: Callable[[dict], Any] | None = None,
    depth: int = 0,
    _used: set[int] | None = None,
) -> Any:
    """The value :func:`encode` wrote. Arrays are fresh, writable copies.

    ``deref`` turns trees of other types (handles, callbacks) into values; without it they
    are refused. Each buffer may be used once (as :func:`encode` writes them): a tree that
    names one buffer many times would make the reader copy it that many times.
    """
    if depth > MAX_DEPTH or not isinstance(tree, dict):
        raise Unsupported("a malformed value")
    used: set[int] = set() if _used is None else _used
    t = tree.get("t")
    if t in ("nd", "np"):
        dtype = np.dtype(str(tree["d"]))
        if dtype.kind not in SAFE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise Unsupported(f"an array of dtype {dtype}")
        shape = tuple(int(n) for n in tree["s"])
        if len(shape) > 32 or any(n < 0 for n in shape):
            raise Unsupported("a malformed array shape")
        data = buffers[_take(int(tree["b"]), used)]
        if len(data) != math.prod(shape) * dtype.itemsize:
            raise Unsupported("an array whose bytes do not match its shape")
        a = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        if t == "np":
            if a.ndim != 0:
                raise Unsupported("a malformed numpy scalar")
            return a[()]
        return a
    if t == "none":
        return None
    if t == "bool":
        return bool(tree["v"])
    if t == "int":
        text = str(tree["v"])
        if len(text) > 1300:
            raise Unsupported("an int too large")
        return int(text)
    if t == "float":
        return float(str(tree["v"]))
    if t == "complex":
        re_, im = tree["v"]
        return complex(float(str(re_)), float(str(im)))
    if t == "str":
        return clean_text(str(tree["v"]))
    if t == "bytes":
        return bytes(buffers[_take(int(tree["b"]), used)])
    if t in ("tuple", "list"):
        items = [decode(v, buffers, deref, depth + 1, used) for v in list(tree["v"])[:MAX_ITEMS]]
        return tuple(items) if t == "tuple" else items
    if t == "dict":
        keys = [decode(k, buffers, deref, depth + 1, used) for k in list(tree["k"])[:MAX_ITEMS]]
        vals = [decode(v, buffers, deref, depth + 1, used) for v in list(tree["v"])[:MAX_ITEMS]]
        out = {}
        for k, v in zip(keys, vals, strict=False):
            try:
                out[k] = v
            except TypeError as err:
                raise Unsupported("a dict with an unhashable key") from err
        return out
    if deref is not None:
        return deref(tree)
    raise Unsupported(f"an unknown value type {str(t)[:40]!r}")


def _take(index: int, used: set[int]) -> int:
    """``index`` of a buffer not used before in this message (else :class:`Unsupported`)."""
    if index in used:
        raise Unsupported(f"a value that uses buffer {index} twice")
    used.add(index)
    return index


# ------------------------------------------------------------------------------ frames


def pack(header: dict, buffers: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """One frame: the header (with the buffers' sizes added) and the buffers."""
    header = dict(header, sizes=[len(b) for b in buffers])
    head = json.dumps(header, ensure_ascii=True, allow_nan=True).encode("ascii")
    return b"".join([_LEN.pack(len(head)), head, *buffers])


def write_message(
    fd: int, header: dict, buffers: list[bytes] = (), deadline: float | None = None  # type: ignore[assignment]
) -> None:
    """Write one frame to ``fd``: blocking until it is all written, or, with a
    ``deadline`` (a ``time.monotonic()`` value), raising :class:`WireTimeout` past it.

    With a deadline the frame goes out in pieces of ``select.PIPE_BUF`` bytes, each only
    once ``fd`` is writable, so that a reader that stopped reading (a student's process
    that, say, redirected the file descriptor the channel uses) cannot block the writer
    beyond the deadline."""
    data = memoryview(pack(header, list(buffers)))
    while data:
        if deadline is None:
            n = os.write(fd, data)
        else:
            wait = deadline - time.monotonic()
            ready = select.select([], [fd], [], wait)[1] if wait > 0 else []
            if not ready:
                raise WireTimeout("the other side stopped reading before the deadline")
            n = os.write(fd, data[: select.PIPE_BUF])
        data = data[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    left = n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise WireTimeout("no answer before the deadline")
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                raise WireTimeout("no answer before the deadline")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise WireError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int, max_bytes: int, deadline: float | None = None) -> tuple[dict, list[bytes]]:
    """One frame from ``fd``: ``(header, buffers)``.

    Raises :class:`WireTimeout` past ``deadline`` (a ``time.monotonic()`` value), and
    :class:`WireError` for a malformed frame or one larger than ``max_bytes`` in all (the
    sizes are checked before anything that large is read).
    """
    (n,) = struct.unpack("<Q", _read_exact(fd, 8, deadline))
    if n > min(MAX_HEADER_BYTES, max_bytes):
        raise WireError(f"a message header of {n} bytes (limit {min(MAX_HEADER_BYTES, max_bytes)})")
    try:
        header = json.loads(_read_exact(fd, n, deadline).decode("ascii"))
    except (ValueError, RecursionError) as err:
        raise WireError(f"a malformed message header ({type(err).__name__})") from err
    if not isinstance(header, dict):
        raise WireError("a message header that is not an object")
    sizes = header.get("sizes", [])
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
        raise WireError("a malformed list of buffer sizes")
    if n + sum(sizes) > max_bytes:
        raise WireError(f"a message of {n + sum(sizes)} bytes (limit {max_bytes})")
    return header, [_read_exact(fd, s, deadline) for s in sizes]
