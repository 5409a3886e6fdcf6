"""bpnet-predict: a saved model classifies a split or a file, on any device."""

import json

import numpy as np
import pytest
import scipy.io

import bpnet
from bpnet.cli import train_main
from bpnet.data import load_digits
from bpnet.predict_cli import predict_main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train_main(["--epochs", "10", "--quiet", "--out", str(out)]) == 0
    return out / "model.npz"


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


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


@pytest.mark.parametrize(
    "args, match",
    [
        (["/nonexistent/model.npz"], "No model file"),
        (["MODEL", "--data", "x.csv"], "--data: expected a .npy or .mat"),
        (["MODEL", "--labels", "y.npy"], "--labels: goes with --data"),
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
