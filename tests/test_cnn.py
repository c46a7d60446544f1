"""conv_lib.cnn (the deeper NumPy CNN), load_mnist, and the arithmetic of modern layers.

Gradients are checked against finite differences, the forward pass and the parameter counts
against PyTorch (a test oracle only), training on real MNIST digits must lower the loss.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import conv_lib as cl
from conv_lib.cnn import ConvBlock, ConvNet, dense_width_for_budget
from conv_lib.datasets import load_mnist


def _check_all_params(model, X, y, rtol=1e-5):
    # Zero biases can put pre-activations exactly on the ReLU kink (finite differences are
    # meaningless there): small random biases avoid it.
    rng = np.random.default_rng(11)
    for name, value in model.params.items():
        if name.startswith("b"):
            value += rng.normal(0, 0.1, value.shape)
    _, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name, value in model.params.items():
        assert grads[name].shape == value.shape

        def f(v, name=name):
            saved = model.params[name]
            model.params[name] = v
            loss = model.loss(X, y)[0]
            model.params[name] = saved
            return loss

        res = cl.check_gradient(f, value.copy(), grads[name], rtol=rtol, atol=1e-8)
        assert res.passed, (name, res.max_abs_error, res.max_rel_error)


def test_two_block_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    model = ConvNet(
        input_shape=(2, 10, 10),
        blocks=(ConvBlock(3, 3, padding="same", pool=2), ConvBlock(4, 3, padding=1, pool=2)),
        num_classes=3,
        reg=0.01,
        seed=1,
    )
    X = rng.normal(size=(3, 2, 10, 10))
    _check_all_params(model, X, np.array([0, 2, 1]))


def test_strided_unpooled_block_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    model = ConvNet(
        input_shape=(1, 9, 9),
        blocks=(ConvBlock(2, 5, stride=2, padding=0, pool=1), ConvBlock(3, 1, padding=0, pool=3)),
        num_classes=4,
        seed=2,
    )
    expected = [("conv1", (2, 3, 3)), ("pool1", (2, 3, 3)), ("conv2", (3, 3, 3)), ("pool2", (3, 1, 1))]
    assert model.shapes == expected
    X = rng.normal(size=(2, 1, 9, 9))
    _check_all_params(model, X, np.array([3, 0]))


@pytest.mark.parametrize("method", ["im2col", "fft", "auto"])
def test_every_algorithm_gives_the_same_loss_and_gradients(method):
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(4, 1, 12, 12)), np.array([0, 1, 2, 1])
    blocks = (ConvBlock(3, 5), ConvBlock(4, 3, stride=2, padding=1, pool=1))
    ref = ConvNet((1, 12, 12), blocks, num_classes=3, seed=4)
    other = ConvNet((1, 12, 12), blocks, num_classes=3, seed=4, forward_method=method, backward_method=method)
    loss_ref, grads_ref = ref.loss(X, y)
    loss, grads = other.loss(X, y)
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="backward_method"):
        ConvNet(backward_method="winograd-ish")


def test_forward_matches_torch():
    rng = np.random.default_rng(2)
    blocks = (ConvBlock(4, 5), ConvBlock(6, 3, stride=2, padding=1))
    model = ConvNet(input_shape=(1, 28, 28), blocks=blocks, seed=3)
    for name, value in model.params.items():
        if name.startswith("b"):
            value += rng.normal(0, 0.1, value.shape)
    X = rng.normal(size=(2, 1, 28, 28))
    p = {k: torch.from_numpy(v) for k, v in model.params.items()}
    h = F.max_pool2d(F.relu(F.conv2d(torch.from_numpy(X), p["W1"], p["b1"], padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["W2"], p["b2"], stride=2, padding=1)), 2)
    expected = h.reshape(2, -1) @ p["W3"] + p["b3"]
    np.testing.assert_allclose(model.loss(X), expected.numpy(), rtol=1e-10, atol=1e-10)
    maps = model.feature_maps(X)
    assert [m["pool"].shape for m in maps] == [(2, 4, 14, 14), (2, 6, 3, 3)]
    np.testing.assert_array_equal(maps[0]["relu"], np.maximum(maps[0]["conv"], 0))


def test_param_count_and_macs_match_torch_and_arithmetic():
    model = ConvNet()  # the book's network: conv 8 3x3 -> pool -> conv 16 3x3 -> pool -> dense 10
    layers = [torch.nn.Conv2d(1, 8, 3), torch.nn.Conv2d(8, 16, 3), torch.nn.Linear(16 * 7 * 7, 10)]
    expected = sum(p.numel() for layer in layers for p in layer.parameters())
    assert model.param_count() == expected == cl.param_count(model)
    assert expected == sum(v.size for v in model.params.values())
    macs = model.macs()
    assert macs["conv1"] == 28 * 28 * 8 * 1 * 9
    assert macs["conv2"] == 14 * 14 * 16 * 8 * 9
    assert macs["dense"] == 16 * 7 * 7 * 10
    assert macs["total"] == macs["conv1"] + macs["conv2"] + macs["dense"]


@pytest.mark.parametrize("in_features,budget,k", [(784, 9098, 10), (64, 1000, 10), (10, 5, 3)])
def test_dense_width_for_budget_is_the_smallest_width_reaching_the_budget(in_features, budget, k):
    h = dense_width_for_budget(in_features, budget, k)
    count = cl.param_count(cl.DenseNet(in_features, (h,), k))
    assert count >= budget
    if h > 1:
        assert cl.param_count(cl.DenseNet(in_features, (h - 1,), k)) < budget


def test_training_on_mnist_reduces_loss_and_beats_chance():
    X, y = load_mnist()
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order[:300]].astype(np.float32), y[order[:300]]
    model = ConvNet(blocks=(ConvBlock(4), ConvBlock(8)), seed=0)
    model.params = {k: v.astype(np.float32) for k, v in model.params.items()}
    before = model.loss(X, y)[0]
    hist = cl.train(model, X, y, epochs=3, batch_size=32, optimizer=cl.Adam(lr=3e-3), seed=0)
    after = model.loss(X, y)[0]
    assert after < 0.6 * before
    assert hist.train_acc[-1] > 0.6
    assert model.params["W1"].dtype == np.float32


def test_train_can_limit_blas_threads():
    from threadpoolctl import threadpool_info

    class Recording(ConvNet):
        seen: list[int] = []

        def loss(self, X, y=None):
            blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
            self.seen.extend(blas)
            return super().loss(X, y)

    X, y = load_mnist()
    X, y = X[:64], y[:64]
    limited = Recording(blocks=(ConvBlock(2),), seed=0)
    cl.train(limited, X, y, epochs=1, batch_size=32, blas_threads=1, track_train=False)
    assert limited.seen and set(limited.seen) == {1}
    free = ConvNet(blocks=(ConvBlock(2),), seed=0)
    cl.train(free, X, y, epochs=1, batch_size=32, track_train=False)
    for name in free.params:  # same training, whatever the number of threads
        np.testing.assert_allclose(limited.params[name], free.params[name], rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="blas_threads"):
        cl.train(free, X, y, blas_threads=0)


def test_convblock_and_convnet_validation():
    with pytest.raises(ValueError, match="padding"):
        ConvNet(blocks=(ConvBlock(4, 4),))  # "same" needs an odd kernel
    with pytest.raises(ValueError, match="padding"):
        ConvNet(blocks=(ConvBlock(4, 3, stride=2),))  # "same" needs stride 1
    with pytest.raises(ValueError, match="padding"):
        ConvNet(blocks=(ConvBlock(4, 3, padding=-1),))
    with pytest.raises(ValueError, match="kernel_size"):
        ConvNet(input_shape=(1, 4, 4), blocks=(ConvBlock(2, 7, padding=0),))
    with pytest.raises(ValueError, match="pool"):
        ConvNet(input_shape=(1, 4, 4), blocks=(ConvBlock(2, 3, padding=0, pool=3),))
    with pytest.raises(ValueError, match="blocks"):
        ConvNet(blocks=())
    with pytest.raises(ValueError, match="filters"):
        ConvNet(blocks=(ConvBlock(0),))


# --------------------------------------------------------------------------------------
# load_mnist
# --------------------------------------------------------------------------------------
def test_load_mnist_ships_10000_real_digits():
    X, y = load_mnist()
    assert X.shape == (10000, 1, 28, 28) and X.dtype == np.float64
    assert y.shape == (10000,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == 10000 and counts.min() > 800  # every digit is there
    assert 0.0 == X.min() and X.max() == 1.0
    # real handwriting, not noise: the mean "1" has ink in the centre column, the mean "0" does not
    assert X[y == 1, 0, 8:20, 14].mean() > 0.5 > X[y == 0, 0, 10:18, 14].mean()
    assert len(np.unique(X.reshape(len(X), -1), axis=0)) == 10000  # no duplicated image
    X[0, 0, 0, 0] = 5.0  # a returned array is a copy
    assert load_mnist()[0][0, 0, 0, 0] == 0.0
    assert load_mnist(as_nchw=False)[0].shape == (10000, 28, 28)
    with pytest.raises(TypeError, match="as_nchw"):
        load_mnist(as_nchw=1)


def test_load_mnist_reads_the_package_layout(tmp_path, monkeypatch):
    digits = tmp_path / "src" / "digits"
    digits.mkdir(parents=True)
    rng = np.random.default_rng(3)
    written = {}
    for d in range(10):
        values = np.round(rng.uniform(size=(d % 3 + 1) * 784), 3)
        written[d] = values.reshape(-1, 28, 28)
        (digits / f"{d}.json").write_text(json.dumps({"data": values.tolist()}))
    monkeypatch.setenv("CONV_LIB_MNIST_DIR", str(tmp_path))
    X, y = load_mnist(as_nchw=False)
    np.testing.assert_array_equal(X, np.concatenate([written[d] for d in range(10)]))
    np.testing.assert_array_equal(y, np.repeat(np.arange(10), [d % 3 + 1 for d in range(10)]))


def test_load_mnist_missing_package_says_make_web(tmp_path, monkeypatch):
    monkeypatch.setenv("CONV_LIB_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="make web"):
        load_mnist()


def test_load_mnist_rejects_a_broken_file(tmp_path, monkeypatch):
    digits = tmp_path / "src" / "digits"
    digits.mkdir(parents=True)
    for d in range(10):
        (digits / f"{d}.json").write_text(json.dumps({"data": [0.5] * (784 if d else 100)}))
    monkeypatch.setenv("CONV_LIB_MNIST_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="784"):
        load_mnist()


# --------------------------------------------------------------------------------------
# Arithmetic of modern layers
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("c_in,c_out,k,bias", [(32, 64, 3, True), (3, 5, (3, 5), False), (1, 1, 1, True)])
def test_depthwise_separable_param_count_matches_torch(c_in, c_out, k, bias):
    depthwise = torch.nn.Conv2d(c_in, c_in, k, groups=c_in, bias=bias)
    pointwise = torch.nn.Conv2d(c_in, c_out, 1, bias=bias)
    expected = sum(p.numel() for m in (depthwise, pointwise) for p in m.parameters())
    assert cl.depthwise_separable_param_count(c_in, c_out, k, bias=bias) == expected


def test_depthwise_separable_macs_ratio():
    c_in, c_out, k, hw = 32, 64, 3, 56
    full = cl.conv2d_macs(c_in, c_out, k, hw)
    separable = cl.depthwise_separable_macs(c_in, c_out, k, hw)
    assert separable == c_in * k * k * hw * hw + c_in * c_out * hw * hw
    assert separable / full == pytest.approx(1 / c_out + 1 / k**2)


def test_conv_transpose2d_macs_counts_every_scattered_product():
    # Feeding ones through a transposed convolution with unit weights and no padding adds
    # one to the output for every product made, so the output's sum is the MAC count.
    c_in, c_out, k, s, hw = 3, 4, 3, 2, 5
    x = np.ones((1, c_in, hw, hw))
    w = np.ones((c_in, c_out, k, k))
    out = cl.conv_transpose2d(x, w, stride=s)
    assert out.sum() == cl.conv_transpose2d_macs(c_in, c_out, k, hw)
    # and it equals the MACs of the convolution whose adjoint it is
    assert cl.conv_transpose2d_macs(c_in, c_out, k, hw) == cl.conv2d_macs(c_out, c_in, k, hw)
    assert cl.conv_transpose2d_macs(4, 6, 3, 5, groups=2) == 4 * 5 * 5 * 3 * 9
    with pytest.raises(ValueError, match="groups"):
        cl.conv_transpose2d_macs(4, 6, 3, 5, groups=4)
