"""Batches gathered into reused arrays (``Backend.take_rows_into``) train
exactly as batches gathered into new ones."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import bpnet
import bpnet.train.epoch as epoch_module
from backends.numpy_backend import NumPyBackend


def test_take_rows_into_writes_the_rows_of_take_rows(backend):
    host = np.arange(40, dtype=np.float64).reshape(10, 4)
    x = backend.asarray(host, dtype="float32")
    idx = backend.asarray(np.array([9, 0, 3, 3, 7], dtype=np.int64))
    with backend.context():
        out = backend.xp.zeros((6, 4), dtype=x.dtype, device=backend.device)
    part = out[:5, ...]  # a shorter last batch takes the first rows
    got = backend.take_rows_into(x, idx, part)
    np.testing.assert_array_equal(backend.to_numpy(got), host[[9, 0, 3, 3, 7], :])
    if array_api_compat.is_writeable_array(out):  # JAX's arrays: a new one
        np.testing.assert_array_equal(
            backend.to_numpy(out)[:5], host[[9, 0, 3, 3, 7], :]
        )
    assert not backend.to_numpy(out)[5].any()  # nothing past the rows asked for
    labels = backend.asarray(np.arange(10, dtype=np.int64) * 2)
    with backend.context():
        lout = backend.xp.zeros((5,), dtype=labels.dtype, device=backend.device)
    got = backend.take_rows_into(labels, idx, lout)
    np.testing.assert_array_equal(backend.to_numpy(got), [18, 0, 6, 6, 14])


def test_numpy_gathers_straight_into_the_array_it_is_given():
    be = NumPyBackend()
    assert be.gathers_into
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    out = np.empty((3, 2), np.float32)
    got = be.take_rows_into(x, np.array([5, 1, -1]), out)
    assert got is out
    np.testing.assert_array_equal(out, x[[5, 1, 5]])
    # an out of another dtype, or not contiguous, is still filled (pure path)
    wide = np.zeros((3, 4), np.float64)
    got = be.take_rows_into(x, np.array([0, 2, 4]), wide[:, :2])
    np.testing.assert_array_equal(wide[:, :2], x[[0, 2, 4]])


def _fit(monkeypatch, buffers: bool, weights: bool):
    rng = np.random.default_rng(5)
    X = rng.random((230, 12), dtype=np.float32)  # batch 64: a last batch of 38
    y = rng.integers(0, 3, 230)
    sw = rng.random(230) + 0.5 if weights else None
    monkeypatch.setattr(epoch_module, "BUFFER_MIN_BYTES", 0 if buffers else 1 << 62)
    calls = []
    real = NumPyBackend.take_rows_into

    def counted(self, x, idx, out):
        calls.append(id(out.base if out.base is not None else out))
        return real(self, x, idx, out)

    monkeypatch.setattr(NumPyBackend, "take_rows_into", counted)
    net = bpnet.Sequential(
        [bpnet.Dense(12, 16), bpnet.ReLU(), bpnet.Dense(16, 3)], seed=2
    )
    hist = bpnet.fit(
        net,
        X,
        y,
        epochs=3,
        batch_size=64,
        optimizer=bpnet.SGD(lr=0.2),
        sample_weight=sw,
        verbose=0,
    )
    return [np.asarray(p) for p in net.parameters()], hist, calls


@pytest.mark.parametrize("weights", [False, True])
def test_reused_batch_arrays_train_as_new_ones(monkeypatch, weights):
    with monkeypatch.context() as m:
        fresh, h0, none = _fit(m, False, weights)
    with monkeypatch.context() as m:
        reused, h1, calls = _fit(m, True, weights)
    assert none == []
    # 4 batches an epoch, 3 epochs; the batch, targets, labels (and weights)
    kinds = 4 if weights else 3
    assert len(calls) == 4 * 3 * kinds
    assert len(set(calls)) == kinds  # the same arrays every step
    for a, b in zip(reused, fresh):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(h1["loss"], h0["loss"])
    np.testing.assert_array_equal(h1["accuracy"], h0["accuracy"])


def test_only_batches_of_a_few_megabytes_are_gathered_into_reused_arrays():
    be = NumPyBackend()
    X = np.zeros((10, 784), np.float32)
    assert not epoch_module._BatchBuffers.pay_off(be, X, 256)  # 0.8 MB
    assert epoch_module._BatchBuffers.pay_off(be, X, 2048)  # 6.4 MB


@pytest.mark.parametrize("n", [1, 4, 63, 64, 256])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_softmax_kernel_gives_the_portable_loss_bit_for_bit(n, dtype):
    from bpnet.nn.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(n)
    Z = (rng.standard_normal((n, 10)) * 5).astype(dtype)
    Z[0, 3] = Z[0, 7]  # a tie for a row's maximum
    hard = np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]
    soft = rng.random((n, 10)).astype(dtype)
    soft /= soft.sum(axis=1, keepdims=True)
    kernel = NumPyBackend().softmax_cross_entropy
    for T in (hard, soft):
        want_L, want_dZ = SoftmaxCrossEntropy().loss_and_grad(Z.copy(), T)
        got_L, got_dZ = kernel(Z.copy(), T)
        assert got_L.dtype == want_L.dtype and got_L == want_L
        np.testing.assert_array_equal(got_dZ, want_dZ)
    Z[-1, :] = np.inf  # non-finite logits: the same NaNs
    with np.errstate(all="ignore"):
        a, b = kernel(Z, hard), SoftmaxCrossEntropy().loss_and_grad(Z, hard)
    assert np.isnan(a[1][-1]).all()
    np.testing.assert_array_equal(a[1], b[1])


def test_fit_with_the_numpy_softmax_kernel_trains_as_the_portable_loss(monkeypatch):
    def train():
        rng = np.random.default_rng(1)
        X = rng.random((300, 12), dtype=np.float32)
        y = rng.integers(0, 5, 300)
        net = bpnet.Sequential(
            [bpnet.Dense(12, 16), bpnet.ReLU(), bpnet.Dense(16, 5)], seed=4
        )
        h = bpnet.fit(net, X, y, epochs=2, batch_size=100, optimizer="sgd", verbose=0)
        return [np.asarray(p) for p in net.parameters()], h

    calls = []
    real = NumPyBackend.softmax_cross_entropy

    def counted(self, Z, T):
        calls.append(Z.shape[0])
        return real(self, Z, T)

    with monkeypatch.context() as m:
        m.setattr(NumPyBackend, "softmax_cross_entropy", counted)
        fast, h1 = train()
    with monkeypatch.context() as m:
        m.setattr(NumPyBackend, "softmax_cross_entropy", None)
        plain, h0 = train()
    assert calls == [100] * 6  # 3 steps an epoch, 2 epochs
    for a, b in zip(fast, plain):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(h1["loss"], h0["loss"])


@pytest.mark.parametrize("weights", [False, True])
def test_host_sums_report_the_device_sums_numbers(monkeypatch, weights):
    """The epoch's loss and accuracy summed as host scalars (NumPy) are the
    0-D arrays' sums bit for bit: rounded to the model's dtype every step,
    under NumPy 1's promotion rules as under NumPy 2's."""

    def train():
        rng = np.random.default_rng(6)
        X = rng.random((250, 8), dtype=np.float32)
        y = rng.integers(0, 3, 250)
        sw = rng.random(250) + 0.1 if weights else None
        net = bpnet.Sequential([bpnet.Dense(8, 3)], seed=1)
        return bpnet.fit(
            net, X, y, epochs=3, batch_size=32, sample_weight=sw, verbose=0
        )

    host = train()
    with monkeypatch.context() as m:
        m.setattr(NumPyBackend, "host_scalars", False)
        device = train()
    np.testing.assert_array_equal(host["loss"], device["loss"])
    np.testing.assert_array_equal(host["accuracy"], device["accuracy"])
