"""A warm start (or partial_fit) after set_params changed the network's shape,
activation or precision: refused by name, as scikit-learn refuses other
classes; and every copy of an estimator whose parameters no longer describe
the network it holds (pickle, deepcopy, save and load) predicts as it does.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._testing import ignore_warnings

import bpnet
from bpnet.sklearn.classifier import MLPClassifier
from bpnet.sklearn.regressor import MLPRegressor

CHANGES = [
    ("hidden_layer_sizes", (12, 6)),
    ("activation", "tanh"),
    ("dtype", "float64"),
]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16.0).astype(np.float32), y[:300]


def _fitted(X, y, cls=MLPClassifier):
    est = cls((8,), activation="relu", max_iter=3, random_state=0, warm_start=True)
    with ignore_warnings(category=ConvergenceWarning):
        return est.fit(X, y)


@pytest.mark.parametrize(("name", "value"), CHANGES)
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_a_warm_start_on_another_network_is_refused_by_name(digits, cls, name, value):
    X, y = digits
    est = _fitted(X, y, cls)
    before = [w.copy() for w in est.coefs_]
    est.set_params(**{name: value})
    with pytest.raises(ValueError, match=rf"^{name}: the fitted network"):
        est.fit(X, y)
    if cls is MLPClassifier:
        with pytest.raises(ValueError, match=rf"^{name}: the fitted network"):
            est.partial_fit(X, y)
    for a, b in zip(before, est.coefs_):  # nothing trained
        np.testing.assert_array_equal(a, b)
    est.set_params(warm_start=False)  # a new network: as scikit-learn
    with ignore_warnings(category=ConvergenceWarning):
        est.fit(X, y)
    assert est.net_.dtype_name == ("float64" if name == "dtype" else "float32")


def test_aliases_of_the_same_activation_are_the_same_network(digits):
    X, y = digits
    est = MLPClassifier((8,), activation="logistic", max_iter=2, warm_start=True)
    with ignore_warnings(category=ConvergenceWarning):
        est.fit(X, y)
        est.set_params(activation="sigmoid", hidden_layer_sizes=8).fit(X, y)
    assert len(est.loss_curve_) == 4  # the second fit went on


@pytest.mark.parametrize(("name", "value"), CHANGES)
def test_copies_after_set_params_predict_as_the_object_does(
    digits, tmp_path, name, value
):
    X, y = digits
    est = _fitted(X, y)
    est.set_params(**{name: value})
    expected = est.predict_proba(X)
    copies = {
        "pickle": pickle.loads(pickle.dumps(est)),
        "deepcopy": copy.deepcopy(est),
        "save/load": bpnet.load(est.save(tmp_path / "m.npz")),
    }
    for how, twin in copies.items():
        np.testing.assert_array_equal(twin.predict_proba(X), expected, err_msg=how)
        assert twin.get_params()[name] == value, how  # the parameters as set
        with pytest.raises(ValueError, match=rf"^{name}: the fitted network"):
            twin.fit(X, y)
