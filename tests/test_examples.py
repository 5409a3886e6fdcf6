"""Every script in examples/ runs on small data and prints its notebook's
checkpoints: the numbers are checked, not only that it ran."""

import ast
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TESTED = {
    "ex4_tnc",
    "ex4_cg",
    "ex4_deep",
    "dnn_classifier",
    "dlfs_ch5",
    "dlfs_ch6",
    "dlfs_ch7",
}


def _run(name, capsys, *argv):
    """Run examples/NAME.py's main(argv) in this process; its printed lines."""
    from threadpoolctl import threadpool_limits

    module = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")
    with threadpool_limits(1):
        module["main"](list(argv))
    return capsys.readouterr().out


NUM = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


def _number(pattern, out):
    """The number that ``{NUM}`` marks in ``pattern``'s first match."""
    found = re.search(pattern.replace("{NUM}", NUM), out)
    assert found, f"{pattern!r} not in the output:\n{out}"
    return float(found.group(1))


def _ex4_cost(tmp_path, lam):
    """ex4's nnCostFunction, written out in NumPy, at the stand-in's Thetas."""
    from scipy.io import loadmat

    from bpnet.data import write_ex4_standin

    data, weights = write_ex4_standin(tmp_path)
    d, w = loadmat(data), loadmat(weights)
    X, y, T1, T2 = d["X"], d["y"].ravel(), w["Theta1"], w["Theta2"]
    m = len(X)
    a2 = 1 / (1 + np.exp(-(np.c_[np.ones(m), X] @ T1.T)))
    h = 1 / (1 + np.exp(-(np.c_[np.ones(m), a2] @ T2.T)))
    Y = np.eye(10)[y - 1]  # ex4: label k is output k (10 is the digit 0)
    J = np.sum(-Y * np.log(h) - (1 - Y) * np.log(1 - h)) / m
    return J + lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2))


def test_every_example_is_a_gallery_script_with_a_main_and_a_test():
    names = {p.stem for p in EXAMPLES.glob("*.py")}
    assert names == TESTED
    assert (EXAMPLES / "GALLERY_HEADER.rst").is_file()  # the gallery's header
    for name in names:
        source = (EXAMPLES / f"{name}.py").read_text()
        tree = ast.parse(source)
        title = ast.get_docstring(tree)
        assert title and "\n===" in title, f"{name}: no title in its docstring"
        assert "\n# %%\n" in source, f"{name}: no cells"
        mains = [
            f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "main"
        ]
        assert mains and [a.arg for a in mains[0].args.args] == ["argv"], name
        assert len(source.splitlines()) <= 150, f"{name}: keep examples short"


def _check_ex4_checkpoints(out, tmp_path, n_checks):
    assert "using a stand-in built from scikit-learn's digits" in out
    J0 = _number(r"Cost at the given Thetas(?:, lambda=0)?: {NUM}", out)
    J1 = _number(r"Cost at the given Thetas, lambda=1: {NUM}", out)
    assert J0 == pytest.approx(_ex4_cost(tmp_path, 0.0), abs=1e-6)
    assert J1 == pytest.approx(_ex4_cost(tmp_path, 1.0), abs=1e-6)
    assert "0.196612 0.235004 0.250000 0.235004 0.196612" in out
    diffs = re.findall(r"[Rr]elative difference[^:\n]*:? " + NUM, out)
    assert len(diffs) == n_checks
    assert all(float(d) < 1e-9 for d in diffs)


def test_ex4_tnc_prints_ex4s_checkpoints(capsys, tmp_path):
    out = _run("ex4_tnc", capsys, "--maxiter", "10")
    _check_ex4_checkpoints(out, tmp_path, n_checks=2)  # lambda 0 and 3
    assert _number(r"TNC: {NUM} iterations", out) == 10
    assert _number(r"Training accuracy: {NUM}", out) > 0.85


def test_ex4_cg_prints_ex4s_checkpoints_and_fmincg_s_costs(capsys, tmp_path):
    out = _run("ex4_cg", capsys, "--maxiter", "15")
    _check_ex4_checkpoints(out, tmp_path, n_checks=1)
    costs = [float(c) for c in re.findall(r"Iteration +\d+ \| cost: " + NUM, out)]
    assert len(costs) == 15
    assert all(b <= a for a, b in zip(costs, costs[1:]))
    # checkNNGradients' two columns agree to their last printed digit
    columns = re.findall(r"^  +(-?\d\.\d{10}) +(-?\d\.\d{10})$", out, re.M)
    assert len(columns) == 5
    assert all(numeric == backprop for numeric, backprop in columns)
    assert _number(r"Training accuracy: {NUM}", out) > 0.8


