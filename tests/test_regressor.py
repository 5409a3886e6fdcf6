"""bpnet.MLPRegressor: scikit-learn's estimator checks, its loss and alpha,
multi-output targets, R^2, every solver, partial_fit, persistence and
bpnet-predict.
"""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
from _estimator_helpers import _one_blas_thread, quiet_convergence  # noqa: F401
from sklearn.datasets import load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler, scale
from sklearn.utils._testing import ignore_warnings
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_estimator import expected_early_stopping_failures, expected_tnc_failures

import bpnet
from bpnet.cli.predict import predict_main
from bpnet.sklearn.regressor import MLPRegressor


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _expected_failed_checks(estimator):
    if estimator.early_stopping:
        return expected_early_stopping_failures(classifier=False)
    if estimator.solver == "tnc":
        return expected_tnc_failures()
    if estimator.loss == "poisson":
        return {
            "check_regressor_multioutput": (
                "draws y < 0 whatever the positive_only tag says; loss='poisson' "
                "refuses it"
            )
        }
    return {}


@parametrize_with_checks(
    [
        MLPRegressor(max_iter=100),
        MLPRegressor(solver="lbfgs", max_iter=100),
        MLPRegressor(solver="sgd", max_iter=100),
        MLPRegressor(solver="cg", max_iter=100),
        MLPRegressor(solver="tnc", max_iter=100),
        MLPRegressor(early_stopping=True, max_iter=100),
        MLPRegressor(loss="poisson", solver="lbfgs", max_iter=100),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    with ignore_warnings(category=ConvergenceWarning):
        check(estimator)


def test_loss_is_sklearn_half_squared_error_with_alpha(diabetes):
    X, y = diabetes
    alpha = 0.5
    reg = MLPRegressor((8,), solver="lbfgs", alpha=alpha, max_iter=30, random_state=0)
    with ignore_warnings(category=ConvergenceWarning):
        reg.fit(X, y)
    pred = reg.predict(X)
    penalty = sum(float((W**2).sum()) for W in reg.coefs_)
    expected = 0.5 * np.mean((y - pred) ** 2) + alpha / (2 * len(y)) * penalty
    assert reg.loss_ == pytest.approx(expected, rel=1e-9)
    assert reg.out_activation_ == "identity"


@pytest.mark.parametrize(
    "activation, loss, max_iter, max_fun, warns",
    [
        # scikit-learn's test_lbfgs_regression_maxfun: max_fun=10 ends the
        # run before scipy's tolerances do, and both warn
        ("identity", "squared_error", 150, 10, True),
        ("relu", "squared_error", 150, 10, True),
        ("tanh", "squared_error", 20, 15000, True),
        ("tanh", "poisson", 20, 15000, True),
        ("identity", "squared_error", 150, 15000, False),
    ],
)
def test_lbfgs_with_the_same_random_state_is_scikit_learns(
    activation, loss, max_iter, max_fun, warns
):
    # the same initial weights, then scipy's L-BFGS-B with the same options
    X, y = make_regression(200, 10, bias=20.0, noise=100.0, random_state=7)
    y = scale(y)  # scikit-learn's regression_datasets
    if loss == "poisson":
        y = np.random.default_rng(0).poisson(np.exp(0.3 * y))
    kw = dict(
        hidden_layer_sizes=50,
        activation=activation,
        loss=loss,
        solver="lbfgs",
        tol=0.0,
        max_iter=max_iter,
        max_fun=max_fun,
        random_state=1,
    )
    reg, sk = MLPRegressor(**kw), SkMLPRegressor(**kw)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always", ConvergenceWarning)
        reg.fit(X, y)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always", ConvergenceWarning)
        sk.fit(X, y)
    assert len(ours) == len(theirs) == warns
    assert reg.n_iter_ == sk.n_iter_
    assert reg.loss_ == pytest.approx(sk.loss_, rel=1e-9)
    np.testing.assert_allclose(reg.predict(X), sk.predict(X), rtol=1e-6, atol=1e-9)


def test_lbfgs_fits_diabetes_as_well_as_sklearn(diabetes):
    X, y = diabetes
    kw = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=200, random_state=0)
    with ignore_warnings(category=ConvergenceWarning):
        ours = MLPRegressor(**kw).fit(X, y).score(X, y)
        theirs = SkMLPRegressor(**kw).fit(X, y).score(X, y)
    assert ours == pytest.approx(theirs, abs=0.05)
    assert ours > 0.6


@quiet_convergence
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs", "cg", "tnc"])
def test_every_solver_learns(diabetes, solver):
    X, y = diabetes
    lr = 0.01 if solver == "adam" else 1e-3
    reg = MLPRegressor(
        (16,), solver=solver, max_iter=150, learning_rate_init=lr, random_state=0
    )
    reg.fit(X, y)
    assert reg.score(X, y) > 0.45
    assert reg.n_iter_ >= 1 and np.isfinite(reg.loss_)


@quiet_convergence
def test_multi_output_predicts_every_column(diabetes):
    X, y = diabetes
    Y = np.c_[y, np.sqrt(y), -y]
    reg = MLPRegressor((16,), solver="lbfgs", max_iter=200, random_state=0).fit(X, Y)
    P = reg.predict(X)
    assert P.shape == Y.shape and reg.n_outputs_ == 3
    assert reg.score(X, Y) == pytest.approx(r2_score(Y, P))
    assert min(r2_score(Y[:, k], P[:, k]) for k in range(3)) > 0.5
    # one column, given as 1-D or 2-D: predictions are 1-D, as scikit-learn's
    one = MLPRegressor((4,), solver="lbfgs", max_iter=5, random_state=0)
    assert one.fit(X, y[:, None]).predict(X).shape == (len(y),)


@quiet_convergence
def test_early_stopping_scores_r2_and_keeps_the_best(diabetes):
    X, y = diabetes
    reg = MLPRegressor(
        (16,),
        early_stopping=True,
        learning_rate_init=0.01,
        n_iter_no_change=5,
        max_iter=500,
        random_state=0,
    ).fit(X, y)
    assert reg.n_iter_ < 500
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert 0.2 < reg.best_validation_score_ <= 1.0
    with pytest.raises(ValueError, match="partial_fit does not support early_stop"):
        reg.partial_fit(X, y)


def test_partial_fit_continues_like_fit(diabetes):
    X, y = diabetes
    kw = dict(hidden_layer_sizes=(8,), random_state=0, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        whole = MLPRegressor(**kw, max_iter=3).fit(X, y)
    inc = MLPRegressor(**kw)
    for _ in range(3):
        inc.partial_fit(X, y)
    for a, b in zip(inc.coefs_ + inc.intercepts_, whole.coefs_ + whole.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(inc.loss_curve_, whole.loss_curve_, rtol=1e-10)
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        MLPRegressor(solver="lbfgs").partial_fit  # noqa: B018


def test_unknown_loss_is_refused_by_name(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="loss: expected one of.*'poisson'.*got 'hub"):
        MLPRegressor(loss="huber").fit(X, y)


@quiet_convergence
def test_pickle_and_model_file_round_trip(diabetes, tmp_path, capsys):
    X, y = diabetes
    reg = MLPRegressor((8,), max_iter=5, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    path = reg.save(tmp_path / "reg.npz")
    loaded = bpnet.load(path)
    assert isinstance(loaded, MLPRegressor)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    # bpnet-predict prints one value per row, and the values in --json
    np.save(tmp_path / "X.npy", X[:5])
    assert predict_main([str(path), "--data", str(tmp_path / "X.npy")]) == 0
    lines = capsys.readouterr().out.split()
    np.testing.assert_allclose([float(v) for v in lines], reg.predict(X[:5]))
    assert predict_main([str(path), "--data", str(tmp_path / "X.npy"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["kind"] == "MLPRegressor" and summary["accuracy"] is None
    np.testing.assert_allclose(summary["predictions"], reg.predict(X[:5]))
