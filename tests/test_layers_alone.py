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


# the image layers take (N, C, H, W) input (Reshape makes it): tested below
IMAGE = (2, 6, 6)
IMAGE_LAYERS = {
    "Conv2D": lambda: bpnet.Conv2D(3, 3, padding=1),
    "MaxPool2D": lambda: bpnet.MaxPool2D(2),
    "AvgPool2D": lambda: bpnet.AvgPool2D(2),
    "Flatten": lambda: bpnet.Flatten(),
    "Reshape": lambda: bpnet.Reshape(IMAGE),  # rows in, images out
}


def _make(name):
    cls = LAYERS.get(name)
    if name in IMAGE_LAYERS:
        return IMAGE_LAYERS[name]()
    return cls(N_IN, 3) if cls is bpnet.Dense else cls()


def _dtype(backend):
    return "float64" if backend.supports("float64") else "float32"


# bpnet's own layers (other test modules register layers of their own)
OWN = [n for n in LAYERS if LAYERS.get(n).__module__.startswith("bpnet.")]


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name", [n for n in OWN if n not in IMAGE_LAYERS])
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


# Dropout's backward before any forward passes dy through, as in inference
@pytest.mark.parametrize("name", [n for n in OWN if n != "Dropout"])
def test_backward_before_forward_says_call_forward_first(name):
    dout = np.ones((2, 3), np.float32)
    with pytest.raises(RuntimeError, match=r"\.backward: call forward first"):
        _make(name).backward(dout)  # never built


@pytest.mark.parametrize("name", ["Dense", "ReLU", "Sigmoid", "BatchNorm"])
def test_backward_of_a_layer_built_in_a_network_but_never_run(name):
    net = bpnet.Sequential([_make(name)], n_in=N_IN)
    with pytest.raises(RuntimeError, match=r"\.backward: call forward first"):
        net.layers[0].backward(np.ones((2, 3), np.float32))


@pytest.mark.parametrize(
    "make, first, second",
    [
        (lambda: bpnet.BatchNorm(), (2, 4), (2, 5)),
        (lambda: bpnet.Scale(), (2, 4), (2, 5)),
        (lambda: bpnet.Dense(4, 3), (2, 4), (2, 5)),
        (lambda: bpnet.Conv2D(2, 3), (2, 1, 6, 6), (2, 2, 6, 6)),
    ],
)
def test_a_second_forward_of_another_width_names_the_width_built_for(
    make, first, second
):
    layer = make()
    layer.forward(np.ones(first, np.float32))
    with pytest.raises(ValueError, match=r"^x: .* was built on its first forward"):
        layer.forward(np.ones(second, np.float32))
    assert layer.forward(np.ones(first, np.float32)).shape[0] == 2  # still works


def test_the_gates_say_call_forward_first():
    for gate in (bpnet.Multiply(), bpnet.Add()):
        with pytest.raises(RuntimeError, match="call forward first"):
            gate.backward(np.ones(2))


def test_backend_of_names_the_arrays_backend(backend):
    x = backend.asarray(np.zeros((2, 2)), "float32")
    assert backends.backend_of(x).name == backend.name


@pytest.mark.parametrize("name", list(IMAGE_LAYERS))
def test_an_image_layer_on_its_own_matches_it_inside_a_network(backend, to_numpy, name):
    """Conv2D, the poolings, Flatten and Reshape on their own build for their
    input (images (N, C, H, W), or rows for Reshape), as the book's ch. 7 uses
    them, with the numbers of the same layer built inside a network."""
    rng = np.random.default_rng(1)
    dtype = _dtype(backend)
    x2 = backend.asarray(rng.normal(size=(3, int(np.prod(IMAGE)))), dtype)
    x = x2 if name == "Reshape" else backend.xp.reshape(x2, (3, *IMAGE))
    layers = [bpnet.Reshape(IMAGE), _make(name), bpnet.Flatten()]
    if name == "Reshape":
        layers = layers[1:]
    net = bpnet.Sequential(layers, device=backend, dtype=dtype, seed=0)
    inside = net.layers[0 if name == "Reshape" else 1]
    want = inside.forward(x)
    dout = backend.asarray(rng.normal(size=tuple(want.shape)), dtype)
    want_dx = inside.backward(dout)

    alone = _make(name)
    out = alone.forward(x)
    dx = alone.backward(dout)
    for p in alone.params:
        assert backend.owns(p) and p.dtype == x.dtype
    np.testing.assert_allclose(to_numpy(out), to_numpy(want), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(dx), to_numpy(want_dx), rtol=1e-6)
    for key, g in alone.named_gradients().items():
        np.testing.assert_allclose(
            to_numpy(g), to_numpy(inside.named_gradients()[key]), rtol=1e-6
        )
