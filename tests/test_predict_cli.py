"""bpnet-predict: a saved model classifies a split or a file, on any device."""

import json

import numpy as np
import pytest
import scipy.io

import bpnet
from bpnet.cli.predict import predict_main
from bpnet.cli.train import train_main
from bpnet.data import load_digits


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


def _bad_files(folder):
    """name -> path of files a command line might be handed by mistake."""
    X = load_digits().X_test[:20]
    good = folder / "good.npy"
    np.save(good, X)
    truncated = folder / "truncated.npy"
    truncated.write_bytes(good.read_bytes()[:300])
    objects = folder / "objects.npy"
    np.save(objects, np.array([{"a": 1}] * 20, dtype=object), allow_pickle=True)
    integers = folder / "integers.npy"
    np.save(integers, (X * 16).astype(np.uint8))
    zipped = folder / "zipped.npy"  # an .npz archive under a .npy name
    with open(zipped, "wb") as fh:
        np.savez(fh, X=X)
    archive = folder / "archive.npz"  # a real .npz where one array is expected
    np.savez(archive, y=np.arange(20) % 3)
    return {
        "archive": archive,
        "zipped": zipped,
        "truncated": truncated,
        "objects": objects,
        "integers": integers,
        "missing": folder / "missing.npy",
        "good": good,
    }


#: (flag, kind of bad file, what the one-line error says): both commands
BAD_FILES = [
    ("--data", "truncated", "--data: expected a .npy array of samples; "),
    ("--data", "objects", "--data: expected a .npy array of samples; "),
    ("--data", "missing", "--data: no such file: "),
    ("--labels", "truncated", "--labels: expected a .npy array of labels; "),
    ("--labels", "objects", "--labels: expected a .npy array of labels; "),
    ("--labels", "missing", "--labels: no such file: "),
    ("--labels", "zipped", "--labels: expected a .npy array of labels; "),
    ("--labels", "archive", "archive.npz holds an .npz archive"),
]


@pytest.mark.parametrize(
    "flag, kind, match",
    [
        *BAD_FILES,
        ("--data", "zipped", "holds an .npz archive"),
        ("--data", "integers", "--data: expected floating-point values, got uint8"),
    ],
)
def test_a_bad_input_file_is_named_with_its_flag(
    trained, tmp_path, flag, kind, match, capsys
):
    files = _bad_files(tmp_path)
    args = [str(trained), "--data", str(files["good"])]
    if flag == "--data":
        args[2] = str(files[kind])
    else:
        args += ["--labels", str(files[kind])]
    assert predict_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    if kind != "integers":
        assert files[kind].name in err[0]


@pytest.mark.parametrize("flag, kind, match", BAD_FILES)
def test_bpnet_train_names_a_bad_input_file_with_its_flag(
    tmp_path, flag, kind, match, capsys
):
    files = _bad_files(tmp_path)
    labels = tmp_path / "y.npy"
    np.save(labels, np.arange(20) % 3)
    args = {"--data": files["good"], "--labels": labels}
    args[flag] = files[kind]
    argv = [str(a) for pair in args.items() for a in pair] + ["--epochs", "1"]
    assert train_main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and files[kind].name in err[0], err


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.r_[np.zeros(19), np.inf], "--labels: the labels contain NaN or Inf"),
        (
            np.full(20, 7),
            "--labels: expected labels of at least 2 classes, got only [7]",
        ),
    ],
)
def test_bpnet_train_refuses_labels_it_cannot_learn_from(
    tmp_path, labels, match, capsys
):
    X, y = tmp_path / "X.npy", tmp_path / "y.npy"
    np.save(X, load_digits().X_test[:20])
    np.save(y, labels)
    argv = ["--data", str(X), "--labels", str(y), "--epochs", "1", "--quiet"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


@pytest.mark.parametrize("damage", ["truncated", "member"])
def test_bpnet_train_names_a_damaged_npz(tmp_path, damage, capsys):
    import zipfile

    path = tmp_path / "data.npz"
    digits = load_digits()
    np.savez(path, X=digits.X_test[:30], y=digits.y_test[:30])
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        path.write_bytes(bytes(raw[:200]))
    else:  # one byte of X's data flipped: its CRC no longer holds
        with zipfile.ZipFile(path) as z:
            offset = z.getinfo("X.npy").header_offset + 200
        raw[offset] ^= 0xFF
        path.write_bytes(bytes(raw))
    assert train_main(["--data", str(path), "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bpnet-train: error: --data: "), err
    assert "data.npz" in err[0]


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
