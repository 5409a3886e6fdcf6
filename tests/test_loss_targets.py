"""Every loss, called directly as the book calls its layers: integer labels
and one-hot rows give the same loss and gradient; anything else is refused by
name (the argument, the shapes expected, the shape given)."""

import numpy as np
import pytest

from bpnet.nn.losses import LOSSES

NAMES = list(LOSSES)


def _logits(backend, n=5, k=3, seed=0):
    Z = np.random.default_rng(seed).normal(size=(n, k))
    return backend.asarray(Z, "float64")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [1, 3])
def test_labels_and_one_hot_rows_give_the_same_loss(backend, to_numpy, name, k):
    loss = LOSSES.create(name)
    n = 5
    Z = _logits(backend, n, k)
    labels = np.arange(n) % (k if k > 1 else 2)
    rows = np.eye(k)[labels] if k > 1 else labels.reshape(-1, 1).astype(float)
    y = backend.asarray(labels, "int64")
    T = backend.asarray(rows, "float64")
    want = float(loss.forward(Z, T))
    assert float(loss.forward(Z, y)) == pytest.approx(want, rel=1e-12)
    L, dZ = loss.loss_and_grad(Z, y)
    L_rows, dZ_rows = loss.loss_and_grad(Z, T)
    assert float(L) == pytest.approx(float(L_rows), rel=1e-12)
    np.testing.assert_allclose(to_numpy(dZ), to_numpy(dZ_rows), rtol=1e-12)


def test_softmax_of_the_issue_example():
    loss = LOSSES.create("softmax")
    Z = np.array([[0.3, 2.9, 4.0]])
    # the right 0.3057 for both; labels used to give 9.9057
    assert float(loss.forward(Z, np.array([2]))) == pytest.approx(0.30571, abs=1e-5)
    assert float(loss.forward(Z, np.array([[0.0, 0.0, 1.0]]))) == pytest.approx(
        0.30571, abs=1e-5
    )


@pytest.mark.parametrize("name", NAMES)
def test_a_wrong_shape_is_refused_by_name(backend, name):
    loss = LOSSES.create(name)
    Z = _logits(backend, 1, 3)
    wrong = {
        "two labels for one row": backend.asarray(np.array([2, 0]), "int64"),
        "two columns for three": backend.asarray(np.array([[1.0, 0.0]]), "float64"),
    }
    for T in wrong.values():
        with pytest.raises(
            ValueError,
            match=r"^T: expected integer labels of shape "
            r"\(1,\) or targets of shape \(1, 3\).*got shape",
        ):
            loss.forward(Z, T)
        with pytest.raises(ValueError, match=r"^T: expected"):
            loss.loss_and_grad(Z, T)


@pytest.mark.parametrize("name", NAMES)
def test_labels_outside_the_outputs_are_refused(backend, name):
    loss = LOSSES.create(name)
    Z = _logits(backend, 2, 3)
    y = backend.asarray(np.array([0, 3]), "int64")
    with pytest.raises(ValueError, match=r"^T: expected class labels in \[0, 2\]"):
        loss.forward(Z, y)


def test_float_values_for_several_outputs_are_refused():
    loss = LOSSES.create("softmax")
    Z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="not whole numbers"):
        loss.forward(Z, np.array([0.5, 1.0]))
    # whole floats are labels, as fit takes them
    assert float(loss.forward(Z, np.array([0.0, 2.0]))) == pytest.approx(np.log(3))


def test_logits_that_are_not_a_matrix_are_refused():
    loss = LOSSES.create("softmax")
    with pytest.raises(ValueError, match=r"^Z: expected logits of shape"):
        loss.forward(np.zeros(3), np.array([1]))
