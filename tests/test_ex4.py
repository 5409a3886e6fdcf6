import numpy as np
import pytest

import bpnet


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _thetas(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(6, 5)), rng.normal(size=(3, 7))]  # 4 -> 6 -> 3


def test_round_trip_is_lossless(backend):
    thetas = _thetas()
    net = bpnet.from_thetas(thetas, device=backend, dtype="float64")
    back = bpnet.to_thetas(net)
    for a, b in zip(thetas, back):
        np.testing.assert_array_equal(a, b)
    W1 = backend.to_numpy(net.parameters()[0])
    np.testing.assert_array_equal(W1, thetas[0][:, 1:].T)  # Dense keeps (in, out)


def test_predictions_equal_the_ex4_formula(backend):
    theta1, theta2 = _thetas(1)
    X = np.random.default_rng(2).normal(size=(20, 4))
    a1 = np.hstack([np.ones((20, 1)), X])
    a2 = np.hstack([np.ones((20, 1)), _sigmoid(a1 @ theta1.T)])
    h = _sigmoid(a2 @ theta2.T)
    net = bpnet.from_thetas([theta1, theta2], device=backend, dtype="float64")
    np.testing.assert_allclose(backend.to_numpy(net.predict_proba(X)), h, rtol=1e-12)
    np.testing.assert_array_equal(backend.to_numpy(net.predict(X)), h.argmax(axis=1))


def test_ex4_cost_formula():
    """J = 1/m sum sum [-y log h - (1-y) log(1-h)] + lambda/(2m) sum Theta(:,2:)^2."""
    theta1, theta2 = _thetas(3)
    X = np.random.default_rng(4).normal(size=(10, 4))
    y = np.arange(10) % 3
    Y = np.eye(3)[y]
    a2 = np.hstack(
        [np.ones((10, 1)), _sigmoid(np.hstack([np.ones((10, 1)), X]) @ theta1.T)]
    )
    h = _sigmoid(a2 @ theta2.T)
    lam = 1.5
    J = (-Y * np.log(h) - (1 - Y) * np.log(1 - h)).sum() / 10
    J += lam / 20 * ((theta1[:, 1:] ** 2).sum() + (theta2[:, 1:] ** 2).sum())
    net = bpnet.from_thetas([theta1, theta2], dtype="float64")
    L, _ = net.loss_and_grad(X, y, loss="sigmoid", l2=lam)
    assert L == pytest.approx(J, rel=1e-12)


def test_thetas_that_do_not_chain_are_refused():
    with pytest.raises(ValueError, match=r"thetas\[1\]: expected 7 columns"):
        bpnet.from_thetas([np.zeros((6, 5)), np.zeros((3, 8))])
    with pytest.raises(ValueError, match=r"thetas\[0\]"):
        bpnet.from_thetas([np.zeros(5)])
    with pytest.raises(ValueError, match="thetas"):
        bpnet.from_thetas([])


def test_ex4_label_order_puts_digit_zero_first():
    theta1, theta2 = np.random.default_rng(5).normal(size=(6, 5)), np.zeros((10, 7))
    theta2[8, 0] = 5.0  # row 8 is ex4's label 9
    net = bpnet.from_thetas([theta1, theta2], ex4_labels=True)
    X = np.zeros((1, 4))
    assert int(np.asarray(net.predict(X))[0]) == 9  # label 9 -> digit 9
    theta2[9, 0] = 20.0  # now ex4's label 10, digit 0, wins
    net = bpnet.from_thetas([theta1, theta2], ex4_labels=True)
    assert int(np.asarray(net.predict(X))[0]) == 0
    back = bpnet.to_thetas(net, ex4_labels=True)
    np.testing.assert_array_equal(back[1], theta2)


def test_the_standin_files_have_ex4s_layout(tmp_path):
    from scipy.io import loadmat
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    from bpnet.data import load_mat, write_ex4_standin

    data, weights = write_ex4_standin(tmp_path, seed=3)
    raw = loadmat(data)
    X, y = raw["X"], raw["y"]
    digits, labels = load_digits(return_X_y=True)
    assert X.shape == (len(digits), 400) and y.shape == (len(digits), 1)
    # ex4's labels: 1..9 as they are, 10 for the digit 0
    np.testing.assert_array_equal(y.ravel(), np.where(labels == 0, 10, labels))
    # a row read column-major (MATLAB's order) is the upright digit, 20x20
    upright = zoom(digits[7].reshape(8, 8) / 16.0, 2.5, order=1)
    np.testing.assert_allclose(X[7].reshape(20, 20, order="F"), upright, atol=1e-12)
    assert 0.0 <= X.min() and X.max() <= 1.0
    arrays = load_mat(weights)
    assert arrays["Theta1"].shape == (25, 401) and arrays["Theta2"].shape == (10, 26)
    assert np.abs(arrays["Theta1"]).max() <= 0.12
    again = load_mat(write_ex4_standin(tmp_path, seed=3)[1])
    np.testing.assert_array_equal(again["Theta1"], arrays["Theta1"])
    # the loader maps the labels back to the digits
    np.testing.assert_array_equal(load_mat(data)["y"], labels)
