"""Metrics: accuracy on the device (for training loops), and scikit-learn's
classification report and confusion matrix on host copies.

``accuracy`` never copies predictions to the host: it counts on the device
and reads back one number. The report and the matrix are scikit-learn's own,
called on host copies of the labels.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from bpnet.nn import validation as check
from bpnet.nn.evaluation import decision_scores

__all__ = ["accuracy", "classification_report", "confusion_matrix", "to_host"]

# Backends that can copy any array of their library to the host.
_HOST_COPIERS = {
    "cupy": "cuda",
    "torch": "torch",
    "array_api_strict": "array-api-strict:CPU_DEVICE",
    "dpnp": "dpnp",  # dpnp.asnumpy copies from any SYCL device
    "jax": "jax:cpu",
}


def to_host(x: Any, name: str = "array") -> np.ndarray:
    """A NumPy copy (or view) of ``x``: host data, or an array on any backend."""
    if isinstance(x, np.ndarray):
        return x
    try:
        xp = array_api_compat.array_namespace(x)
    except TypeError:
        xp = None
    if xp is None or array_api_compat.is_numpy_namespace(xp):
        try:
            return np.asarray(x)
        except Exception as exc:
            raise TypeError(
                f"{name}: expected an array of labels, got {type(x).__name__} ({exc})"
            ) from None
    from backends import get_backend

    for library, spec in _HOST_COPIERS.items():
        if library in xp.__name__:
            return get_backend(spec).to_numpy(x)
    raise TypeError(  # pragma: no cover - a library bpnet has no backend for
        f"{name}: cannot copy a {xp.__name__} array to the host; pass a NumPy array"
    )


def _predicted_labels(S: Any, threshold: float, multilabel: bool) -> Any:
    """Scores (n, k) or labels (n,) -> labels (n,), or 0/1 rows if multilabel."""
    xp = array_api_compat.array_namespace(S)
    if S.ndim == 1:
        return xp.astype(S, xp.int64)
    if multilabel:
        return xp.astype(S > threshold, xp.int64)
    if S.shape[1] == 1:
        return xp.astype(S[:, 0] > threshold, xp.int64)
    return xp.argmax(S, axis=1)


def _true_labels(Y: Any, multilabel: bool) -> Any:
    xp = array_api_compat.array_namespace(Y)
    if Y.ndim == 1:
        return xp.astype(Y, xp.int64)
    if multilabel:
        return xp.astype(Y > 0.5, xp.int64)
    if Y.shape[1] == 1:
        return xp.astype(Y[:, 0] > 0.5, xp.int64)
    return xp.argmax(Y, axis=1)  # one-hot rows


def _count_correct(pred: Any, true: Any) -> Any:
    xp = array_api_compat.array_namespace(pred)
    equal = pred == true
    if equal.ndim == 2:  # multilabel: a row counts only when every label is right
        equal = xp.all(equal, axis=1)
    return xp.sum(xp.astype(equal, xp.int64))


def _as_array(x: Any) -> Any:
    """An array of any library as it is (CuPy and PyTorch arrays have no
    ``__array_namespace__``: ask array-api-compat); anything else via NumPy."""
    try:
        array_api_compat.array_namespace(x)
    except TypeError:
        return np.asarray(x)
    return x


def _same_place(a: Any, b: Any) -> tuple[Any, Any]:
    """Bring a NumPy array to the other one's library and device."""
    xa = array_api_compat.array_namespace(a)
    xb = array_api_compat.array_namespace(b)
    if xa is xb:
        return a, b
    if array_api_compat.is_numpy_namespace(xa):
        return xb.asarray(a, device=array_api_compat.device(b)), b
    if array_api_compat.is_numpy_namespace(xb):
        return a, xa.asarray(b, device=array_api_compat.device(a))
    raise TypeError(
        f"y_true: is a {xb.__name__} array but y_pred a {xa.__name__} array; put "
        "both on the same device"
    )


