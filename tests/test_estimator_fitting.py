"""bpnet.MLPClassifier fitting: labels, solvers, early stopping, partial_fit and
warm starts.
"""

from __future__ import annotations

import numpy as np
import pytest
from _estimator_helpers import (  # fixtures, found by pytest by name
    _one_blas_thread,  # noqa: F401
    digits_fixture,  # noqa: F401
    quiet_convergence,
)
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils._testing import ignore_warnings

from bpnet import Sequential
from bpnet.sklearn.classifier import MLPClassifier


# --- labels and fitted attributes -----------------------------------------------
@quiet_convergence
def test_fitted_attributes(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((32, 16), max_iter=5, random_state=0).fit(X_train, y_train)
    assert [W.shape for W in clf.coefs_] == [(64, 32), (32, 16), (16, 10)]
    assert [b.shape for b in clf.intercepts_] == [(32,), (16,), (10,)]
    assert all(isinstance(W, np.ndarray) for W in clf.coefs_ + clf.intercepts_)
    params = [clf.net_.backend.to_numpy(p) for p in clf.net_.parameters()]
    np.testing.assert_array_equal(params[0], clf.coefs_[0])
    np.testing.assert_array_equal(params[5], clf.intercepts_[2])
    assert isinstance(clf.net_, Sequential)
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 10
    assert clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 64
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_iter_ == len(clf.loss_curve_) == 5
    assert clf.t_ == 5 * len(y_train)
    assert clf.loss_ == clf.loss_curve_[-1]
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    P = clf.predict_proba(X_train[:7])
    assert P.shape == (7, 10)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X_train[:7]), P.argmax(axis=1))


@quiet_convergence
def test_string_labels(digits):
    X_train, X_test, y_train, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six",
                      "seven", "eight", "nine"])  # fmt: skip
    clf = MLPClassifier((32,), max_iter=30, random_state=0)
    clf.fit(X_train, names[y_train])
    np.testing.assert_array_equal(clf.classes_, np.sort(names))
    pred = clf.predict(X_test)
    assert pred.dtype.kind == "U"
    assert np.mean(pred == names[y_test]) > 0.9
    # predict_proba's columns follow classes_ (alphabetical, not 0..9)
    P = clf.predict_proba(X_test)
    np.testing.assert_array_equal(clf.classes_[P.argmax(axis=1)], pred)


@quiet_convergence
def test_ex4_labels_one_to_ten(digits):
    X_train, X_test, y_train, y_test = digits
    to_ex4 = np.where(y_train == 0, 10, y_train)  # ex4: digit 0 is label 10
    clf = MLPClassifier((32,), max_iter=30, random_state=0).fit(X_train, to_ex4)
    np.testing.assert_array_equal(clf.classes_, np.arange(1, 11))
    pred = clf.predict(X_test)
    assert set(np.unique(pred)) <= set(range(1, 11))
    assert np.mean(pred == np.where(y_test == 0, 10, y_test)) > 0.9


@quiet_convergence
def test_binary_uses_one_sigmoid_output(digits):
    X_train, X_test, y_train, y_test = digits
    keep, keep_test = y_train < 2, y_test < 2
    y = np.where(y_train[keep] == 1, "yes", "no")
    clf = MLPClassifier((8,), max_iter=50, random_state=0).fit(X_train[keep], y)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    assert clf.coefs_[-1].shape == (8, 1)
    P = clf.predict_proba(X_test[keep_test])
    assert P.shape == (keep_test.sum(), 2)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    truth = np.where(y_test[keep_test] == 1, "yes", "no")
    # 0.934 here, as scikit-learn's from the same start (0.967 to 1 for seeds 1-9)
    assert np.mean(clf.predict(X_test[keep_test]) == truth) > 0.9


