"""``bpnet-predict MODEL``: classify (or, with a saved ``MLPRegressor``,
predict values for) a dataset split or a file with a saved model.

With labels (a dataset split, a ``.mat`` file's ``y``, or ``--labels``) it
prints the accuracy (R^2 for a regressor); without, one prediction per line
(a regressor's row of outputs, space-separated). ``--proba`` prints each
sample's class probabilities instead, one row per line (before the accuracy,
if any). ``--json`` makes the last line of stdout one JSON object. Works on
any ``--device``. An ``.onnx`` file written by ``bpnet-export`` runs on
onnxruntime and prints the same.

What it predicts on is read in ``predict_inputs``; the model file runs in
``predict_models``; here are the flags, the truth to score against and the
report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.cli.parsing import OneLineParser, add_flag, missing_extra
from bpnet.cli.predict_inputs import SPLIT_DEFAULTS, _load_inputs  # noqa: F401
from bpnet.cli.predict_models import _predict_npz, _predict_onnx, _read_onnx


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="bpnet-predict",
        description="Classify data with a saved bpnet model or MLPClassifier, "
        "or predict values with a saved MLPRegressor.",
    )
    p.add_argument(
        "model",
        help="a model file written by bpnet (model.npz), or an ONNX file written "
        "by bpnet-export (model.onnx), run by onnxruntime",
    )
    src = p.add_mutually_exclusive_group()
    add_flag(
        src,
        "--dataset",
        help="a bundled or IDX dataset (default: the one the model file records, "
        "else digits)",
    )
    src.add_argument(
        "--data",
        metavar="FILE",
        help=".npy (rows of features) or ex4-style .mat (X, y)",
    )
    p.add_argument(
        "--split",
        choices=["test", "train"],
        default=None,
        help="which part of the data set's train/test split to score (default: test)",
    )
    add_flag(
        p,
        "--seed",
        help="seed of the train/test split of digits or a .mat file (default: the "
        "one the model file records, else 0)",
    )
    add_flag(
        p,
        "--test-size",
        help="test fraction of that split (default: recorded, else 0.2)",
    )
    p.add_argument("--labels", metavar="FILE.npy", help="true labels for --data X.npy")
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="what loading the model and predicting may allocate, e.g. 8G "
        "(default: $BPNET_MAX_MEMORY, else 2G); rows are predicted in slices "
        "that fit it",
    )
    p.add_argument(
        "--proba",
        action="store_true",
        help="print each sample's class probabilities, one row per line in the "
        "order of the model's classes (and as 'probabilities' in --json)",
    )
    for name in ("--data-dir", "--device", "--json", "--debug"):
        add_flag(p, name)
    return p


def _sequential_truth(y: np.ndarray, meta: dict, k: int, flag: str) -> np.ndarray:
    """Labels as class indices 0..k-1; class names map through the model's
    recorded ``classes``. Numbers given with ``--labels`` are the model's
    class names when those are whole numbers other than 0..k-1 (bpnet-train's
    names for labels such as 1..10 of --data y.npy), else class indices; a
    dataset's labels are always indices."""
    names = meta.get("classes")
    expected = f"class indices 0..{k - 1}"
    if names:
        expected += f" or the model's class names {names[:10]}"
    numbers = _numeric_names(names)
    if (
        numbers
        and numbers is not names
        and numbers != list(range(len(numbers)))
        and y.dtype.kind in "iuf"
        and flag == "--labels"
    ):
        whole = np.isfinite(y) & (y == np.round(y)) if y.dtype.kind == "f" else None
        if whole is None or whole.all():
            y = np.array([str(int(v)) for v in y.tolist()], dtype=object)
            expected = f"the model's class names {names[:10]}"
    if y.dtype.kind in "USO":
        index = {str(c): i for i, c in enumerate(names or [])}
        unknown = [v for v in y.tolist() if str(v) not in index]
        if unknown:
            raise ValueError(
                f"{flag}: expected {expected}, got {len(unknown)} labels that are "
                f"neither (e.g. {unknown[0]!r})"
            )
        return np.array([index[str(v)] for v in y.tolist()], dtype=np.int64)
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            raise ValueError(
                f"{flag}: expected {expected}, got non-integer values "
                f"(e.g. {y[~whole][0]!r})"
            )
    elif y.dtype.kind not in "iub":
        raise ValueError(f"{flag}: expected {expected}, got an array of {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise ValueError(
            f"{flag}: expected {expected} (the model has {k} outputs), got values "
            f"{y.min():g}..{y.max():g}"
        )
    return y.astype(np.int64)


def _numeric_names(classes: list | None) -> list | None:
    """The model file's class names, as numbers where every one is a whole
    number written as text (bpnet-train records the digits' "0".."9"), so
    that ``--json`` prints 7, not "7"."""
    if not classes:
        return classes
    try:
        values = [int(c) for c in classes]
    except (TypeError, ValueError):
        return classes
    return values if [str(v) for v in values] == list(classes) else classes


