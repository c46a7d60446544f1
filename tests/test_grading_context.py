"""Secret hidden cases (course.grading.context), the instructor secret (course.secret) and
assignment 4's accuracy judged by the grader on data student code never receives."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import conv_lib as cl
from course import secret as course_secret
from course.grading import (
    GradingError,
    check_accuracy,
    check_validation_accuracy,
    check_zero_pad,
    current_context,
    digits_split,
    grading_context,
    hidden_rng,
    secret_relabelling,
)
from course.grading import cases as C
from course.secret import SecretError, create_secret, ensure_secret, load_secret, secret_path

ROOT = Path(__file__).resolve().parents[1]
SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))


def hidden_conv_cases(secret: bytes, student: str, assignment: str = "02_convolution_layers") -> list:
    with grading_context(secret, student, assignment):
        return [c.params for c in C.conv_cases("stride_padding", hidden=True)]


def same_cases(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    if len(a) != len(b):
        return False
    for pa, pb in zip(a, b, strict=True):
        for key in pa:
            va, vb = pa[key], pb[key]
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                if va is None or vb is None or va.shape != vb.shape or not np.array_equal(va, vb):
                    return False
            elif va != vb:
                return False
    return True


# ---------------------------------------------------------------------------------------
# grading_context / hidden_rng
# ---------------------------------------------------------------------------------------


def test_hidden_cases_differ_by_student_secret_and_assignment_and_repeat_on_regrade() -> None:
    alice = hidden_conv_cases(SECRET, "alice")
    assert same_cases(alice, hidden_conv_cases(SECRET, "alice"))  # regrading: the same cases
    assert not same_cases(alice, hidden_conv_cases(SECRET, "bob"))
    assert not same_cases(alice, hidden_conv_cases(OTHER_SECRET, "alice"))
    assert not same_cases(alice, hidden_conv_cases(SECRET, "alice", "04_applications"))


def test_hidden_rng_is_the_documented_hmac() -> None:
    with grading_context(SECRET, "alice", "01_convolution_by_hand") as ctx:
        digest = hmac.new(SECRET, b"01_convolution_by_hand\0alice\0zero_pad", hashlib.sha256).digest()
        expected = np.random.default_rng(int.from_bytes(digest, "big")).random(5)
        np.testing.assert_array_equal(hidden_rng("zero_pad").random(5), expected)
        assert current_context() is ctx and ctx.student == "alice"
        assert "secret" not in repr(ctx) and SECRET.hex() not in repr(ctx)


def test_visible_cases_are_the_same_everywhere() -> None:
    outside = [c.params["grad_out"] for c in C.backward_cases("basic", hidden=False)]
    with grading_context(SECRET, "alice", "03_backpropagation"):
        inside = [c.params["grad_out"] for c in C.backward_cases("basic", hidden=False)]
    assert len(outside) == len(inside) == 3
    for a, b in zip(outside, inside, strict=True):
        np.testing.assert_array_equal(a, b)


def test_hidden_cases_only_inside_the_grader() -> None:
    assert current_context() is None
    with pytest.raises(GradingError, match="hidden cases are generated only by the grader"):
        hidden_rng("zero_pad")
    with pytest.raises(GradingError, match="hidden cases are generated only by the grader"):
        check_zero_pad(cl.zero_pad, hidden=True)
    check_zero_pad(cl.zero_pad)  # the visible cases run anywhere


def test_context_ends_even_on_error_and_does_not_nest() -> None:
    with pytest.raises(RuntimeError, match="boom"), grading_context(SECRET, "alice", "a"):
        raise RuntimeError("boom")
    assert current_context() is None
    with grading_context(SECRET, "alice", "a"):
        with pytest.raises(GradingError, match="already active"), grading_context(SECRET, "bob", "a"):
            pass
        assert current_context().student == "alice"
    assert current_context() is None


@pytest.mark.parametrize(
    ("secret", "student", "assignment", "message"),
    [
        (b"short", "alice", "a", "secret: got 5 bytes; expected bytes, at least 16"),
        ("not bytes" * 4, "alice", "a", "secret: got 'str'"),
        (SECRET, "", "a", "student: got ''; expected a non-empty string"),
        (SECRET, "al\0ice", "a", "student: got 'al\\\\x00ice'; expected a string without NUL"),
        (SECRET, "alice", None, "assignment: got None"),
    ],
)
def test_context_refuses_bad_input(secret: Any, student: Any, assignment: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message), grading_context(secret, student, assignment):
        pass


# ---------------------------------------------------------------------------------------
# course.secret
# ---------------------------------------------------------------------------------------


@pytest.fixture
def no_secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv(course_secret.SECRET_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "conv-course" / "convolution-in-deep-learning.secret"


def test_default_location_is_outside_the_repository(
    no_secret_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert secret_path() == no_secret_env
    monkeypatch.delenv("XDG_CONFIG_HOME")
    default = secret_path()
    assert default == Path.home() / ".config" / "conv-course" / "convolution-in-deep-learning.secret"
    assert ROOT not in default.resolve().parents
    monkeypatch.setenv(course_secret.SECRET_ENV, "/somewhere/else.secret")
    assert secret_path() == Path("/somewhere/else.secret")


def test_create_and_load_secret(no_secret_env: Path) -> None:
    path = create_secret()
    assert path == no_secret_env
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text(encoding="ascii").strip()
    assert len(text) == 64 and int(text, 16) >= 0
    key = load_secret()
    assert key == bytes.fromhex(text) and len(key) == 32
    with pytest.raises(FileExistsError):
        create_secret()
    assert load_secret() == key  # never overwritten
    assert create_secret(path.with_name("other.secret")).read_text() != path.read_text()


def test_missing_secret_says_how_to_create_it(no_secret_env: Path) -> None:
    with pytest.raises(SecretError, match=r"no instructor secret at .*Run `python -m course release`"):
        load_secret()


def test_unsafe_secrets_are_refused(no_secret_env: Path, tmp_path: Path) -> None:
    path = create_secret()
    os.chmod(path, 0o644)
    with pytest.raises(SecretError, match="has mode 0644: other users may read it. Run `chmod 600"):
        load_secret()
    os.chmod(path, 0o600)
    path.write_text("not hex\n")
    with pytest.raises(SecretError, match="should hold 64 hex digits"):
        load_secret()
    link = tmp_path / "link.secret"
    link.symlink_to(path)
    with pytest.raises(SecretError, match="cannot open"):
        load_secret(link)
    with pytest.raises(SecretError, match="must live outside the repository"):
        create_secret(ROOT / "instructor.secret")
    assert not (ROOT / "instructor.secret").exists()
    with pytest.raises(SecretError, match="must live outside the repository"):
        load_secret(ROOT / "solutions" / "x.secret")


def test_ensure_secret_creates_once_and_says_where(
    no_secret_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ensure_secret() == no_secret_env
    assert f"created the instructor secret at {no_secret_env}" in capsys.readouterr().err
    key = load_secret()
    assert ensure_secret() == no_secret_env
    assert capsys.readouterr().err == ""
    assert load_secret() == key


# ---------------------------------------------------------------------------------------
# Assignment 4: the accuracy, judged by the grader
# ---------------------------------------------------------------------------------------


def a4_solution() -> dict[str, Any]:
    """The instructor's train and predict, defined as a notebook would (given cell + answer cells)."""
    nb = json.loads((ROOT / "solutions/04_applications/applications.ipynb").read_text(encoding="utf-8"))
    ns: dict[str, Any] = {"__name__": "submission"}
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in ("given-02", "pieces", "softmax", "cnn"):
            exec(compile("".join(cell["source"]), f"<{gid}>", "exec"), ns)  # noqa: S102 - the course's own code
    return ns


