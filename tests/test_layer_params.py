"""Parameters belong to layers: a layer that learns something other than
Dense's (W, b), placed between two Dense layers, trains, regularises, takes
its own arrays from set_parameters, saves, loads and resumes exactly."""

import numpy as np
import pytest

import bpnet
from bpnet.nn.layers import LAYERS, Layer, hands_out_fresh_grads


@LAYERS.register()
class TestShift(Layer):
    """y = x + c, one learnable offset per feature (no decay)."""

    __test__ = False  # not a test class, whatever its name
    param_names = ("c",)
    fresh_grads = True

    def parameter_shapes(self, n_in):
        return {"c": (n_in,)}

    def build(self, n_in, model):
        super().build(n_in, model)
        self.c = model.backend.asarray(np.linspace(-0.5, 0.5, n_in), model.dtype)
        return n_in

    def forward(self, x, training=False):
        return x + self.c

    def backward(self, dy, need_dx=True):
        self.grads = {"c": self.xp.sum(dy, axis=0)}
        return dy


def _data(n=60, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), np.arange(n) % k


def _net(device="cpu", dtype="float64", seed=0):
    layers = [bpnet.Dense(4, 4), TestShift(), bpnet.Tanh(), bpnet.Dense(4, 3)]
    return bpnet.Sequential(layers, device=device, dtype=dtype, seed=seed)


def test_parameters_are_listed_layer_after_layer_by_name():
    net = _net()
    assert net.shapes == [(4, 4), (4,), (4,), (4, 3), (3,)]
    assert list(net.named_parameters()) == ["0.W", "0.b", "1.c", "3.W", "3.b"]
    assert net.decay_mask() == [True, False, False, True, False]
    assert net.buffers() == []
    dense, shift = net.layers[:2]
    assert dense.params[0] is dense.W and dense.params[1] is dense.b
    assert shift.params == [shift.c]
    with pytest.raises(AttributeError, match="params: TestShift declares"):
        shift.params = []


def test_l2_takes_the_weights_only(backend):
    X, y = _data()
    net = _net(backend)
    L0, g0 = net.loss_and_grad(X, y, l2=0.0)
    L1, g1 = net.loss_and_grad(X, y, l2=0.1)
    to_np = backend.to_numpy
    W1, c, W2 = (to_np(net.parameters()[k]) for k in (0, 2, 3))
    n = X.shape[0]
    assert L1 - L0 == pytest.approx(0.1 / (2 * n) * ((W1**2).sum() + (W2**2).sum()))
    np.testing.assert_allclose(to_np(g1[0]) - to_np(g0[0]), 0.1 / n * W1, atol=1e-15)
    np.testing.assert_array_equal(to_np(g1[2]), to_np(g0[2]))  # c: no decay
    np.testing.assert_allclose(to_np(g1[3]) - to_np(g0[3]), 0.1 / n * W2, atol=1e-15)
    assert c.shape == (4,)
    assert bpnet.check_gradients(net, X[:9], y[:9], l2=0.7) < 1e-7


def test_set_parameters_puts_each_array_in_its_layer(backend):
    net = _net(backend)
    new = [np.full(s, float(i + 1)) for i, s in enumerate(net.shapes)]
    net.set_parameters(new)
    dense1, shift, _, dense2 = net.layers
    to_np = backend.to_numpy
    for arr, value in [
        (dense1.W, 1),
        (dense1.b, 2),
        (shift.c, 3),
        (dense2.W, 4),
        (dense2.b, 5),
    ]:
        np.testing.assert_array_equal(to_np(arr), np.full(tuple(arr.shape), value))
    bad = list(new)
    bad[2] = np.zeros(3)
    with pytest.raises(
        ValueError, match=r"params\[2\]: expected shape \(4,\) for layers\[1\] .*'c'"
    ):
        net.set_parameters(bad)


