"""sample_weight in the core: ``loss_and_grad``, ``bpnet.fit`` and
``bpnet.minimize`` take weights as a weighted mean over the samples, on every
backend. Integer weights equal repeated rows; a weight of 0 equals a dropped
row; no weights is the plain mean.
"""

import numpy as np
import pytest

import bpnet

LOSSES = [
    bpnet.SoftmaxCrossEntropy,
    bpnet.SigmoidCrossEntropy,
    bpnet.MeanSquaredError,
    bpnet.HalfSquaredError,
    bpnet.HalfPoissonDeviance,
]


def _problem(n=12, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.arange(n) % k
    w = rng.integers(0, 4, size=n).astype(np.float64)
    w[0] = 0.0
    return X, y, w


def _targets(loss, y, k):
    # one-hot rows are valid targets for every loss here
    return np.eye(k)[y]


def _net(backend, d=5, k=3, seed=0):
    layers = [bpnet.Dense(d, 7), bpnet.Tanh(), bpnet.Dense(7, k)]
    return bpnet.Sequential(layers, device=backend, dtype="float64", seed=seed)


@pytest.mark.parametrize("loss", LOSSES)
def test_integer_weights_equal_repeated_rows(backend, to_numpy, loss):
    X, y, w = _problem()
    Y = _targets(loss, y, 3)
    net = _net(backend)
    L_w, g_w = net.loss_and_grad(X, Y, loss=loss(), l2=0.3, sample_weight=w)
    rep = np.repeat(np.arange(len(w)), w.astype(int))
    L_r, g_r = net.loss_and_grad(X[rep], Y[rep], loss=loss(), l2=0.3)
    assert L_w == pytest.approx(L_r, rel=1e-12)
    for a, b in zip(g_w, g_r):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-10, atol=1e-13)


def test_equal_weights_are_the_plain_mean(backend, to_numpy):
    X, y, _ = _problem()
    net = _net(backend)
    # the L2 term divides by sum(w), as scikit-learn's does: ones with it,
    # any constant without it
    for value, l2 in ((1.0, 0.1), (2.5, 0.0)):
        L, g = net.loss_and_grad(X, y, l2=l2)
        w = np.full(len(y), value)
        L_w, g_w = net.loss_and_grad(X, y, l2=l2, sample_weight=w)
        assert L_w == pytest.approx(L, rel=1e-12)
        for a, b in zip(g, g_w):
            np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.zeros(12), "every weight is 0"),
        (-np.ones(12), ">= 0"),
        (np.ones(11), "shape \\(12,\\)"),
    ],
)
def test_bad_weights_are_refused_by_name(weights, message):
    X, y, _ = _problem()
    with pytest.raises(ValueError, match=f"sample_weight: .*{message}"):
        _net("cpu").loss_and_grad(X, y, sample_weight=weights)


@pytest.mark.parametrize("tiny", [1e-300, 1e-50])
def test_weights_that_all_vanish_in_float32_are_refused_by_name(tiny):
    # they once summed to 0 in float32 and fit ended in ZeroDivisionError
    X, y, _ = _problem()
    net = bpnet.Sequential([bpnet.Dense(X.shape[1], 3)], dtype="float32")
    w = np.full(len(y), tiny)
    with pytest.raises(
        ValueError, match="sample_weight: every weight is below float32"
    ):
        net.fit(X.astype(np.float32), y, epochs=1, sample_weight=w, verbose=0)
    w64 = bpnet.Sequential([bpnet.Dense(X.shape[1], 3)], dtype="float64")
    history = w64.fit(X, y, epochs=1, sample_weight=w, verbose=0)
    assert np.isfinite(history.to_dict()["loss"]).all()  # float64 holds them


def test_weights_of_which_some_vanish_in_float32_train_on_the_rest_and_say_so():
    X, y, _ = _problem()
    w = np.ones(len(y))
    w[:3] = 1e-50
    nets = [
        bpnet.Sequential([bpnet.Dense(X.shape[1], 3)], dtype="float32") for _ in "ab"
    ]
    with pytest.warns(UserWarning, match="3 weights > 0 are below float32's smallest"):
        nets[0].fit(X.astype(np.float32), y, epochs=2, sample_weight=w, verbose=0)
    dropped = np.where(np.arange(len(y)) < 3, 0.0, 1.0)
    nets[1].fit(X.astype(np.float32), y, epochs=2, sample_weight=dropped, verbose=0)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        np.testing.assert_array_equal(a, b)  # as if their weights were 0


def test_fit_drops_rows_of_weight_zero(backend, to_numpy):
    X, y, w = _problem(n=40)
    w = (w > 0).astype(np.float64)
    kw = dict(epochs=3, batch_size=8, optimizer="adam", lr=0.01, shuffle=True)
    weighted, kept = _net(backend), _net(backend)
    h = bpnet.fit(weighted, X, y, sample_weight=w, **kw)
    bpnet.fit(kept, X[w > 0], y[w > 0], **kw)
    for a, b in zip(weighted.parameters(), kept.parameters()):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-12)
    assert np.isfinite(h["loss"]).all()


def test_fit_weighs_each_batch(backend, to_numpy):
    # one batch of the whole data: a weighted step equals a step on repeats
    X, y, w = _problem(n=10)
    rep = np.repeat(np.arange(len(w)), w.astype(int))
    kw = dict(epochs=2, optimizer="sgd", lr=0.1, shuffle=False)
    weighted, repeated = _net(backend), _net(backend)
    h = bpnet.fit(weighted, X, y, batch_size=10, sample_weight=w, **kw)
    h_r = bpnet.fit(repeated, X[rep], y[rep], batch_size=len(rep), **kw)
    for a, b in zip(weighted.parameters(), repeated.parameters()):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-10)
    np.testing.assert_allclose(h["loss"], h_r["loss"], rtol=1e-10)


def test_minimize_with_weights_equals_repeated_rows(to_numpy):
    X, y, w = _problem()
    rep = np.repeat(np.arange(len(w)), w.astype(int))
    a, b = _net("cpu"), _net("cpu")
    ra = bpnet.minimize(a, X, y, l2=0.1, method="lbfgs", maxiter=20, sample_weight=w)
    rb = bpnet.minimize(b, X[rep], y[rep], l2=0.1, method="lbfgs", maxiter=20)
    assert ra.nit == rb.nit
    assert ra.fun == pytest.approx(rb.fun, rel=1e-8)


def test_minimize_gtol_stops_on_the_gradient_only():
    # scikit-learn passes only gtol; scipy's tol= also sets ftol
    X, y, _ = _problem(n=60, k=3)
    net = _net("cpu")
    result = bpnet.minimize(net, X, y, method="lbfgs", maxiter=500, gtol=1e-4)
    _, grads = net.loss_and_grad(X, y)
    assert result.success and result.nit < 500
    assert max(float(np.abs(g).max()) for g in grads) < 1e-4
