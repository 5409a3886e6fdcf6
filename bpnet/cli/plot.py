"""Redraw the pictures of a saved training run: :func:`plot_run` and ``bpnet-plot``.

A run directory holds:

``history.json``
    ``{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy":
    [...]}`` (any list may be missing or empty; ``test_loss`` and
    ``test_accuracy`` when the test split was watched), optionally with
    ``"dataset"`` (a name for the titles), ``"image_shape"`` ([height,
    width]), ``"image_order"`` ("C", or "F" for column-major images such
    as ex4's) and ``"class_names"`` (a list of strings).
``predictions.npz`` (optional)
    Plain arrays, read with ``allow_pickle=False``: ``y_true`` and ``y_pred``
    (integer labels of the evaluated samples) and optionally ``X_sample``
    (the first rows of the evaluated inputs, aligned with the labels).
``first_layer.npy`` (optional)
    The first Dense layer's weights, shape (n_inputs, n_hidden).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.io.plain import read_npy, read_npz
from bpnet.plots import (
    plot_confusion_matrix,
    plot_first_layer,
    plot_history,
    plot_image_grid,
)

__all__ = ["plot_main", "plot_run"]


def _read_history(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "history.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"run_dir: {str(run_dir)!r} holds no history.json; expected the "
            "directory of a saved training run"
        )
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(
            f"{path}: nested too deeply to be a run's history (not a file "
            "bpnet-train wrote)"
        ) from None
    if not isinstance(history, dict):
        raise ValueError(
            f"{path}: expected a JSON object of per-epoch lists, got "
            f"{type(history).__name__}"
        )
    return history


def _read_predictions(path: Path) -> dict[str, np.ndarray]:
    arrays = read_npz(path)
    missing = [key for key in ("y_true", "y_pred") if key not in arrays]
    if missing:
        raise ValueError(
            f"{path}: missing array(s) {', '.join(missing)}; found "
            f"{', '.join(sorted(arrays)) or 'none'}"
        )
    return arrays


def plot_run(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    n_samples: int = 25,
    dpi: float = 100,
) -> list[Path]:
    """Draw the PNGs of a saved training run.

    Parameters
    ----------
    run_dir : path-like
        The run directory (see the module docstring for its files).
    out_dir : path-like, optional
        Where to write the PNGs, created if needed; ``run_dir`` when None.
    n_samples : int, default=25
        Images on the sample grid.
    dpi : float, default=100
        Pixels per inch of every picture.

    Returns
    -------
    list of Path
        The files written: ``history.png`` always; ``samples.png`` when
        ``predictions.npz`` holds ``X_sample``; ``confusion.png`` when it holds
        labels; ``first_layer.png`` when ``first_layer.npy`` exists.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"run_dir: {str(run_dir)!r} is not a directory; expected the "
            "directory of a saved training run"
        )
    history = _read_history(run_dir)
    out = run_dir if out_dir is None else Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = history.get("dataset")
    title = None if dataset is None else str(dataset)
    image_shape = history.get("image_shape") or None  # [] when the data has none
    order = history.get("image_order") or "C"  # "F": ex4's column-major images
    class_names = history.get("class_names")

    written = [plot_history(history, out / "history.png", title=title, dpi=dpi)]
    predictions = run_dir / "predictions.npz"
    if predictions.is_file():
        arrays = _read_predictions(predictions)
        y_true, y_pred = arrays["y_true"], arrays["y_pred"]
        if "X_sample" in arrays and _makes_images(arrays["X_sample"], image_shape):
            X = arrays["X_sample"]
            m = X.shape[0] if X.ndim else 0
            if m > min(len(y_true), len(y_pred)):
                raise ValueError(
                    f"{predictions}: X_sample has {m} rows but y_true/y_pred only "
                    f"{len(y_true)}/{len(y_pred)}; X_sample must be the first rows "
                    "of the evaluated samples"
                )
            written.append(
                plot_image_grid(
                    X,
                    y_true[:m],
                    y_pred[:m],
                    path=out / "samples.png",
                    image_shape=image_shape,
                    class_names=class_names,
                    n=n_samples,
                    order=order,
                    dpi=dpi,
                )
            )
        written.append(
            plot_confusion_matrix(
                y_true, y_pred, out / "confusion.png", class_names, dpi=dpi
            )
        )
    first_layer = run_dir / "first_layer.npy"
    if first_layer.is_file():
        W = read_npy(first_layer)
        if W.ndim == 4 or _makes_images(W.T, image_shape):  # 4-D: conv filters
            written.append(
                plot_first_layer(
                    W, out / "first_layer.png", image_shape, order=order, dpi=dpi
                )
            )
    return written


def _makes_images(rows: np.ndarray, image_shape: Any) -> bool:
    """Whether each row is an image: of the recorded shape or, with none
    recorded, a square number of values. Other data gets no image plots."""
    if rows.ndim != 2:
        return True  # let the plot say what is wrong with it
    n = rows.shape[1]
    if image_shape:
        return int(np.prod(image_shape)) == n
    return math.isqrt(n) ** 2 == n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpnet-plot",
        description="Redraw the PNGs of a saved bpnet training run: history.png, "
        "and samples.png, confusion.png, first_layer.png where the data exist.",
    )
    parser.add_argument("run_dir", metavar="DIR", help="the run directory")
    parser.add_argument("--out", metavar="OUT", help="output directory (default: DIR)")
    parser.add_argument(
        "--samples", type=int, default=25, help="images on the sample grid (25)"
    )
    parser.add_argument("--dpi", type=float, default=100, help="pixels per inch (100)")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback on errors"
    )
    return parser


def plot_main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``bpnet-plot DIR [--out OUT]``.

    Returns 0 on success (printing the files written), 2 on bad arguments or a
    run that cannot be drawn (one line on stderr; ``--debug`` re-raises).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage message
        return int(exc.code or 0)
    try:
        written = plot_run(args.run_dir, args.out, n_samples=args.samples, dpi=args.dpi)
    except (OSError, ValueError, TypeError, ImportError) as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"bpnet-plot: error: {message}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(plot_main())
