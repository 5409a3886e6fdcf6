import numpy as np
import pytest

import backends
import bpnet
from bpnet.nn.mutation import writes_in_place


def _mlp(device="cpu", dtype="float32", seed=0, sizes=(6, 8, 3), act=bpnet.ReLU):
    layers = []
    for i in range(len(sizes) - 1):
        if i:
            layers.append(act())
        layers.append(bpnet.Dense(sizes[i], sizes[i + 1]))
    return bpnet.Sequential(layers, device=device, dtype=dtype, seed=seed)


def test_parameters_follow_the_design_layout(backend):
    net = _mlp(backend)
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [(6, 8), (8,), (8, 3), (3,)]
    assert net.n_parameters == 6 * 8 + 8 + 8 * 3 + 3
    assert all(backend.owns(p) for p in net.parameters())


def test_same_seed_same_initial_weights_on_every_backend(backend):
    ref = [p for p in _mlp("cpu", "float64", seed=7).parameters()]
    got = [backend.to_numpy(p) for p in _mlp(backend, "float64", seed=7).parameters()]
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)
    other = _mlp("cpu", "float64", seed=8).parameters()[0]
    assert not np.array_equal(ref[0], other)


def test_default_initializer_depends_on_the_activation():
    n = 4000
    relu = bpnet.Sequential(
        [bpnet.Dense(n, 50), bpnet.ReLU(), bpnet.Dense(50, 2)], seed=1
    )
    sig = bpnet.Sequential(
        [bpnet.Dense(n, 50), bpnet.Sigmoid(), bpnet.Dense(50, 2)], seed=1
    )
    assert np.std(relu.parameters()[0]) == pytest.approx(np.sqrt(2 / n), rel=0.02)  # He
    glorot_std = np.sqrt(6 / (n + 50)) / np.sqrt(3)
    assert np.std(sig.parameters()[0]) == pytest.approx(glorot_std, rel=0.02)
    ex4 = bpnet.Sequential(
        [bpnet.Dense(n, 50, init="uniform"), bpnet.Sigmoid()], seed=1
    )
    W, b = ex4.parameters()
    assert np.abs(W).max() <= 0.12 and np.abs(b).max() <= 0.12 and np.abs(b).max() > 0.1


def test_forward_backward_float32(backend):
    net = _mlp(backend, "float32")
    X = np.random.default_rng(0).normal(size=(10, 6)).astype(np.float32)
    Z = net.forward(X)
    assert tuple(Z.shape) == (10, 3) and backend.dtype_name(Z.dtype) == "float32"
    L, grads = net.loss_and_grad(X, np.arange(10) % 3, l2=0.1)
    assert isinstance(L, float) and np.isfinite(L)
    assert [backend.dtype_name(g.dtype) for g in grads] == ["float32"] * 4
    assert [tuple(g.shape) for g in grads] == [tuple(p.shape) for p in net.parameters()]
    # float32 gradients agree with float64 ones to float32 rounding
    net64 = _mlp(backend, "float64")
    _, g64 = net64.loss_and_grad(X.astype(np.float64), np.arange(10) % 3, l2=0.1)
    for g, h in zip(grads, g64):
        np.testing.assert_allclose(backend.to_numpy(g), backend.to_numpy(h), atol=2e-5)


def test_backward_returns_gradients_of_the_last_forward(backend):
    net = _mlp(backend, "float64")
    X = np.random.default_rng(1).normal(size=(5, 6))
    Z = net.forward(X, training=True)
    dZ = backend.asarray(np.ones((5, 3)), "float64")
    grads = net.backward(dZ)
    # d(sum Z)/db2 = n for every output
    np.testing.assert_allclose(backend.to_numpy(grads[3]), np.full(3, 5.0))
    assert tuple(Z.shape) == (5, 3)


def test_flat_parameters_round_trip(backend):
    net = _mlp(backend, "float64")
    theta = net.get_flat_parameters()
    assert theta.dtype == np.float64 and theta.shape == (net.n_parameters,)
    net.set_flat_parameters(theta * 2)
    np.testing.assert_array_equal(net.get_flat_parameters(), theta * 2)


