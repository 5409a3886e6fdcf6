"""A whole scikit-learn pipeline holding bpnet estimators is kept and loaded
with skops (bpnet's types trusted by name), or with pickle/joblib for files
one made oneself; the loaded model predicts exactly as the one saved."""

import io
import math
import pickle

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import bpnet

sio = pytest.importorskip(
    "skops.io", reason="skops is not installed (pip install 'bpnet-arrayapi[test]')"
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


def _pipeline(X, y):
    clf = bpnet.MLPClassifier((16,), max_iter=5, random_state=0)
    return make_pipeline(StandardScaler(), clf).fit(X, y)


def test_trusted_types_name_the_estimator_classes():
    names = bpnet.skops_trusted_types()
    assert names == [
        "bpnet.sklearn.classifier.MLPClassifier",
        "bpnet.sklearn.regressor.MLPRegressor",
    ]
    assert "skops_trusted_types" in bpnet.__all__


def test_pipeline_round_trips_through_skops(digits, tmp_path):
    X, y = digits
    pipe = _pipeline(X, y)
    path = tmp_path / "pipe.skops"
    sio.dump(pipe, path)
    # what the file asks to trust is bpnet's estimator and nothing else
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) <= set(bpnet.skops_trusted_types())
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    loaded = sio.load(path, trusted=bpnet.skops_trusted_types())
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    # the scaler came along: raw input gives the pipeline's score
    assert loaded.score(X, y) == pipe.score(X, y)


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "adam"},
        {"solver": "lbfgs"},
        {"solver": "sgd", "early_stopping": True, "dtype": "float32"},
    ],
)
def test_regressor_round_trips_through_skops(digits, params):
    X, y = digits
    reg = bpnet.MLPRegressor((8,), max_iter=5, random_state=0, **params)
    reg.fit(X / 16.0, y.astype(float))
    loaded = sio.loads(sio.dumps(reg), trusted=bpnet.skops_trusted_types())
    np.testing.assert_array_equal(loaded.predict(X / 16.0), reg.predict(X / 16.0))
    assert loaded.loss_curve_ == reg.loss_curve_


def test_partial_fit_continues_after_skops_as_without(digits):
    # the optimizer's moments and the batch order's generator come along
    X, y = digits
    clf = bpnet.MLPClassifier((8,), random_state=0).partial_fit(
        X, y, classes=np.unique(y)
    )
    loaded = sio.loads(sio.dumps(clf), trusted=bpnet.skops_trusted_types())
    clf.partial_fit(X, y)
    loaded.partial_fit(X, y)
    for a, b in zip(clf.coefs_, loaded.coefs_):
        np.testing.assert_array_equal(a, b)


def test_unfitted_estimators_round_trip_through_skops():
    for est in (
        bpnet.MLPClassifier(random_state=np.random.RandomState(0)),
        bpnet.MLPRegressor((3, 2), n_iter_no_change=math.inf, dtype="float32"),
    ):
        loaded = sio.loads(sio.dumps(est), trusted=bpnet.skops_trusted_types())
        assert type(loaded) is type(est)
        assert not hasattr(loaded, "net_")
        got, want = loaded.get_params(), est.get_params()
        assert got.keys() == want.keys()
        for k in want:
            if k != "random_state":
                assert got[k] == want[k], k


def test_string_labels_round_trip_through_skops(digits):
    X, y = digits
    labels = np.array(["zero", "one", "two"])[y % 3]
    clf = bpnet.MLPClassifier((8,), max_iter=5, random_state=0).fit(X / 16.0, labels)
    loaded = sio.loads(sio.dumps(clf), trusted=bpnet.skops_trusted_types())
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_array_equal(loaded.predict(X / 16.0), clf.predict(X / 16.0))


@pytest.mark.parametrize("route", ["pickle", "joblib"])
def test_pipeline_round_trips_through_pickle_and_joblib(digits, route):
    # the trusted-only route: for files one made oneself
    X, y = digits
    pipe = _pipeline(X, y)
    if route == "pickle":
        loaded = pickle.loads(pickle.dumps(pipe))
    else:
        buf = io.BytesIO()
        joblib.dump(pipe, buf)
        buf.seek(0)
        loaded = joblib.load(buf)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_an_estimator_on_another_device_round_trips_through_skops(digits):
    # array-api-strict's arrays refuse NumPy conversion, as a GPU's do: the
    # state skops stores must hold host copies only
    pytest.importorskip("array_api_strict")
    X, y = digits
    clf = bpnet.MLPClassifier(
        (8,), max_iter=3, random_state=0, device="array-api-strict"
    )
    clf.fit(X / 16.0, y)
    loaded = sio.loads(sio.dumps(clf), trusted=bpnet.skops_trusted_types())
    assert loaded.net_.backend.name == clf.net_.backend.name
    np.testing.assert_array_equal(
        loaded.predict_proba(X / 16.0), clf.predict_proba(X / 16.0)
    )
