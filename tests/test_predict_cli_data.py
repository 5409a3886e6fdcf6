"""bpnet-predict: which split or data set a model is scored on by default, and
the labels it is given.
"""

import json

import numpy as np
import pytest
from _predict_cli_helpers import (  # a fixture, found by pytest by its name
    _last_json,
    trained_fixture,  # noqa: F401
)

import bpnet
from bpnet.cli.predict import predict_main
from bpnet.cli.train import train_main
from bpnet.data import load_digits


def test_the_split_recorded_by_bpnet_train_is_the_default(tmp_path, capsys):
    """A model trained on seed 1's split is scored on seed 1's test samples,
    not on seed 0's (most of which it was trained on)."""
    out = tmp_path / "s1"
    args = ["--seed", "1", "--epochs", "3", "--quiet", "--out", str(out)]
    assert train_main(args) == 0
    model = out / "model.npz"
    capsys.readouterr()
    assert predict_main([str(model), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    ds = load_digits(seed=1)
    net = bpnet.load(model)
    assert summary["accuracy"] == pytest.approx(net.evaluate(ds.X_test, ds.y_test)[1])
    assert summary["seed"] == 1 and summary["test_size"] == 0.2
    assert summary["data"] == "digits:test" and captured.err == ""
    # an explicit flag wins, with a warning that says what it costs
    assert predict_main([str(model), "--seed", "0", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["seed"] == 0
    assert "trained on the digits split with seed 1 and test size 0.2; --seed 0 " in (
        " ".join(captured.err.split())
    )


def test_a_file_without_a_record_says_which_split_it_uses(trained, tmp_path, capsys):
    net = bpnet.load(trained)
    bpnet.save(net, tmp_path / "plain.npz")
    assert predict_main([str(tmp_path / "plain.npz")]) == 0
    err = capsys.readouterr().err
    assert "does not record the split it was trained on; using seed 0" in err


def test_a_model_of_another_dataset_says_what_it_was_trained_on(tmp_path, capsys):
    # a model file whose record names Fashion-MNIST, scored on --dataset digits
    from bpnet import io

    net = bpnet.Sequential([bpnet.Dense(784, 4), bpnet.ReLU(), bpnet.Dense(4, 10)])
    record = {"dataset": "fashion-mnist", "data_dir": None}
    io.save(net, tmp_path / "fm.npz", data=record)
    assert io.read_model_file(tmp_path / "fm.npz")[1]["data"] == record
    assert predict_main([str(tmp_path / "fm.npz"), "--dataset", "digits"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "fm.npz was trained on fashion-mnist, not digits; using the digits split" in err
    )
    assert "does not record" not in err
    assert "expected 784 features per sample" in err


def test_a_fashion_mnist_model_defaults_to_fashion_mnist(fashion_dir, tmp_path, capsys):
    out = tmp_path / "fm"
    args = ["--dataset", "fashion-mnist", "--data-dir", str(fashion_dir), "--hidden"]
    args += ["--epochs", "1", "--batch-size", "1000", "--quiet", "--out", str(out)]
    assert train_main(args) == 0
    capsys.readouterr()
    assert predict_main([str(out / "model.npz"), "--json"]) == 0
    summary = _last_json(capsys)
    assert summary["data"] == "fashion-mnist:test" and summary["n"] == 10000
    assert summary["accuracy"] > 0.6 and summary["predictions"][0] in (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    assert predict_main([str(out / "model.npz"), "--seed", "3"]) == 2
    assert "--seed: fashion-mnist comes with its own test split" in (
        capsys.readouterr().err
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_labels_that_are_not_the_models_classes(tmp_path, capsys):
    """String-labelled estimator against the digits' integer labels: an error
    naming the flag, not accuracy 0.0000."""
    ds = load_digits()
    clf = bpnet.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    clf.fit(ds.X_train, np.array(list("abcdefghij"))[ds.y_train])
    clf.save(tmp_path / "clf.npz")
    assert predict_main([str(tmp_path / "clf.npz"), "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("bpnet-predict: error: --dataset: 360 of the 360 labels")
    assert "are not classes of the model (e.g. 7); its classes are ['a'," in err


@pytest.mark.parametrize(
    "labels, match",
    [
        (
            np.full(7, 2.5),
            "--labels: expected class indices 0..9 or the model's "
            "class names ['0', '1',",
        ),
        (np.full(7, 2.5), "got non-integer values (e.g. np.float64(2.5))"),
        (np.array(["x"] * 7), "got 7 labels that are neither (e.g. 'x')"),
        (np.arange(7) + 5, "(the model has 10 outputs), got values 5..11"),
        (np.arange(5), "--labels: 5 labels for 7 samples"),
    ],
)
def test_bad_labels_for_a_network(trained, tmp_path, labels, match, capsys):
    ds = load_digits()
    np.save(tmp_path / "X.npy", ds.X_test[:7])
    np.save(tmp_path / "y.npy", labels)
    args = [str(trained), "--data", str(tmp_path / "X.npy")]
    assert predict_main([*args, "--labels", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


def test_labels_as_class_names_and_whole_floats(trained, tmp_path, capsys):
    ds = load_digits()
    np.save(tmp_path / "X.npy", ds.X_test)
    args = [str(trained), "--data", str(tmp_path / "X.npy"), "--json"]
    accuracies = []
    for labels in (ds.y_test, ds.y_test.astype(str), ds.y_test.astype(float)):
        np.save(tmp_path / "y.npy", labels)
        assert predict_main([*args, "--labels", str(tmp_path / "y.npy")]) == 0
        accuracies.append(_last_json(capsys)["accuracy"])
    assert accuracies[0] > 0.9 and accuracies == [accuracies[0]] * 3


def test_a_model_trained_on_array_files_scores_their_test_rows(tmp_path, capsys):
    """bpnet-train --data X.npy --labels y.npy --test-split tail holds out the
    last rows; the model file records the files and the split, so
    bpnet-predict scores those same rows."""
    ds = load_digits()
    X = np.concatenate([ds.X_train, ds.X_test]).astype(np.float32)
    y = np.concatenate([ds.y_train, ds.y_test]) + 1  # labels 1..10: mapped to 0..9
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "run"
    args = ["--data", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy")]
    assert (
        train_main(
            [
                *args,
                "--test-size",
                "0.25",
                "--test-split",
                "tail",
                "--epochs",
                "3",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    model = out / "model.npz"
    assert predict_main([str(model), "--json"]) == 0
    summary = _last_json(capsys)
    cut = X.shape[0] - int(np.ceil(0.25 * X.shape[0]))
    net = bpnet.load(model)
    assert summary["n"] == X.shape[0] - cut
    assert summary["data"] == "X.npy:test"
    want = net.evaluate(X[cut:], y[cut:] - 1)[1]
    assert summary["accuracy"] == pytest.approx(want)
    assert predict_main([str(model), "--json", "--split", "train"]) == 0
    assert _last_json(capsys)["n"] == cut
    # the labels it was trained with are its class names, 1..10, not indices:
    # all of them, and rows whose labels all happen to lie in 0..9 too
    rows = y[cut:] <= 9
    np.save(tmp_path / "Xs.npy", X[cut:][rows])
    np.save(tmp_path / "ys.npy", y[cut:][rows])
    for name, truth in (("", y), ("s", y[cut:][rows])):
        Xf, yf = tmp_path / f"X{name}.npy", tmp_path / f"y{name}.npy"
        assert (
            predict_main([str(model), "--data", str(Xf), "--labels", str(yf), "--json"])
            == 0
        )
        Xs = np.load(Xf)
        want = net.evaluate(Xs, truth - 1)[1]
        assert _last_json(capsys)["accuracy"] == pytest.approx(want)
    (tmp_path / "y.npy").unlink()
    assert predict_main([str(model)]) == 2
    err = capsys.readouterr().err
    assert "--labels: " in err and "y.npy, which is not there" in err
    assert predict_main([str(model), "--seed", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--seed: the --data files it was trained on come with their own" in err