def accuracy(
    net_or_pred: Any,
    X_or_y: Any,
    y: Any = None,
    *,
    multilabel: bool = False,
    batch_size: int = 4096,
) -> float:
    """Fraction of correct predictions, counted where the arrays live.

    ``accuracy(net, X, y)``: the network's predictions on X (inference mode,
    in batches) against y. ``accuracy(y_pred, y_true)``: two arrays.

    Parameters
    ----------
    net_or_pred : Sequential, or array of shape (n,) or (n, k)
        A network, or predictions: labels (n,), or scores / probabilities
        (n, k) whose argmax is the label ((n, 1): probability > 0.5).
    X_or_y : array of shape (n, n_features), or labels
        The inputs (with a network) or the true labels.
    y : array of shape (n,) or (n, k), optional
        True labels, or one-hot / 0-1 indicator rows (with a network).
    multilabel : bool, default=False
        Score each label separately (sigmoid > 0.5, or logit > 0) and count
        a sample as correct only when all its labels are (subset accuracy).
    batch_size : int, default=4096
        Rows per forward pass (with a network).

    Returns
    -------
    float
        In [0, 1].
    """
    from bpnet.nn.model import Sequential

    if isinstance(net_or_pred, Sequential):
        if y is None:
            raise TypeError("y: accuracy(net, X, y) needs the true labels y")
        return _net_accuracy(net_or_pred, X_or_y, y, multilabel, batch_size)
    if y is not None:
        raise TypeError(
            "accuracy: takes (net, X, y) or (y_pred, y_true); got three arguments "
            f"and a {type(net_or_pred).__name__} first"
        )
    pred, true = _as_array(net_or_pred), _as_array(X_or_y)
    pred, true = _same_place(pred, true)
    if pred.shape[0] != true.shape[0]:
        raise ValueError(
            f"y_true: has {true.shape[0]} samples but y_pred has {pred.shape[0]}"
        )
    if pred.shape[0] == 0:
        raise ValueError("y_pred: expected at least one prediction, got none")
    correct = _count_correct(
        _predicted_labels(pred, 0.5, multilabel), _true_labels(true, multilabel)
    )
    return int(correct) / pred.shape[0]


def _net_accuracy(net: Any, X: Any, y: Any, multilabel: bool, batch_size: int) -> float:
    batch_size = check.check_int(batch_size, "batch_size")
    be, xp = net.backend, net.xp
    with be.context():
        Xd = check.check_X(X, be, net.dtype, net.n_inputs)
        Y, on_device = check.to_host_or_device(y, be, "y")
        if not on_device:
            Y = be.asarray(np.asarray(Y))
        n = Xd.shape[0]
        if Y.shape[0] != n:
            raise ValueError(f"y: X has {n} samples but y has {Y.shape[0]}")
        true = _true_labels(Y, multilabel)
        correct = xp.zeros((), dtype=xp.int64, device=be.device)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            Z = net._forward(Xd[start:stop, ...], training=False)
            # predict's rule: each output above 0.5 (through the logits where
            # the loss says where that is)
            scores, cut = decision_scores(Z, net.loss)
            pred = _predicted_labels(scores, cut, multilabel)
            t = true[start:stop, ...] if true.ndim == 2 else true[start:stop]
            correct = correct + _count_correct(pred, t)
        return int(correct) / n


def _host_labels(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    return to_host(y_true, "y_true"), to_host(y_pred, "y_pred")


def classification_report(
    y_true: Any,
    y_pred: Any,
    class_names: Any = None,
    **kwargs: Any,
) -> Any:
    """scikit-learn's classification report on host copies of the labels.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples,)
        Labels, on the host or on any backend's device.
    class_names : sequence of str, optional
        Names of the classes; with integer labels, name ``i`` is label ``i``
        and every class gets a row even when absent from the data.
    **kwargs
        Passed to :func:`sklearn.metrics.classification_report` (``digits``,
        ``output_dict``, ``zero_division``, ...).

    Returns
    -------
    str or dict
        As scikit-learn returns it.
    """
    from sklearn import metrics as skm

    true, pred = _host_labels(y_true, y_pred)
    if class_names is not None:
        names = [str(c) for c in class_names]
        kwargs["target_names"] = names
        if "labels" not in kwargs and true.dtype.kind in "iu":
            kwargs["labels"] = np.arange(len(names))
    return skm.classification_report(true, pred, **kwargs)


def confusion_matrix(y_true: Any, y_pred: Any, **kwargs: Any) -> np.ndarray:
    """scikit-learn's confusion matrix on host copies of the labels.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples,)
        Labels, on the host or on any backend's device.
    **kwargs
        Passed to :func:`sklearn.metrics.confusion_matrix` (``labels``,
        ``normalize``, ``sample_weight``).

    Returns
    -------
    ndarray of shape (n_classes, n_classes)
        Row i, column j: samples of class i predicted as class j.
    """
    from sklearn import metrics as skm

    true, pred = _host_labels(y_true, y_pred)
    return skm.confusion_matrix(true, pred, **kwargs)
