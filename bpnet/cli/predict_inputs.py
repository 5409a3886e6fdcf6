"""What ``bpnet-predict`` predicts on: a dataset split (the one ``bpnet-train``
held out, read back from the model's record), a ``.mat`` or ``.npz`` file,
or the recorded test arrays of a ``--data`` run, with the labels when there
are any."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.cli.parsing import check_test_size
from bpnet.cli.train_args import flag, recorded_split

SPLIT_DEFAULTS = {"seed": 0, "test_size": 0.2}  # bpnet-train's


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
