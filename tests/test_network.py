"""conv_lib.network: layer gradients, model gradients, a tiny training run."""

from __future__ import annotations

import numpy as np
import pytest

import conv_lib as cl
from conv_lib import network as nw


def _check_params(model, X, y, rtol=1e-5):
    # Zero initial biases can put a pre-activation exactly on the ReLU kink, where finite
    # differences are meaningless; small random biases avoid that.
    rng = np.random.default_rng(123)
    for name, value in model.params.items():
        if name.startswith("b"):
            value += rng.normal(0, 0.1, value.shape)
    _, grads = model.loss(X, y)
    for name, value in model.params.items():

        def f(v, name=name):
            saved = model.params[name]
            model.params[name] = v
            loss = model.loss(X, y)[0]
            model.params[name] = saved
            return loss

        res = cl.check_gradient(f, value.copy(), grads[name], rtol=rtol, atol=1e-8)
        assert res.passed, (name, res.max_abs_error, res.max_rel_error)


def test_softmax_cross_entropy_values_and_gradient():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 4))
    y = np.array([0, 3, 1, 2, 3])
    loss, d = nw.softmax_cross_entropy(scores, y)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), y])))
    num = cl.numeric_gradient(lambda s: nw.softmax_cross_entropy(s, y)[0], scores.copy())
    np.testing.assert_allclose(d, num, rtol=1e-6, atol=1e-9)
    # numerically stable for huge logits
    loss_big, _ = nw.softmax_cross_entropy(scores * 1e4, y)
    assert np.isfinite(loss_big)


def test_softmax_cross_entropy_rejects_bad_labels():
    with pytest.raises(ValueError, match="y"):
        nw.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="y"):
        nw.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_affine_and_relu_backward():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(3, 2, 4)), rng.normal(size=(8, 5)), rng.normal(size=5)
    dout = rng.normal(size=(3, 5))
    _, cache = nw.affine_forward(x, w, b)
    dx, dw, db = nw.affine_backward(dout, cache)
    for arr, grad in [(x, dx), (w, dw), (b, db)]:
        def f(v, arr=arr):
            args = [v if a is arr else a for a in (x, w, b)]
            return float(np.sum(nw.affine_forward(*args)[0] * dout))
        assert cl.check_gradient(f, arr.copy(), grad).passed
    xr = rng.normal(size=(4, 6))
    out, c = nw.relu_forward(xr)
    np.testing.assert_array_equal(out, np.maximum(xr, 0))
    np.testing.assert_array_equal(nw.relu_backward(np.ones_like(xr), c), (xr > 0).astype(float))


def test_small_cnn_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    model = cl.SmallCNN(input_shape=(2, 6, 6), num_filters=3, kernel_size=3, pool=2, num_classes=4,
                        reg=0.01, seed=3)
    X = rng.normal(size=(3, 2, 6, 6))
    y = np.array([0, 3, 1])
    _check_params(model, X, y)


def test_dense_net_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    model = cl.DenseNet(in_features=12, hidden=(7, 5), num_classes=3, reg=0.02, seed=5)
    X = rng.normal(size=(4, 3, 4))
    y = np.array([2, 0, 1, 1])
    _check_params(model, X, y)


def test_param_counts_match_conv_lib_arithmetic():
    cnn = cl.SmallCNN(input_shape=(1, 8, 8), num_filters=8, kernel_size=3, pool=2, num_classes=10)
    expected = cl.conv2d_param_count(1, 8, 3) + cl.dense_param_count(8 * 4 * 4, 10)
    assert cl.param_count(cnn) == expected
    dense = cl.DenseNet(64, hidden=(32,), num_classes=10)
    assert cl.param_count(dense) == cl.dense_param_count(64, 32) + cl.dense_param_count(32, 10)


def test_feature_maps_shapes():
    cnn = cl.SmallCNN(input_shape=(1, 8, 8), num_filters=5)
    maps = cnn.feature_maps(np.zeros((2, 1, 8, 8)))
    assert maps["conv"].shape == (2, 5, 8, 8)
    assert maps["pool"].shape == (2, 5, 4, 4)


@pytest.mark.parametrize("optimizer", [cl.Adam(lr=1e-2), cl.SGDMomentum(lr=0.05, momentum=0.9)])
def test_tiny_training_run_reduces_loss(optimizer):
    X, y = cl.load_digits()
    X, y = X[:200], y[:200]
    model = cl.SmallCNN(num_filters=4, seed=0)
    before = model.loss(X, y)[0]
    hist = cl.train(model, X, y, epochs=5, batch_size=20, optimizer=optimizer, seed=0)
    after = model.loss(X, y)[0]
    assert after < 0.5 * before
    assert len(hist.loss) == 5 * 10 and len(hist.train_acc) == 5
    assert hist.train_acc[-1] > 0.7


def test_train_is_deterministic():
    X, y = cl.load_digits()
    X, y = X[:64], y[:64]
    params = []
    for _ in range(2):
        m = cl.SmallCNN(num_filters=2, seed=7)
        cl.train(m, X, y, epochs=1, batch_size=16, seed=1)
        params.append(m.params["W1"].copy())
    np.testing.assert_array_equal(params[0], params[1])


def test_constructor_and_train_validation():
    with pytest.raises(ValueError, match="kernel_size"):
        cl.SmallCNN(kernel_size=4)
    with pytest.raises(ValueError, match="y"):
        cl.train(cl.DenseNet(4), np.zeros((3, 4)), np.zeros(2, dtype=int))
