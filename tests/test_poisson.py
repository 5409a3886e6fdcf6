"""Half the Poisson deviance with a log link: ``bpnet.HalfPoissonDeviance`` on
every backend against SciPy's and scikit-learn's formula, and
``MLPRegressor(loss="poisson")`` against scikit-learn's Poisson GLM.
(Gradient checks and PyTorch's ``poisson_nll_loss`` are in test_gradients.py.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import xlogy
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network._base import poisson_loss
from sklearn.utils._testing import ignore_warnings

import bpnet
from bpnet.cli.predict import predict_main
from bpnet.sklearn.regressor import MLPRegressor


def _logits_and_counts(n=7, k=3, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, k))
    T = rng.poisson(2.0, size=(n, k)).astype(np.float64)
    T[0, :] = 0.0  # t log t is 0 at t = 0
    T[1, 0] = 2.5  # rates, not only counts
    return Z, T


def test_value_and_gradient_are_half_the_deviance(backend, to_numpy):
    Z, T = _logits_and_counts()
    n = Z.shape[0]
    mu = np.exp(Z)
    expected = np.sum(xlogy(T, T / mu) - T + mu) / n
    L, G = bpnet.HalfPoissonDeviance().loss_and_grad(
        backend.asarray(Z, "float64"), backend.asarray(T, "float64")
    )
    assert float(L) == pytest.approx(expected, rel=1e-12)
    assert float(L) == pytest.approx(poisson_loss(T, mu), rel=1e-12)
    np.testing.assert_allclose(to_numpy(G), (mu - T) / n, rtol=1e-12)


def test_weighted_value_is_scikit_learns(backend, to_numpy):
    Z, T = _logits_and_counts(seed=1)
    w = np.random.default_rng(2).uniform(0.5, 3.0, size=Z.shape[0])
    column = backend.asarray((w / w.sum()).reshape(-1, 1), "float64")
    L, G = bpnet.HalfPoissonDeviance().loss_and_grad(
        backend.asarray(Z, "float64"), backend.asarray(T, "float64"), weights=column
    )
    mu = np.exp(Z)
    assert float(L) == pytest.approx(poisson_loss(T, mu, sample_weight=w), rel=1e-12)
    np.testing.assert_allclose(
        to_numpy(G), (mu - T) * (w / w.sum())[:, None], rtol=1e-12
    )


def test_a_perfect_fit_costs_nothing_and_the_output_is_the_mean(backend, to_numpy):
    T = np.array([[1.0, 3.0], [0.5, 7.0]])
    Z = backend.asarray(np.log(T), "float64")
    loss = bpnet.HalfPoissonDeviance()
    L, G = loss.loss_and_grad(Z, backend.asarray(T, "float64"))
    assert abs(float(L)) < 1e-15
    np.testing.assert_allclose(to_numpy(G), 0.0, atol=1e-15)
    np.testing.assert_allclose(to_numpy(loss.output(Z)), T, rtol=1e-15)


def test_the_registry_knows_it_by_scikit_learns_name():
    assert isinstance(bpnet.nn.losses.get_loss("poisson"), bpnet.HalfPoissonDeviance)
    assert bpnet.nn.losses.LOSSES.canonical("HalfPoissonDeviance") == "poisson"


def test_negative_targets_are_refused_by_name():
    net = bpnet.Sequential([bpnet.Dense(2, 1)], dtype="float64", loss="poisson")
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="y: targets for a Poisson loss .* >= 0"):
        net.loss_and_grad(X, np.array([1.0, -0.5, 2.0]))


def _counts(seed=42, n=100):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, n)
    return x.reshape(n, 1), rng.poisson(np.exp(x + 1))


@pytest.mark.parametrize("seed", [0, 42])
def test_one_identity_unit_is_the_poisson_glm(seed):
    # scikit-learn's test_mlp_vs_poisson_glm_equivalent: exp(x w + b) both ways
    X, y = _counts(seed)
    glm = PoissonRegressor(alpha=0, tol=1e-7).fit(X, y)
    reg = MLPRegressor(
        (1,),
        activation="identity",
        loss="poisson",
        alpha=0,
        solver="lbfgs",
        tol=1e-7,
        random_state=seed + 1,
    ).fit(X, y)
    assert reg.out_activation_ == "exp"
    np.testing.assert_allclose(reg.predict(X), glm.predict(X), rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_is_half_the_deviance_plus_alpha(dtype):
    X, y = _counts(3)
    X = np.c_[X, X**2].astype(dtype)
    alpha = 0.3
    reg = MLPRegressor((4,), loss="poisson", solver="lbfgs", alpha=alpha, max_iter=15)
    with ignore_warnings(category=ConvergenceWarning):
        reg.set_params(random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert pred.dtype == dtype and (pred > 0).all()
    penalty = sum(float((W.astype(np.float64) ** 2).sum()) for W in reg.coefs_)
    expected = poisson_loss(y, pred.astype(np.float64)) + alpha / (2 * len(y)) * penalty
    assert reg.loss_ == pytest.approx(
        expected, rel=1e-9 if dtype == np.float64 else 1e-5
    )


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_negative_y_is_refused_by_name(solver):
    X, y = _counts()
    with pytest.raises(ValueError, match="y: loss='poisson' takes counts or rates"):
        MLPRegressor(loss="poisson", solver=solver).fit(X, y - 3.0)


@ignore_warnings(category=ConvergenceWarning)
def test_poisson_model_round_trips_and_says_y_is_positive(tmp_path, capsys):
    X, y = _counts(7)
    reg = MLPRegressor((3,), loss="poisson", max_iter=5, random_state=0).fit(X, y)
    assert reg.__sklearn_tags__().target_tags.positive_only
    assert not MLPRegressor().__sklearn_tags__().target_tags.positive_only
    path = reg.save(tmp_path / "poisson.npz")
    loaded = bpnet.load(path)
    assert loaded.loss == "poisson" and loaded.out_activation_ == "exp"
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    # bpnet-predict prints the means, exp of the network's outputs
    np.save(tmp_path / "X.npy", X[:4])
    assert predict_main([str(path), "--data", str(tmp_path / "X.npy")]) == 0
    printed = [float(v) for v in capsys.readouterr().out.split()]
    np.testing.assert_allclose(printed, reg.predict(X[:4]), rtol=1e-6)


@ignore_warnings(category=ConvergenceWarning)
def test_early_stopping_scores_the_means():
    # the held-out R^2 is of exp(outputs), what predict returns; the kept
    # weights are the best epoch's, so their score is the best score
    X, y = _counts(5, n=200)
    reg = MLPRegressor(
        (8,), loss="poisson", early_stopping=True, max_iter=30, random_state=0
    ).fit(X, y)
    _, X_val, _, y_val = train_test_split(
        X, y, test_size=0.1, random_state=np.random.RandomState(0)
    )
    assert r2_score(y_val, reg.predict(X_val)) == pytest.approx(
        reg.best_validation_score_, rel=1e-12
    )


def _large_counts():
    # counts near 1e6: the first L-BFGS-B trial step overflows float32's exp
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 5))
    return X, np.round(np.exp(13 + 0.5 * X[:, 0]))


def test_float32_lbfgs_that_overflowed_then_stalled_warns():
    # scipy calls this run converged (the float32 loss stopped changing after
    # a trial step's loss overflowed); the fit is far from a minimum, and
    # scikit-learn's run of it ends ABNORMAL with a warning: so does ours.
    X, y = _large_counts()
    reg = MLPRegressor((10,), loss="poisson", solver="lbfgs", random_state=0)
    with pytest.warns(ConvergenceWarning) as caught:  # and no RuntimeWarning
        reg.fit(X.astype(np.float32), y.astype(np.float32))
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    message = " ".join(str(w.message) for w in caught)
    assert "infinite or NaN loss" in message and "float64" in message
    assert r2_score(y, reg.predict(X.astype(np.float32))) < 0.5


def test_float64_fits_the_same_counts_without_the_warning():
    X, y = _large_counts()
    reg = MLPRegressor((10,), loss="poisson", solver="lbfgs", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            reg.fit(X, y)
        except ConvergenceWarning as exc:  # max_iter may end it; never the flag
            assert "infinite or NaN" not in str(exc)
            reg.set_params(max_iter=2000).fit(X, y)
    assert r2_score(y, reg.predict(X)) > 0.99


@pytest.mark.parametrize(
    "nonfinite, largest, flagged",
    [(1, 6.4e5, True), (0, 6.4e5, False), (3, 5e-5, False)],
)
def test_minimize_fails_a_stall_after_an_overflow(nonfinite, largest, flagged):
    # only a run that saw an infinite loss and stopped above the gradient's
    # tolerance: a float32 loss that stops changing near a minimum is scipy's
    # success, as it is scikit-learn's
    from scipy.optimize import OptimizeResult

    from bpnet.train.fullbatch import _flag_false_convergence

    net = bpnet.Sequential([bpnet.Dense(2, 1)], loss="poisson")
    said = "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"
    result = OptimizeResult(
        success=True, fun=1.5, nit=2, message=said, jac=np.array([0.0, -largest])
    )
    _flag_false_convergence(result, nonfinite, 1e-4, net)
    assert result.success is not flagged
    if flagged:
        assert f"{largest:.3g}" in result.message and "float32" in result.message
        assert said in result.message
    else:
        assert result.message == said
