# ruff: noqa: E501
"""The hostile corpus: submissions that try to get points they do not deserve or to harm
the class, and the honest variants graded with them (tests/test_autograde_hostile.py and
tests/test_class_run.py grade all of them in ONE ``course autograde`` run).

A case is a dict:

``a``
    The assignment ("01" to "04").
``stubs``
    Start from the released notebook's stubs instead of the instructor's solution.
``edits`` / ``prepend`` / ``append`` / ``replace``
    Per answer cell ``grade_id``: ``(old, new)`` text replacements, code put before / after
    the answer, or the whole new answer.
``raw`` / ``rename`` / ``notebook`` / ``make``
    The file's bytes, its name, a change of the notebook JSON (tests/hostile/build.py
    ``NOTEBOOK_CHANGES``), or a builder that needs the host (``MAKERS``: tables of answers,
    pretrained parameters), with ``make_args``.
``fails``
    The test cells that score zero (``"ALL"``: every one); every other test cell keeps its
    points.
``reason``
    Text(s) the feedback page must show (HTML-unescaped), i.e. why points were lost.
``absent``
    Raw strings the feedback HTML must NOT contain (student markup).
``regrade``
    Graded a second time after the class run: the scores must not change.

``{GRADEBOOK}``, ``{ROOT}``, ``{AUTOGRADED}``, ``{SECRET_FILE}``, ``{SECRET_HEX}``, ``{REPO}``
and ``{VENV_SITE}`` in a case's text are replaced with the host's values when the
submission is built. Cases guarded by a *canary* (``_leak``) sabotage their own
``output_size`` if the sandbox let them see or touch what it must not, so a leak shows up
as a wrong score.
"""

A1, A2, A3, A4 = (
    "01_convolution_by_hand",
    "02_convolution_layers",
    "03_backpropagation",
    "04_applications",
)
ASSIGNMENT = {"01": A1, "02": A2, "03": A3, "04": A4}

A1_TESTS = [
    "test_zero_pad",
    "test_window_value",
    "test_correlate2d_valid",
    "test_correlate2d_same_full",
    "test_convolve2d_valid",
    "test_convolve2d_same_full",
    "test_same_under_flip",
    "test_output_size",
]
CORR_CONV = [
    "test_correlate2d_valid",
    "test_correlate2d_same_full",
    "test_convolve2d_valid",
    "test_convolve2d_same_full",
]
FLIP_FAILS = ["test_convolve2d_valid", "test_convolve2d_same_full", "test_same_under_flip"]
NOT_FLIPPED = {"convolve2d": [("kernel[::-1, ::-1]", "kernel")]}
CONV2D_TESTS = [
    "test_conv2d_basic",
    "test_conv2d_channels",
    "test_conv2d_stride_padding",
    "test_conv2d_dilation",
]
A4_ACCURACY = ["test_accuracy_085", "test_accuracy_093"]

#: Appended to a canary case: a leak (``_leak`` true) costs the output_size test.
SABOTAGE = "\nif _leak:\n    def output_size(*a, **k):\n        return -1\n"

#: The reference answers a student would love to reach, by every kind of import.
REFERENCE_BODY = {
    "importlib": "    import importlib\n    ref = importlib.import_module('conv_lib')\n",
    "dunder_concat": "    ref = __import__('conv' + '_lib')\n",
    "sys_modules": "    import sys\n    ref = sys.modules['conv' + '_lib']\n",
    "exec_encoded": "    ns = {}\n    import base64\n    exec(base64.b64decode('aW1wb3J0IGNvbnZfbGliIGFzIHJlZg==').decode(), ns)\n    ref = ns['ref']\n",
    "scipy_signal": "    from scipy import signal as ref\n",
    "venv_path": "    import sys\n    sys.path[:0] = ['{VENV_SITE}', '{REPO}']\n    import conv_lib as ref\n",
    "system_dist_packages": "    import glob, sys\n    sys.path[:0] = glob.glob('/usr/lib/python3*/dist-packages') + glob.glob('/usr/local/lib/python3*/*-packages')\n    from scipy import signal as ref\n",
}


def _reference_case(how: str) -> dict:
    body = REFERENCE_BODY[how]
    return {
        "a": "01",
        "replace": {
            "correlate2d": f"def correlate2d(image, kernel, mode='valid'):\n{body}    return ref.correlate2d(image, kernel, mode)\n",
            "convolve2d": f"def convolve2d(image, kernel, mode='valid'):\n{body}    return ref.convolve2d(image, kernel, mode)\n",
        },
        "fails": [*CORR_CONV, "test_same_under_flip"],
        "reason": {
            "importlib": "No module named 'conv_lib'",
            "dunder_concat": "No module named 'conv_lib'",
            "sys_modules": "KeyError",
            "exec_encoded": "No module named 'conv_lib'",
            "scipy_signal": "No module named 'scipy'",
            "venv_path": "No module named 'conv_lib'",
            "system_dist_packages": "No module named 'scipy'",
        }[how],
    }


#: Top-level code that imports a reference in the forms a naive checker misses; the
#: functions use it if it came (``_ref``), else give up.
TOPLEVEL_IMPORTS = """
_ref = None
try:
    import conv_lib as _ref
except ImportError:
    pass
if _ref is None:
    for _name in ('conv_lib', 'scipy.signal', 'torch', 'course.grading'):
        try:
            _ref = __import__(_name, fromlist=['x'])
            break
        except ImportError:
            continue
"""

