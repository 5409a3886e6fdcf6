"""bpnet.MLPClassifier: scikit-learn's estimator checks, parity with
scikit-learn's MLPClassifier, labels, solvers, persistence and devices.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._testing import ignore_warnings
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

import backends
from bpnet import Sequential
from bpnet.sklearn.classifier import MLPClassifier

quiet_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # Matrices here are tiny: one BLAS thread is faster and, on a shared
    # machine, far steadier than several contending for the cores.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


# --- scikit-learn's estimator checks -------------------------------------------
_TOO_FEW_TO_HOLD_OUT = (
    "the check fits 10 samples or fewer; early_stopping's validation_fraction=0.1 "
    "holds out 1, and early stopping needs at least 2 (scikit-learn's MLP "
    "estimators fail this check the same way)"
)
_NO_PARTIAL_FIT_WITH_EARLY_STOPPING = (
    "the check calls partial_fit, which refuses early_stopping=True with "
    "scikit-learn's own ValueError (scikit-learn's MLP estimators fail it the "
    "same way)"
)
_SPLIT_IGNORES_WEIGHTS = (
    "early stopping holds out validation_fraction of the rows, not of the "
    "weight: repeated rows change the split (scikit-learn's MLP splits the same "
    "way and fails this check too)"
)
_TNC_STOPS_ON_ROUNDING = (
    "truncated Newton stops where its tolerances are first met; summing "
    "weighted rows instead of repeated ones rounds differently and moves that "
    "point by ~1e-7, over the check's rtol of 1e-7 (lbfgs, cg, adam and sgd "
    "pass)"
)


def expected_early_stopping_failures(classifier: bool) -> dict[str, str]:
    """What early_stopping=True fails in scikit-learn's checks, and why."""
    failing = {
        "check_estimators_nan_inf": _TOO_FEW_TO_HOLD_OUT,
        "check_fit2d_1feature": _TOO_FEW_TO_HOLD_OUT,
        "check_fit_score_takes_y": _NO_PARTIAL_FIT_WITH_EARLY_STOPPING,
        "check_n_features_in_after_fitting": _NO_PARTIAL_FIT_WITH_EARLY_STOPPING,
        "check_estimators_partial_fit_n_features": (
            _NO_PARTIAL_FIT_WITH_EARLY_STOPPING
        ),
        "check_sample_weight_equivalence_on_dense_data": _SPLIT_IGNORES_WEIGHTS,
        "check_sample_weight_equivalence_on_sparse_data": _SPLIT_IGNORES_WEIGHTS,
    }
    if classifier:
        failing["check_classifiers_one_label"] = _TOO_FEW_TO_HOLD_OUT
        failing["check_classifiers_one_label_sample_weights"] = _TOO_FEW_TO_HOLD_OUT
    else:
        failing["check_regressors_no_decision_function"] = _TOO_FEW_TO_HOLD_OUT
    return failing


def expected_tnc_failures() -> dict[str, str]:
    return {
        "check_sample_weight_equivalence_on_dense_data": _TNC_STOPS_ON_ROUNDING,
        "check_sample_weight_equivalence_on_sparse_data": _TNC_STOPS_ON_ROUNDING,
    }


def _expected_failed_checks(estimator):
    if estimator.early_stopping:
        return expected_early_stopping_failures(classifier=True)
    if estimator.solver == "tnc" and estimator.dtype == "float32":
        return {
            **expected_tnc_failures(),
            "check_methods_subset_invariance": (
                "truncated Newton's float32 weights give predict_proba rows that "
                "differ by a few float32 ulps (up to 2.3e-7) between a whole batch "
                "and its single rows, whose products BLAS sums in another order; "
                "the check allows 1e-7, below float32's epsilon (float64 passes)"
            ),
        }
    if estimator.solver == "tnc":
        return expected_tnc_failures()
    return {}