def test_save_load_and_exact_resume(tmp_path, backend):
    X, y = _data(n=90)
    net = _net(backend)
    net.fit(X, y, epochs=3, batch_size=16, optimizer=bpnet.Adam(0.01), l2=0.01)
    path = bpnet.save(net, tmp_path / "shift.npz")
    again = bpnet.load(path, device=backend)
    assert isinstance(again.layers[1], TestShift)
    for a, b in zip(net.parameters(), again.parameters()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))

    def opt():
        return bpnet.Momentum(0.05, nesterov=True)

    kw = dict(batch_size=16, l2=0.01, validation_fraction=0.2)
    full = _net(backend)
    h_full = full.fit(X, y, epochs=4, optimizer=opt(), **kw)
    ck = tmp_path / "ck.npz"
    _net(backend).fit(X, y, epochs=2, optimizer=opt(), checkpoint=ck, **kw)
    resumed, h = bpnet.resume(ck, X, y, device=backend, epochs=4)
    assert h.loss == h_full.loss
    for a, b in zip(full.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


@pytest.mark.parametrize("method", ["CG", "L-BFGS-B"])
def test_the_flat_vector_trains_every_layer_s_parameters(method):
    X, y = _data()
    net = _net()
    theta = net.get_flat_parameters()
    assert theta.shape == (16 + 4 + 4 + 12 + 3,)
    before = net.evaluate(X, y, l2=0.1)[0]
    result = bpnet.minimize(net, X, y, l2=0.1, method=method, maxiter=30)
    assert result.fun < 0.8 * before
    assert net.evaluate(X, y, l2=0.1)[0] == pytest.approx(result.fun, rel=1e-9)
    c = net.backend.to_numpy(net.layers[1].c)
    assert not np.allclose(c, np.linspace(-0.5, 0.5, 4))  # the offset learned too
    np.testing.assert_array_equal(net.get_flat_parameters()[20:24], c)


def test_fresh_gradients_are_declared_by_the_class_with_the_backward():
    class MyDense(bpnet.Dense):
        def backward(self, dy, need_dx=True):
            return super().backward(dy, need_dx)

    class Renamed(bpnet.Dense):
        pass

    assert hands_out_fresh_grads(bpnet.Dense(2, 2))
    assert hands_out_fresh_grads(Renamed(2, 2))
    assert not hands_out_fresh_grads(MyDense(2, 2))
    assert not hands_out_fresh_grads(bpnet.ReLU())


def test_a_layer_that_lists_its_arrays_positionally_is_set_in_place():
    class Gain(Layer):
        def build(self, n_in, model):
            super().build(n_in, model)
            self.g = model.backend.asarray(np.ones(n_in), model.dtype)
            self.params = [self.g]
            return n_in

        def forward(self, x, training=False):
            return x * self.g

    net = bpnet.Sequential([bpnet.Dense(3, 2), Gain()], dtype="float64")
    assert list(net.named_parameters()) == ["0.W", "0.b", "1.0"]
    net.set_parameters([np.zeros((3, 2)), np.zeros(2), np.array([2.0, 3.0])])
    np.testing.assert_array_equal(net.layers[1].g, [2.0, 3.0])


def test_a_network_may_start_with_a_layer_of_any_width():
    X, y = _data()
    given = bpnet.Sequential([TestShift(), bpnet.Dense(4, 3)], n_in=4)
    assert given.shapes == [(4,), (4, 3), (3,)]
    later = bpnet.Sequential([TestShift(), bpnet.Dense(4, 3)])
    assert later.n_inputs is None and "built at the first" in repr(later)
    with pytest.raises(ValueError, match=r"n_in: the network's input width is not"):
        later.parameters()
    later.fit(X, y, epochs=1, verbose=0)  # infers 4 from X
    assert later.n_inputs == 4 and later.get_config()["n_in"] == 4
    # inferred at the first fit, the same numbers as given up front
    given.fit(X, y, epochs=1, verbose=0)
    for a, b in zip(given.parameters(), later.parameters()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"layers\[1\]: Dense\(4, 3\) receives 5"):
        bpnet.Sequential([TestShift(), bpnet.Dense(4, 3)], n_in=5)
    with pytest.raises(ValueError, match="n_in: expected a positive integer equal"):
        bpnet.Sequential([bpnet.Dense(4, 3)], n_in=5)
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        bpnet.Sequential([TestShift(), bpnet.Dense(4, 3)]).forward(np.zeros(4))


def test_to_thetas_refuses_a_layer_that_is_not_affine():
    with pytest.raises(ValueError, match=r"layers\[1\] TestShift\(\) has .*\['c'\]"):
        bpnet.to_thetas(_net())


class UnlistedShift(TestShift):
    """TestShift's arithmetic in a class nobody registered."""

    __test__ = False


@LAYERS.register()
class ShapelessShift(TestShift):
    """Registered, but its config rebuilds a layer that declares no arrays."""

    __test__ = False

    def parameter_shapes(self, n_in):
        return {}


class UnlistedLoss(bpnet.HalfSquaredError):
    """A loss of the user's own, not registered."""


def _with(layer, dtype="float32"):
    layers = [bpnet.Dense(4, 4), layer, bpnet.Tanh(), bpnet.Dense(4, 3)]
    return bpnet.Sequential(layers, dtype=dtype, seed=0)


@pytest.mark.parametrize("how", ["save", "copy", "pickle", "to", "checkpoint"])
def test_what_a_file_or_copy_cannot_rebuild_is_refused_up_front(tmp_path, how):
    # a file saved from it could not be loaded: refused before anything is written
    import copy
    import pickle

    X, y = _data()
    net = _with(UnlistedShift())
    net.fit(X, y, epochs=1, verbose=0)
    before = [np.array(p) for p in net.parameters()]
    act = {
        "save": lambda: bpnet.save(net, tmp_path / "m.npz"),
        "copy": lambda: copy.deepcopy(net),
        "pickle": lambda: pickle.dumps(net),
        "to": lambda: net.to("cpu", dtype="float64"),
        "checkpoint": lambda: net.fit(
            X, y, epochs=2, checkpoint=tmp_path / "ck.npz", verbose=0
        ),
    }[how]
    with pytest.raises(
        ValueError, match=r"layer 1 \(UnlistedShift\) is not registered"
    ):
        act()
    assert list(tmp_path.iterdir()) == []
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)


