"""What both estimators take: sample_weight, sparse X, X's dtype; and what
they give back as coefs_ / intercepts_.
"""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import load_digits, make_regression
from sklearn.ensemble import AdaBoostClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._testing import ignore_warnings
from threadpoolctl import threadpool_limits

import bpnet.sklearn.sparse as sparse_module
from bpnet.sklearn.classifier import MLPClassifier
from bpnet.sklearn.regressor import MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(300, 20, noise=5.0, random_state=0)
    return X, y / 100.0


def _same_weights(a, b, rtol=1e-12, atol=0.0):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=atol)


# --- sample_weight ---------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_zero_weights_drop_their_samples(digits, solver):
    X, y = digits
    w = np.ones(len(y))
    w[::3] = 0.0
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=5, random_state=0)
    weighted = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    dropped = MLPClassifier(**kw).fit(X[w > 0], y[w > 0])
    # the weighted mean (weights 1) and the plain mean round differently: a few
    # 1e-16 on the loss, ~1e-15 on weights of ~0.1 after lbfgs' line searches
    _same_weights(weighted, dropped, atol=1e-14)


def test_integer_weights_equal_repeated_rows_with_lbfgs(regression):
    X, y = regression
    w = np.arange(len(y)) % 3
    rep = np.repeat(np.arange(len(y)), w)
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    weighted = MLPRegressor(**kw).fit(X, y, sample_weight=w)
    repeated = MLPRegressor(**kw).fit(X[rep], y[rep])
    assert weighted.n_iter_ == repeated.n_iter_
    _same_weights(weighted, repeated, rtol=1e-6, atol=1e-9)


def test_weights_pull_the_fit_toward_heavy_samples():
    # every row twice, with targets t and t + 2 weighted 3:1: the weighted
    # least-squares answer is t + 0.5 (unweighted, it would be t + 1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    t = X @ np.array([1.0, 2.0, 3.0])
    X2, y2 = np.vstack([X, X]), np.concatenate([t, t + 2.0])
    w = np.concatenate([np.full(60, 3.0), np.ones(60)])
    reg = MLPRegressor((), solver="lbfgs", alpha=0.0, max_iter=200, tol=1e-10)
    reg.fit(X2, y2, sample_weight=w)
    np.testing.assert_allclose(reg.predict(X), t + 0.5, atol=1e-4)


def test_adaboost_and_pipeline_route_sample_weight(digits):
    X, y = digits
    # AdaBoost hands each estimator a random_state of its own: unseeded, the
    # score ranged from 0.81 to 0.995 between runs
    boost = AdaBoostClassifier(
        MLPClassifier((8,), learning_rate_init=0.01, max_iter=50, random_state=0),
        n_estimators=3,
        random_state=0,
    )
    boost.fit(X, y)  # AdaBoost passes sample_weight to every fit
    assert boost.score(X, y) > 0.9
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier((8,), learning_rate_init=0.01, max_iter=50, random_state=0),
    )
    w = np.ones(len(y))
    w[:100] = 0.0
    pipe.fit(X, y, mlpclassifier__sample_weight=w)
    assert pipe.score(X, y) > 0.5


@pytest.mark.parametrize("est", [MLPClassifier, MLPRegressor])
def test_bad_sample_weight_is_refused(digits, est):
    X, y = digits
    with pytest.raises(ValueError, match="sample_weight"):
        est(max_iter=1).fit(X, y, sample_weight=np.ones(len(y) - 1))
    with pytest.raises(ValueError, match="weight"):
        est(max_iter=1).fit(X, y, sample_weight=-np.ones(len(y)))