def test_set_parameters_accepts_host_arrays_and_checks_shapes(backend):
    net = _mlp(backend, "float64")
    new = [np.full(tuple(p.shape), 0.5) for p in net.parameters()]
    net.set_parameters(new)
    assert backend.to_numpy(net.parameters()[2]).mean() == 0.5
    with pytest.raises(ValueError, match=r"params\[0\]: expected shape \(6, 8\)"):
        net.set_parameters([np.zeros((8, 6))] + new[1:])
    with pytest.raises(ValueError, match="expected a list of 4 arrays"):
        net.set_parameters(new[:3])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_set_parameters_refuses_non_finite_weights(backend, bad):
    net = _mlp(backend, "float64")
    before = [backend.to_numpy(p).copy() for p in net.parameters()]
    new = [np.zeros(tuple(p.shape)) for p in net.parameters()]
    new[2][1, 1] = bad
    with pytest.raises(ValueError, match=r"params\[2\]: expected finite numbers"):
        net.set_parameters(new)
    for a, b in zip(before, net.parameters()):  # nothing half-replaced
        np.testing.assert_array_equal(a, backend.to_numpy(b))


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", np.int64, np.bool_])
def test_sequential_refuses_a_non_float_dtype(dtype):
    with pytest.raises(ValueError, match="dtype: expected 'float32' or 'float64'"):
        _mlp(dtype=dtype)


@pytest.mark.parametrize("seed", [-1, -(2**40)])
def test_sequential_refuses_a_negative_seed(seed):
    with pytest.raises(
        ValueError, match=f"seed: expected an integer >= 0 or None, got {seed}"
    ):
        _mlp(seed=seed)


def test_predict_proba_applies_the_loss_output(backend):
    X = np.random.default_rng(2).normal(size=(4, 6))
    for loss, check in [
        ("softmax", lambda P: np.allclose(P.sum(axis=1), 1)),
        (
            "sigmoid",
            lambda P: ((P > 0) & (P < 1)).all() and not np.allclose(P.sum(1), 1),
        ),
    ]:
        net = bpnet.Sequential(
            [bpnet.Dense(6, 3)], device=backend, dtype="float64", loss=loss
        )
        P = backend.to_numpy(net.predict_proba(X))
        assert P.shape == (4, 3) and check(P)
        np.testing.assert_array_equal(backend.to_numpy(net.predict(X)), P.argmax(1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_probabilities_stay_strictly_inside_0_and_1(backend, dtype):
    """Logits of +-50 and +-1e4 round sigmoid to exactly 1.0 or 0.0 in both
    dtypes; predict_proba keeps them strictly inside (0, 1), so whether a
    trained network reaches them cannot depend on the BLAS kernel's rounding.
    """
    if not backend.supports(getattr(backend.xp, dtype)):
        pytest.skip(f"{backend.name} has no float64")
    net = bpnet.Sequential(
        [bpnet.Dense(1, 4)], device=backend, dtype=dtype, loss="sigmoid"
    )
    net.set_parameters([np.array([[50.0, -50.0, 1e4, -1e4]]), np.zeros(4)])
    P = backend.to_numpy(net.predict_proba(np.array([[1.0], [0.0]])))
    assert ((P > 0) & (P < 1)).all(), P
    np.testing.assert_array_equal(P[0] > 0.5, [True, False, True, False])
    np.testing.assert_array_equal(P[1], np.full(4, 0.5, dtype=dtype))


def test_losses_are_stable_for_huge_logits(backend):
    net = bpnet.Sequential([bpnet.Dense(2, 3)], device=backend, dtype="float64")
    net.set_parameters([np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]), np.zeros(3)])
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    for loss, expected in [("softmax", 2e4), ("sigmoid", 2e4 + np.log(2))]:
        L, grads = net.loss_and_grad(X, np.array([1, 0]), loss=loss)
        assert L == pytest.approx(expected, rel=1e-9)
        assert all(np.isfinite(backend.to_numpy(g)).all() for g in grads)


