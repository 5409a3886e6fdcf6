"""What an exported graph outputs. A Sequential: ``label`` and
``probabilities`` (``predict``, ``predict_proba``), whatever its loss. An
estimator: by skl2onnx's conventions for
scikit-learn's own MLPs (``zipmap=False``): ``label`` and ``probabilities``
for a classifier, ``variable`` for a regressor. The labels follow the
estimator's own rule (``MLPClassifier._labels``): logit > 0 for one output,
the largest logit otherwise, looked up in ``classes_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpnet.nn.model import Sequential


class ExportError(ValueError):
    """A model that cannot be exported: what failed, and for which layer."""


def sequential_heads(net: Sequential, X: Any) -> dict[str, Any]:
    P = output(net, net.forward(X))
    return {"label": net._labels(P), "probabilities": P}


def output(net: Sequential, Z: Any) -> Any:
    """The loss's output function on traced logits; a failure names the loss."""
    try:
        return net.loss.output(Z)
    except Exception as exc:
        raise ExportError(
            f"model: the output of the loss {type(net.loss).__name__} cannot be "
            f"recorded as ONNX: {why(exc)}"
        ) from exc


def why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}"


def estimator_heads(model: Any) -> tuple[Sequential, Any]:
    """(the fitted network, the function giving the graph's outputs)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    net = model.net_
    if not hasattr(model, "classes_"):
        return net, _regressor
    classes = label_values(model.classes_)
    multilabel = model._label_binarizer.y_type_.startswith("multilabel")
    if len(classes) < 2:
        raise ValueError(
            f"model: the classifier was fitted on one class ({classes[0]!r}); "
            "there is nothing to export"
        )

    def classifier(traced: Sequential, X: Any) -> dict[str, Any]:
        xp = traced.xp
        Z = traced.forward(X)
        P = output(traced, Z)
        if multilabel:  # an indicator per label, as the estimator's predict
            return {"label": xp.astype(Z > 0, xp.int64), "probabilities": P}
        if traced.n_outputs == 1:
            index = xp.astype(xp.reshape(Z, (-1,)) > 0, xp.int64)
            P = xp.concat([1.0 - P, P], axis=1)
        else:
            index = xp.argmax(Z, axis=1)
        return {
            "label": xp.take(xp.asarray(classes), index, axis=0),
            "probabilities": P,
        }

    return net, classifier


def _regressor(traced: Sequential, X: Any) -> dict[str, Any]:
    return {"variable": output(traced, traced.forward(X))}


def label_values(classes: Any) -> np.ndarray:
    """``classes_`` as an ONNX label tensor holds them: int64 or strings."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f" and np.array_equal(classes, np.round(classes)):
        return classes.astype(np.int64)
    if classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes):
        return classes.astype(str)
    raise ValueError(
        "model: an ONNX label is an integer or a string; the classifier's classes_ "
        f"are {classes.dtype} ({classes[:5].tolist()}); fit it on integer or "
        "string labels to export it"
    )