# --- sparse X ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csr_matrix", "csc_matrix", "csr_array"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_sparse_minibatches_train_as_dense_ones_do(digits, fmt, solver):
    X, y = digits
    Xs = getattr(sparse, fmt)(X)
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=3, random_state=0)
    dense = MLPClassifier(**kw).fit(X, y)
    sparse_fit = MLPClassifier(**kw).fit(Xs, y)
    _same_weights(dense, sparse_fit, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dense.loss_curve_, sparse_fit.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(
        sparse_fit.predict_proba(Xs), dense.predict_proba(X), rtol=1e-9
    )
    np.testing.assert_array_equal(sparse_fit.predict(Xs), dense.predict(X))
    sparse_fit.partial_fit(Xs, y)
    dense.partial_fit(X, y)
    _same_weights(dense, sparse_fit, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("solver", ["lbfgs", "cg"])
def test_sparse_full_batch_sums_slices_like_the_whole(regression, solver, monkeypatch):
    X, y = regression
    monkeypatch.setattr(sparse_module, "CHUNK_ELEMENTS", 20 * 64)  # 5 slices
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=15, random_state=0)
    w = 1.0 + np.arange(len(y)) % 4
    dense = MLPRegressor(**kw).fit(X, y, sample_weight=w)
    sparse_fit = MLPRegressor(**kw).fit(sparse.csr_matrix(X), y, sample_weight=w)
    assert dense.n_iter_ == sparse_fit.n_iter_
    _same_weights(dense, sparse_fit, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        sparse_fit.predict(sparse.csr_matrix(X)), dense.predict(X), rtol=1e-6
    )


def test_sparse_tnc_fits_as_well_as_dense(regression):
    # truncated Newton's path turns on rounding (see the estimator checks),
    # so the sliced sums give another path of the same quality
    X, y = regression
    kw = dict(hidden_layer_sizes=(8,), solver="tnc", max_iter=30, random_state=0)
    dense = MLPRegressor(**kw).fit(X, y).score(X, y)
    sparse_fit = MLPRegressor(**kw).fit(sparse.csc_matrix(X), y)
    assert sparse_fit.score(sparse.csc_matrix(X), y) == pytest.approx(dense, abs=0.02)


def test_sparse_x_is_never_densified_whole():
    # 8,000 x 10,000 at 0.05%: 40,000 nonzeros, 320 MB if made dense. Training
    # and predicting must hold about one batch (8 MB at batch_size=200) at a
    # time; measured, the peak is about 2.5 batches.
    n, d = 8_000, 10_000
    rng = np.random.default_rng(0)
    nnz = 40_000  # built directly: sparse.random draws from all n * d cells
    X = sparse.csr_matrix(
        (
            rng.random(nnz, dtype=np.float32),
            (rng.integers(0, n, nnz), rng.integers(0, d, nnz)),
        ),
        shape=(n, d),
    )
    y = np.asarray(X[:, :10].sum(axis=1)).ravel()
    reg = MLPRegressor((4,), batch_size=200, max_iter=1, random_state=0)
    tracemalloc.start()
    try:
        reg.fit(X, y)
        pred = reg.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense_bytes = n * d * 4
    assert pred.shape == (n,) and np.isfinite(pred).all()
    assert reg.coefs_[0].dtype == np.float32
    assert peak < dense_bytes / 8, f"peak {peak / 2**20:.0f} MiB"


# --- dtype ---------------------------------------------------------------------
@pytest.mark.parametrize("est", [MLPClassifier, MLPRegressor])
def test_dtype_follows_x_unless_asked(digits, est):
    X, y = digits
    kw = dict(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    assert est(**kw).fit(X, y).coefs_[0].dtype == np.float64
    assert est(**kw).fit(X.astype(np.float32), y).coefs_[0].dtype == np.float32
    assert est(**kw).fit((X * 16).astype(int), y).coefs_[0].dtype == np.float64
    fast = est(**kw, dtype="float32").fit(X, y)
    assert fast.coefs_[0].dtype == np.float32 and fast.net_.dtype_name == "float32"
    # a fitted network keeps its precision whatever X comes next
    fitted = est(**kw).fit(X, y)
    fitted.partial_fit(X.astype(np.float32), y)
    assert fitted.coefs_[0].dtype == np.float64


# --- coefs_ / intercepts_ --------------------------------------------------------
def test_coefs_are_read_only_copies_that_assign_through(regression):
    X, y = regression
    reg = MLPRegressor((8,), solver="lbfgs", max_iter=10, random_state=0).fit(X, y)
    before = reg.predict(X)
    with pytest.raises(ValueError, match="read-only"):
        reg.coefs_[0][0, 0] = 1.0
    with pytest.raises(TypeError, match="coefs_: is a read-only copy"):
        reg.coefs_[0] = np.zeros_like(reg.coefs_[0])
    np.testing.assert_array_equal(reg.predict(X), before)
    # assigning a whole list sets the network's weights, as in scikit-learn
    reg.coefs_ = [2.0 * W for W in reg.coefs_]
    reg.intercepts_ = [b + 1.0 for b in reg.intercepts_]
    changed = reg.predict(X)
    assert not np.allclose(changed, before)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), changed)
    with pytest.raises(ValueError, match="coefs_: expected a list of 2 arrays"):
        reg.coefs_ = reg.coefs_[:1]
    with pytest.raises(AttributeError, match="not fitted"):
        MLPRegressor().coefs_  # noqa: B018


