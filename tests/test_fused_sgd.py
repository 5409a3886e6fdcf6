"""Plain SGD folded into the backward pass (bpnet.train.fused) trains to the
same weights as the plain step, on every backend, and is taken only where
it is exactly that step."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from backends.numpy_backend import NumPyBackend, _numpy_gemm
from bpnet.train import fused


def _data(n=70, d=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, rng.integers(0, k, n)


def _net(device, dtype, extra=()):
    layers = [bpnet.Dense(6, 9), bpnet.ReLU(), *extra, bpnet.Dense(9, 4)]
    return bpnet.Sequential(layers, device=device, dtype=dtype, seed=1)


def _train(monkeypatch, backend, dtype, fold, steps=None, **kw):
    """Final weights (host) and history of a fit with the fused path on or
    off, and how many steps took it."""
    monkeypatch.setattr(type(backend), "folds_matmul_update", fold)
    taken = []
    call = fused.SGDStep.__call__

    def counted(self, *args, **kwargs):
        taken.append(1)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(fused.SGDStep, "__call__", counted)
    X, y = _data()
    net = _net(backend, dtype)
    kw = {"epochs": 3, "batch_size": 16, "optimizer": bpnet.SGD(0.2), **kw}
    h = net.fit(X, y, **kw)
    return [backend.to_numpy(p) for p in net.parameters()], h, len(taken)


@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_step_trains_to_the_plain_steps_weights(monkeypatch, backend, dtype, l2):
    """On every backend: on NumPy through BLAS gemm with beta, elsewhere
    through the pure ``matmul_into``; float64 to 1e-12, float32 to rounding."""
    if not backend.supports(getattr(backend.xp, dtype)):
        pytest.skip(f"{backend.name} has no {dtype}")
    with monkeypatch.context() as m:
        plain, h0, n0 = _train(m, backend, dtype, False, l2=l2)
    with monkeypatch.context() as m:
        if isinstance(backend, NumPyBackend):  # every layer through BLAS
            m.setattr(backend, "fold_min_size", 0)
        folded, h1, n1 = _train(m, backend, dtype, True, l2=l2)
    assert n0 == 0 and n1 == 3 * 5  # 3 epochs of 5 batches
    tol = {"float64": 1e-12, "float32": 2e-5}[dtype]
    for a, b in zip(folded, plain):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    np.testing.assert_allclose(h1["loss"], h0["loss"], rtol=tol)
    np.testing.assert_allclose(h1["accuracy"], h0["accuracy"])


def test_numpy_folds_by_default_and_keeps_small_products_exact(monkeypatch):
    """Outputs under ``fold_min_size`` take NumPy's product and an in-place
    update: the plain step's arithmetic, bit for bit."""
    if _numpy_gemm() is None:
        pytest.skip("this NumPy's BLAS gemm cannot be reached")
    be = bpnet.Sequential([bpnet.Dense(2, 2)]).backend
    assert be.folds_matmul_update
    with monkeypatch.context() as m:
        plain, _, _ = _train(m, be, "float32", False)
    with monkeypatch.context() as m:
        m.setattr(NumPyBackend, "folds_matmul_update", True)
        folded, _, n = _train(m, be, "float32", True)
    assert n == 15
    for a, b in zip(folded, plain):
        np.testing.assert_array_equal(a, b)


class _OwnSGD(bpnet.SGD):
    def update(self, params, grads):
        super().update(params, grads)


class _OwnDense(bpnet.Dense):
    def backward(self, dy, need_dx=True):
        return super().backward(dy, need_dx)


@pytest.mark.parametrize(
    "case",
    ["momentum", "sgd-subclass", "batchnorm", "dense-subclass", "weights-l2"],
)
def test_everything_else_keeps_the_plain_step(monkeypatch, case):
    monkeypatch.setattr(NumPyBackend, "folds_matmul_update", True)
    X, y = _data()
    kw = {"epochs": 1, "batch_size": 16}
    layers = [bpnet.Dense(6, 9), bpnet.ReLU(), bpnet.Dense(9, 4)]
    if case == "momentum":
        kw["optimizer"] = "momentum"
    elif case == "sgd-subclass":
        kw["optimizer"] = _OwnSGD(0.1)
    elif case == "batchnorm":
        layers.insert(1, bpnet.BatchNorm())
    elif case == "dense-subclass":
        layers[0] = _OwnDense(6, 9)
    else:
        kw.update(sample_weight=np.linspace(0.5, 1.5, len(y)), l2=0.1)
    taken = []
    monkeypatch.setattr(fused.SGDStep, "__call__", lambda *a: taken.append(1))
    bpnet.Sequential(layers, seed=0).fit(X, y, **kw)
    assert taken == []


def test_not_taken_for_a_recorded_graph_or_a_data_parallel_run():
    from types import SimpleNamespace

    net = _net("cpu", "float32")
    opt = bpnet.SGD(0.1)
    here = bool(_numpy_gemm())
    assert fused.fused_sgd_applies(net, opt, 0.0, None, None, False) is here
    assert not fused.fused_sgd_applies(net, opt, 0.0, None, None, True)
    two, one = SimpleNamespace(size=2), SimpleNamespace(size=1)
    assert not fused.fused_sgd_applies(net, opt, 0.0, None, two, False)
    # one rank has nothing to reduce: its step is the plain one
    assert fused.fused_sgd_applies(net, opt, 0.0, None, one, False) is here


def test_sample_weights_without_l2_take_it(monkeypatch, backend):
    """Weighted losses fold too when no L2 term needs their sum."""
    X, y = _data()
    w = np.linspace(0.5, 1.5, len(y))
    with monkeypatch.context() as m:
        plain, _, _ = _train(m, backend, "float32", False, sample_weight=w)
    with monkeypatch.context() as m:
        folded, _, n = _train(m, backend, "float32", True, sample_weight=w)
    assert n == 15
    for a, b in zip(folded, plain):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
