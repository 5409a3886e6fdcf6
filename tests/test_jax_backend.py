"""The JAX backend's own promises: its names, float64 behind JAX's 64-bit
mode, and fit's steps compiled once per batch shape (the rest of the stack
runs in test_conformance.py)."""

from __future__ import annotations

import numpy as np
import pytest

import backends
import bpnet

jax = pytest.importorskip("jax")


@pytest.fixture
def x64_off():
    """JAX's 64-bit mode off for one test (the conformance suite turns it on)."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", before)


def test_listed_and_named():
    assert "jax" in backends.available_backends()
    be = backends.get_backend("jax:cpu")
    assert be.library == "jax" and be.device.platform == "cpu"
    assert backends.get_backend("jax:0").device == jax.devices()[0]
    with pytest.raises(ValueError, match="'jax:gpu', 'jax:gpu:N' or 'jax:N'"):
        backends.get_backend("jax:tpuu")


def test_a_missing_gpu_is_one_clear_error():
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("this machine has a JAX GPU")
    with pytest.raises(backends.BackendUnavailableError, match="JAX GPU device"):
        backends.get_backend("jax:gpu")


def test_float64_without_x64_says_how(x64_off):
    with pytest.raises(backends.BackendUnavailableError) as info:
        bpnet.Sequential([bpnet.Dense(3, 2)], device="jax", dtype="float64")
    msg = str(info.value)
    assert 'jax.config.update("jax_enable_x64", True)' in msg.replace("'", '"')
    assert "JAX_ENABLE_X64=1" in msg


def test_float32_trains_without_x64(x64_off):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)
    net = bpnet.Sequential(
        [bpnet.Dense(4, 6), bpnet.ReLU(), bpnet.Dense(6, 2)], device="jax"
    )
    before = [np.asarray(p) for p in net.parameters()]
    h = net.fit(X, y, epochs=2, batch_size=16)
    assert np.isfinite(h.loss).all()
    for a, b in zip(before, net.parameters()):
        assert np.any(a != np.asarray(b))


@pytest.mark.filterwarnings("error::UserWarning")
def test_a_convolutional_network_trains_without_x64_and_without_warnings(x64_off):
    # its index arrays take the namespace's indexing dtype (int32 here), not a
    # requested int64 that JAX would truncate with a warning
    rng = np.random.default_rng(0)
    X, y = rng.random((12, 64)).astype(np.float32), np.arange(12) % 3
    net = bpnet.Sequential(
        [
            bpnet.Reshape((1, 8, 8)),
            bpnet.Conv2D(2, 3, padding=1),
            bpnet.ReLU(),
            bpnet.MaxPool2D(2),
            bpnet.Flatten(),
            bpnet.Dense(32, 3),
        ],
        n_in=64,
        device="jax",
    )
    h = net.fit(X, y, epochs=1, batch_size=6)
    assert np.isfinite(h.loss).all() and net.predict(X).shape == (12,)


def test_fit_compiles_each_batch_shape_once():
    from backends.jax_backend import JitRunner

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 2, 50)
    net = bpnet.Sequential(
        [bpnet.Dense(4, 6), bpnet.ReLU(), bpnet.Dense(6, 2)], device="jax"
    )
    traces = []
    real = JitRunner.__init__

    def counting(self, backend, run_epoch):
        step = run_epoch.stateless_step

        def traced(*args):
            traces.append(args[1].shape)
            return step(*args)

        run_epoch.stateless_step = traced
        real(self, backend, run_epoch)

    JitRunner.__init__ = counting
    try:
        net.fit(X, y, epochs=3, batch_size=16, optimizer="adam")
    finally:
        JitRunner.__init__ = real
    # one abstract trace that finds Adam's moments, then one per batch shape
    # (16 rows, the last 2)
    assert len(traces) == 3, traces


def test_fit_makes_no_eager_scatter_between_steps(monkeypatch):
    # each eager at().set is ~3 ms of Python: the epoch's order is taken as
    # it comes (nothing replays a recorded graph on JAX) and its sums start
    # as filled arrays
    import bpnet.nn.mutation as mutation

    real, eager = mutation.xpx.at, []

    def counting(x, *args, **kwargs):
        if not isinstance(x, jax.core.Tracer):
            eager.append(x.shape)
        return real(x, *args, **kwargs)

    monkeypatch.setattr(mutation.xpx, "at", counting)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)
    net = bpnet.Sequential(
        [bpnet.Dense(4, 6), bpnet.ReLU(), bpnet.Dense(6, 2)], device="jax"
    )
    net.fit(X, y, epochs=3, batch_size=16, shuffle=True)
    assert eager == []


def test_an_update_that_loses_its_arrays_is_an_error():
    class Rebinding(bpnet.SGD):
        def update(self, params, grads):  # p -= ... rebinds a local on JAX
            self._prepare(params)
            for p, g in zip(params, grads):
                p -= self._lr * g

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 2, 20)
    net = bpnet.Sequential([bpnet.Dense(4, 2)], device="jax")
    with pytest.raises(TypeError, match="Rebinding.update changed none"):
        net.fit(X, y, epochs=1, batch_size=8, optimizer=Rebinding())
