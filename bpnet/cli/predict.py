"""``bpnet-predict MODEL``: classify (or, with a saved ``MLPRegressor``,
predict values for) a dataset split or a file with a saved model.

With labels (a dataset split, a ``.mat`` file's ``y``, or ``--labels``) it
prints the accuracy (R^2 for a regressor); without, one prediction per line
(a regressor's row of outputs, space-separated). ``--proba`` prints each
sample's class probabilities instead, one row per line (before the accuracy,
if any). ``--json`` makes the last line of stdout one JSON object. Works on
any ``--device``. An ``.onnx`` file written by ``bpnet-export`` runs on
onnxruntime and prints the same.
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

from bpnet.cli.parsing import OneLineParser, add_flag, check_test_size, missing_extra
from bpnet.cli.train_args import flag, recorded_split

SPLIT_DEFAULTS = {"seed": 0, "test_size": 0.2}  # bpnet-train's


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


def _load_labels(path: str) -> np.ndarray:
    from bpnet.io.plain import load_npy

    return load_npy(path, "--labels", "a .npy array of labels", archive=False)


def _load_file(args: argparse.Namespace) -> tuple[np.ndarray, Any, str, str]:
    from bpnet import data
    from bpnet.io.plain import load_npy

    path = Path(args.data)
    for key in ("seed", "test_size", "split"):
        if getattr(args, key) is not None:
            raise ValueError(
                f"{flag(key)}: picks a train/test split of a dataset; "
                f"--data {path.name} is classified whole"
            )
    if path.suffix == ".mat":
        if args.labels:
            raise ValueError(f"--labels: --data {path.name} holds its own labels y")
        arrays = data.load_mat(path)
        if "X" not in arrays:
            raise ValueError(f"--data: {path} holds weights only, no X to classify")
        return arrays["X"], arrays["y"], path.name, "--data"
    if path.suffix != ".npy":
        raise ValueError(f"--data: expected a .npy or .mat file, got {path.name!r}")
    X = load_npy(path, "--data", "a .npy array of samples", archive=False)
    if X.dtype.kind != "f":  # as bpnet-train: an unscaled X would predict nonsense
        raise ValueError(
            f"--data: expected floating-point values, got {X.dtype}; scale it as "
            "the model's training data was and save it as float32"
        )
    y = _load_labels(args.labels) if args.labels else None
    return X, y, path.name, "--labels"


def _split_args(args: argparse.Namespace, record: dict | None, name: str) -> dict:
    """Seed and test size of the split to rebuild: the flags, else the model
    file's record, else bpnet-train's defaults. Warns when they differ from
    the record, whose test split is then partly training data."""
    model = Path(args.model).name
    if name not in ("digits", "mat"):
        for key in ("seed", "test_size"):
            if getattr(args, key) is not None:
                own = (
                    f"{name} comes with its own test split"
                    if name != "arrays"
                    else "the --data files it was trained on come with their own "
                    "test split (the one the run recorded)"
                )
                raise ValueError(
                    f"{flag(key)}: {own}; got {flag(key)} {getattr(args, key)}"
                )
        return {}
    if args.test_size is not None:
        check_test_size(args.test_size)
    recorded = record if record and record.get("dataset") == name else {}
    split = {}
    for key, default in SPLIT_DEFAULTS.items():
        given, saved = getattr(args, key), recorded.get(key)
        split[key] = given if given is not None else saved
        if split[key] is None:
            split[key] = default
        if given is not None and saved is not None and given != saved:
            _note(
                f"warning: {model} was trained on the {name} split with seed "
                f"{recorded.get('seed')} and test size {recorded.get('test_size')}; "
                f"{flag(key)} {given} makes another split, whose {args.split} samples "
                "overlap the data it was trained on"
            )
    trained_on = (record or {}).get("dataset")
    if not recorded and args.seed is None and args.test_size is None and trained_on:
        _note(
            f"note: {model} was trained on {trained_on}, not {name}; using the {name} "
            f"split with seed {split['seed']} and test size {split['test_size']} "
            "(bpnet-train's defaults)"
        )
    elif not recorded and args.seed is None and args.test_size is None:
        _note(
            f"note: {model} does not record the split it was trained on; using "
            f"seed {split['seed']} and test size {split['test_size']} (pass --seed "
            "and --test-size to match the training run)"
        )
    return split


def _note(message: str) -> None:
    print(f"bpnet-predict: {message}", file=sys.stderr)


def _load_inputs(
    args: argparse.Namespace, meta: dict
) -> tuple[np.ndarray, Any, str, str, dict]:
    """(X, labels or None, a name for the data, the flag the labels came from,
    the split's seed and test size)."""
    from bpnet import data

    if args.data:
        return (*_load_file(args), {})
    if args.labels:
        raise ValueError("--labels: goes with --data X.npy")
    record = meta.get("data") if isinstance(meta.get("data"), dict) else None
    kind = meta.get("kind")
    if record is None and args.dataset is None and kind not in (None, "Sequential"):
        raise ValueError(
            f"--data: {Path(args.model).name} holds a {kind} fitted in Python, which "
            "records no data set; pass --data X.npy (and --labels y.npy) to predict"
        )
    args.split = args.split or "test"
    name = args.dataset or (record or {}).get("dataset") or "digits"
    split = _split_args(args, record, name)
    if name == "arrays":  # bpnet-train --data X.npy/.npz: the split it made
        return (*_recorded_arrays(args, record), {})
    order = {}
    if name in ("mat", "digits"):
        same = record if record and record.get("dataset") == name else {}
        order = {"split": recorded_split(same) if same else "shuffled"}
    if name == "mat":  # the ex4 .mat file bpnet-train was given
        path = Path(record["file"])
        if not path.is_file():
            raise FileNotFoundError(
                f"--data: {args.model} was trained on {path}, which is not there; "
                "pass --data FILE to classify a file"
            )
        ds = data.load_mat_dataset(path, **split, **order)
        name = path.name
    elif name == "digits":
        ds = data.load_digits(**split, **order)
    else:
        data_dir = args.data_dir
        if data_dir is None and record and record.get("dataset") == name:
            saved = record.get("data_dir")
            data_dir = saved if saved and Path(saved).is_dir() else None
        ds = data.load_mnist(
            "fashion" if name == "fashion-mnist" else "mnist",
            data_dir=data_dir,
            splits=(args.split,),  # the other split's files are never needed
        )
    X, y = (ds.X_train, ds.y_train) if args.split == "train" else (ds.X_test, ds.y_test)
    _check_not_empty(args, X, split.get("test_size"))
    return X, y, f"{name}:{args.split}", "--dataset", split


def _check_not_empty(args: argparse.Namespace, X: Any, test_size: Any) -> None:
    """A run trained on every row (``--test-size 0``) has no test split."""
    if args.split == "test" and X.shape[0] == 0:
        raise ValueError(
            f"--split: {Path(args.model).name} was trained on every row "
            f"(--test-size {test_size}), so it has no test split; pass --split "
            "train, or --data FILE to classify a file"
        )


def _recorded_arrays(args: argparse.Namespace, record: dict) -> tuple:
    """The split of the .npy/.npz files a model was trained on, made again
    from the record: seeded and shuffled, or their last ``test_size`` rows
    (``test_split`` tail, and records written before the flag)."""
    from bpnet.data import split_dataset
    from bpnet.distributed.files import read_arrays

    files = [record.get("file"), record.get("labels")]
    for what, path in zip(("--data", "--labels"), files):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(
                f"{what}: {args.model} was trained on {path}, which is not there; "
                "pass --data FILE (and --labels FILE) to classify a file"
            )
    X, y, _ = read_arrays(files[0], files[1])
    test_size = record.get("test_size")
    ds = split_dataset(
        X,
        y,
        Path(files[0]).name,
        0.2 if test_size is None else test_size,
        record.get("seed") or 0,
        split=recorded_split(record),
    )
    X, y = (ds.X_train, ds.y_train) if args.split == "train" else (ds.X_test, ds.y_test)
    _check_not_empty(args, X, test_size)
    return X, y, f"{Path(files[0]).name}:{args.split}", "--dataset"


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
