"""Plots: each figure is a valid PNG of the size asked for, bad input is named,
writes are atomic, and a saved run directory is redrawn by ``bpnet-plot``."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from bpnet.cli.plot import plot_main, plot_run  # noqa: E402
from bpnet.plots import (  # noqa: E402
    plot_confusion_matrix,
    plot_first_layer,
    plot_history,
    plot_image_grid,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a complete PNG file."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    assert data[-8:-4] == b"IEND", f"{path} is truncated"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def red_pixels(path: Path) -> int:
    from matplotlib.image import imread

    rgb = imread(path)[..., :3]
    return int(((rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)).sum())


HISTORY = {
    "loss": [1.2, 0.8, 0.5, 0.4],
    "accuracy": [0.5, 0.7, 0.85, 0.9],
    "val_loss": [1.3, 0.9, 0.7, 0.65],
    "val_accuracy": [0.45, 0.65, 0.8, 0.82],
}


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    X = rng.random((30, 64))
    y = np.arange(30) % 10
    return X, y


# --- plot_history ----------------------------------------------------------


def test_legend_figures_accuracy_to_four_decimals_and_names_the_train_curve():
    from bpnet.plots import curve_label

    assert curve_label("accuracy", [0.5, 1.0]) == "train, while training (1.0000)"
    assert curve_label("test_accuracy", [0.97777]) == "test (0.9778)"
    assert curve_label("val_accuracy", [0.9]) == "validation (0.9000)"
    # losses keep four significant figures, small ones included
    assert curve_label("loss", [0.3, 0.0045321]) == "train, while training (0.004532)"
    assert curve_label("test_loss", [0.1, float("nan")]) == "test (0.1)"
    assert curve_label("val_loss", [float("nan")]) == "validation"


def test_plot_history_labels_every_curve_with_curve_label(tmp_path, monkeypatch):
    import bpnet.plots as plots

    seen = []
    real = plots.curve_label
    monkeypatch.setattr(plots, "curve_label", lambda k, v: seen.append(k) or real(k, v))
    plot_history(HISTORY, tmp_path / "h.png", figsize=(6, 3), dpi=50)
    assert sorted(seen) == sorted(k for k in HISTORY if HISTORY[k])


def test_history_png_has_the_asked_size(tmp_path):
    out = plot_history(HISTORY, tmp_path / "h.png", figsize=(6, 3), dpi=50)
    assert out == tmp_path / "h.png"
    assert png_size(out) == (300, 150)


def test_history_default_size_and_title(tmp_path):
    out = plot_history(HISTORY, tmp_path / "h.png", title="digits")
    assert png_size(out) == (1000, 400)


@pytest.mark.parametrize(
    "history",
    [
        {"loss": [0.9, 0.5]},  # no accuracy (a regression run)
        {"accuracy": [0.5, 0.6], "val_accuracy": []},
        {"loss": [0.9, float("nan")], "val_loss": [1.0, None]},  # diverged
    ],
)
def test_history_with_missing_or_empty_curves(tmp_path, history):
    assert png_size(plot_history(history, tmp_path / "h.png", dpi=20)) == (200, 80)


def test_history_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="history: no values to plot"):
        plot_history({"loss": [], "dataset": "x"}, tmp_path / "h.png")
    with pytest.raises(TypeError, match="history: expected a dict"):
        plot_history([0.1, 0.2], tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"history\['val_loss'\]: expected a flat"):
        plot_history({"loss": [1.0], "val_loss": [[1.0, 2.0]]}, tmp_path / "h.png")
    with pytest.raises(TypeError, match=r"history\['loss'\]: expected a list"):
        plot_history({"loss": ["high", "low"]}, tmp_path / "h.png")
    with pytest.raises(ValueError, match="figsize"):
        plot_history(HISTORY, tmp_path / "h.png", figsize=(0, 3))
    assert not (tmp_path / "h.png").exists()


# --- plot_image_grid -------------------------------------------------------


def test_image_grid_size_default_and_explicit(tmp_path, digits):
    X, y = digits
    # 25 images -> a 5 x 5 grid at 1.5 inches a cell (+0.3 in for the heading)
    out = plot_image_grid(X, y, y, path=tmp_path / "g.png", dpi=20)
    assert png_size(out) == (150, 156)
    out = plot_image_grid(X, path=tmp_path / "g.png", n=4, figsize=(4, 4), dpi=25)
    assert png_size(out) == (100, 100)


def test_image_grid_marks_wrong_predictions_in_red(tmp_path, digits):
    X, y = digits
    right = plot_image_grid(X, y, y, path=tmp_path / "right.png", n=9)
    wrong_pred = y.copy()
    wrong_pred[4] = (y[4] + 1) % 10
    wrong = plot_image_grid(X, y, wrong_pred, path=tmp_path / "wrong.png", n=9)
    assert red_pixels(right) == 0
    assert red_pixels(wrong) > 20


def test_image_grid_takes_3d_images_and_class_names(tmp_path, digits):
    X, y = digits
    names = [f"class {i}" for i in range(10)]
    out = plot_image_grid(
        X.reshape(30, 8, 8), y_pred=y, path=tmp_path / "g.png", class_names=names, n=6
    )
    assert png_size(out) == (450, 330)  # 6 images -> 2 rows of 3


def test_image_grid_non_square_needs_image_shape(tmp_path):
    X = np.random.default_rng(1).random((6, 12))
    with pytest.raises(ValueError, match="image_shape: X has 12 values per image"):
        plot_image_grid(X, path=tmp_path / "g.png")
    out = plot_image_grid(X, path=tmp_path / "g.png", image_shape=(3, 4), dpi=10)
    assert png_size(out) == (45, 33)
    with pytest.raises(ValueError, match=r"image_shape: expected .* == 12"):
        plot_image_grid(X, path=tmp_path / "g.png", image_shape=(5, 5))


def test_image_grid_bad_input_is_named(tmp_path, digits):
    X, y = digits
    p = tmp_path / "g.png"
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        plot_image_grid(X[0], path=p)
    with pytest.raises(ValueError, match="y_true: expected 30 labels, got 29"):
        plot_image_grid(X, y[:-1], path=p)
    with pytest.raises(ValueError, match=r"y_pred: expected labels in \[0, 2\]"):
        plot_image_grid(X, y % 3, y, path=p, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        plot_image_grid(X, path=p, n=0)
    with pytest.raises(ValueError, match="order"):
        plot_image_grid(X, path=p, order="K")
    assert not p.exists()


def test_column_major_images_unravel_like_ex4():
    from bpnet.plots.figure import as_images

    X = np.arange(12.0).reshape(2, 6)
    images, shape = as_images(X, "X", (2, 3), "F")
    assert shape == (2, 3)
    np.testing.assert_array_equal(images[1], X[1].reshape(2, 3, order="F"))


# --- plot_first_layer ------------------------------------------------------


def test_first_layer_size_and_count(tmp_path):
    W = np.random.default_rng(2).standard_normal((64, 10))
    out = plot_first_layer(W, tmp_path / "w.png", figsize=(4, 4), dpi=50)
    assert png_size(out) == (200, 200)
    out = plot_first_layer(W, tmp_path / "w.png", n=3)  # default 8 x 8 in
    assert png_size(out) == (800, 800)


def test_first_layer_bad_input_is_named(tmp_path):
    p = tmp_path / "w.png"
    with pytest.raises(ValueError, match=r"W: expected a 2-D weight matrix"):
        plot_first_layer(np.zeros(64), p)
    with pytest.raises(ValueError, match="image_shape: W.T has 10 values per image"):
        plot_first_layer(np.zeros((10, 4)), p)
    with pytest.raises(ValueError, match="W: contains NaN"):
        plot_first_layer(np.full((4, 2), np.nan), p)
    with pytest.raises(ValueError, match="n: expected an integer"):
        plot_first_layer(np.zeros((4, 2)), p, n=-1)
    assert not p.exists()


# --- plot_confusion_matrix -------------------------------------------------


def test_confusion_matrix_size(tmp_path):
    y_true = np.array([0, 1, 2, 2, 1, 0])
    y_pred = np.array([0, 2, 2, 2, 1, 1])
    out = plot_confusion_matrix(y_true, y_pred, tmp_path / "c.png", dpi=40)
    assert png_size(out) == (280, 240)
    names = ["T-shirt", "Trouser", "Pullover", "Dress"]  # class 3 never occurs
    out = plot_confusion_matrix(
        y_true, y_pred, tmp_path / "c.png", names, normalize="true", figsize=(5, 5)
    )
    assert png_size(out) == (500, 500)


def test_confusion_matrix_bad_input_is_named(tmp_path):
    p = tmp_path / "c.png"
    with pytest.raises(ValueError, match="y_pred: expected 3 labels, got 2"):
        plot_confusion_matrix([0, 1, 1], [0, 1], p)
    with pytest.raises(ValueError, match=r"y_true: expected labels in \[0, 1\]"):
        plot_confusion_matrix([0, 2], [0, 1], p, ["a", "b"])
    with pytest.raises(TypeError, match="y_true: expected integer class labels"):
        plot_confusion_matrix([0.5, 1.0], [0, 1], p)
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion_matrix([0, 1], [0, 1], p, normalize="rows")
    assert not p.exists()


# --- writing ---------------------------------------------------------------


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    target = tmp_path / "h.png"
    target.write_bytes(b"previous picture")

    def broken_savefig(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_history(HISTORY, target)
    assert target.read_bytes() == b"previous picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.png"]


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: directory .*nowhere"):
        plot_history(HISTORY, tmp_path / "nowhere" / "h.png")


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'bpnet-arrayapi\[plot\]'"):
        plot_history(HISTORY, tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()


# --- plot_run and bpnet-plot -------------------------------------------------


def make_run(run_dir: Path, *, predictions=True, first_layer=True) -> Path:
    run_dir.mkdir()
    history = dict(HISTORY, dataset="digits", image_shape=[4, 5])
    history["class_names"] = ["zero", "one", "two"]
    (run_dir / "history.json").write_text(json.dumps(history))
    rng = np.random.default_rng(3)
    if predictions:
        y_true = np.arange(40) % 3
        y_pred = np.where(np.arange(40) % 7 == 0, (y_true + 1) % 3, y_true)
        np.savez(run_dir / "predictions.npz", X_sample=rng.random((9, 20)),
                 y_true=y_true, y_pred=y_pred)  # fmt: skip
    if first_layer:
        np.save(run_dir / "first_layer.npy", rng.standard_normal((20, 6)))
    return run_dir


def test_plot_run_writes_every_picture(tmp_path):
    run = make_run(tmp_path / "run")
    written = plot_run(run, dpi=20)
    names = ["history.png", "samples.png", "confusion.png", "first_layer.png"]
    assert written == [run / name for name in names]
    sizes = [png_size(p) for p in written]
    assert sizes == [(200, 80), (90, 96), (140, 120), (160, 160)]


def test_plot_run_with_history_only_into_another_dir(tmp_path):
    run = make_run(tmp_path / "run", predictions=False, first_layer=False)
    out = tmp_path / "figures" / "run1"
    assert plot_run(run, out) == [out / "history.png"]
    assert sorted(p.name for p in run.iterdir()) == ["history.json"]


def test_plot_run_errors_name_the_directory_or_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty.* holds no history.json"):
        plot_run(empty)
    with pytest.raises(FileNotFoundError, match="missing.* is not a directory"):
        plot_run(tmp_path / "missing")
    run = make_run(tmp_path / "run", first_layer=False)
    np.savez(run / "predictions.npz", y_true=np.arange(3))
    with pytest.raises(ValueError, match=r"predictions.npz: missing array\(s\) y_pred"):
        plot_run(run)
    (run / "history.json").write_text("{not json")
    with pytest.raises(ValueError, match="history.json: not valid JSON"):
        plot_run(run)


def test_plot_main_exit_codes(tmp_path, capsys):
    run = make_run(tmp_path / "run", predictions=False)
    out = tmp_path / "out"
    assert plot_main([str(run), "--out", str(out), "--dpi", "10"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "history.png"), str(out / "first_layer.png")]
    assert png_size(out / "first_layer.png") == (80, 80)

    assert plot_main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("bpnet-plot: error: run_dir:") and "missing" in err

    with pytest.raises(FileNotFoundError):
        plot_main([str(tmp_path / "missing"), "--debug"])
    assert plot_main([]) == 2  # argparse: DIR is required
    assert "usage: bpnet-plot" in capsys.readouterr().err
    assert plot_main(["--help"]) == 0


def test_first_layer_takes_a_network_or_an_estimator(tmp_path, monkeypatch):
    import warnings

    import bpnet
    import bpnet.plots

    drawn = []
    real = bpnet.plots.as_images

    def spy(X, name, image_shape, order):
        drawn.append(np.array(X))
        return real(X, name, image_shape, order)

    monkeypatch.setattr(bpnet.plots, "as_images", spy)
    net = bpnet.Sequential([bpnet.Dense(16, 3), bpnet.ReLU(), bpnet.Dense(3, 2)])
    plot_first_layer(net, tmp_path / "net.png")
    W = net.backend.to_numpy(net.parameters()[0])
    np.testing.assert_array_equal(drawn[-1], W.T)

    X = np.random.default_rng(0).random((20, 16))
    clf = bpnet.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs do not converge
        clf.fit(X, [0, 1] * 10)
    plot_first_layer(clf, tmp_path / "clf.png")
    np.testing.assert_array_equal(drawn[-1], np.asarray(clf.coefs_[0]).T)

    with pytest.raises(ValueError, match="W: the MLPClassifier is not fitted"):
        plot_first_layer(bpnet.MLPClassifier(), tmp_path / "no.png")
