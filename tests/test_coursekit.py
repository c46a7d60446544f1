"""coursekit, the student kit bound into the grading sandbox: its data equals conv_lib's, the
generated file does not drift, and it imports nothing but NumPy and the standard library."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import conv_lib as cl
import coursekit
from course import grading
from course.kit import KIT_DATA, kit_arrays, read_kit, stale_entries, write_kit

ROOT = Path(__file__).resolve().parents[1]


def test_data_file_is_generated_from_conv_lib(tmp_path: Path) -> None:
    """The committed coursekit/data.npz is exactly what `python -m course.kit` writes today."""
    assert stale_entries() == [], "run: python -m course.kit"
    fresh = write_kit(tmp_path / "data.npz")
    assert fresh.read_bytes() == KIT_DATA.read_bytes()
    assert set(read_kit(KIT_DATA)) == set(kit_arrays())


def test_stale_entries_names_what_drifted(tmp_path: Path) -> None:
    arrays = read_kit(KIT_DATA)
    arrays["kernel_sobel_x"] = arrays["kernel_sobel_x"] * 2
    del arrays["camera_half"]
    np.savez(tmp_path / "old.npz", **arrays)
    assert stale_entries(tmp_path / "old.npz") == ["camera_half", "kernel_sobel_x"]


def test_kit_equals_conv_lib() -> None:
    np.testing.assert_array_equal(coursekit.SUMMARY_IMAGE, cl.SUMMARY_IMAGE)
    np.testing.assert_array_equal(coursekit.SUMMARY_KERNEL, cl.SUMMARY_KERNEL)
    assert coursekit.SUMMARY_IMAGE.dtype == cl.SUMMARY_IMAGE.dtype
    assert not coursekit.SUMMARY_IMAGE.flags.writeable
    assert coursekit.KERNEL_NAMES == cl.KERNEL_NAMES
    assert coursekit.KERNEL_CANDIDATES == grading.KERNEL_CANDIDATES
    for name in cl.KERNEL_NAMES:
        kernel = coursekit.get_kernel(name)
        assert kernel.dtype == np.float64 and kernel.flags.writeable
        np.testing.assert_array_equal(kernel, cl.get_kernel(name))
    X, y = coursekit.load_digits_train()
    X_train, y_train, X_test, _ = grading.digits_split()
    np.testing.assert_array_equal(X, X_train)
    np.testing.assert_array_equal(y, y_train)
    assert X.dtype == X_train.dtype and y.dtype == y_train.dtype
    assert len(y) == 1797 - len(X_test)  # the test digits are not in the kit
    np.testing.assert_array_equal(coursekit.load_camera(), cl.load_image("camera")[::2, ::2])


def test_kit_returns_fresh_arrays_and_explains_bad_input() -> None:
    X, _ = coursekit.load_digits_train()
    X[:] = 0
    assert coursekit.load_digits_train()[0].max() == 1.0
    k = coursekit.get_kernel("box")
    k[:] = 5
    assert coursekit.get_kernel("box")[0, 0] == pytest.approx(1 / 9)
    with pytest.raises(ValueError, match=r"name: got 'sobel'; expected one of \["):
        coursekit.get_kernel("sobel")
    assert coursekit.pair(2) == (2, 2)
    assert coursekit.pair((1, 3)) == (1, 3)
    assert coursekit.pair(np.int64(4)) == (4, 4)
    for bad in (2.5, (1,), (1, 2, 3), True, None, "ab"):
        with pytest.raises(ValueError, match="value: got .*; expected an int or a pair of ints"):
            coursekit.pair(bad)


def test_kit_source_imports_only_numpy_and_the_standard_library() -> None:
    for path in (ROOT / "coursekit").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                tops = {(node.module or "").split(".")[0]}
            else:
                continue
            assert tops <= {"numpy"} | set(sys.stdlib_module_names), (path.name, tops)


def test_kit_works_with_numpy_alone(tmp_path: Path) -> None:
    """In a Python with only the standard library, NumPy and coursekit (as in the sandbox)."""
    site = tmp_path / "site"
    site.mkdir()
    numpy_dir = Path(np.__file__).resolve().parent
    for src in (numpy_dir, numpy_dir.with_name("numpy.libs"), ROOT / "coursekit"):
        if src.exists():
            os.symlink(src, site / src.name)
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import coursekit\n"
        "X, y = coursekit.load_digits_train()\n"
        "assert X.shape == (1437, 1, 8, 8) and coursekit.load_camera().shape == (256, 256)\n"
        "assert coursekit.get_kernel('sobel_x').shape == (3, 3)\n"
        "extra = sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)"
        " - {'numpy', 'coursekit', '__main__'} - set(sys.builtin_module_names))\n"
        "assert not extra, extra\n"
        "for name in ('conv_lib', 'course', 'scipy'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    raise AssertionError(name + ' is importable: the probe is not isolated')\n"
        "print('kit ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "kit ok"