def _estimator_truth(y: np.ndarray, classes: Any, flag: str, source: str) -> Any:
    """Labels checked to be among the estimator's classes_ (no cross-type
    comparisons, which would count every sample wrong)."""
    known = set(np.asarray(classes).tolist())
    unknown = [v for v in y.tolist() if v not in known]
    if unknown:
        shown = np.asarray(classes).tolist()[:10]
        raise ValueError(
            f"{flag}: {len(unknown)} of the {len(y)} labels of {source} are not "
            f"classes of the model (e.g. {unknown[0]!r}); its classes are {shown}"
        )
    return y


def predict(args: argparse.Namespace) -> dict:
    import backends
    from bpnet import io

    onnx = Path(args.model).suffix.lower() == ".onnx"
    if onnx:
        if args.device != "cpu":
            raise ValueError(
                f"--device: an .onnx model runs on onnxruntime (its CPU provider); "
                f"got --device {args.device}"
            )
        if not Path(args.model).is_file():
            raise FileNotFoundError(
                f"model: {args.model} is not a file; expected an ONNX file written "
                "by bpnet-export"
            )
        session, meta = _read_onnx(args.model)
    else:
        from bpnet.io.modelfile import parse_bytes

        size = args.max_memory
        args.budget = io.memory_budget(
            None if size is None else parse_bytes(size, "--max-memory")
        )
        args.backend = backends.get_backend(args.device)
        try:  # the metadata only: the arrays are read (and counted) by load
            _, meta = io.read_model_file(args.model, check=lambda m, h: [])
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"model: {exc.strerror or exc}; expected a model file written by "
                "bpnet-train --out DIR (DIR/model.npz) or bpnet.save"
            ) from None
    X, y, source, label_flag, split = _load_inputs(args, meta)
    if onnx:
        done = _predict_onnx(session, meta, X, args)
    else:
        done = _predict_npz(args, meta, X)
    pred, sequential = done.pred, done.sequential
    if sequential:
        classes = _numeric_names(meta.get("classes"))
        names = [classes[i] for i in pred] if classes else pred.tolist()
    else:
        names = list(pred)
    regressor = not sequential and done.classes is None
    proba = done.proba
    summary: dict[str, Any] = {
        "model": str(args.model),
        "kind": meta.get("kind"),
        "device": "onnxruntime" if onnx else args.backend.name,
        "data": source,
        **split,
        "n": int(len(pred)),
        "accuracy": None,
    }
    if regressor:
        summary["r2"] = None
    if y is not None:
        y = np.asarray(y).ravel()
        if len(y) != len(pred):
            raise ValueError(
                f"{label_flag}: {len(y)} labels for {len(pred)} samples; they must "
                "match"
            )
        if regressor:
            from sklearn.metrics import r2_score

            truth = np.asarray(y, dtype=np.float64).reshape(len(pred), -1)
            summary["r2"] = float(r2_score(truth, pred.reshape(len(pred), -1)))
            summary["predictions"] = pred.tolist()
            return summary
        if sequential:
            truth = _sequential_truth(y, meta, done.n_outputs, label_flag)
        else:
            truth = _estimator_truth(y, done.classes, label_flag, source)
        summary["accuracy"] = float(np.mean(np.asarray(pred) == truth))
    if regressor:
        summary["predictions"] = pred.tolist()
        return summary
    summary["predictions"] = [v.item() if hasattr(v, "item") else v for v in names]
    if proba is not None:  # columns in the order of the model's classes
        if sequential:
            classes = _numeric_names(meta.get("classes"))
            classes = classes or list(range(proba.shape[1]))
        else:
            classes = np.asarray(done.classes).tolist()
        summary["classes"] = classes
        summary["probabilities"] = proba.astype(float).tolist()
    return summary


def predict_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bpnet-predict``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        summary = predict(args)
    except Exception as exc:
        if args.debug:
            raise
        message = missing_extra(exc) or " ".join(str(exc).split())
        if isinstance(exc, MemoryError):
            message = (
                f"out of memory ({message or 'MemoryError'}); give a smaller "
                "--max-memory, or predict fewer rows at a time"
            )
        print(f"bpnet-predict: error: {message}", file=sys.stderr)
        return 2
    try:
        _report(summary, args.json)
    except BrokenPipeError:  # the reader (say, `| head`) stopped: so do we, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def _report(summary: dict, as_json: bool) -> None:
    """The rows of probabilities (``--proba``); the summary line, or one
    prediction per line; then the JSON."""
    if summary.get("probabilities") is not None and not as_json:
        for row in summary["probabilities"]:
            print(" ".join(f"{p:.6g}" for p in row))
    if summary.get("r2") is not None:
        print(
            f"R^2: {summary['r2']:.4f} on {summary['n']} samples of "
            f"{summary['data']} ({summary['device']})"
        )
    elif summary["accuracy"] is not None:
        print(
            f"accuracy: {summary['accuracy']:.4f} on {summary['n']} samples of "
            f"{summary['data']} ({summary['device']})"
        )
    elif not as_json and summary.get("probabilities") is None:
        for v in summary["predictions"]:
            print(" ".join(map(repr, v)) if isinstance(v, list) else v)
    if as_json:
        print(json.dumps(summary))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(predict_main())