#: Looks for the tests, the references and the grader in the sandbox's process (objects,
#: frames, modules); defines working functions only if it found any (the canary).
HUNT = """
import gc, inspect, sys
_MARK = ' '.join(['BEGIN', 'HIDDEN'])
_found = [m for m in list(sys.modules) if m in ('conv_lib', 'scipy', 'torch', 'course') or m.startswith(('course.', 'conv_lib.'))]
_GRADER_NAMES = {'check_zero_pad', 'check_output_size', 'hidden_rng', 'grading_context', 'GradingError', 'load_secret'}
for _o in gc.get_objects():
    try:
        if isinstance(_o, dict) and _GRADER_NAMES & {k for k in _o if isinstance(k, str)}:
            _found.append('a namespace of the grader')
        elif inspect.isfunction(_o) and not _o.__code__.co_filename.startswith('<cell') and (
            _o.__name__ in _GRADER_NAMES or _MARK in repr(_o.__code__.co_consts)
        ):
            _found.append(_o.__name__)
        elif isinstance(_o, (list, tuple)) and any(isinstance(x, str) and _MARK in x for x in _o):
            _found.append('a test source')
    except Exception:
        pass
for _f in inspect.stack():
    if _GRADER_NAMES & set(_f.frame.f_globals):
        _found.append('a frame of the grader')
_found += [p for p in ('{ROOT}/solutions', '{REPO}/course/grading', '{REPO}/conv_lib') if __import__('os').path.exists(p)]
"""

#: Rewrites what the answer server sends: ``_FORGE`` holds functions (header, buffers) ->
#: (header, buffers) applied to the next answers the server writes.
FORGE_SETUP = """
import sys, wire
_FORGE = []
_real_write = wire.write_message
def _forging_write(fd, header, buffers=()):
    if _FORGE and 'ok' in header:
        header, buffers = _FORGE.pop(0)(dict(header), list(buffers))
    return _real_write(fd, header, buffers)
wire.write_message = _forging_write
def _asked_by_grader():
    caller = sys._getframe(2)
    return caller.f_code.co_name == 'call' and 'self' in caller.f_locals
"""

#: A lookup table instead of code (tests/hostile/build.py ``table`` maker fills _TABLE).
TABLE_FUNCTIONS = {
    "zero_pad": "def zero_pad(image, padding):\n    return _lookup('zero_pad', image, padding)\n",
    "window_value": "def window_value(image, kernel, i, j):\n    return _lookup('window_value', image, kernel, i, j)\n",
    "correlate2d": "def correlate2d(image, kernel, mode='valid'):\n    return _lookup('correlate2d', image, kernel, mode)\n",
    "convolve2d": "def convolve2d(image, kernel, mode='valid'):\n    return _lookup('convolve2d', image, kernel, mode)\n",
    "output_size": "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n    return _lookup('output_size', n, kernel, stride, padding, dilation)\n",
}
TABLE_KEY = """
import base64, hashlib, pickle
import numpy as np
def _key(name, *args):
    h = hashlib.sha256(name.encode())
    for a in args:
        if isinstance(a, np.ndarray):
            h.update(b'A' + a.dtype.str.encode() + repr(a.shape).encode() + np.ascontiguousarray(a).tobytes())
        else:
            h.update(b'V' + repr(a).encode())
    return h.hexdigest()
def _lookup(name, *args):
    k = _key(name, *args)
    if k not in _TABLE:
        raise KeyError(f'{name}: this case is not in my table')
    return _TABLE[k]
"""

