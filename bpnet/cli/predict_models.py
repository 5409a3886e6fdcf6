"""How ``bpnet-predict`` runs a model file: a ``.npz`` on any backend, in
slices that fit a memory budget, or an ``.onnx`` file on onnxruntime; both
give the same predictions and probabilities."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


class _Predicted:
    """What a model predicted, and what its labels are checked against."""

    def __init__(
        self,
        pred: Any,
        sequential: bool,
        n_outputs: int,
        classes: Any,
        proba: Any = None,
    ):
        self.pred = pred
        self.sequential = sequential
        self.n_outputs = n_outputs  # a Sequential's: its labels are 0..n-1
        self.classes = classes  # an estimator's classes_, None for a regressor
        self.proba = proba  # (n, k) host probabilities, asked for by --proba


def _no_proba(args: argparse.Namespace) -> None:
    if getattr(args, "proba", False):
        raise ValueError(
            f"--proba: {Path(args.model).name} holds a regressor, which predicts "
            "values, not class probabilities"
        )


def _predict_in_slices(
    model: Any, X: Any, budget: int, backend: Any, proba: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's predictions for the rows of X (and, with ``proba``, its
    probabilities), computed in slices whose forward pass fits in ``budget``
    bytes (beside the weights); a model whose outputs are NaN or Inf (weights
    too large for its dtype) is an error."""
    from bpnet.io.modelfile import over_budget
    from bpnet.nn.layers import declared_shapes
    from bpnet.nn.model import Sequential

    sequential = isinstance(model, Sequential)
    net = model if sequential else model.net_
    itemsize = np.dtype(net.dtype_name).itemsize
    widths = [w for w, _, _ in declared_shapes(net.layers, net.n_inputs)]
    # each layer's input kept for a backward pass, its output, and the loss's
    per_row = (sum(widths) + 2 * net.n_outputs) * itemsize * 2
    weights = sum(int(np.prod(p.shape)) for p in net.parameters()) * itemsize
    rows = max(0, budget - weights) // per_row
    if rows < 1:
        need = per_row + weights
        raise ValueError(
            over_budget("predicting one row", need, budget, "--max-memory")
        )
    n = X.shape[0]
    parts, probas, bad = [], [], 0
    for lo in range(0, max(n, 1), int(rows)):
        chunk = X[lo : lo + int(rows)]
        # an overflow is reported below, once (NumPy's own warning, too)
        with backend.errstate(), np.errstate(over="ignore", invalid="ignore"):
            Z = backend.to_numpy(net.forward(chunk))
        bad += int(Z.shape[0] - np.isfinite(Z).all(axis=1).sum())
        if bad:
            continue
        if sequential:
            parts.append(backend.to_numpy(model.predict(chunk)))
            if proba:
                probas.append(backend.to_numpy(model.predict_proba(chunk)))
        else:
            parts.append(np.asarray(model.predict(chunk)))
            if proba:
                probas.append(np.asarray(model.predict_proba(chunk)))
    if bad:
        largest = max(
            float(np.abs(backend.to_numpy(p)).max()) for p in net.parameters()
        )
        raise ValueError(
            f"model: its outputs are NaN or Inf for {bad} of the {n} rows (its "
            f"largest weight is {largest:.3g}, in {net.dtype_name}): the model "
            "file's weights are not usable; retrain, or check the file"
        )
    return np.concatenate(parts), (np.concatenate(probas) if proba else None)


def _predict_npz(args: argparse.Namespace, meta: dict, X: Any) -> _Predicted:
    from bpnet import io
    from bpnet.io.modelfile import LIBRARY_WAY
    from bpnet.nn.model import Sequential

    try:
        model = io.load(args.model, device=args.backend, max_memory=args.budget)
    except io.ModelFileError as exc:
        raise io.ModelFileError(str(exc).replace(LIBRARY_WAY, "--max-memory")) from None
    want_proba = getattr(args, "proba", False)
    if isinstance(model, Sequential):
        if X.dtype.kind in "iub":
            X = X.astype(np.float32)
        pred, proba = _predict_in_slices(
            model, X, args.budget, args.backend, want_proba
        )
        return _Predicted(pred, True, model.shapes[-1][0], None, proba)
    # a scikit-learn style estimator
    classes = getattr(model, "classes_", None)
    if classes is None:
        _no_proba(args)
    pred, proba = _predict_in_slices(model, X, args.budget, args.backend, want_proba)
    return _Predicted(pred, False, 0, classes, proba)