def test_l2_adds_the_weight_penalty_only(backend):
    net = _mlp(backend, "float64")
    X = np.random.default_rng(3).normal(size=(8, 6))
    y = np.arange(8) % 3
    L0, g0 = net.loss_and_grad(X, y)
    L1, g1 = net.loss_and_grad(X, y, l2=2.0)
    Ws = [backend.to_numpy(p) for p in net.parameters()[0::2]]
    assert L1 - L0 == pytest.approx(2.0 / 16 * sum((W**2).sum() for W in Ws), rel=1e-10)
    np.testing.assert_allclose(
        backend.to_numpy(g1[0]) - backend.to_numpy(g0[0]), 2.0 / 8 * Ws[0], atol=1e-12
    )
    np.testing.assert_array_equal(backend.to_numpy(g1[1]), backend.to_numpy(g0[1]))


def test_one_hot_targets_equal_integer_labels(backend):
    net = _mlp(backend, "float64")
    X = np.random.default_rng(4).normal(size=(6, 6))
    y = np.array([0, 2, 1, 1, 0, 2])
    assert net.loss_and_grad(X, y)[0] == net.loss_and_grad(X, np.eye(3)[y])[0]


def test_numpy_integers_are_integers():
    net = bpnet.Sequential([bpnet.Dense(np.int64(6), np.int32(2))], seed=np.int64(4))
    assert net.shapes == [(6, 2), (2,)] and net.seed == 4


def test_repr_lists_layers_shapes_and_counts():
    text = repr(_mlp())
    assert "Dense(6, 8)" in text and "ReLU" in text and "total: 83 parameters" in text


def test_to_copies_the_network_to_another_backend(backend):
    net = _mlp("cpu", "float64", seed=3)
    X = np.random.default_rng(5).normal(size=(4, 6))
    moved = net.to(backend)
    np.testing.assert_allclose(
        backend.to_numpy(moved.forward(X)), net.forward(X), rtol=1e-12
    )


@pytest.mark.parametrize(
    "X, err, match",
    [
        (np.zeros((3, 5)), ValueError, "X: expected 6 features"),
        (np.zeros(6), ValueError, "X: expected a 2-D array.*reshape"),
        (np.zeros((2, 3, 6)), ValueError, "X: expected a 2-D array"),
        (np.zeros((0, 6)), ValueError, "X: expected at least one sample"),
        (np.full((2, 6), np.nan), ValueError, "X: contains 12 NaN or Inf"),
        (
            np.zeros((2, 6), dtype=np.int64),
            TypeError,
            "X: expected real floating.*integer",
        ),
        (np.zeros((2, 6), dtype=bool), TypeError, "X: expected real floating.*boolean"),
        (
            np.zeros((2, 6), dtype=complex),
            TypeError,
            "X: expected real floating.*complex",
        ),
        (np.array([[object()] * 6]), TypeError, "X: expected real floating.*object"),
        ("abc", TypeError, "X: expected"),
    ],
)
def test_bad_X_gets_one_clear_error(X, err, match):
    with pytest.raises(err, match=match):
        _mlp().forward(X)


@pytest.mark.parametrize(
    "y, match",
    [
        (np.array([0, 1]), "X has 3 samples but y has 2"),
        (np.array([0, 1, 3]), r"labels in \[0, 2\].*from 0 to 3; ex4"),
        (np.array([0, -1, 1]), "from -1 to 1"),
        (np.array([0.5, 1, 2]), "integer class labels"),
        (np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]]), "not one-hot"),
        (np.ones((3, 4)), "expected 3 target columns"),
        (np.array([0, np.nan, 1]), "NaN or Inf"),
    ],
)
def test_bad_targets_get_one_clear_error(y, match):
    with pytest.raises(ValueError, match=match):
        _mlp().loss_and_grad(np.zeros((3, 6), dtype=np.float32), y)


