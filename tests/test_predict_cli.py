"""bpnet-predict: a saved model classifies a split or a file, on any device."""

import json

import numpy as np
import pytest
import scipy.io
from _predict_cli_helpers import (  # a fixture, found by pytest by its name
    _last_json,
    trained_fixture,  # noqa: F401
)

import bpnet
from bpnet.cli.predict import predict_main
from bpnet.data import load_digits


def test_accuracy_on_a_split_matches_the_model(trained, capsys):
    assert predict_main([str(trained), "--json"]) == 0
    summary = _last_json(capsys)
    ds = load_digits()
    net = bpnet.load(trained)
    assert summary["accuracy"] == pytest.approx(net.evaluate(ds.X_test, ds.y_test)[1])
    assert summary["n"] == 360 and summary["data"] == "digits:test"


def test_every_backend_predicts_the_same_labels(trained, capsys, backend):
    assert predict_main([str(trained), "--json"]) == 0
    ref = _last_json(capsys)["predictions"]
    assert predict_main([str(trained), "--json", "--device", backend.name]) == 0
    assert _last_json(capsys)["predictions"] == ref


def test_json_gives_numeric_labels_as_numbers(trained, tmp_path, capsys):
    ds = load_digits()
    np.save(tmp_path / "X.npy", ds.X_test[:9])
    assert (
        predict_main([str(trained), "--data", str(tmp_path / "X.npy"), "--json"]) == 0
    )
    out = capsys.readouterr().out.strip().splitlines()[-1]
    got = json.loads(out)["predictions"]
    assert all(type(v) is int for v in got), out
    net = bpnet.load(trained)
    assert got == net.backend.to_numpy(net.predict(ds.X_test[:9])).tolist()
    # names that are not all whole numbers stay text
    from bpnet.cli.predict import _numeric_names

    assert _numeric_names(["0", "1", "10"]) == [0, 1, 10]
    assert _numeric_names(["cat", "7"]) == ["cat", "7"]
    assert _numeric_names(["07", "1"]) == ["07", "1"]


