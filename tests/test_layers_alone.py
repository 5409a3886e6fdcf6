"""Every registered layer used on its own, as Deep Learning from Scratch uses
them (``relu = ReLU(); out = relu.forward(x); dx = relu.backward(dout)``):
it builds for its input on first use and gives the numbers it gives inside a
``Sequential``."""

import numpy as np
import pytest

import backends
import bpnet
from bpnet.nn.layers import LAYERS

N_IN = 4


def _make(name):
    cls = LAYERS.get(name)
    return cls(N_IN, 3) if cls is bpnet.Dense else cls()


def _dtype(backend):
    return "float64" if backend.supports("float64") else "float32"


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_a_layer_on_its_own_matches_it_inside_a_network(
    backend, to_numpy, name, training
):
    rng = np.random.default_rng(0)
    dtype = _dtype(backend)
    x = backend.asarray(rng.normal(size=(5, N_IN)), dtype)

    net = bpnet.Sequential([_make(name)], device=backend, dtype=dtype, n_in=N_IN)
    inside = net.layers[0]
    want = net.forward(x, training)
    dout = backend.asarray(rng.normal(size=tuple(want.shape)), dtype)
    want_dx = inside.backward(dout)

    alone = _make(name)
    out = alone.forward(x, training)
    dx = alone.backward(dout)

    for p in alone.params:  # built on the input's device, in its dtype
        assert backend.owns(p)
        assert p.dtype == x.dtype
    np.testing.assert_allclose(to_numpy(out), to_numpy(want), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(dx), to_numpy(want_dx), rtol=1e-6)
    assert alone.named_gradients().keys() == inside.named_gradients().keys()
    for key, g in alone.named_gradients().items():
        np.testing.assert_allclose(
            to_numpy(g), to_numpy(inside.named_gradients()[key]), rtol=1e-6
        )


def test_the_book_relu_and_dense():
    relu = bpnet.ReLU()
    x = np.array([[1.0, -0.5], [-2.0, 3.0]])
    assert relu.forward(x).tolist() == [[1.0, 0.0], [0.0, 3.0]]
    assert relu.backward(np.ones((2, 2))).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    dense = bpnet.Dense(2, 3)
    assert dense.forward(x).shape == (2, 3)
    assert dense.backward(np.ones((2, 3))).shape == (2, 2)
    assert dense.grads["W"].shape == (2, 3)


def test_a_layer_on_its_own_refuses_by_name():
    with pytest.raises(ValueError, match=r"^x: Dense\(3, 2\) takes 3 features"):
        bpnet.Dense(3, 2).forward(np.zeros((1, 2)))
    with pytest.raises(TypeError, match=r"^x: expected an array"):
        bpnet.ReLU().forward([1.0, 2.0])


def test_backend_of_names_the_arrays_backend(backend):
    x = backend.asarray(np.zeros((2, 2)), "float32")
    assert backends.backend_of(x).name == backend.name
