"""A fitted ``MLPClassifier`` or ``MLPRegressor`` as host arrays plus
JSON-ready metadata, and back.

Used for pickling (device arrays and array-library modules do not pickle) and
by ``bpnet.io`` for model files. The arrays are the weights (``coef_i``,
``intercept_i``) and the optimizer's moments (``optimizer/NAME/i``), so that
``partial_fit`` resumes exactly after a round trip.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.preprocessing import LabelBinarizer

from backends import get_backend
from bpnet.sklearn.params import hidden_sizes, network_structure

FORMATS = ("bpnet.MLPClassifier", "bpnet.MLPRegressor")
_LABEL_DTYPES = "biufU"


def _json_param(name: str, value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if value is None or isinstance(value, str):
        return value
    if name == "hidden_layer_sizes":
        return [int(v) for v in value]
    if name == "random_state":
        return None  # a RandomState instance: its stream is not reproducible here
    raise TypeError(f"{name}: {value!r} cannot be stored in a model file")


def _number(x: Any) -> float | None:
    return None if x is None else float(x)


def get_state(est: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, metadata) for a fitted estimator; host copies only."""
    net = est.net_
    be = net.backend
    arrays: dict[str, np.ndarray] = {}
    # each layer's W and b by name, as restore reads them (writable copies)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        arrays[f"coef_{i}"] = np.array(W)
        arrays[f"intercept_{i}"] = np.array(b)
    opt_meta = None
    opt = getattr(est, "_optimizer", None)
    if opt is not None:
        scalars, moments = opt.state_dict()
        opt_meta = {"scalars": dict(scalars), "moments": {}}
        for name, values in moments.items():
            opt_meta["moments"][name] = len(values)
            for i, v in enumerate(values):
                arrays[f"optimizer/{name}/{i}"] = be.to_numpy(v)
    params = {k: _json_param(k, v) for k, v in est.get_params(deep=False).items()}
    names = getattr(est, "feature_names_in_", None)
    metadata = {
        "format": f"bpnet.{type(est).__name__}",
        "params": params,
        "device": be.name,
        "dtype": net.dtype_name,
        # the network held, which set_params may have made differ from params
        "network": network_structure(net),
        **_targets(est),
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": None if names is None else [str(n) for n in names],
        "n_outputs": int(est.n_outputs_),
        "n_iter": int(est.n_iter_),
        "t": int(est.t_),
        "loss": _number(getattr(est, "loss_", None)),
        "loss_curve": [float(v) for v in est.loss_curve_],
        "best_loss": _number(est.best_loss_),
        "no_improvement_count": int(est._no_improvement_count),
        "validation_scores": (
            None
            if est.validation_scores_ is None
            else [float(v) for v in est.validation_scores_]
        ),
        "best_validation_score": _number(est.best_validation_score_),
        "optimizer": opt_meta,
        # where the batch order continues (partial_fit after a round trip)
        "host_rng": net.host_rng.get_state(),
    }
    # The metadata's own kind marker must not collide with the model file's.
    return arrays, {"estimator": metadata}


def _targets(est: Any) -> dict[str, Any]:
    """A classifier's labels and target type (a regressor has neither)."""
    if not hasattr(est, "classes_"):
        return {}
    classes = np.asarray(est.classes_)
    if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
        classes_dtype = "object"
    elif classes.dtype.kind in _LABEL_DTYPES:
        classes_dtype = classes.dtype.str
    else:
        raise TypeError(
            f"classes_: labels of dtype {classes.dtype} cannot be stored; use "
            "numbers or strings"
        )
    return {
        "classes": classes.tolist(),
        "classes_dtype": classes_dtype,
        "y_type": est._label_binarizer.y_type_,
    }


MAX_CLASS_BYTES = 2**24  # what classes_ may take: 16 MiB, as the metadata


