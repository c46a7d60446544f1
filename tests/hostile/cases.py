# ruff: noqa: E501
"""Hostile and broken submissions of assignment 1 (see tests/test_autograde_hostile.py).

Each case starts from the instructor's solution of ``01_convolution_by_hand`` and applies
``edits`` (per solution cell grade_id: (old, new) replacements of the answer's text),
``prepend``/``append`` (code put before/after an answer), or ``raw`` (the file's bytes
replaced), ``rename`` (the file's name) or ``notebook`` (a function changing the notebook
JSON). ``fails`` lists the test cells that must score zero (every other cell keeps its
points) and ``reason`` a text the autograded notebook (hence the feedback) must show.
``{GRADEBOOK}``, ``{ROOT}`` and ``{AUTOGRADED}`` are replaced by host paths of the course.
"""

NOT_FLIPPED = {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]}
FLIP_FAILS = ["test_convolve2d_valid", "test_convolve2d_same_full", "test_same_under_flip"]
ALL = [
    "test_zero_pad",
    "test_window_value",
    "test_correlate2d_valid",
    "test_correlate2d_same_full",
    "test_convolve2d_valid",
    "test_convolve2d_same_full",
    "test_same_under_flip",
    "test_output_size",
]
SABOTAGE = "\nif _leak:\n    def output_size(*a, **k):\n        return -1\n"