@parametrize_with_checks(
    [
        MLPClassifier(),
        MLPClassifier(solver="lbfgs"),
        MLPClassifier(solver="sgd"),
        MLPClassifier(solver="cg"),
        MLPClassifier(solver="tnc"),
        MLPClassifier(solver="tnc", dtype="float32"),
        MLPClassifier(early_stopping=True),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    # As scikit-learn's own common tests do: the checks fit tiny problems for
    # the default max_iter, which need not converge.
    with ignore_warnings(category=ConvergenceWarning):
        check(estimator)


# --- parity with scikit-learn ----------------------------------------------------
@quiet_convergence
def test_digits_accuracy_matches_sklearn(digits):
    """Same parameters, three seeds: mean test accuracies within 1 point.

    Measured (seeds 0, 1, 2): bpnet 0.962, 0.969, 0.958; scikit-learn 0.962,
    0.967, 0.958 (means 0.963 and 0.962). Both start from the same weights;
    the batch orders differ.
    """
    X_train, X_test, y_train, y_test = digits
    kw = dict(
        hidden_layer_sizes=(64,),
        activation="relu",
        solver="adam",
        alpha=1e-4,
        max_iter=50,
    )
    ours, theirs = [], []
    for seed in range(3):
        a = MLPClassifier(**kw, random_state=seed).fit(X_train, y_train)
        b = SkMLPClassifier(**kw, random_state=seed).fit(X_train, y_train)
        ours.append(a.score(X_test, y_test))
        theirs.append(b.score(X_test, y_test))
        assert a.n_iter_ == b.n_iter_ == 50
        assert a.loss_ == pytest.approx(b.loss_, rel=0.25)
    assert min(ours) > 0.94
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.01


def test_alpha_is_sklearn_alpha(digits):
    """The loss is scikit-learn's: mean log loss + 0.5 * alpha * sum(W**2) / n."""
    X_train, _, y_train, _ = digits
    X, y = X_train[:300], y_train[:300]
    alpha = 3.0
    clf = MLPClassifier((16,), alpha=alpha, max_iter=3, dtype="float64")
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    expected = log_loss(y, clf.predict_proba(X)) + 0.5 * alpha * sum(
        float((W**2).sum()) for W in clf.coefs_
    ) / len(y)
    loss, _ = clf.net_.loss_and_grad(X, y, l2=alpha)
    assert loss == pytest.approx(expected, rel=1e-10)


def test_stops_after_n_iter_no_change_like_sklearn(digits):
    # With a huge tol no epoch after the first counts as progress: both stop
    # once n_iter_no_change + 1 epochs in a row have not improved.
    X_train, _, y_train, _ = digits
    kw = dict(hidden_layer_sizes=(8,), tol=1e6, n_iter_no_change=3, random_state=0)
    ours = MLPClassifier(**kw).fit(X_train, y_train)
    theirs = SkMLPClassifier(**kw).fit(X_train, y_train)
    assert ours.n_iter_ == theirs.n_iter_ == 5
    assert len(ours.loss_curve_) == 5
    assert ours.best_loss_ == min(ours.loss_curve_)


def test_convergence_warning_at_max_iter(digits):
    X_train, _, y_train, _ = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        clf = MLPClassifier((8,), max_iter=2, random_state=0).fit(X_train, y_train)
    assert clf.n_iter_ == 2


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


# --- learning-rate schedules and warm starts ----------------------------------------
@quiet_convergence
def test_invscaling_sets_scikit_learn_s_rate_after_every_epoch(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier(
        (16,),
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.2,
        power_t=0.25,
        max_iter=3,
        random_state=0,
    ).fit(X_train, y_train)
    assert clf.t_ == 3 * len(X_train)
    assert clf._optimizer.lr == pytest.approx(0.2 / (clf.t_ + 1) ** 0.25, rel=1e-12)
    # under scikit-learn's name too, which its own tests read
    assert clf._optimizer.learning_rate == clf._optimizer.lr
    # adam has no schedule: learning_rate is scikit-learn's sgd-only setting
    adam = MLPClassifier((16,), learning_rate="invscaling", max_iter=2, random_state=0)
    assert adam.fit(X_train, y_train)._optimizer.lr == 1e-3


@pytest.mark.parametrize("early_stopping", [False, True])
def test_adaptive_rate_divides_by_five_and_stops_where_scikit_learn_does(
    digits, early_stopping
):
    # tol so large that no epoch after the first counts as progress: the rate
    # is cut every n_iter_no_change + 1 epochs until it is at most 1e-6
    X_train, _, y_train, _ = digits
    settings = dict(
        hidden_layer_sizes=(8,),
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=0.1,
        tol=1e9,
        n_iter_no_change=1,
        max_iter=100,
        early_stopping=early_stopping,
        random_state=0,
    )
    ours = MLPClassifier(**settings).fit(X_train, y_train)
    theirs = SkMLPClassifier(**settings).fit(X_train, y_train)
    assert ours.n_iter_ == theirs.n_iter_ < 100
    assert ours._optimizer.lr == pytest.approx(theirs._optimizer.learning_rate)
    assert ours._optimizer.lr <= 1e-6 < ours._optimizer.lr * 5


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


@quiet_convergence
@pytest.mark.parametrize("activation", ["relu", "logistic"])
@pytest.mark.parametrize("seeded", [int, np.random.RandomState])
def test_lbfgs_with_the_same_random_state_is_scikit_learns(digits, activation, seeded):
    # the same initial weights (logistic draws them from a narrower range),
    # then the same L-BFGS-B steps: equal up to rounding
    X_train, _, y_train, _ = digits
    X, y = X_train[:300], y_train[:300]
    kw = dict(hidden_layer_sizes=(16, 8), activation=activation, solver="lbfgs")
    ours = MLPClassifier(**kw, max_iter=15, random_state=seeded(3)).fit(X, y)
    theirs = SkMLPClassifier(**kw, max_iter=15, random_state=seeded(3)).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 15
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


def test_max_fun_caps_lbfgs_evaluations_with_a_convergence_warning(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((16,), solver="lbfgs", max_fun=7, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"maximum function evaluations \(7\)"):
        clf.fit(X_train, y_train)
    assert clf.n_iter_ < 7  # each iteration takes at least one evaluation
    theirs = SkMLPClassifier((16,), solver="lbfgs", max_fun=7, random_state=0)
    with pytest.warns(ConvergenceWarning):
        theirs.fit(X_train, y_train)


def test_minimize_refuses_maxfun_for_cg():
    from bpnet import Dense, minimize

    net = Sequential([Dense(2, 2)], dtype="float64")
    with pytest.raises(ValueError, match="maxfun: scipy's CG has no limit"):
        minimize(net, np.ones((4, 2)), np.array([0, 1, 0, 1]), method="CG", maxfun=5)


def test_warm_start_refuses_other_classes(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((8,), max_iter=1, warm_start=True, random_state=0)
    with ignore_warnings(category=ConvergenceWarning):
        clf.fit(X_train, y_train)
        keep = y_train < 9
        with pytest.raises(ValueError, match="warm_start can only be used where `y`"):
            clf.fit(X_train[keep], y_train[keep])


# --- scikit-learn tools ---------------------------------------------------------
@quiet_convergence
def test_clone_pipeline_and_grid_search(digits):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier((32,), max_iter=30, random_state=0, device="cpu")
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf
    pipe = make_pipeline(StandardScaler(), clf).fit(X_train, y_train)
    # scikit-learn's MLPClassifier scores 0.931 in this pipeline, bpnet 0.927
    assert pipe.score(X_test, y_test) > 0.9
    assert hasattr(clf, "coefs_") and not hasattr(twin, "coefs_")
    search = GridSearchCV(
        make_pipeline(StandardScaler(), twin),
        {
            "mlpclassifier__learning_rate_init": [1e-4, 1e-2],
            "mlpclassifier__hidden_layer_sizes": [(8,), (32,)],
        },
        cv=2,
    )
    search.fit(X_train[:600], y_train[:600])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # 30 epochs of 3 steps: only the larger learning rate gets anywhere
    assert search.best_params_["mlpclassifier__learning_rate_init"] == 1e-2
    assert search.score(X_test, y_test) > 0.85


# --- persistence and devices ----------------------------------------------------
def _fit_small(X, y, **kw):
    with ignore_warnings(category=ConvergenceWarning):
        return MLPClassifier((16,), max_iter=10, random_state=0, **kw).fit(X, y)


def test_pickle_round_trip_resumes_exactly(digits):
    X_train, X_test, y_train, _ = digits
    names = np.array(list("abcdefghij"), dtype=object)
    clf = _fit_small(X_train, names[y_train])
    copy = pickle.loads(pickle.dumps(clf))
    assert "net_" in vars(copy) and copy.net_ is not clf.net_
    np.testing.assert_array_equal(copy.predict(X_test), clf.predict(X_test))
    np.testing.assert_array_equal(copy.predict_proba(X_test), clf.predict_proba(X_test))
    assert copy.classes_.dtype == clf.classes_.dtype
    # the optimizer state travelled too: one more epoch gives the same weights
    clf.partial_fit(X_train, names[y_train])
    copy.partial_fit(X_train, names[y_train])
    for a, b in zip(clf.coefs_, copy.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("target", ["binary", "multilabel"])
def test_state_is_json_and_round_trips(digits, target):
    X_train, X_test, y_train, _ = digits
    if target == "binary":
        y = np.where(y_train % 2 == 1, "odd", "even")
    else:
        y = np.stack([y_train % 2, y_train >= 5], axis=1)
    clf = _fit_small(X_train, y, early_stopping=True)
    arrays, metadata = clf._get_state()
    assert json.loads(json.dumps(metadata)) == metadata
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    same = MLPClassifier._from_state(arrays, metadata, device="cpu")
    assert same.validation_scores_ == clf.validation_scores_
    np.testing.assert_array_equal(same.predict(X_test), clf.predict(X_test))
    np.testing.assert_allclose(same.predict_proba(X_test), clf.predict_proba(X_test))


def test_verbose_prints_the_loss_like_sklearn(digits, capsys):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((8,), max_iter=3, verbose=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X_train, y_train)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"Iteration {i + 1}, loss = {loss:.8f}"
        for i, loss in enumerate(clf.loss_curve_)
    ]


def test_save_and_load_model_file(digits, tmp_path):
    import bpnet.io

    X_train, X_test, y_train, _ = digits
    clf = _fit_small(X_train, np.where(y_train == 0, 10, y_train))
    path = clf.save(tmp_path / "digits")
    loaded = bpnet.io.load(path)
    assert isinstance(loaded, MLPClassifier)
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_array_equal(loaded.predict(X_test), clf.predict(X_test))
    np.testing.assert_allclose(loaded.coefs_[0], clf.coefs_[0])
    assert loaded.loss_curve_ == pytest.approx(clf.loss_curve_)
    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "nothing")


def test_same_model_predicts_the_same_on_every_backend(digits):
    X_train, X_test, y_train, _ = digits
    clf = _fit_small(X_train, y_train)
    arrays, metadata = clf._get_state()
    expected, P = clf.predict(X_test), clf.predict_proba(X_test)
    names = backends.available_backends()
    for name in names:
        moved = MLPClassifier._from_state(arrays, metadata, device=name)
        assert moved.net_.backend.name == backends.get_backend(name).name
        np.testing.assert_array_equal(moved.predict(X_test), expected, err_msg=name)
        np.testing.assert_allclose(moved.predict_proba(X_test), P, atol=1e-5)
    assert "cpu" in names


@quiet_convergence
def test_training_on_a_strict_device_matches_cpu(digits):
    """array-api-strict's device1 refuses host shortcuts as a GPU does; the same
    seed gives the same run there, up to float rounding.
    """
    X_train, X_test, y_train, _ = digits
    kw = dict(hidden_layer_sizes=(16,), max_iter=10, random_state=0)
    cpu = MLPClassifier(**kw, early_stopping=True).fit(X_train, y_train)
    strict = MLPClassifier(**kw, early_stopping=True, device="array-api-strict")
    strict.fit(X_train, y_train)
    assert strict.net_.backend.name == "array-api-strict:device1"
    np.testing.assert_allclose(strict.loss_curve_, cpu.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(strict.coefs_[0], cpu.coefs_[0], atol=1e-4)
    assert np.mean(strict.predict(X_test) == cpu.predict(X_test)) > 0.99


@pytest.mark.parametrize("missing", ["sklearn", "scipy"])
def test_mlpclassifier_without_the_train_extra_names_it(monkeypatch, missing):
    import sys

    import bpnet

    monkeypatch.setitem(sys.modules, missing, None)  # import raises ImportError
    monkeypatch.delitem(sys.modules, "bpnet.sklearn.classifier")
    with pytest.raises(ImportError, match=r"pip install 'bpnet-arrayapi\[train\]'"):
        bpnet.MLPClassifier  # noqa: B018


def test_lbfgs_stops_where_scikit_learn_stops_on_iris():
    # scikit-learn passes tol as L-BFGS-B's gtol only; with scipy's tol= (which
    # also sets ftol) bpnet stopped at 22 iterations, loss 0.036, accuracy 0.987
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
    assert clf.loss_ < 1e-3 and clf.score(X, y) == 1.0
    assert clf.n_iter_ > 40