CASES: dict[str, dict] = {
    # ============ stubs + top-level code that forges answers or hunts for the tests ============
    "stubs_forge_ready_event": {
        "a": "01",
        "stubs": True,
        "append": {
            "output_size": "\nimport __main__, wire\nwire.write_message(__main__._ANSWERS, {'ev': 'ready'})\n"
            "for _k in range(50):\n    wire.write_message(__main__._ANSWERS, {'id': '%032x' % _k, 'ok': {'t': 'int', 'v': '4'}})\n"
        },
        "fails": "ALL",
        "reason": "not asked for",
    },
    "stubs_forge_answers_in_advance": {
        "a": "01",
        "stubs": True,
        "prepend": {
            "zero_pad": "import __main__, wire, threading, time\n"
            "def _spam():\n    for _k in range(200):\n"
            "        wire.write_message(__main__._ANSWERS, {'id': '%032x' % _k, 'ok': {'t': 'list', 'v': [{'t': 'int', 'v': '4'}, {'t': 'list', 'v': []}]}})\n"
            "        time.sleep(0.01)\n"
            "threading.Thread(target=_spam, daemon=True).start()\ntime.sleep(0.5)\n"
        },
        "fails": "ALL",
        "reason": "not written yet",
    },
    "stubs_hunt_tests_gc_inspect_modules": {
        "a": "01",
        "stubs": True,
        "append": {
            "output_size": HUNT
            + "\nif _found:\n    def output_size(n, kernel, stride=1, padding=0, dilation=1):\n        return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1\n"
        },
        "fails": "ALL",
        "reason": "not written yet",
    },
    "thread_forges_frames_during_a_call": {
        "a": "01",
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    import __main__, threading, time, wire\n"
                    "    def spam():\n        wire.write_message(__main__._ANSWERS, {'id': '0' * 32, 'ok': {'t': 'list', 'v': [{'t': 'int', 'v': '4'}, {'t': 'list', 'v': []}]}})\n"
                    "    threading.Thread(target=spam).start()\n    time.sleep(0.5)\n    return (n + 2",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": "not asked for",
    },
    # ============ reference imports, in every form ============
    **{f"reference_{how}": _reference_case(how) for how in REFERENCE_BODY},
    "reference_toplevel_try_if_for": {
        "a": "01",
        "prepend": {"zero_pad": TOPLEVEL_IMPORTS},
        "replace": {
            "correlate2d": "def correlate2d(image, kernel, mode='valid'):\n    return _ref.correlate2d(image, kernel, mode)\n",
            "convolve2d": "def convolve2d(image, kernel, mode='valid'):\n    return _ref.convolve2d(image, kernel, mode)\n",
        },
        "fails": [*CORR_CONV, "test_same_under_flip"],
        "reason": "AttributeError: 'NoneType' object has no attribute 'correlate2d'",
    },
    "reference_read_repo_and_venv_files": {
        "a": "01",
        "prepend": {
            "zero_pad": "import glob, os\n_leak = False\n"
            "for _p in ['{REPO}/conv_lib/conv.py', '{REPO}/course/grading/checks.py', '{ROOT}/solutions/01_convolution_by_hand/convolution_by_hand.ipynb', '{VENV_SITE}/scipy/__init__.py', '{VENV_SITE}/torch/__init__.py', '{GRADEBOOK}', '{SECRET_FILE}', '/etc/shadow', '/root/.bashrc']:\n"
            "    try:\n        open(_p, 'rb').read(1)\n        _leak = True\n    except OSError:\n        pass\n"
            "for _top in ['/sandbox', '/usr/lib', '/usr/local/lib', '/opt', '/work', '/root', '/home']:\n"
            "    for _dir, _subs, _files in os.walk(_top):\n"
            "        if _dir.count('/') > 6:\n            _subs[:] = []\n"
            "        _leak = _leak or any(x in ('conv_lib', 'scipy', 'torch', 'solutions', 'grading') for x in _subs)\n"
            + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    "reference_torch_in_conv2d": {
        "a": "02",
        "edits": {
            "conv2d": [
                (
                    '    """Forward pass of a 2-D convolution layer (cross-correlation), NCHW."""\n',
                    '    """Forward pass of a 2-D convolution layer (cross-correlation), NCHW."""\n'
                    "    import torch\n    import torch.nn.functional as F\n"
                    "    t = lambda a: None if a is None else torch.as_tensor(np.asarray(a, dtype=float))\n"
                    "    return F.conv2d(t(x), t(weight), t(bias), stride=stride, padding=padding, dilation=dilation).numpy()\n",
                )
            ]
        },
        "fails": CONV2D_TESTS,
        "reason": "No module named 'torch'",
    },
    # ============ hidden cases: guessing them ============
    "table_of_visible_answers": {
        "a": "01",
        "make": "table",
        "make_args": {"secret": "visible"},
        "fails": [t for t in A1_TESTS if t != "test_same_under_flip"],
        "reason": "this case is not in my table",
    },
    "table_from_public_generator_guessed_secret": {
        "a": "01",
        "make": "table",
        "make_args": {"secret": "guessed"},
        "fails": [t for t in A1_TESTS if t != "test_same_under_flip"],
        "reason": "this case is not in my table",
    },
    "table_copied_from_another_student": {
        "a": "01",
        "make": "table",
        "make_args": {"secret": "real", "student": "someone_else"},
        "fails": [t for t in A1_TESTS if t != "test_same_under_flip"],
        "reason": "this case is not in my table",
    },
    # even the instructor's secret (what a leak would give) builds no working table: the hidden
    # cases are also seeded by a fingerprint of the answers submitted, which include the table
    # itself (tests/test_hidden_cases.py shows the seeding reproduces the cases exactly)
    "control_table_with_the_real_secret": {
        "a": "01",
        "make": "table",
        "make_args": {"secret": "real"},
        "fails": [t for t in A1_TESTS if t != "test_same_under_flip"],
        "reason": "this case is not in my table",
    },
    # ============ assignment 4: the accuracy question ============
    "a4_predict_returns_what_it_was_handed": {
        "a": "04",
        "edits": {
            "cnn": [
                (
                    "def predict(params, X):\n",
                    "def predict(params, X, *args, **kwargs):\n"
                    "    for v in list(args) + list(kwargs.values()) + [params]:\n"
                    "        if np.shape(v) == (len(X),):\n            return np.asarray(v)\n"
                    "    return np.zeros(len(X), dtype=int)\n\n\ndef _real_predict(params, X):\n",
                ),
                (
                    "    ### BEGIN SOLUTION\n    params = init_params",
                    "    ### BEGIN SOLUTION\n    return y\n    params = init_params",
                ),
            ]
        },
        "fails": A4_ACCURACY,
        "reason": "validation accuracy 0.",
    },
    "a4_train_does_nothing": {
        "a": "04",
        "edits": {
            "cnn": [
                (
                    "    ### BEGIN SOLUTION\n    params = init_params",
                    "    ### BEGIN SOLUTION\n    return init_params(seed)\n    params = init_params",
                )
            ]
        },
        "fails": A4_ACCURACY,
        "reason": "is below 0.85",
    },
    "a4_hard_coded_pretrained_params": {
        "a": "04",
        "make": "pretrained",
        "fails": A4_ACCURACY,
        "reason": "test accuracy",
    },
    "a4_lookup_table_of_public_digits": {
        "a": "04",
        "make": "digit_table",
        "fails": A4_ACCURACY,
        "reason": "test accuracy",
    },
    # ============ harming the others (and the grader) ============
    "huge_return_value": {
        "a": "01",
        "edits": {
            "output_size": [("    return (n + 2", "    return np.zeros(20 * 2**20)\n    return (n + 2")]
        },
        "fails": ["test_output_size"],
        "reason": "answered with more than 64 MiB",
    },
    "forged_answer_one_buffer_many_times": {
        "a": "01",
        "prepend": {"output_size": FORGE_SETUP},
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    def forge(header, buffers):\n"
                    "        item = {'t': 'nd', 'd': '<f8', 's': [2**20], 'b': 0}\n"
                    "        header['ok'] = {'t': 'list', 'v': [{'t': 'list', 'v': [item] * 3000}, {'t': 'list', 'v': []}]}\n"
                    "        return header, [bytes(8 * 2**20)]\n"
                    "    if _asked_by_grader():\n        _FORGE.append(forge)\n    return (n + 2",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": "uses buffer 0 twice",
    },
    "forged_many_in_place_mutations": {
        "a": "01",
        "prepend": {"window_value": FORGE_SETUP},
        "edits": {
            "window_value": [
                (
                    "    kernel = np.asarray(kernel)\n",
                    "    img = np.asarray(image)\n"
                    "    def forge(header, buffers):\n"
                    "        muts = []\n"
                    "        for k in range(20000):\n"
                    "            buffers.append(np.full(img.shape, k + 0.5, dtype=img.dtype).tobytes())\n"
                    "            muts.append({'t': 'list', 'v': [{'t': 'int', 'v': '0'}, {'t': 'nd', 'd': img.dtype.str, 's': list(img.shape), 'b': len(buffers) - 1}]})\n"
                    "        header['ok'] = {'t': 'list', 'v': [header['ok']['v'][0], {'t': 'list', 'v': muts}]}\n"
                    "        return header, buffers\n"
                    "    if _asked_by_grader():\n        _FORGE.append(forge)\n"
                    "    kernel = np.asarray(kernel)\n",
                )
            ]
        },
        "fails": ["test_window_value"],
        "reason": "modified its argument `image` in place",
    },
    "fills_work_dir_and_tmp": {
        "a": "01",
        "prepend": {
            "zero_pad": "import os\n_wrote = 0\n"
            "for _d in ['/sandbox/work', '/tmp', '/dev/shm', '/var/tmp', '/home', '/run']:\n"
            "    for _k in range(8):\n"
            "        try:\n"
            "            with open(os.path.join(_d, f'fill{_k}'), 'wb') as _fh:\n"
            "                for _ in range(16):\n                    _fh.write(b'x' * 2**20)\n"
            "                    _wrote += 2**20\n"
            "        except OSError:\n            break\n"
            "_leak = _wrote > 130 * 2**20  # the work dir and /tmp: 64 MiB each\n" + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    "huge_prints": {
        "a": "01",
        "append": {
            "zero_pad": "\nprint('x' * 50_000_000)\nimport os, sys\nos.write(1, b'y' * 5_000_000)\nos.write(2, b'z' * 5_000_000)\n"
        },
        "edits": {"output_size": [("    return (n + 2", "    print('w' * 10_000_000)\n    return (n + 2")]},
        "fails": [],
        "reason": "output cut at",
    },
    "memory_bomb_in_function": {
        "a": "01",
        "edits": {
            "output_size": [("    return (n + 2", "    hog = bytearray(8 * 2**30)\n    return (n + 2")]
        },
        "fails": ["test_output_size"],
        "reason": "MemoryError",
    },
    "memory_bomb_touching_pages_at_top_level": {
        "a": "01",
        "prepend": {
            "output_size": "_hog = []\ntry:\n    while True:\n        _hog.append(bytearray(64 * 2**20))\nfinally:\n    _hog.clear()\n"
        },
        "fails": ["test_output_size"],
        "reason": "MemoryError",
    },
    "fork_bomb": {
        "a": "01",
        "append": {
            "output_size": "\nimport os\n_kids = 0\ntry:\n    while _kids < 100000:\n        if os.fork() == 0:\n"
            "            import time\n            time.sleep(60)\n            os._exit(0)\n        _kids += 1\n"
            "except OSError:\n    pass\n"
        },
        "fails": [],
        "reason": "",
    },
    "infinite_loop_in_function": {
        "a": "01",
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    while True:\n        try:\n            pass\n        except BaseException:\n            pass\n    return (n + 2",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": "time limit",
    },
    "infinite_loop_at_top_level": {
        "a": "01",
        "prepend": {
            "output_size": "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n"
        },
        "fails": ["test_output_size"],
        "reason": "time limit",
    },
    "os_exit_in_function": {
        "a": "01",
        "edits": {
            "output_size": [("    return (n + 2", "    import os\n    os._exit(3)\n    return (n + 2")]
        },
        "fails": ["test_output_size"],
        "reason": "exit status 3",
    },
    "conv2d_exits_pooling_still_graded": {
        # a crash gives no answer: the grader must not call conv2d again (the swapped-channel
        # probe did, and used up the process starts the pooling cells needed)
        "a": "02",
        "edits": {
            "conv2d": [
                (
                    '    """Forward pass of a 2-D convolution layer (cross-correlation), NCHW."""\n',
                    '    """Forward pass of a 2-D convolution layer (cross-correlation), NCHW."""\n'
                    "    import os\n    os._exit(3)\n",
                )
            ]
        },
        "fails": CONV2D_TESTS,
        "reason": "exit status 3",
    },
    "conv2d_backward_exits_pooling_still_graded": {
        "a": "03",
        "edits": {
            "conv2d_backward": [
                (
                    '    """Gradients (grad_x, grad_weight, grad_bias) of a conv2d_forward layer."""\n',
                    '    """Gradients (grad_x, grad_weight, grad_bias) of a conv2d_forward layer."""\n'
                    "    import os\n    os._exit(3)\n",
                )
            ]
        },
        "fails": [
            "test_conv2d_backward_input",
            "test_conv2d_backward_weight",
            "test_conv2d_backward_bias",
            "test_conv2d_backward_strided",
        ],
        "reason": "exit status 3",
    },
    "sys_exit_in_function": {
        "a": "01",
        "edits": {
            "output_size": [("    return (n + 2", "    import sys\n    sys.exit(0)\n    return (n + 2")]
        },
        "fails": ["test_output_size"],
        "reason": "SystemExit",
    },
    "os_exit_in_cell": {
        "a": "01",
        "prepend": {"output_size": "import os\nos._exit(4)\n"},
        "fails": ["test_output_size"],
        "reason": "exit status 4",
    },
    "sys_exit_in_cell": {
        "a": "01",
        "prepend": {"output_size": "raise SystemExit('bye')\n"},
        "fails": ["test_output_size"],
        "reason": "SystemExit",
    },
    "kills_itself_with_a_signal": {
        "a": "01",
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n    return (n + 2",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": "signal 9",
    },
    "reads_proc_for_the_secret": {
        "a": "01",
        "prepend": {
            "zero_pad": "import os\n_leak = False\n_seen = []\n"
            "for _pid in os.listdir('/proc'):\n    for _f in ('environ', 'cmdline', 'maps'):\n"
            "        try:\n            _seen.append(open(f'/proc/{_pid}/{_f}', 'rb').read())\n        except Exception:\n            pass\n"
            "for _f in ('/proc/self/mountinfo', '/proc/1/environ', '/proc/self/environ'):\n"
            "    try:\n        _seen.append(open(_f, 'rb').read())\n    except Exception:\n        pass\n"
            "_leak = any(b'{SECRET_HEX}' in _s or b'COURSE_SECRET_FILE' in _s for _s in _seen)\n" + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    "network": {
        "a": "01",
        "prepend": {
            "zero_pad": "import socket\n_leak = False\nfor _addr in [('1.1.1.1', 80), ('127.0.0.1', 22), ('pypi.org', 443)]:\n"
            "    try:\n        socket.create_connection(_addr, timeout=2).close()\n        _leak = True\n    except OSError:\n        pass\n"
            + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    "writes_gradebook_and_other_students": {
        "a": "01",
        "prepend": {
            "zero_pad": "import sqlite3\n_leak = False\ntry:\n    _c = sqlite3.connect('{GRADEBOOK}')\n"
            "    _c.execute('update grade set auto_score = 0')\n    _c.commit()\n    _leak = True\nexcept Exception:\n    pass\n"
            "for _p in ['{AUTOGRADED}', '{ROOT}/solutions/01_convolution_by_hand/convolution_by_hand.ipynb', '{REPO}/course/grader.py']:\n"
            "    try:\n        open(_p, 'a').write('pwned')\n        _leak = True\n    except OSError:\n        pass\n"
            + SABOTAGE
        },
        "fails": [],
        "reason": "",
    },
    "detached_process_rewrites_later": {
        "a": "01",
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
    # ============ return values that try to pass the checks ============
    "int_subclass_eq_always_true": {
        "a": "01",
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    class Any(int):\n        def __eq__(self, o):\n            return True\n        __hash__ = int.__hash__\n"
                    "    return Any(0)\n    return (n + 2",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": "object in your notebook",
    },
    "ndarray_subclass_eq_always_true": {
        "a": "01",
        "edits": {
            "zero_pad": [
                (
                    "    return out\n",
                    "    class Liar(np.ndarray):\n        def __eq__(self, o):\n            return True\n        __array_priority__ = 1000\n"
                    "    return out.view(Liar)\n",
                )
            ]
        },
        "fails": ["test_zero_pad"],
        "reason": "expected a numeric array",
    },
    "list_subclass_answer": {
        "a": "01",
        "append": {
            "same_under_flip": "\nclass _Everything(list):\n    def __eq__(self, o):\n        return True\n    def __iter__(self):\n        return iter(KERNEL_CANDIDATES)\nsame_under_flip = _Everything(same_under_flip)\n"
        },
        "fails": ["test_same_under_flip"],
        "reason": "Expected a list of kernel names, got <_Everything object in your notebook>",
    },
    "object_array": {
        "a": "01",
        "edits": {
            "window_value": [
                (
                    "    return (window * kernel).sum()",
                    "    return np.array((window * kernel).sum(), dtype=object)",
                )
            ]
        },
        "fails": ["test_window_value"],
        "reason": "expected a numeric array",
    },
    "recursive_structure": {
        "a": "01",
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    loop = []\n    loop.append(loop)\n    return loop\n    return (n + 2",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": "cannot be sent to the grader",
    },
    "nan_and_inf_tricks": {
        "a": "01",
        "edits": {
            "output_size": [("    return (n + 2", "    return float('nan')\n    return (n + 2")],
            "window_value": [("    return (window * kernel).sum()", "    return np.float64('nan')")],
        },
        "fails": ["test_window_value", "test_output_size", *CORR_CONV, "test_same_under_flip"],
        "reason": "nan",
    },
    # ============ the notebook itself ============
    "lone_surrogate_and_nul_in_answer": {
        "a": "01",
        "raw_replace": [("# one window", "# one window \\ud800 \\u0000 \\udfff \\u202e")],
        "append": {"zero_pad": "\nprint('# one window')\n"},
        "fails": [],
        "reason": "",
    },
    "invalid_utf8_notebook": {
        "a": "01",
        "raw_replace_bytes": [(b"def zero_pad", b"def \xff\xfe zero_pad")],
        "fails": "ALL",
        "reason": "could not be read",
    },
    "test_cells_weakened_and_deleted_metadata_changed": {
        "a": "01",
        "notebook": "weaken_tests",
        "edits": NOT_FLIPPED,
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "deleted_solution_cell": {
        "a": "01",
        "notebook": "delete_output_size",
        "fails": ["test_output_size"],
        "reason": "is missing from your notebook",
    },
    "renamed_notebook": {
        "a": "01",
        "rename": "my_homework.ipynb",
        "edits": NOT_FLIPPED,
        "fails": FLIP_FAILS,
        "reason": "my_homework.ipynb",
    },
    "invalid_json": {
        "a": "01",
        "raw": b'{"cells": [ this is not json',
        "fails": "ALL",
        "reason": "could not be read",
    },
    "patches_numpy_in_its_process": {
        "a": "01",
        "edits": NOT_FLIPPED,
        "prepend": {
            "zero_pad": "import numpy.testing as npt\nnpt.assert_allclose = lambda *a, **k: None\n"
            "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\nnp.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), bool)\n"
        },
        "fails": FLIP_FAILS,
        "reason": "you computed cross-correlation",
    },
    "modifies_input_in_place": {
        "a": "01",
        "edits": {
            "zero_pad": [
                (
                    "    image = np.asarray(image)\n",
                    "    image = np.asarray(image)\n    if image.size:\n        image.flat[0] += 1.0\n",
                )
            ]
        },
        "fails": ["test_zero_pad", "test_correlate2d_same_full", "test_convolve2d_same_full"],
        "reason": "modified its argument `image` in place",
    },
    # ============ markup in the hand-graded answer (assignment 4) ============
    "a4_script_and_img_onerror_in_markdown": {
        "a": "04",
        "replace": {
            "disadvantage_answer": "Convolutions are slow.\n\n<script>document.title='pwned-script'</script>\n\n"
            '<img src=x onerror="document.title=\'pwned-img\'">\n\n<iframe src="javascript:alert(1)"></iframe>\n'
        },
        "fails": [],
        "reason": ["<script>document.title='pwned-script'</script>", "<img src=x onerror="],
        "absent": ["<script>document.title", "<img src=x", "<iframe src"],
    },
    "a4_javascript_link_in_markdown": {
        "a": "04",
        "replace": {
            "disadvantage_answer": 'See [my notes](javascript:alert(document.cookie)) and <a href="javascript:alert(2)">this</a>.\n'
            "```\n</code></pre><script>alert(3)</script>\n```\n"
        },
        "fails": [],
        "reason": ["[my notes](javascript:alert(document.cookie))"],
        "absent": ['<a href="javascript:', "<script>alert(3)"],
    },
    # markdown in text the grader writes into its notes (a decoding error quoting a forged
    # value) or in a file name: the notes are plain text, no link of the student's is rendered
    "markdown_link_in_a_forged_value_type": {
        "a": "01",
        "prepend": {"output_size": FORGE_SETUP},
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    def forge(header, buffers):\n"
                    "        header['ok'] = {'t': 'int', 'v': '[x](javascript:alert(document.cookie))'}\n"
                    "        return header, []\n"
                    "    if _asked_by_grader():\n        _FORGE.append(forge)\n    return (n + 2",
                )
            ]
        },
        "fails": ["test_output_size"],
        "reason": ["(invalid literal for int() with base 10: '[x](javascript:alert(document.cookie))')"],
        "absent": ['href="javascript:'],
    },
    "markdown_link_in_the_file_name": {
        "a": "01",
        "rename": "x`[x](javascript:alert(document.cookie))`.ipynb",
        "edits": NOT_FLIPPED,
        "fails": FLIP_FAILS,
        "reason": ["you computed cross-correlation"],  # collect keeps it under the expected name
        "absent": ['href="javascript:'],
    },
    # ============ randomness: the same grade on every regrade ============
    "random_answers": {
        "a": "01",
        "edits": {
            "output_size": [
                (
                    "    return (n + 2",
                    "    import random\n    if random.random() < 0.5:\n        return -1\n    return (n + 2",
                )
            ],
            "window_value": [
                (
                    "    return (window * kernel).sum()",
                    "    return (window * kernel).sum() + (np.random.rand() < 0.3)",
                )
            ],
        },
        "fails": "RANDOM",  # whatever it gets, a regrade must give the same
        "reason": "",
        "regrade": True,
    },
    # NumPy's recommended idiom, np.random.default_rng() without a seed, draws from the OS: at
    # the top level (which answers work) and in a call; the sandbox must fix that entropy too
    "random_answers_unseeded_default_rng": {
        "a": "01",
        "prepend": {"zero_pad": "_BITS = np.random.default_rng().integers(0, 2, 8)\n"},
        "edits": {
            "zero_pad": [
                (
                    "    image = np.asarray(image)\n",
                    "    if not _BITS[0]:\n        return None\n    image = np.asarray(image)\n",
                )
            ],
            "output_size": [
                (
                    "    return (n + 2",
                    "    if not _BITS[1] or np.random.default_rng().random() < 0.1:\n        return -1\n    return (n + 2",
                )
            ],
            "convolve2d": [
                (
                    "    kernel = np.asarray(kernel)\n",
                    "    if not _BITS[2]:\n        return None\n    kernel = np.asarray(kernel)\n",
                )
            ],
        },
        "append": {"same_under_flip": "\nif not _BITS[3]:\n    same_under_flip = []\n"},
        "fails": "RANDOM",
        "reason": "",
        "regrade": True,
    },
}


# ============ honest students: they all get full marks in the class run ============

#: Assignment 1, written with NumPy's vectorised tools instead of loops.
A1_VECTORISED = {
    "zero_pad": "def zero_pad(image, padding):\n    image = np.asarray(image)\n    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding\n"
    "    widths = [(0, 0)] * (image.ndim - 2) + [(ph, ph), (pw, pw)]\n    return np.pad(image, widths)\n",
    "window_value": "def window_value(image, kernel, i, j):\n    kernel = np.asarray(kernel)\n"
    "    return np.einsum('ij,ij->', np.asarray(image)[i:i + kernel.shape[0], j:j + kernel.shape[1]], kernel)\n",
    "correlate2d": "from numpy.lib.stride_tricks import sliding_window_view\n\n\n"
    "def correlate2d(image, kernel, mode='valid'):\n    image = np.asarray(image, dtype=np.result_type(image, kernel, np.float32))\n"
    "    kernel = np.asarray(kernel)\n    kh, kw = kernel.shape\n    h, w = image.shape\n"
    "    if mode in ('full', 'same'):\n        image = zero_pad(image, (kh - 1, kw - 1))\n"
    "    out = np.einsum('ijkl,kl->ij', sliding_window_view(image, (kh, kw)), kernel).astype(image.dtype)\n"
    "    if mode == 'same':\n        return out[kh // 2:kh // 2 + h, kw // 2:kw // 2 + w]\n    return out\n",
    "convolve2d": "def convolve2d(image, kernel, mode='valid'):\n    flipped = np.flip(np.asarray(kernel))\n"
    "    if mode != 'same':\n        return correlate2d(image, flipped, mode)\n"
    "    kh, kw = flipped.shape\n    h, w = np.shape(image)\n    full = correlate2d(image, flipped, 'full')\n"
    "    return full[(kh - 1) // 2:(kh - 1) // 2 + h, (kw - 1) // 2:(kw - 1) // 2 + w]\n",
    "same_under_flip": "same_under_flip = [n for n in KERNEL_CANDIDATES if np.array_equal(get_kernel(n), get_kernel(n)[::-1, ::-1])]\nprint(same_under_flip)\n",
    "output_size": "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n    span = dilation * (kernel - 1) + 1\n"
    "    return int((n + 2 * padding - span) // stride) + 1\n",
}

#: Assignment 1 with explicit loops everywhere.
A1_LOOPS = {
    "zero_pad": "def zero_pad(image, padding):\n    image = np.asarray(image)\n    if isinstance(padding, int):\n        padding = (padding, padding)\n"
    "    ph, pw = padding\n    h, w = image.shape[-2:]\n    out = np.zeros(image.shape[:-2] + (h + 2 * ph, w + 2 * pw), dtype=image.dtype)\n"
    "    for r in range(h):\n        for c in range(w):\n            out[..., ph + r, pw + c] = image[..., r, c]\n    return out\n",
    "window_value": "def window_value(image, kernel, i, j):\n    total = 0.0\n    for m in range(len(kernel)):\n        for n in range(len(kernel[0])):\n"
    "            total += image[i + m][j + n] * kernel[m][n]\n    return total\n",
    "convolve2d": "def convolve2d(image, kernel, mode='valid'):\n    kernel = np.asarray(kernel)\n    kh, kw = kernel.shape\n"
    "    flipped = np.zeros_like(kernel)\n    for m in range(kh):\n        for n in range(kw):\n            flipped[m, n] = kernel[kh - 1 - m, kw - 1 - n]\n"
    "    if mode == 'same':\n        h, w = np.shape(image)\n        full = correlate2d(image, flipped, 'full')\n"
    "        return full[(kh - 1) // 2:(kh - 1) // 2 + h, (kw - 1) // 2:(kw - 1) // 2 + w]\n    return correlate2d(image, flipped, mode)\n",
    "same_under_flip": "same_under_flip = ['box', 'gaussian', 'laplacian', 'sharpen']\n",
    "output_size": "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n    count, start = 0, 0\n"
    "    while start + dilation * (kernel - 1) < n + 2 * padding:\n        count += 1\n        start += stride\n    return count\n",
}

#: Assignment 2, conv2d by im2col and pooling by loops.
A2_IM2COL = {
    "conv2d": "def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):\n"
    "    x, weight = np.asarray(x), np.asarray(weight)\n    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)\n"
    "    n, c_in, h, w = x.shape\n    c_out, _, kh, kw = weight.shape\n"
    "    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1\n    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1\n"
    "    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))\n"
    "    cols = np.empty((n, c_in, kh, kw, out_h, out_w), dtype=np.result_type(x, weight))\n"
    "    for m in range(kh):\n        for q in range(kw):\n"
    "            cols[:, :, m, q] = xp[:, :, m * dh:m * dh + sh * (out_h - 1) + 1:sh, q * dw:q * dw + sw * (out_w - 1) + 1:sw]\n"
    "    out = np.tensordot(cols, weight, axes=([1, 2, 3], [1, 2, 3])).transpose(0, 3, 1, 2)\n"
    "    if bias is not None:\n        out = out + np.asarray(bias).reshape(1, -1, 1, 1)\n    return out.astype(np.result_type(x, weight))\n",
    "pooling": "def _pool(x, kernel_size, stride, reduce):\n    x = np.asarray(x)\n    kh, kw = pair(kernel_size)\n"
    "    sh, sw = (kh, kw) if stride is None else pair(stride)\n    n, c, h, w = x.shape\n"
    "    out_h, out_w = (h - kh) // sh + 1, (w - kw) // sw + 1\n    out = np.empty((n, c, out_h, out_w), dtype=np.result_type(x, np.float32) if reduce is np.mean else x.dtype)\n"
    "    for i in range(out_h):\n        for j in range(out_w):\n            out[:, :, i, j] = reduce(x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))\n    return out\n\n\n"
    "def max_pool2d(x, kernel_size, stride=None):\n    return _pool(x, kernel_size, stride, np.max)\n\n\n"
    "def avg_pool2d(x, kernel_size, stride=None):\n    return _pool(x, kernel_size, stride, np.mean)\n",
}

HONEST: dict[str, dict] = {
    **{f"honest_a1_solution_{k}": {"a": "01"} for k in range(3)},
    **{f"honest_a1_vectorised_{k}": {"a": "01", "replace": A1_VECTORISED} for k in range(3)},
    **{f"honest_a1_loops_{k}": {"a": "01", "replace": A1_LOOPS} for k in range(2)},
    **{f"honest_a2_solution_{k}": {"a": "02"} for k in range(2)},
    **{f"honest_a2_im2col_{k}": {"a": "02", "replace": A2_IM2COL} for k in range(2)},
    **{f"honest_a3_solution_{k}": {"a": "03"} for k in range(2)},
    "honest_a4_solution": {"a": "04"},
}

#: Issue 9's attack classes, and the cases of each (every case is in exactly one).
ATTACK_CLASSES: dict[str, list[str]] = {
    "stubs + top-level code forging answers or protocol events, or hunting the tests": [
        "stubs_forge_ready_event",
        "stubs_forge_answers_in_advance",
        "stubs_hunt_tests_gc_inspect_modules",
        "thread_forges_frames_during_a_call",
    ],
    "reference imports in any form, reference files": [
        *(f"reference_{how}" for how in REFERENCE_BODY),
        "reference_toplevel_try_if_for",
        "reference_read_repo_and_venv_files",
        "reference_torch_in_conv2d",
    ],
    "hidden-case guessing": [
        "table_of_visible_answers",
        "table_from_public_generator_guessed_secret",
        "table_copied_from_another_student",
        "control_table_with_the_real_secret",
    ],
    "assignment 4: accuracy without learning": [
        "a4_predict_returns_what_it_was_handed",
        "a4_train_does_nothing",
        "a4_hard_coded_pretrained_params",
        "a4_lookup_table_of_public_digits",
    ],
    "harming the others or the grader": [
        "huge_return_value",
        "forged_answer_one_buffer_many_times",
        "forged_many_in_place_mutations",
        "fills_work_dir_and_tmp",
        "huge_prints",
        "memory_bomb_in_function",
        "memory_bomb_touching_pages_at_top_level",
        "fork_bomb",
        "infinite_loop_in_function",
        "infinite_loop_at_top_level",
        "os_exit_in_function",
        "conv2d_exits_pooling_still_graded",
        "conv2d_backward_exits_pooling_still_graded",
        "sys_exit_in_function",
        "os_exit_in_cell",
        "sys_exit_in_cell",
        "kills_itself_with_a_signal",
        "reads_proc_for_the_secret",
        "network",
        "writes_gradebook_and_other_students",
        "detached_process_rewrites_later",
    ],
    "return values made to fool a check": [
        "int_subclass_eq_always_true",
        "ndarray_subclass_eq_always_true",
        "list_subclass_answer",
        "object_array",
        "recursive_structure",
        "nan_and_inf_tricks",
        "patches_numpy_in_its_process",
        "modifies_input_in_place",
    ],
    "the notebook file: invalid unicode, JSON, changed tests and metadata": [
        "lone_surrogate_and_nul_in_answer",
        "invalid_utf8_notebook",
        "test_cells_weakened_and_deleted_metadata_changed",
        "deleted_solution_cell",
        "renamed_notebook",
        "invalid_json",
    ],
    "markup in the hand-graded answer or in the grader's notes": [
        "a4_script_and_img_onerror_in_markdown",
        "a4_javascript_link_in_markdown",
        "markdown_link_in_a_forged_value_type",
        "markdown_link_in_the_file_name",
    ],
    "random answers": ["random_answers", "random_answers_unseeded_default_rng"],
}