def test_ex4_takes_the_files_as_arguments(capsys, tmp_path):
    from bpnet.data import write_ex4_standin

    data, weights = write_ex4_standin(tmp_path)
    out = _run("ex4_tnc", capsys, str(data), str(weights), "--maxiter", "1")
    assert "stand-in" not in out
    J0 = _number(r"Cost at the given Thetas: {NUM}", out)
    assert J0 == pytest.approx(_ex4_cost(tmp_path, 0.0), abs=1e-6)


def test_ex4_deep_trains_an_l_layer_network(capsys):
    out = _run("ex4_deep", capsys, "--hidden", "25,25", "--maxiter", "20")
    assert "Network: 400-25-25-10" in out
    assert _number(r"2 hidden layers: relative difference {NUM}", out) < 1e-9
    assert _number(r"Test accuracy: {NUM}", out) > 0.8
    assert "Theta shapes: [(25, 401), (25, 26), (10, 26)]" in out


def test_dnn_classifier_on_the_digits(capsys):
    out = _run("dnn_classifier", capsys, "--epochs", "5")
    assert "using scikit-learn's 8x8 digits instead of MNIST" in out
    losses = [float(v) for v in re.findall(r"Iteration \d+, loss = " + NUM, out)]
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert _number(r"Test accuracy: {NUM}", out) > 0.8
    assert "macro avg" in out  # the classification report


def test_dnn_classifier_on_fashion_mnist(capsys, fashion_dir):
    out = _run(
        "dnn_classifier",
        capsys,
        *("--data-dir", str(fashion_dir), "--kind", "fashion"),
        *("--subset", "2000", "--epochs", "4"),
    )
    assert "fashion-mnist: 2000 training and 10000 test images" in out
    assert _number(r"Test accuracy: {NUM}", out) > 0.6
    assert "Ankle boot" in out


def test_dlfs_ch5_apple_and_orange(capsys):
    module = runpy.run_path(str(EXAMPLES / "dlfs_ch5.py"), run_name="example")
    module["apple_orange"]()
    out = capsys.readouterr().out
    assert "price: 715\n" in out
    assert (
        "dapple: 2.2, dapple_num: 110, dorange: 3.3, dorange_num: 165, dtax: 650" in out
    )


def test_dlfs_ch5_runs_the_chapter(capsys):
    out = _run("dlfs_ch5", capsys, "--epochs", "5")
    relu = re.search(r"ReLU forward: (\[\[.*\]\]) backward: (\[\[.*\]\])", out)
    assert relu, out
    out_, dx = (ast.literal_eval(g) for g in relu.groups())
    np.testing.assert_array_equal(out_, [[1.0, 0.0], [0.0, 3.0]])  # the book's x
    np.testing.assert_array_equal(dx, [[1.0, 0.0], [0.0, 1.0]])
    for name in ("W1", "b1", "W2", "b2"):
        assert _number(rf"{name}: {{NUM}}", out) < 1e-8
    accuracies = re.findall(r"epoch (\d+): train acc ([\d.]+), test acc ([\d.]+)", out)
    assert [int(e) for e, _, _ in accuracies] == [1, 2, 3, 4, 5]
    assert float(accuracies[-1][2]) > 0.8


def test_dlfs_ch6_compares_what_the_chapter_compares(capsys):
    out = _run("dlfs_ch6", capsys, "--epochs", "5")
    loss = {
        name: _number(rf"{name}: final training loss {{NUM}}", out)
        for name in ("SGD", "Momentum", "AdaGrad", "Adam")
    }
    assert all(np.isfinite(v) for v in loss.values())
    # SGD at lr 0.01 is the slowest of the four, as in the book's figure 6-9
    assert max(loss["Momentum"], loss["AdaGrad"], loss["Adam"]) < loss["SGD"]
    # weights of std 0.01 stall without BatchNorm, not with it
    assert _number(r"with BatchNorm: train acc {NUM}", out) > _number(
        r"without BatchNorm: train acc {NUM}", out
    )
    # Dropout holds the training accuracy back
    assert _number(r"Dropout 0.2: train acc {NUM}", out) < _number(
        r"Dropout 0.0: train acc {NUM}", out
    )


def test_dlfs_ch7_trains_simple_convnet(capsys, tmp_path):
    out = _run("dlfs_ch7", capsys, "--epochs", "3", "--plot-dir", str(tmp_path))
    assert "im2col of (1, 3, 7, 7): (1, 75, 9)" in out
    assert "im2col of (10, 3, 7, 7): (10, 75, 9)" in out
    assert _number(r"gradient check: relative difference {NUM}", out) < 1e-7
    accuracies = re.findall(r"epoch (\d+): train acc ([\d.]+), test acc ([\d.]+)", out)
    assert [int(e) for e, _, _ in accuracies] == [1, 2, 3]
    assert float(accuracies[-1][2]) > 0.8
    assert "filters: (30, 1, 3, 3)" in out
    assert (tmp_path / "filters_after.png").stat().st_size > 0
