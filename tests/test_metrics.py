"""bpnet.metrics: accuracy counted on the device; scikit-learn's report and
confusion matrix on host copies.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

import bpnet
from bpnet import metrics


def _net(backend, n_out=4, loss=None):
    layers = [bpnet.Dense(5, 8), bpnet.Tanh(), bpnet.Dense(8, n_out)]
    return bpnet.Sequential(layers, device=backend, seed=3, loss=loss)


def _data(n=50, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, k, size=n)


def test_accuracy_of_a_network_on_every_backend(backend):
    net = _net(backend)
    X, y = _data()
    pred = backend.to_numpy(net.predict(X))
    expected = float(np.mean(pred == y))
    assert 0 < expected < 1  # an untrained net: some right, some wrong
    assert metrics.accuracy(net, X, y) == expected
    # data already on the device, in small batches
    Xd, yd = backend.asarray(X), backend.asarray(y)
    assert metrics.accuracy(net, Xd, yd, batch_size=7) == expected
    # one-hot rows count as their argmax
    assert metrics.accuracy(net, X, np.eye(4)[y]) == expected


def test_accuracy_of_arrays_on_every_backend(backend):
    X, y = _data()
    scores = np.random.default_rng(1).normal(size=(50, 4))
    expected = float(np.mean(scores.argmax(axis=1) == y))
    S = backend.asarray(scores, dtype="float32")
    assert metrics.accuracy(S, backend.asarray(y)) == expected
    assert metrics.accuracy(S, y) == expected  # host labels go to the device
    labels = backend.asarray(scores.argmax(axis=1))
    assert metrics.accuracy(labels, y) == expected
    p = backend.asarray(np.linspace(0, 1, 50).reshape(-1, 1), dtype="float32")
    assert metrics.accuracy(p, (np.arange(50) >= 25).astype(int)) == 1.0


def test_multilabel_accuracy_counts_whole_rows(backend):
    net = _net(backend, n_out=3, loss="sigmoid")
    X, _ = _data()
    Y = (np.random.default_rng(2).random((50, 3)) > 0.5).astype(np.float32)
    P = backend.to_numpy(net.predict_proba(X))
    expected = float(np.mean(((P > 0.5) == (Y > 0.5)).all(axis=1)))
    assert metrics.accuracy(net, X, Y, multilabel=True) == pytest.approx(expected)
    pred = np.array([[1, 0], [1, 1], [0, 0]])
    true = np.array([[1, 0], [1, 0], [0, 0]])
    assert metrics.accuracy(pred, true, multilabel=True) == pytest.approx(2 / 3)


def test_accuracy_says_what_is_wrong():
    net = _net("cpu")
    X, y = _data()
    with pytest.raises(TypeError, match="y"):
        metrics.accuracy(net, X)
    with pytest.raises(ValueError, match="y_true"):
        metrics.accuracy(y[:10], y)
    with pytest.raises(ValueError, match="y: X has 50 samples"):
        metrics.accuracy(net, X, y[:10])
    with pytest.raises(TypeError, match="three arguments"):
        metrics.accuracy(y, y, y)


def test_classification_report_is_sklearns(backend):
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    expected = skm.classification_report(y_true, y_pred)
    assert metrics.classification_report(y_true, y_pred) == expected
    on_device = metrics.classification_report(
        backend.asarray(y_true), backend.asarray(y_pred)
    )
    assert on_device == expected
    # names for labels 0..3, one of them absent from the data
    report = metrics.classification_report(
        y_true, y_pred, ["cat", "dog", "eel", "fox"], output_dict=True,
        zero_division=0,
    )  # fmt: skip
    assert report["fox"]["support"] == 0
    assert report["dog"] == pytest.approx(
        skm.classification_report(y_true, y_pred, output_dict=True)["1"]
    )


def test_confusion_matrix_is_sklearns(backend):
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    expected = skm.confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred), expected)
    got = metrics.confusion_matrix(
        backend.asarray(y_true), backend.asarray(y_pred), normalize="true"
    )
    np.testing.assert_allclose(got, expected / expected.sum(axis=1, keepdims=True))
    names = np.array(["a", "b"])
    np.testing.assert_array_equal(
        metrics.confusion_matrix(names[[0, 1, 1]], names[[0, 0, 1]]),
        [[1, 0], [1, 1]],
    )