def test_a_layer_whose_config_does_not_give_its_arrays_is_refused_by_save(tmp_path):
    net = _with(ShapelessShift())
    net.forward(np.zeros((2, 4)))
    with pytest.raises(
        ValueError, match="layer 1 .ShapelessShift. holds the parameters"
    ):
        bpnet.save(net, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_loss_of_ones_own_copies_but_is_refused_by_save(tmp_path):
    import copy
    import pickle

    X, y = _data()
    net = bpnet.Sequential([bpnet.Dense(4, 3)], loss=UnlistedLoss(), dtype="float32")
    net.fit(X, np.eye(3)[y], epochs=1, verbose=0)
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net)), net.to("cpu")):
        assert type(clone.loss) is UnlistedLoss
    with pytest.raises(
        ValueError, match=r"the loss \(UnlistedLoss\) is not registered"
    ):
        bpnet.save(net, tmp_path / "m.npz")
    # a float32 check goes through a float64 copy, which the loss no longer blocks
    assert bpnet.check_gradients(net, X[:5], np.eye(3)[y[:5]]) < 1e-7


def test_a_float32_check_that_cannot_copy_to_float64_says_so():
    X, y = _data()
    with pytest.warns(UserWarning, match="checked in float32, where differences"):
        bpnet.check_gradients(_with(UnlistedShift()), X[:5], y[:5])


def test_a_schedule_a_checkpoint_cannot_rebuild_is_refused_before_training(tmp_path):
    X, y = _data()
    net = _with(TestShift())
    before = [np.array(p) for p in net.parameters()]
    opt = bpnet.SGD(0.1, schedule=lambda lr, epoch: lr / (1 + epoch))
    with pytest.raises(
        ValueError, match="checkpoint: a checkpoint rebuilds the optimizer"
    ):
        net.fit(
            X, y, epochs=2, optimizer=opt, checkpoint=tmp_path / "ck.npz", verbose=0
        )
    assert list(tmp_path.iterdir()) == []
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)