def declared_arrays(metadata: dict[str, Any]) -> tuple[dict, dict]:
    """The arrays an estimator's file holds, from its metadata alone (so an
    absurd one costs nothing): ({coef_i, intercept_i: shape} in the network's
    order, {optimizer/NAME/i: shape}); a ``ValueError`` naming the field for
    metadata that describes no network ``restore`` could build."""
    meta = metadata.get("estimator")
    if not isinstance(meta, dict):
        raise ValueError("metadata: no 'estimator' object")
    sizes = []
    for key in ("n_features_in", "n_outputs"):
        v = meta.get(key)
        if type(v) is not int or v < 1:
            raise ValueError(f"metadata {key}: expected an integer >= 1, got {v!r:.40}")
        sizes.append(v)
    network = meta.get("network") or meta.get("params") or {}
    if not isinstance(network, dict):
        raise ValueError(f"metadata network: expected an object, got {network!r:.40}")
    hidden = hidden_sizes(network.get("hidden_layer_sizes"))
    widths = [sizes[0], *hidden, sizes[1]]
    params: dict[str, tuple[int, ...]] = {}
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        params[f"coef_{i}"] = (fan_in, fan_out)
        params[f"intercept_{i}"] = (fan_out,)
    _check_classes(meta, sizes[1])
    others: dict[str, tuple[int, ...]] = {}
    opt = meta.get("optimizer")
    if opt is not None:
        moments = opt.get("moments") if isinstance(opt, dict) else None
        if not isinstance(moments, dict):
            raise ValueError("metadata optimizer: expected an object with 'moments'")
        shapes = list(params.values())
        for name, count in moments.items():
            if count != len(shapes):
                raise ValueError(
                    f"metadata optimizer.moments.{name!s:.40}: expected "
                    f"{len(shapes)} arrays (one per parameter), got {count!r:.40}"
                )
            for i, shape in enumerate(shapes):
                others[f"optimizer/{name}/{i}"] = shape
    return params, others


def _check_classes(meta: dict[str, Any], n_outputs: int) -> None:
    """A classifier's labels: as many as its outputs say (two for one
    output), distinct, of a dtype that holds them in little memory."""
    if "classes" not in meta:
        return
    classes, kind = meta.get("classes"), meta.get("classes_dtype")
    if not isinstance(classes, list) or not all(
        isinstance(c, (str, int, float, bool)) and not isinstance(c, dict)
        for c in classes
    ):
        raise ValueError(
            f"metadata classes: expected a list of labels, got {classes!r:.60}"
        )
    y_type = meta.get("y_type")
    expected = 2 if n_outputs == 1 and y_type != "multilabel-indicator" else n_outputs
    if len(classes) != expected:
        raise ValueError(
            f"metadata classes: expected {expected} labels for a network of "
            f"{n_outputs} output(s), got {len(classes)}"
        )
    if len({(type(c), c) for c in classes}) != len(classes):
        raise ValueError(f"metadata classes: labels repeat in {classes!r:.80}")
    if kind != "object":
        try:
            dtype = np.dtype(kind)
        except (TypeError, ValueError):
            dtype = None
        if dtype is None or dtype.kind not in _LABEL_DTYPES:
            raise ValueError(
                f"metadata classes_dtype: expected a NumPy dtype of numbers or "
                f"text, or 'object', got {kind!r:.40}"
            )
        if dtype.itemsize * len(classes) > MAX_CLASS_BYTES:
            raise ValueError(
                f"metadata classes_dtype: {kind!r:.40} for {len(classes)} labels "
                f"asks for {dtype.itemsize * len(classes)} bytes, over the "
                f"{MAX_CLASS_BYTES} labels may take"
            )


def _label_binarizer(y_type: str, classes: np.ndarray) -> LabelBinarizer:
    """A fitted LabelBinarizer equal to the one fit saw."""
    if y_type == "multilabel-indicator":
        k = len(classes)
        return LabelBinarizer().fit(np.vstack([np.eye(k, dtype=int), np.zeros(k, int)]))
    lb = LabelBinarizer().fit(classes)
    if lb.y_type_ != y_type:
        raise ValueError(
            f"metadata: target type {y_type!r} does not fit {len(classes)} classes"
        )
    return lb


