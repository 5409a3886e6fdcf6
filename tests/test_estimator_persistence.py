"""bpnet.MLPClassifier persistence and devices: clone, pickle, state, model
files, backends and the missing train extra.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from _estimator_helpers import (  # fixtures, found by pytest by name
    _one_blas_thread,  # noqa: F401
    digits_fixture,  # noqa: F401
    quiet_convergence,
)
from conftest import jax_x64
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._testing import ignore_warnings

import backends
from bpnet.sklearn.classifier import MLPClassifier


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
    if any(name.startswith("jax") for name in names):
        jax_x64()  # the float64 model runs on JAX in its 64-bit mode, in any order
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
