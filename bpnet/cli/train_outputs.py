"""What ``bpnet-train`` reports and writes once a run is trained: the
classification report, and the run's files in ``--out``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _print_report(args: Any, ds: Any, y_pred: Any, out: Any) -> None:
    """--report: scikit-learn's classification report of the test split."""
    has_test = ds.X_test.shape[0] > 0
    if args.report and not has_test:
        out("classification report: none (--test-size 0: no test split)")
    elif args.report:
        from sklearn.metrics import classification_report

        out(
            classification_report(
                ds.y_test, y_pred, target_names=[str(c) for c in ds.classes], digits=4
            )
        )


def _write_run(
    out_dir: str,
    net: Any,
    ds: Any,
    history: dict,
    summary: dict,
    y_pred: Any,
    data_record: dict,
) -> list[str]:
    import numpy as np

    from bpnet import io
    from bpnet.io.atomic import atomic_open

    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    classes = [str(c) for c in ds.classes]
    files = [io.save(net, path / "model.npz", classes=classes, data=data_record)]
    record = dict(
        history,
        dataset=ds.name,
        image_shape=list(ds.image_shape or []),
        image_order=ds.image_order,  # ex4's .mat images are column-major
        class_names=[str(c) for c in ds.classes],
        summary=summary,
    )
    io.atomic_write_text(path / "history.json", json.dumps(record, indent=1))
    files.append(path / "history.json")
    if y_pred is not None:  # None: no test split to predict
        n = min(25, ds.X_test.shape[0])
        with atomic_open(path / "predictions.npz") as fh:
            np.savez(fh, X_sample=ds.X_test[:n], y_true=ds.y_test, y_pred=y_pred)
        files.append(path / "predictions.npz")
    else:  # a predictions.npz left by an earlier run in this folder is not ours
        (path / "predictions.npz").unlink(missing_ok=True)
    with atomic_open(path / "first_layer.npy") as fh:
        np.save(fh, net.backend.to_numpy(net.parameters()[0]))
    files.append(path / "first_layer.npy")
    try:
        from bpnet.cli.plot import plot_run

        files += plot_run(path)
    except ImportError as exc:  # matplotlib is an optional extra
        print(f"bpnet-train: plots skipped: {exc}", file=sys.stderr)
    return [str(f) for f in files]