def _read_onnx(path: str) -> tuple[Any, dict]:
    """(an onnxruntime session, the bpnet metadata the file holds)."""
    import onnx
    import onnxruntime

    try:
        proto = onnx.load(path)
        session = onnxruntime.InferenceSession(
            proto.SerializeToString(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ValueError(
            f"model: {path} is not an ONNX model onnxruntime can run ({exc})"
        ) from None
    props = {p.key: p.value for p in proto.metadata_props}
    try:
        meta = json.loads(props.get("bpnet", "{}"))
    except ValueError:
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    classes = meta.get("classes")
    if classes is not None and not (
        isinstance(classes, list)
        and all(isinstance(c, (str, int, float, bool)) for c in classes)
        and len(set(map(repr, classes))) == len(classes)
    ):
        raise ValueError(
            f"model: {path}'s metadata 'classes' is not a list of distinct labels "
            f"(got {str(classes)[:60]!r}); export it again with bpnet-export"
        )
    return session, meta


def _check_onnx_input(inp: Any, X: Any) -> None:
    """Refuse data of another shape than the graph's input takes, in the words
    a ``.npz`` model uses, before onnxruntime does in its own."""
    want = tuple(inp.shape)  # ('N', 64): the batch axis is named, the rest fixed
    sample = tuple(X.shape[1:])
    fixed = [d if isinstance(d, int) else None for d in want[1:]]
    if len(X.shape) != len(want) or any(
        d is not None and d != got for d, got in zip(fixed, sample)
    ):
        shown = ", ".join(str(d) if d is not None else "?" for d in fixed)
        raise ValueError(
            f"X: expected a {len(want)}-D array (n_samples, {shown}), as the ONNX "
            f"model's input {inp.name!r} takes, got a {len(X.shape)}-D array of "
            f"shape {tuple(X.shape)}"
        )


def _predict_onnx(
    session: Any, meta: dict, X: Any, args: argparse.Namespace
) -> _Predicted:
    """Run the graph: its ``label`` output (``variable`` for a regressor),
    and its ``probabilities`` for ``--proba``."""
    inp = session.get_inputs()[0]
    outputs = {o.name: o for o in session.get_outputs()}
    dtype = np.float64 if inp.type == "tensor(double)" else np.float32
    name = "label" if "label" in outputs else "variable"
    if name not in outputs:
        raise ValueError(
            f"model: expected an ONNX model with a 'label' or 'variable' output, "
            f"as bpnet-export writes; this one has {sorted(outputs)}"
        )
    names = [name]
    if name == "variable":
        _no_proba(args)
    elif getattr(args, "proba", False):
        if "probabilities" not in outputs:
            raise ValueError(
                f"--proba: {Path(args.model).name} has no 'probabilities' output "
                f"(it has {sorted(outputs)})"
            )
        names.append("probabilities")
    _check_onnx_input(inp, X)
    pred, *rest = session.run(names, {inp.name: np.asarray(X, dtype=dtype)})
    proba = np.asarray(rest[0]) if rest else None
    sequential = meta.get("kind") in (None, "Sequential")
    if name == "variable":  # as MLPRegressor.predict: (n,) for one output
        pred = pred[:, 0] if pred.ndim == 2 and pred.shape[1] == 1 else pred
        return _Predicted(pred, False, 0, None)
    if sequential:
        width = outputs["probabilities"].shape[1] if "probabilities" in outputs else 0
        return _Predicted(pred, True, width, None, proba)
    classes = np.asarray(meta.get("classes_", np.unique(pred)))
    return _Predicted(pred, False, 0, classes, proba)
