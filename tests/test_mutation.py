"""The one update path (bpnet.nn.mutation): every optimizer steps every
parameter on arrays that cannot be written in place, as on those that can."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bpnet.nn.mutation import IN_PLACE, NEW_ARRAYS, writer, writes_in_place
from bpnet.train.optimizers import OPTIMIZERS

HAVE_JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed")

#: every registered optimizer and variant, with a learning rate and weight
#: decay where it takes one, so every term of its rule is used
OPTIMIZER_NAMES = OPTIMIZERS.names()


def _make(name):
    kwargs = {"weight_decay": 0.01} if name in ("adam", "adamw") else {}
    return OPTIMIZERS.create(name, lr=0.05, **kwargs)


def _host_problem(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (3, 2), (2,)]
    params = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(4)]
    return params, grads


def _steps(lib, name, n):
    """``n`` steps of optimizer ``name`` on float32 arrays of ``lib``, a pair
    (asarray, to_numpy); the parameters as NumPy arrays."""
    asarray, to_numpy = lib
    params, grads = _host_problem()
    dev = [asarray(p.astype(np.float32)) for p in params]
    opt = _make(name)
    for k in range(n):
        opt.update(dev, [asarray(g.astype(np.float32)) for g in grads[k]])
    return [to_numpy(p) for p in dev]


NUMPY = (np.asarray, np.asarray)


@pytest.fixture(scope="module", params=["numpy", "array-api-strict", "torch", "jax"])
def lib(request):
    """(asarray, to_numpy) of an array library: those written in place and
    JAX, whose arrays cannot be."""
    if request.param == "numpy":
        return NUMPY
    if request.param == "array-api-strict":
        xp = pytest.importorskip("array_api_strict")
        return xp.asarray, np.asarray
    if request.param == "torch":
        torch = pytest.importorskip("torch")
        return torch.asarray, lambda t: t.numpy()
    jnp = pytest.importorskip("jax.numpy")
    return jnp.asarray, np.asarray


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_one_step_changes_every_parameter(lib, name):
    params = [p.astype(np.float32) for p in _host_problem()[0]]
    after = _steps(lib, name, 1)
    for i, (p, q) in enumerate(zip(params, after)):
        assert np.all(p != q), f"{name}: parameter {i} did not change in one step"


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_steps_give_numpys_weights(lib, name):
    want = _steps(NUMPY, name, 4)
    got = _steps(lib, name, 4)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6)


@needs_jax
def test_immutable_arrays_get_new_arrays():
    import jax.numpy as jnp

    x = jnp.zeros(3)
    assert not writes_in_place(x)
    assert writer(x) is NEW_ARRAYS
    y = NEW_ARRAYS.sub(x, 1.0)
    assert y is not x and float(y[0]) == -1.0 and float(x[0]) == 0.0
    z = NEW_ARRAYS.set(x, 2.0, 1)
    assert [float(v) for v in z] == [0.0, 2.0, 0.0]


@needs_jax
def test_filling_an_immutable_array_with_a_number_needs_no_scatter(monkeypatch):
    # a whole-array set to one number (an epoch's sums zeroed, a new learning
    # rate) is one filled array, not array-api-extra's eager scatter
    import jax.numpy as jnp

    import bpnet.nn.mutation as mutation

    def no_scatter(*args, **kwargs):
        raise AssertionError("went through xpx.at")

    monkeypatch.setattr(mutation.xpx, "at", no_scatter)
    x = jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3)
    for y in (0.0, 2, -1.5):
        z = NEW_ARRAYS.set(x, y)
        assert z.shape == x.shape and z.dtype == x.dtype
        assert z.devices() == x.devices()
        np.testing.assert_array_equal(np.asarray(z), np.full((2, 3), y, np.float32))
    assert float(x[1, 2]) == 5.0  # the old array unchanged
    s = NEW_ARRAYS.set(jnp.zeros((), dtype=jnp.int32), 3)
    assert s.shape == () and s.dtype == jnp.int32 and int(s) == 3


def test_writable_arrays_are_written_in_place():
    x = np.zeros(3)
    assert writer(x) is IN_PLACE
    assert IN_PLACE.sub(x, 1.0) is x and x[0] == -1.0
    assert IN_PLACE.set(x, 2.0) is x and x[2] == 2.0
    x.flags.writeable = False  # NumPy decides array by array
    assert writer(x) is NEW_ARRAYS
    y = NEW_ARRAYS.add(x, 1.0)
    assert y is not x and x[0] == 2.0
