"""The student kit's data file, ``coursekit/data.npz``, generated from :mod:`conv_lib`.

The kit (:mod:`coursekit`) is what the grading sandbox holds besides the standard library
and NumPy: the given cells' helpers and data, and no graded answer. Its tables are not
typed by hand: they are written here from conv_lib (the kernels, the one-page summary's
example, the training split of the digits, a half-size copy of the 'camera' photograph)
and ``tests/test_coursekit.py`` fails if the file drifts from conv_lib.

Regenerate after changing any of these in conv_lib::

    python -m course.kit            # writes coursekit/data.npz
    python -m course.kit --check    # exit status 1 if it is out of date
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["KIT_DATA", "kit_arrays", "read_kit", "stale_entries", "write_kit"]

#: The kit's data file.
KIT_DATA = Path(__file__).resolve().parents[1] / "coursekit" / "data.npz"

#: A fixed time stamp for the zip entries, so the file is the same bytes on every run.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def kit_arrays() -> dict[str, np.ndarray]:
    """Every array of the kit, computed from conv_lib (and the grader's digits split)."""
    import conv_lib as cl
    from course.grading.accuracy import digits_split
    from course.grading.cases import KERNEL_CANDIDATES

    X_train, y_train, _, _ = digits_split()
    pixels = np.rint(X_train[:, 0] * 16)
    if not np.array_equal(pixels / 16, X_train[:, 0]) or pixels.min() < 0 or pixels.max() > 16:
        raise ValueError("the digits are no longer sixteenths in [0, 1]; change how the kit stores them")
    arrays: dict[str, np.ndarray] = {
        "summary_image": np.asarray(cl.SUMMARY_IMAGE),
        "summary_kernel": np.asarray(cl.SUMMARY_KERNEL),
        "kernel_names": np.array(cl.KERNEL_NAMES),
        "kernel_candidates": np.array(KERNEL_CANDIDATES),
        "digits_train_sixteenths": pixels.astype(np.uint8),
        "digits_train_labels": y_train.astype(np.uint8),
        "camera_half": cl.load_image("camera", as_float=False)[::2, ::2].copy(),
    }
    for name in cl.KERNEL_NAMES:
        arrays[f"kernel_{name}"] = cl.get_kernel(name)
    return arrays


def write_kit(path: Path = KIT_DATA) -> Path:
    """Write :func:`kit_arrays` to ``path`` as an ``.npz`` (no pickles, fixed time stamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in sorted(kit_arrays().items()):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    path = Path(path)
    path.write_bytes(buffer.getvalue())
    return path


def read_kit(path: Path = KIT_DATA) -> dict[str, np.ndarray]:
    """The arrays stored in the kit's data file."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def stale_entries(path: Path = KIT_DATA) -> list[str]:
    """Names of the arrays that differ between the file and conv_lib (missing, extra or changed)."""
    stored = read_kit(path) if Path(path).is_file() else {}
    fresh = kit_arrays()
    stale = sorted(set(stored) ^ set(fresh))
    for key in sorted(set(stored) & set(fresh)):
        a, b = stored[key], fresh[key]
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
            stale.append(key)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.kit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if coursekit/data.npz is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_entries()
        if stale:
            print(f"{KIT_DATA} is out of date ({', '.join(stale)}): run python -m course.kit")
            return 1
        print(f"{KIT_DATA} is up to date")
        return 0
    print(f"wrote {write_kit()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
