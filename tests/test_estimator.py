"""bpnet.MLPClassifier: scikit-learn's estimator checks and parity with
scikit-learn's MLPClassifier.
"""

from __future__ import annotations

import numpy as np
import pytest
from _estimator_helpers import (  # fixtures, found by pytest by name
    _one_blas_thread,  # noqa: F401
    digits_fixture,  # noqa: F401
    quiet_convergence,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils._testing import ignore_warnings
from sklearn.utils.estimator_checks import parametrize_with_checks

from bpnet import Sequential
from bpnet.sklearn.classifier import MLPClassifier

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


def test_lbfgs_stops_where_scikit_learn_stops_on_iris():
    # scikit-learn passes tol as L-BFGS-B's gtol only; with scipy's tol= (which
    # also sets ftol) bpnet stopped at 22 iterations, loss 0.036, accuracy 0.987
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
    assert clf.loss_ < 1e-3 and clf.score(X, y) == 1.0
    assert clf.n_iter_ > 40