@quiet_convergence
def test_multilabel_targets(digits):
    X_train, X_test, y_train, y_test = digits
    Y = np.stack([y_train % 2, y_train >= 5], axis=1).astype(int)
    clf = MLPClassifier((32,), max_iter=50, random_state=0).fit(X_train, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 2
    pred = clf.predict(X_test)
    assert pred.shape == (len(X_test), 2)
    truth = np.stack([y_test % 2, y_test >= 5], axis=1).astype(int)
    assert np.mean((pred == truth).all(axis=1)) > 0.85


@quiet_convergence
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multilabel_probabilities_are_never_exactly_0_or_1(digits, dtype):
    """Saturated logits (here the last layer's weights and biases scaled by 1e3, so some
    pass 37)
    give probabilities strictly inside (0, 1), as scikit-learn's multilabel
    check asks, whatever rounding the BLAS kernel did; predict is unchanged."""
    X_train, X_test, y_train, _ = digits
    Y = np.stack([y_train % 2, y_train >= 5], axis=1).astype(int)
    clf = MLPClassifier((8,), max_iter=5, random_state=0, dtype=dtype)
    clf.fit(X_train, Y)
    before = clf.predict(X_test)
    clf.coefs_ = [*clf.coefs_[:-1], clf.coefs_[-1] * 1e3]
    clf.intercepts_ = [*clf.intercepts_[:-1], clf.intercepts_[-1] * 1e3]
    P = clf.predict_proba(X_test)
    assert np.abs(clf._logits(clf._check_X(X_test))).max() > 37
    assert ((P > 0) & (P < 1)).all()
    np.testing.assert_array_equal(clf.predict(X_test), before)


# --- early stopping, partial_fit ----------------------------------------------
def test_early_stopping_keeps_the_best_epoch(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier(
        (16,), early_stopping=True, n_iter_no_change=3, max_iter=200, random_state=0
    )
    clf.fit(X_train, y_train)
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    with pytest.raises(ValueError, match="partial_fit does not support early_stop"):
        clf.partial_fit(X_train, y_train)
    # the kept weights score the best validation accuracy on the same split
    _, X_val, _, y_val = train_test_split(
        X_train, y_train, test_size=0.1, random_state=np.random.RandomState(0)
    )
    assert clf.score(X_val, y_val) == pytest.approx(clf.best_validation_score_)


def test_partial_fit_continues_like_fit(digits):
    X_train, X_test, y_train, y_test = digits
    kw = dict(hidden_layer_sizes=(16,), random_state=0, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        whole = MLPClassifier(**kw, max_iter=4).fit(X_train, y_train)
    inc = MLPClassifier(**kw)
    with pytest.raises(ValueError, match="classes"):
        inc.partial_fit(X_train, y_train)
    for _ in range(4):
        inc.partial_fit(X_train, y_train, classes=np.arange(10))
        assert inc.n_iter_ == 1
    # the same batches and the same Adam state: the same weights
    for a, b in zip(inc.coefs_ + inc.intercepts_, whole.coefs_ + whole.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert inc.t_ == 4 * len(y_train) and len(inc.loss_curve_) == 4
    np.testing.assert_allclose(inc.loss_curve_, whole.loss_curve_, rtol=1e-5)
    # later batches need not contain every class, but may not add new ones
    inc.partial_fit(X_test[y_test < 3], y_test[y_test < 3])
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        inc.partial_fit(X_test, y_test + 1)
    with pytest.raises(ValueError, match="classes"):
        inc.partial_fit(X_test, y_test, classes=np.arange(11))
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")


# --- solvers --------------------------------------------------------------------
@quiet_convergence
@pytest.mark.parametrize("solver", ["lbfgs", "cg", "tnc"])
def test_full_batch_solvers_learn_digits(digits, solver):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier((64,), solver=solver, max_iter=100, dtype="float64")
    clf.set_params(random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.95
    assert 1 <= clf.n_iter_ <= 100
    assert len(clf.loss_curve_) == clf.n_iter_
    assert clf.loss_ < 0.1 < clf.loss_curve_[0]


@quiet_convergence
def test_sgd_with_momentum_learns_digits(digits):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier((32,), solver="sgd", learning_rate_init=0.1, max_iter=30)
    clf.set_params(random_state=0, nesterovs_momentum=False)
    assert clf.fit(X_train, y_train).score(X_test, y_test) > 0.93


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("hidden_layer_sizes", (0,)),
        ("hidden_layer_sizes", (10, -1)),
        ("hidden_layer_sizes", 0),
        ("hidden_layer_sizes", "big"),
        ("activation", "softplus"),
        ("solver", "newton"),
        ("alpha", -1e-4),
        ("alpha", float("nan")),
        ("learning_rate_init", 0.0),
        ("learning_rate_init", -0.1),
        ("learning_rate_init", float("nan")),
        ("batch_size", 0),
        ("batch_size", "big"),
        ("max_iter", 0),
        ("max_iter", 2.5),
        ("tol", -1.0),
        ("n_iter_no_change", 0),
        ("momentum", 1.5),
        ("beta_2", 1.0),
        ("epsilon", 0.0),
        ("validation_fraction", 1.0),
        ("shuffle", "yes"),
        ("dtype", "float16"),
        ("learning_rate", "optimal"),
        ("max_fun", 0),
        ("random_state", -1),
        ("power_t", -0.5),
        ("warm_start", "yes"),
    ],
)
def test_bad_parameters_raise_at_fit_naming_the_parameter(param, value):
    clf = MLPClassifier(**{param: value})  # constructing never validates
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=param):
        clf.fit(X, y)


@quiet_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_continues_from_the_previous_fit(digits, solver):
    X_train, _, y_train, _ = digits
    settings = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=5)
    cold = MLPClassifier(**settings, random_state=0).fit(X_train, y_train)
    first_loss = cold.loss_curve_[0]
    warm = clone(cold).set_params(warm_start=True).fit(X_train, y_train)
    before = [w.copy() for w in warm.coefs_]
    last = warm.loss_
    warm.fit(X_train, y_train)  # continues: starts near where it stopped
    this_fit = warm.loss_curve_[-warm.n_iter_ :]
    assert this_fit[0] < first_loss
    assert abs(this_fit[0] - last) < abs(this_fit[0] - first_loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, warm.coefs_))
    cold.fit(X_train, y_train)  # without warm_start: the same fresh start
    assert cold.loss_curve_[0] == pytest.approx(first_loss, rel=1e-6)


def test_warm_start_refuses_other_classes(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((8,), max_iter=1, warm_start=True, random_state=0)
    with ignore_warnings(category=ConvergenceWarning):
        clf.fit(X_train, y_train)
        keep = y_train < 9
        with pytest.raises(ValueError, match="warm_start can only be used where `y`"):
            clf.fit(X_train[keep], y_train[keep])