def restore(
    est: Any,
    arrays: dict[str, np.ndarray],
    wrapped: dict[str, Any],
    device: Any = None,
    dtype: str | None = None,
) -> None:
    """Set the fitted attributes and build ``net_`` on ``device`` in ``dtype``
    (default: where and how it was saved).
    """
    meta = wrapped["estimator"] if "estimator" in wrapped else wrapped
    expected = f"bpnet.{type(est).__name__}"
    if meta.get("format") != expected:
        raise ValueError(
            f"metadata: expected a {expected} state, got {meta.get('format')!r}"
        )
    if "classes" in meta:
        classes_dtype = meta["classes_dtype"]
        classes = np.asarray(
            meta["classes"], dtype=object if classes_dtype == "object" else None
        )
        if classes_dtype != "object":
            classes = classes.astype(np.dtype(classes_dtype))
        est._label_binarizer = _label_binarizer(meta["y_type"], classes)
        est.classes_ = classes
    est.n_features_in_ = int(meta["n_features_in"])
    if meta.get("feature_names_in") is not None:
        est.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
    net = est._build_net(
        est.n_features_in_,
        int(meta["n_outputs"]),
        device=meta["device"] if device is None else device,
        dtype=meta["dtype"] if dtype is None else dtype,
        structure=meta.get("network"),
    )
    # each layer's W and b, in parameters() order, stored as coef_i, intercept_i
    learning = [layer for layer in net.layers if layer.named_parameters()]
    kinds = {"W": "coef", "b": "intercept"}
    names = [
        f"{kinds[name]}_{i}"
        for i, layer in enumerate(learning)
        for name in layer.named_parameters()
    ]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ValueError(f"arrays: missing {missing} for {len(learning)} layers")
    net.set_parameters([arrays[n] for n in names])
    if meta.get("host_rng") is not None:
        net.host_rng.set_state(meta["host_rng"])
    est.net_ = net
    est.n_iter_ = int(meta["n_iter"])
    est.t_ = int(meta["t"])
    if meta.get("loss") is not None:
        est.loss_ = float(meta["loss"])
    est.loss_curve_ = [float(v) for v in meta["loss_curve"]]
    est.best_loss_ = _number(meta["best_loss"])
    est._no_improvement_count = int(meta["no_improvement_count"])
    scores = meta["validation_scores"]
    est.validation_scores_ = None if scores is None else [float(v) for v in scores]
    est.best_validation_score_ = _number(meta["best_validation_score"])
    est._optimizer = None
    opt_meta = meta.get("optimizer")
    if opt_meta is not None:
        opt = est._make_optimizer()
        be = net.backend
        moments = {
            name: [
                be.asarray(np.array(arrays[f"optimizer/{name}/{i}"]), dtype=net.dtype)
                for i in range(int(count))
            ]
            for name, count in opt_meta["moments"].items()
        }
        opt.load_state_dict(opt_meta["scalars"], moments)
        est._optimizer = opt


def from_state(
    cls: type,
    arrays: dict[str, np.ndarray],
    metadata: dict[str, Any],
    device: Any = "cpu",
    dtype: str | None = None,
) -> Any:
    """A new fitted ``cls`` on ``device`` from ``get_state``'s output."""
    meta = metadata["estimator"] if "estimator" in metadata else metadata
    params = dict(meta["params"])
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    if params.get("n_iter_no_change") is not None and math.isinf(
        float(params["n_iter_no_change"])
    ):
        params["n_iter_no_change"] = math.inf
    params["device"] = get_backend(device).name
    if dtype is not None:
        params["dtype"] = dtype
    est = cls(**params)
    restore(est, arrays, metadata, device=params["device"], dtype=dtype)
    return est