def test_npy_with_and_without_labels(trained, tmp_path, capsys):
    ds = load_digits()
    np.save(tmp_path / "X.npy", ds.X_test[:7])
    np.save(tmp_path / "y.npy", ds.y_test[:7])
    assert predict_main([str(trained), "--data", str(tmp_path / "X.npy")]) == 0
    lines = capsys.readouterr().out.split()
    assert len(lines) == 7 and all(v in [str(d) for d in range(10)] for v in lines)
    assert (
        predict_main(
            [
                str(trained),
                "--data",
                str(tmp_path / "X.npy"),
                "--labels",
                str(tmp_path / "y.npy"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("accuracy: ")


def test_mat_file(trained, tmp_path, capsys):
    ds = load_digits()
    y = np.where(ds.y_test == 0, 10, ds.y_test)  # ex4 labels
    scipy.io.savemat(tmp_path / "d.mat", {"X": ds.X_test, "y": y.reshape(-1, 1)})
    assert (
        predict_main([str(trained), "--data", str(tmp_path / "d.mat"), "--json"]) == 0
    )
    assert _last_json(capsys)["accuracy"] > 0.9


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_estimator_file(tmp_path, capsys):
    ds = load_digits()
    clf = bpnet.MLPClassifier(hidden_layer_sizes=(32,), max_iter=50, random_state=0)
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    clf.fit(ds.X_train, names[ds.y_train])
    clf.save(tmp_path / "clf.npz")
    np.save(tmp_path / "X.npy", ds.X_test)
    np.save(tmp_path / "y.npy", names[ds.y_test])
    assert (
        predict_main(
            [
                str(tmp_path / "clf.npz"),
                "--data",
                str(tmp_path / "X.npy"),
                "--labels",
                str(tmp_path / "y.npy"),
                "--json",
            ]
        )
        == 0
    )
    summary = _last_json(capsys)
    assert summary["kind"] == "MLPClassifier" and summary["predictions"][0] in names
    assert summary["accuracy"] == pytest.approx(clf.score(ds.X_test, names[ds.y_test]))
    # fitted in Python, it records no data set: ask for one, never guess digits
    assert predict_main([str(tmp_path / "clf.npz")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--data: clf.npz holds a MLPClassifier fitted in Python" in err


@pytest.mark.parametrize(
    "args, match",
    [
        (
            ["/nonexistent/model.npz"],
            "model: No model file at '/nonexistent/model.npz'; expected a model "
            "file written by bpnet-train --out DIR",
        ),
        (["MODEL", "--data", "x.csv"], "--data: expected a .npy or .mat"),
        (
            ["MODEL", "--data", "x.npy", "--split", "train"],
            "--split: picks a train/test split of a dataset; --data x.npy is "
            "classified whole",
        ),
        (["MODEL", "--labels", "y.npy"], "--labels: goes with --data"),
        (["MODEL", "--test-size", "1.5"], "--test-size: expected a fraction in [0, 1)"),
        (["MODEL", "--device", "tpu"], "device: expected one of"),
    ],
)
def test_errors_are_one_line(trained, args, match, capsys):
    args = [str(trained) if a == "MODEL" else a for a in args]
    assert predict_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_a_file_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"\x00" * 100)
    assert predict_main([str(tmp_path / "junk.npz")]) == 2
    assert "not a bpnet model file" in capsys.readouterr().err


def test_a_missing_extra_is_one_line(trained):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from bpnet.cli.predict import predict_main\n"
        f"sys.exit(predict_main([{str(trained)!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "bpnet-predict: error: scikit-learn is not installed; install it with: "
        "pip install 'bpnet-arrayapi[train]'"
    )


def test_a_negative_seed_is_a_usage_error(trained, capsys):
    with pytest.raises(SystemExit) as info:
        predict_main([str(trained), "--seed", "-2"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "argument --seed: expected an integer in [0, 4294967295], got '-2'" in err[0]


def test_a_reader_that_stops_early_ends_the_output_quietly(trained, tmp_path):
    """`bpnet-predict ... | head -1`: no BrokenPipeError traceback."""
    import subprocess
    import sys

    X = np.tile(load_digits().X_test, (60, 1))  # far more than a pipe holds
    np.save(tmp_path / "X.npy", X)
    cmd = (
        f"'{sys.executable}' -m bpnet.cli.predict '{trained}' "
        f"--data '{tmp_path / 'X.npy'}' | head -1"
    )
    out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    assert len(out.stdout.splitlines()) == 1
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr


# --- what a model file asks of memory, and weights that overflow ------------------
def _wide(tmp_path, huge=False):
    net = bpnet.Sequential([bpnet.Dense(4, 1000), bpnet.ReLU(), bpnet.Dense(1000, 3)])
    if huge:
        net.set_parameters(
            [np.full(p.shape, 3e38, np.float32) for p in net.parameters()]
        )
    X = np.random.default_rng(0).random((300, 4)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    return net, bpnet.save(net, tmp_path / "wide.npz"), X


def test_rows_are_predicted_in_slices_that_fit_max_memory(tmp_path, capsys):
    net, path, X = _wide(tmp_path)
    data = ["--data", str(tmp_path / "X.npy"), "--json"]
    # 400 KiB, 32 KiB of it weights, 16 KiB a row: slices of 23 rows
    assert predict_main([str(path), *data, "--max-memory", "400K"]) == 0
    expected = net.backend.to_numpy(net.predict(X)).tolist()
    assert _last_json(capsys)["predictions"] == expected
    assert predict_main([str(path), *data, "--max-memory", "100K"]) == 2
    err = capsys.readouterr().err.strip()
    assert "loading it asks for about" in err and "raise the budget with --max-m" in err
    assert "the environment variable BPNET_MAX_MEMORY" in err


def test_weights_whose_outputs_overflow_are_an_error_not_zeros(tmp_path, capsys):
    # finite weights of 3e38: every output is Inf or NaN in float32
    _, path, _ = _wide(tmp_path, huge=True)
    code = predict_main([str(path), "--data", str(tmp_path / "X.npy")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""  # it printed 0 for every row
    assert err.strip().splitlines() == [err.strip()]
    assert "its outputs are NaN or Inf for" in err and "in float32" in err


def test_proba_prints_a_row_of_probabilities_per_sample(trained, tmp_path, capsys):
    X = np.random.default_rng(0).random((4, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    net = bpnet.load(trained)
    want = net.backend.to_numpy(net.predict_proba(X))
    assert (
        predict_main([str(trained), "--data", str(tmp_path / "x.npy"), "--proba"]) == 0
    )
    rows = [line.split() for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 4 and all(len(r) == 10 for r in rows)
    np.testing.assert_allclose(np.array(rows, dtype=float), want, rtol=1e-5)
    args = [str(trained), "--data", str(tmp_path / "x.npy"), "--proba", "--json"]
    assert predict_main(args) == 0
    summary = _last_json(capsys)
    np.testing.assert_allclose(summary["probabilities"], want, rtol=1e-6)
    assert summary["classes"] == list(range(10))
    # with labels: the rows, then the accuracy
    assert predict_main([str(trained), "--proba"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("accuracy: ") and len(lines[0].split()) == 10


def test_proba_of_an_onnx_file_is_the_models(trained, tmp_path, capsys):
    for name in ("onnx", "onnxruntime", "ndonnx", "onnxscript"):  # the onnx extra
        pytest.importorskip(name)
    from bpnet.cli.export import export_main

    X = np.random.default_rng(1).random((3, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert export_main([str(trained), str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()
    rows = {}
    for name in (str(trained), str(tmp_path / "m.onnx")):
        args = [name, "--data", str(tmp_path / "x.npy"), "--proba", "--json"]
        assert predict_main(args) == 0
        rows[name] = _last_json(capsys)["probabilities"]
    a, b = rows.values()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