def test_convergence_warning_still_names_the_solver(regression):
    X, y = regression
    with pytest.warns(ConvergenceWarning, match="lbfgs"):
        MLPRegressor((8,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)
    with ignore_warnings(category=ConvergenceWarning):
        MLPRegressor((8,), max_iter=2).fit(X, y)


# --- a wide sparse X is never made dense, not even a batch --------------------
def test_the_first_layer_takes_a_sparse_batch_on_every_backend(backend):
    # NumPy multiplies the CSR batch as it is; the other backends get the
    # batch alone made dense (their fallback): the same numbers either way
    import bpnet

    rng = np.random.default_rng(0)
    Xs = sparse.random(40, 30, density=0.1, format="csr", random_state=0)
    y = rng.integers(0, 3, 40)
    net = bpnet.Sequential(
        [bpnet.Dense(30, 8), bpnet.ReLU(), bpnet.Dense(8, 3)],
        device=backend,
        dtype="float64",
        seed=0,
    )
    rows = np.arange(5, 25)
    Xb = backend.sparse_rows(Xs, rows, net.dtype)
    assert backend.is_sparse(Xb) == backend.takes_sparse
    dense = backend.asarray(Xs[rows].toarray(), net.dtype)
    T = backend.asarray(np.eye(3)[y[rows]], net.dtype)
    L1, g1 = net._loss_and_grad(Xb, T, net.loss, l2=0.1)
    L2, g2 = net._loss_and_grad(dense, T, net.loss, l2=0.1)
    assert float(L1) == pytest.approx(float(L2), rel=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(
            backend.to_numpy(a), backend.to_numpy(b), rtol=1e-10, atol=1e-13
        )


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_float32_fits_on_sparse_and_dense_x_agree_to_rounding(digits, solver):
    X, y = digits
    kw = dict(
        hidden_layer_sizes=(8,),
        solver=solver,
        momentum=0.0,
        learning_rate_init=0.01,
        max_iter=3,
        random_state=0,
    )
    dense = MLPClassifier(**kw).fit(X.astype(np.float32), y)
    sparse_fit = MLPClassifier(**kw).fit(sparse.csr_matrix(X, dtype=np.float32), y)
    _same_weights(dense, sparse_fit, rtol=2e-4, atol=1e-6)


def test_the_folded_sgd_step_on_a_sparse_batch_is_the_dense_step():
    import bpnet

    rng = np.random.default_rng(1)
    Xs = sparse.random(16, 12, density=0.2, format="csr", random_state=1)
    dy = rng.normal(size=(16, 4))
    layers = []
    for x in (Xs, Xs.toarray()):
        net = bpnet.Sequential([bpnet.Dense(12, 4)], dtype="float64", seed=0)
        layer = net.layers[0]
        layer.forward(x, training=True)
        assert layer.backward_sgd(dy, False, lr=0.1, decay=0.99) is None
        layers.append(layer)
    np.testing.assert_allclose(layers[0].W, layers[1].W, rtol=1e-13)
    np.testing.assert_allclose(layers[0].b, layers[1].b, rtol=1e-13)


PEAK = """
import resource
import numpy as np
from scipy import sparse
from bpnet import MLPClassifier

n, d, nnz = 1000, 200_000, 2_000
rng = np.random.default_rng(0)
cells = (rng.integers(0, n, nnz), rng.integers(0, d, nnz))
X = sparse.csr_matrix((rng.random(nnz, dtype=np.float32), cells), shape=(n, d))
y = rng.integers(0, 2, n)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
MLPClassifier((32,), batch_size=200, max_iter=2, random_state=0).fit(X, y)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024)
"""


def test_a_wide_sparse_x_trains_without_dense_batches():
    # 1000 x 200,000 with 2,000 nonzeros, 32 hidden units: one dense batch of
    # 200 rows is 160 MB in float32, and densifying every batch grew the peak
    # by about 520 MB; the weights, their gradient and Adam's two moments
    # (26 MB each) are what remains, about 220 MB measured
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PEAK],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    grown_mb = float(proc.stdout.strip().splitlines()[-1])
    assert grown_mb < 330, f"the fit grew the peak by {grown_mb:.0f} MB"
