"""What the sandboxed run records and the grader replays: argument hashes and safe values.

Shared by both sides of the trusted autograder (``course/replay_runner.py`` inside the
sandbox, ``course/trusted.py`` outside). Only the standard library and NumPy are used.

* :func:`hash_call` — a content hash of a call's arguments (arrays by dtype, shape and
  bytes; numbers, strings, ``None``, tuples/lists/dicts of these; callables as a
  placeholder; anything else by its type name). The grader recomputes it for the
  arguments the instructor's test passes and looks the recorded result up by
  ``(function name, call index, hash)``.
* :func:`encode` / :func:`decode` — a value as JSON plus ``.npy`` files (``np.save`` with
  ``allow_pickle=False``; :func:`decode` loads with ``allow_pickle=False`` and accepts only
  plain numeric, boolean and string dtypes). Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

#: dtype kinds accepted in results: bool, ints, floats, complex, str, bytes.
SAFE_KINDS = frozenset("biufcUS")
MAX_DEPTH = 16
MAX_ITEMS = 100_000
MAX_STR = 1_000_000


class Unsupported(TypeError):
    """A value that cannot be recorded safely (its type is named in the message)."""


def _feed(h: Any, value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        h.update(b"<deep>")
        return
    t = type(value)
    if isinstance(value, np.ndarray):
        a = np.asarray(value)
        h.update(b"A" + a.dtype.str.encode() + repr(a.shape).encode())
        if a.dtype.kind in SAFE_KINDS:
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(b"<dtype>")
    elif isinstance(value, np.generic):
        h.update(b"S" + value.dtype.str.encode())
        h.update(np.asarray(value).tobytes() if value.dtype.kind in SAFE_KINDS else b"?")
    elif value is None or t is bool:
        h.update(b"K" + repr(value).encode())
    elif t is int:
        h.update(b"I" + str(value).encode())
    elif t is float:
        h.update(b"D" + struct.pack("<d", value))
    elif t is complex:
        h.update(b"C" + struct.pack("<dd", value.real, value.imag))
    elif t is str:
        h.update(b"T" + str(len(value)).encode() + b":" + value.encode("utf-8", "surrogatepass"))
    elif t is bytes:
        h.update(b"B" + str(len(value)).encode() + b":" + value)
    elif t in (tuple, list):
        h.update((b"(" if t is tuple else b"[") + str(len(value)).encode())
        for item in value:
            _feed(h, item, depth + 1)
        h.update(b")")
    elif t is dict:
        h.update(b"{" + str(len(value)).encode())
        for key in sorted(value, key=repr):
            _feed(h, key, depth + 1)
            _feed(h, value[key], depth + 1)
        h.update(b"}")
    elif callable(value):
        h.update(b"F")  # a function passed in (the test's own f, a lambda): a placeholder
    else:
        h.update(b"O" + t.__name__.encode())


def hash_call(args: tuple, kwargs: dict) -> str:
    """Content hash of a call's arguments (positional, then keywords sorted by name)."""
    h = hashlib.blake2b(digest_size=16)
    _feed(h, tuple(args))
    _feed(h, {str(k): v for k, v in kwargs.items()})
    return h.hexdigest()


def hash_value(value: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    _feed(h, value)
    return h.hexdigest()


# ------------------------------------------------------------------------------ encode


def encode(value: Any, save_array: Callable[[np.ndarray], str], depth: int = 0) -> Any:
    """``value`` as a JSON-able tree; arrays go through ``save_array`` (returns a file name).

    Raises :class:`Unsupported` for anything but arrays of plain dtypes, NumPy scalars,
    ``None``/bool/int/float/complex/str and tuples, lists and dicts of these (exact types:
    a subclass, e.g. one overriding ``__eq__``, is refused).
    """
    if depth > MAX_DEPTH:
        raise Unsupported("nesting deeper than 16 levels")
    t = type(value)
    if isinstance(value, np.ndarray):
        a = np.array(value, copy=True, subok=False)
        if a.dtype.kind not in SAFE_KINDS or a.dtype.fields is not None:
            raise Unsupported(f"array of dtype {a.dtype}")
        return {"t": "nd", "f": save_array(a)}
    if isinstance(value, np.generic):
        if value.dtype.kind not in SAFE_KINDS:
            raise Unsupported(f"numpy scalar of dtype {value.dtype}")
        return {"t": "np", "f": save_array(np.array(value))}
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
        if len(value) > MAX_STR:
            raise Unsupported("a string over 1,000,000 characters")
        return {"t": "str", "v": value}
    if t in (tuple, list):
        if len(value) > MAX_ITEMS:
            raise Unsupported(f"a {t.__name__} of over {MAX_ITEMS} items")
        return {"t": t.__name__, "v": [encode(v, save_array, depth + 1) for v in value]}
    if t is dict:
        if len(value) > MAX_ITEMS:
            raise Unsupported(f"a dict of over {MAX_ITEMS} items")
        items = list(value.items())
        return {
            "t": "dict",
            "k": [encode(k, save_array, depth + 1) for k, _ in items],
            "v": [encode(v, save_array, depth + 1) for _, v in items],
        }
    raise Unsupported(f"{t.__module__}.{t.__qualname__}")


def load_array(data: bytes) -> np.ndarray:
    """An ``.npy`` file's array, loaded without pickle, plain dtypes only."""
    a = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(a, np.ndarray) or a.dtype.kind not in SAFE_KINDS or a.dtype.fields is not None:
        raise Unsupported(f"array of dtype {getattr(a, 'dtype', type(a).__name__)}")
    return a


def decode(tree: Any, read_array: Callable[[str], np.ndarray], depth: int = 0) -> Any:
    """The value :func:`encode` wrote; ``read_array(name)`` loads one ``.npy`` safely."""
    if depth > MAX_DEPTH or not isinstance(tree, dict):
        raise Unsupported("malformed record")
    t = tree.get("t")
    if t == "nd":
        return read_array(str(tree["f"]))
    if t == "np":
        a = read_array(str(tree["f"]))
        if a.ndim != 0:
            raise Unsupported("malformed numpy scalar")
        return a[()]
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
        return str(tree["v"])[:MAX_STR]
    if t in ("tuple", "list"):
        items = [decode(v, read_array, depth + 1) for v in list(tree["v"])[:MAX_ITEMS]]
        return tuple(items) if t == "tuple" else items
    if t == "dict":
        keys = [decode(k, read_array, depth + 1) for k in list(tree["k"])[:MAX_ITEMS]]
        vals = [decode(v, read_array, depth + 1) for v in list(tree["v"])[:MAX_ITEMS]]
        out = {}
        for k, v in zip(keys, vals, strict=False):
            try:
                out[k] = v
            except TypeError as err:  # an unhashable key (a list): not a dict a student can return
                raise Unsupported("a dict with an unhashable key") from err
        return out
    raise Unsupported(f"unknown record type {t!r}")


def same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))