def test_arrays_from_another_library_or_device_are_refused(backend):
    if backend.name == "cpu":
        other = backends.get_backend("array-api-strict")
    else:
        other = backends.get_backend("cpu")
    net = _mlp(backend)
    X = other.asarray(np.zeros((2, 6)), "float32")
    if other.name == "cpu":
        net.forward(X)  # host NumPy input is the normal way in
        return
    with pytest.raises(TypeError, match="X: expected a NumPy array or an array on"):
        net.forward(X)


def test_strict_device1_refuses_cross_device_arrays():
    net = _mlp("array-api-strict")
    X = backends.get_backend("array-api-strict:CPU_DEVICE").asarray(np.zeros((2, 6)))
    with pytest.raises(TypeError, match="device"):
        net.forward(X)


def test_float64_on_a_device_without_it():
    with pytest.raises(
        backends.BackendUnavailableError, match="float64 is not supported"
    ):
        _mlp("array-api-strict:no_float64", "float64")
    net = _mlp("array-api-strict:no_float64", "float32")
    assert net.forward(np.zeros((1, 6))).shape == (1, 6 // 2)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(layers=[]), ValueError, "layers: expected a non-empty list"),
        (dict(layers=[bpnet.ReLU()]), ValueError, "first layer must be Dense"),
        (dict(layers=[bpnet.Dense(2, 3), "relu"]), TypeError, r"layers\[1\]"),
        (dict(layers=[bpnet.Dense(2, 3), bpnet.Dense(4, 1)]), ValueError, "must chain"),
        (dict(layers=[bpnet.Dense(2, 3)], dtype="int8"), ValueError, "dtype"),
        (dict(layers=[bpnet.Dense(2, 3)], device="tpu"), ValueError, "device"),
        (dict(layers=[bpnet.Dense(2, 3)], loss="hinge"), ValueError, "loss"),
        (dict(layers=[bpnet.Dense(2, 3)], seed=1.5), TypeError, "seed"),
    ],
)
def test_bad_constructor_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        bpnet.Sequential(**kwargs)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: bpnet.Dense(0, 3), "Dense n_in: expected a positive integer, got 0"),
        (lambda: bpnet.Dense(3, 2.5), "n_out"),
        (lambda: bpnet.Dropout(1.0), "Dropout rate"),
        (lambda: bpnet.LeakyReLU(-1), "alpha"),
        (lambda: bpnet.Dense(3, 2, init="zeros"), "init: expected one of"),
        (
            lambda: bpnet.nn.activations.activation("swish"),
            "activation: expected one of",
        ),
    ],
)
def test_bad_layer_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_dropout_is_identity_in_inference_and_scales_in_training(backend):
    net = bpnet.Sequential(
        [bpnet.Dense(50, 400), bpnet.Dropout(0.25)], device=backend, dtype="float64"
    )
    X = np.random.default_rng(6).normal(size=(30, 50))
    plain = backend.to_numpy(net.forward(X))
    noisy = backend.to_numpy(net.forward(X, training=True))
    kept = noisy != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(noisy[kept], plain[kept] / 0.75, rtol=1e-12)


def _trained_with_state(backend):
    rng = np.random.default_rng(0)
    X = rng.random((60, 4)).astype(np.float32)
    y = np.arange(60) % 3
    layers = [
        bpnet.Dense(4, 8),
        bpnet.BatchNorm(),
        bpnet.ReLU(),
        bpnet.Dropout(0.3),
        bpnet.Dense(8, 3),
    ]
    net = bpnet.Sequential(layers, device=backend, seed=1)
    net.fit(X, y, epochs=2, batch_size=16, verbose=0)
    return net, X, y


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copy_is_independent_and_trains_on_as_the_original(backend, to_numpy, how):
    import copy
    import pickle

    net, X, y = _trained_with_state(backend)
    clone = copy.deepcopy(net) if how == "deepcopy" else pickle.loads(pickle.dumps(net))
    assert clone.backend.name == net.backend.name and clone.dtype_name == "float32"
    assert repr(clone) == repr(net)
    for a, b in zip(
        net.parameters() + net.buffers(), clone.parameters() + clone.buffers()
    ):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_array_equal(to_numpy(net.predict(X)), to_numpy(clone.predict(X)))
    # the same batch order and dropout masks from here on: the same next epochs
    ours = net.fit(X, y, epochs=2, batch_size=16, verbose=0).to_dict()["loss"]
    theirs = clone.fit(X, y, epochs=2, batch_size=16, verbose=0).to_dict()["loss"]
    assert ours == theirs
    # its own arrays: the original keeps its weights
    first = clone.parameters()[0]
    if writes_in_place(first):  # else nothing can write into a shared array
        first[...] = 0
    assert float(net.xp.sum(net.xp.abs(net.parameters()[0]))) > 0


