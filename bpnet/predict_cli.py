"""``bpnet-predict MODEL``: classify a dataset split or a file with a saved model.

With labels (a dataset split, a ``.mat`` file's ``y``, or ``--labels``) it
prints the accuracy; without, one prediction per line. ``--json`` makes the
last line of stdout one JSON object. Works on any ``--device``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.cli import OneLineParser


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="bpnet-predict",
        description="Classify data with a saved bpnet model or MLPClassifier.",
    )
    p.add_argument("model", help="a model file written by bpnet (model.npz)")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset",
        choices=["digits", "fashion-mnist", "mnist"],
        help="a bundled or IDX dataset (default: digits)",
    )
    src.add_argument(
        "--data",
        metavar="FILE",
        help=".npy (rows of features) or ex4-style .mat (X, y)",
    )
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--labels", metavar="FILE.npy", help="true labels for --data X.npy")
    p.add_argument("--data-dir", metavar="DIR", help="folder of the IDX .gz files")
    p.add_argument("--device", default="cpu", help="cpu, cuda, torch, ...")
    p.add_argument("--json", action="store_true", help="end stdout with one JSON line")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _load_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray | None, str]:
    from bpnet import data

    if args.data:
        path = Path(args.data)
        if path.suffix == ".mat":
            arrays = data.load_mat(path)
            if "X" not in arrays:
                raise ValueError(f"--data: {path} holds weights only, no X to classify")
            return arrays["X"], arrays["y"], path.name
        if path.suffix != ".npy":
            raise ValueError(f"--data: expected a .npy or .mat file, got {path.name!r}")
        if not path.is_file():
            raise FileNotFoundError(f"--data: no such file: {path}")
        X = np.load(path, allow_pickle=False)
        y = None
        if args.labels:
            y = np.load(args.labels, allow_pickle=False)
        return X, y, path.name
    if args.labels:
        raise ValueError("--labels: goes with --data X.npy")
    name = args.dataset or "digits"
    if name == "digits":
        ds = data.load_digits()
    else:
        ds = data.load_mnist(
            "fashion" if name == "fashion-mnist" else "mnist", data_dir=args.data_dir
        )
    if args.split == "train":
        return ds.X_train, ds.y_train, f"{name}:train"
    return ds.X_test, ds.y_test, f"{name}:test"


def predict(args: argparse.Namespace) -> dict:
    import backends
    import bpnet
    from bpnet import io

    backend = backends.get_backend(args.device)
    model = bpnet.load(args.model, device=backend)
    _, meta = io.read_model_file(args.model)
    X, y, source = _load_inputs(args)
    if isinstance(model, bpnet.Sequential):
        if X.dtype.kind in "iub":
            X = X.astype(np.float32)
        pred = backend.to_numpy(model.predict(X))
        classes = meta.get("classes")
        names = [classes[i] for i in pred] if classes else pred.tolist()
    else:  # a scikit-learn style estimator
        names = list(model.predict(X))
        pred = np.asarray(names)
    summary: dict[str, Any] = {
        "model": str(args.model),
        "kind": meta.get("kind"),
        "device": backend.name,
        "data": source,
        "n": int(len(pred)),
        "accuracy": None,
    }
    if y is not None:
        y = np.asarray(y).ravel()
        if len(y) != len(pred):
            raise ValueError(
                f"--labels: {len(y)} labels for {len(pred)} samples; they must match"
            )
        truth = y if not isinstance(model, bpnet.Sequential) else y.astype(pred.dtype)
        summary["accuracy"] = float(np.mean(np.asarray(pred) == truth))
    summary["predictions"] = [v.item() if hasattr(v, "item") else v for v in names]
    return summary


def predict_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bpnet-predict``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        summary = predict(args)
    except Exception as exc:
        if args.debug:
            raise
        print(f"bpnet-predict: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if summary["accuracy"] is not None:
        print(
            f"accuracy: {summary['accuracy']:.4f} on {summary['n']} samples of "
            f"{summary['data']} ({summary['device']})"
        )
    elif not args.json:
        for v in summary["predictions"]:
            print(v)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(predict_main())