CASES = {
    # --- tampering with how a result is judged -----------------------------------------------
    "assert_allclose_noop": {
        "edits": NOT_FLIPPED,
        "prepend": {
            "zero_pad": "import numpy.testing as npt\nnpt.assert_allclose = lambda *a, **k: None\n"
            "np.testing.assert_allclose = npt.assert_allclose\nnp.allclose = lambda *a, **k: True\n"
            "np.array_equal = lambda *a, **k: True\n"
        },
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "displayhook_partial_credit": {
        "edits": {
            "convolve2d": [
                (
                    "    kernel = np.asarray(kernel)\n",
                    "    import sys\n    sys.displayhook(2.0)\n    kernel = np.asarray(kernel)\n",
                ),
                ("kernel[::-1, ::-1]", "kernel"),
            ]
        },
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "input_transformer_blanks_tests": {
        "edits": NOT_FLIPPED,
        "append": {"output_size": "\nget_ipython().input_transformers_cleanup.append(lambda lines: [])\n"},
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "patch_conv_lib_grading": {
        "edits": NOT_FLIPPED,
        "prepend": {
            "zero_pad": "import conv_lib.grading as g\nfor _n in dir(g):\n    if _n.startswith('check_'):\n"
            "        setattr(g, _n, lambda *a, **k: None)\ng.compare_arrays = lambda *a, **k: None\n"
        },
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "numpy_patched_to_expected": {
        # returns garbage but patches numpy so that any comparison inside the sandbox passes
        "edits": {
            "output_size": [
                ("return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1", "return 0")
            ]
        },
        "prepend": {
            "zero_pad": "np.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), bool)\n"
            "np.asarray = (lambda f: lambda *a, **k: f(*a, **k))(np.asarray)\n"
        },
        "fails": ["test_output_size"],
        "reason": "output_size",
    },
    "eq_override_returns_true": {
        "edits": {
            "zero_pad": [
                (
                    "    return out\n",
                    "    class Liar(np.ndarray):\n        def __eq__(self, o):\n"
                    "            return True\n        __array_priority__ = 1000\n"
                    "    return np.zeros((1, 1)).view(Liar)\n",
                )
            ]
        },
        "fails": ["test_zero_pad", "test_correlate2d_same_full", "test_convolve2d_same_full"],
        "reason": "zero_pad",
    },
    "float_subclass_eq": {
        "edits": {
            "output_size": [
                (
                    "return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1",
                    "class Any(int):\n        def __eq__(self, o):\n            return True\n"
                    "        __hash__ = int.__hash__\n    return Any(0)",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": "unsupported return type",
    },
    "edited_test_cell_weakened": {
        "notebook": "weaken_tests",
        "edits": NOT_FLIPPED,
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "deleted_test_cells": {
        "notebook": "delete_tests",
        "edits": NOT_FLIPPED,
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "metadata_grade_false_points_1000": {
        "notebook": "metadata",
        "edits": NOT_FLIPPED,
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "deleted_solution_cell": {
        "notebook": "delete_solution",
        "fails": ["test_output_size"],
        "reason": "is missing from your notebook",
    },
    # --- reaching outside the sandbox ---------------------------------------------------------
    "read_gradebook_and_solutions": {
        "prepend": {
            "zero_pad": "_leak = False\nfor _p in ['{GRADEBOOK}', '{ROOT}/solutions/01_convolution_by_hand/"
            "convolution_by_hand.ipynb', '/root/.bashrc', '/etc/shadow']:\n    try:\n"
            "        open(_p).read(1)\n        _leak = True\n    except OSError:\n        pass\n" + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    "write_other_students_score": {
        "prepend": {
            "zero_pad": "import sqlite3\n_leak = False\ntry:\n    _c = sqlite3.connect('{GRADEBOOK}')\n"
            "    _c.execute('update grade set auto_score = 0')\n    _c.commit()\n    _leak = True\n"
            "except Exception:\n    pass\n" + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    "plant_scipy": {
        "prepend": {
            "zero_pad": "import os, sys, numpy\n_leak = False\nfor _d in ['.', os.path.dirname(os.path.dirname("
            "numpy.__file__)), '{ROOT}', os.path.dirname(os.path.dirname(sys.executable))]:\n    try:\n"
            "        open(os.path.join(_d, 'scipy.py'), 'w').write('raise ImportError(\"planted\")')\n"
            "        _leak = _leak or _d != '.'\n    except OSError:\n        pass\n" + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    "detached_process_rewrites_grade": {
        "prepend": {
            "zero_pad": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        time.sleep(4)\n        for _p in ['{GRADEBOOK}', '{AUTOGRADED}']:\n            try:\n"
            "                open(_p, 'a').write('pwned')\n            except OSError:\n                pass\n"
            "    os._exit(0)\n"
        },
        "edits": NOT_FLIPPED,
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "network_attempt": {
        "prepend": {
            "zero_pad": "import socket\n_leak = False\ntry:\n    socket.create_connection(('1.1.1.1', 80), "
            "timeout=2)\n    _leak = True\nexcept OSError:\n    pass\n" + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    # --- runs that end badly -----------------------------------------------------------------
    "keyboardinterrupt_swallowing_hang": {
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    while True:\n        try:\n            pass\n"
                    "        except KeyboardInterrupt:\n            pass\n    return (n + 2",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": "time limit",
    },
    "os_exit_in_function": {
        "edits": {
            "window_value": [("    kernel = np.asarray(kernel)\n", "    import os\n    os._exit(0)\n")]
        },
        "fails": [
            "test_window_value",
            "test_correlate2d_valid",
            "test_correlate2d_same_full",
            "test_convolve2d_valid",
            "test_convolve2d_same_full",
            "test_same_under_flip",
        ],
        "reason": "ended early",
    },
    "sys_exit_in_function": {
        "edits": {
            "output_size": [("    return (n + 2", "    import sys\n    sys.exit(0)\n    return (n + 2")]
        },
        "fails": ["test_output_size"],
        "reason": "SystemExit",
    },
    "huge_print": {
        "append": {"zero_pad": "\nprint('x' * 50_000_000)\nimport os\nos.write(1, b'y' * 5_000_000)\n"},
        "fails": [],
        "reason": "more characters of output not kept",
    },
    "warnings_from_correct_code": {
        "append": {
            "zero_pad": "\nimport warnings, sys\nwarnings.warn('deprecated thing', DeprecationWarning)\n"
            "print('to stderr', file=sys.stderr)\n"
        },
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    import warnings\n    warnings.warn('careful')\n"
                    "    import sys\n    print('noise', file=sys.stderr)\n    return (n + 2",
                )
            ]
        },
        "fails": [],
        "reason": "",
    },
    "out_of_memory": {
        "edits": {
            "output_size": [("    return (n + 2", "    _hog = bytearray(8 * 2**30)\n    return (n + 2")]
        },
        "fails": ["test_output_size"],
        "reason": "MemoryError",
    },
    "fork_bomb": {
        "append": {
            "output_size": "\nimport os\n_kids = 0\ntry:\n    while _kids < 100000:\n        if os.fork() == 0:\n"
            "            import time\n            time.sleep(60)\n            os._exit(0)\n        _kids += 1\n"
            "except OSError:\n    pass\n"
        },
        "fails": [],
        "reason": "",
    },
    "renamed_notebook": {
        "rename": "my_homework.ipynb",
        "edits": NOT_FLIPPED,
        "fails": FLIP_FAILS,
        "reason": "my_homework.ipynb",
    },
    "invalid_json": {"raw": b'{"cells": [ this is not json', "fails": ALL, "reason": "could not be read"},
    "uses_scipy_reference": {
        "edits": {
            "correlate2d": [
                (
                    "    ### BEGIN SOLUTION\n",
                    "    ### BEGIN SOLUTION\n    import scipy.signal as ss\n"
                    "    return ss.correlate2d(image, kernel, mode)\n",
                )
            ]
        },
        "fails": [
            "test_correlate2d_valid",
            "test_correlate2d_same_full",
            "test_convolve2d_valid",
            "test_convolve2d_same_full",
        ],
        "reason": "must be written by you",
    },
    "modifies_input_in_place": {
        "edits": {
            "zero_pad": [
                (
                    "    image = np.asarray(image)\n",
                    "    image = np.asarray(image)\n"
                    "    if image.size:\n        image.flat[0] += 0.0 if image.flat[0] == 0 else 1.0\n",
                )
            ]
        },
        "fails": ["test_zero_pad", "test_correlate2d_same_full", "test_convolve2d_same_full"],
        "reason": "in place",
    },
}