def test_a_network_not_built_yet_copies_and_builds_later():
    import copy
    import pickle

    from bpnet.nn.initializers import get_initializer

    def unbuilt():
        layers = [
            bpnet.BatchNorm(),
            bpnet.Dense(4, 3, init="he"),
            bpnet.Dense(3, 2, init=get_initializer("uniform")),  # an object
        ]
        return bpnet.Sequential(layers, n_in=None, seed=3)

    net = unbuilt()
    X = np.random.default_rng(0).random((10, 4)).astype(np.float32)
    built = unbuilt()
    built.forward(X)
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert clone.n_inputs is None
        clone.forward(X)  # built now: the same initializer and seed as the original
        assert clone.n_inputs == 4 and net.n_inputs is None
        for a, b in zip(built.parameters(), clone.parameters()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [0, -5, 2.5, None])
def test_evaluate_names_a_bad_batch_size(bad):
    net = bpnet.Sequential([bpnet.Dense(3, 2)])
    X = np.zeros((4, 3), np.float32)
    with pytest.raises(
        (TypeError, ValueError), match="batch_size: expected an integer"
    ):
        net.evaluate(X, np.array([0, 1, 0, 1]), batch_size=bad)


class _SigmoidOfMine(bpnet.HalfSquaredError):
    """A loss of the user's own that changes output and says nothing of where
    it crosses 0.5: counted through output itself."""

    def output(self, Z):
        return 1 / (1 + np.exp(-Z))


@pytest.mark.parametrize(
    "loss",
    ["mse", "half_squared_error", "poisson", "sigmoid", _SigmoidOfMine()],
    ids=str,
)
def test_every_accuracy_counts_as_predict_classifies(loss):
    # evaluate once cut every one-output network's logits at 0, predict its
    # outputs at 0.5: 0.711 against 0.940 for an MSE network on binary digits
    from bpnet.metrics import accuracy
    from bpnet.nn.losses import decision_boundary

    rng = np.random.default_rng(1)
    X = rng.random((200, 6)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.standard_normal(200) > 0.5).astype(int)
    targets = y if loss == "sigmoid" else y[:, None].astype(np.float32)
    net = bpnet.Sequential(
        [bpnet.Dense(6, 8), bpnet.ReLU(), bpnet.Dense(8, 1)], loss=loss
    )
    net.fit(X, targets, epochs=4, verbose=0)
    by_predict = float(np.mean(net.backend.to_numpy(net.predict(X)) == y))
    assert net.evaluate(X, targets)[1] == pytest.approx(by_predict, abs=1e-12)
    assert accuracy(net, X, y) == pytest.approx(by_predict, abs=1e-12)
    expected = {"sigmoid": 0.0, "poisson": np.log(0.5)}.get(loss, 0.5)
    if isinstance(loss, _SigmoidOfMine):
        assert decision_boundary(net.loss) is None  # counted through output
    else:
        assert decision_boundary(net.loss) == pytest.approx(expected)


def test_multilabel_accuracy_of_a_network_counts_as_its_probabilities():
    from bpnet.metrics import accuracy

    rng = np.random.default_rng(2)
    X = rng.random((120, 5)).astype(np.float32)
    Y = (X[:, :2] > 0.5).astype(np.float32)
    net = bpnet.Sequential([bpnet.Dense(5, 2)], loss="mse")
    net.fit(X, Y, epochs=3, verbose=0)
    P = net.backend.to_numpy(net.predict_proba(X))
    assert accuracy(net, X, Y, multilabel=True) == accuracy(P, Y, multilabel=True)