def named(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    fn.__name__ = name
    return fn


def test_the_solution_is_trained_once_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    ns = a4_solution()
    calls = []
    train = named("train", lambda X, y: calls.append(len(y)) or ns["train"](X, y))
    with grading_context(SECRET, "alice", "04_applications"):
        assert check_accuracy(train, ns["predict"], 0.85) is None
        assert check_accuracy(train, ns["predict"], 0.93) is None
        with pytest.raises(GradingError, match=r"test accuracy 0\.9\d\d is below 0\.99"):
            check_accuracy(train, ns["predict"], 0.99)
    assert calls == [1437]  # three cells, one training
    assert "OK: test accuracy 0.9" in capsys.readouterr().out


def test_student_code_never_receives_the_test_labels() -> None:
    X_train, y_train, X_test, y_test = digits_split()
    seen: list[np.ndarray] = []

    def train(X: np.ndarray, y: np.ndarray) -> dict:
        seen.extend([X, y])
        return {"w": np.zeros(3)}

    def predict(params: Any, X: np.ndarray) -> np.ndarray:
        seen.extend([X, *params.values()])
        return np.zeros(len(X), dtype=int)

    with grading_context(SECRET, "alice", "04_applications"):
        perm = secret_relabelling()
        with pytest.raises(GradingError, match="below 0.85"):
            check_accuracy(train, predict, 0.85)
    np.testing.assert_array_equal(seen[0], X_train)
    np.testing.assert_array_equal(seen[1], perm[y_train])  # relabelled training labels
    np.testing.assert_array_equal(seen[2], X_test)  # test images, no labels
    for arr in seen:
        for labels in (y_test, perm[y_test]):
            assert not (arr.shape == labels.shape and np.array_equal(arr, labels))


def test_a_lookup_table_of_the_public_digits_scores_nothing() -> None:
    """predict returns each test image's true digit (looked up in the public data set):
    with the classes renamed without fixed points, not one answer is right."""
    X_all, y_all = cl.load_digits()
    table = {x.tobytes(): int(y) for x, y in zip(X_all, y_all, strict=True)}
    train = named("train", lambda X, y: "nothing learned")
    predict = named("predict", lambda params, X: np.array([table[x.tobytes()] for x in X]))
    with (
        grading_context(SECRET, "mallory", "04_applications"),
        pytest.raises(GradingError, match=r"test accuracy 0\.000 is below 0\.85"),
    ):
        check_accuracy(train, predict, 0.85)


def test_relabelling_is_secret_per_student_and_fixed_on_regrade() -> None:
    perms = {}
    for student in ("alice", "bob", "carol", "dave"):
        with grading_context(SECRET, student, "04_applications"):
            perms[student] = secret_relabelling()
        with grading_context(SECRET, student, "04_applications"):
            np.testing.assert_array_equal(secret_relabelling(), perms[student])
        assert sorted(perms[student]) == list(range(10))
        assert not np.any(perms[student] == np.arange(10))
    assert len({p.tobytes() for p in perms.values()}) == 4
    with pytest.raises(GradingError, match="hidden cases are generated only by the grader"):
        check_accuracy(named("train", lambda X, y: {}), named("predict", lambda p, X: X), 0.85)


@pytest.mark.parametrize(
    ("train", "predict", "message"),
    [
        (lambda X, y: None, lambda p, X: np.zeros(len(X)), "train returned None: it must return the trained"),
        (
            lambda X, y: {},
            lambda p, X: np.zeros((len(X), 10)),
            r"one label per image, shape \(360,\); got \(360, 10\)",
        ),
        (lambda X, y: {}, lambda p, X: np.array(["a"] * len(X)), "integer labels 0-9; got dtype <U1"),
        (
            lambda X, y: (_ for _ in ()).throw(NotImplementedError()),
            lambda p, X: 0,
            "train is not written yet",
        ),
        (lambda X, y: {}, lambda p, X: 1 / 0, "predict raised ZeroDivisionError"),
    ],
)
def test_accuracy_failures_are_explained(train: Callable, predict: Callable, message: str) -> None:
    with grading_context(SECRET, "alice", "04_applications"), pytest.raises(GradingError, match=message):
        check_accuracy(named("train", train), named("predict", predict), 0.85)


def test_a_failure_is_cached_too() -> None:
    calls = []
    train = named("train", lambda X, y: calls.append(1))
    predict = named("predict", lambda p, X: np.zeros(len(X)))
    with grading_context(SECRET, "alice", "04_applications"):
        for _ in range(2):
            with pytest.raises(GradingError, match="train returned None"):
                check_accuracy(train, predict, 0.85)
    assert calls == [1]


def test_validation_accuracy_runs_anywhere(capsys: pytest.CaptureFixture[str]) -> None:
    ns = a4_solution()
    assert check_validation_accuracy(ns["train"], ns["predict"], 0.93) is None
    assert "OK: validation accuracy 0.9" in capsys.readouterr().out
    constant = named("predict", lambda params, X: np.full(len(X), 3))
    with pytest.raises(
        GradingError, match=r"validation accuracy 0\.\d+ is below 0\.85 \(trained with your train on 1150"
    ):
        check_validation_accuracy(ns["train"], constant, 0.85)
    with pytest.raises(ValueError, match=r"min_accuracy: got 85; expected a number in \(0, 1\]"):
        check_validation_accuracy(ns["train"], ns["predict"], 85)


def test_every_student_gets_cases_that_reveal_the_known_bugs() -> None:
    """Hidden cases are random per student, but each student's set still tells every known
    output-size formula apart and has strided windows that do not fit exactly."""
    from course.grading import diagnoses as D

    for k in range(30):
        with grading_context(SECRET, f"student-{k}", "01_convolution_by_hand"):
            specs = [
                tuple(c.params[p] for p in ("n", "kernel", "stride", "padding", "dilation"))
                for c in C.output_size_cases(True, [f for f, _ in D.OUTPUT_SIZE_BUGS])
            ]
            for c in C.signal_cases("convolve2d", ("same", "full"), True):
                assert min(c.params["image"].shape) >= max(c.params["kernel"].shape)
        right = [cl.output_size(*s) for s in specs]
        assert all(r >= 1 for r in right)
        for f, hint in D.OUTPUT_SIZE_BUGS:
            assert [f(*s) for s in specs] != right, hint
        with grading_context(SECRET, f"student-{k}", "02_convolution_layers"):
            cases = C.conv_cases("stride_padding", True)
        assert any(
            C.span_out(
                p["x"].shape[2], p["weight"].shape[2], C.pair(p["stride"])[0], C.pair(p["padding"])[0], 1
            )
            != C.span_out(
                p["x"].shape[2],
                p["weight"].shape[2],
                C.pair(p["stride"])[0],
                C.pair(p["padding"])[0],
                1,
                True,
            )
            for p in (c.params for c in cases)
        )
