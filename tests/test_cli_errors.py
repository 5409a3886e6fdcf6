"""bpnet-train's usage errors: each mistake is one line naming its flag, exit 2."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from bpnet.cli.train import train_main


@pytest.mark.parametrize(
    "args, match",
    [
        (["--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
        (["--batch-size", "-3"], "--batch-size"),
        (["--lr", "nan"], "--lr: expected a finite number > 0"),
        (["--hidden", "0"], "--hidden: expected positive"),
        (["--device", "tpu"], "device: expected one of"),
        (["--data", "/nonexistent/ex4data1.mat"], "no such file"),
        (
            ["--dropout", "1.5"],
            "--dropout: expected the fraction of hidden units dropped, in [0, 1), "
            "got 1.5",
        ),
        (["--dropout", "nan"], "--dropout: expected the fraction"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, match, capsys):
    assert train_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_data_file_and_data_dir_errors_name_their_flag(tmp_path, capsys):
    scipy.io.savemat(tmp_path / "noy.mat", {"X": np.ones((4, 2))})
    assert train_main(["--data", str(tmp_path / "noy.mat")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bpnet-train: error: --data: ")
    assert err.endswith(
        "noy.mat: expected both X (one row per sample) and y (one "
        "label per row); it has X but no y"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["--dataset", "fashion-mnist", "--data-dir", str(empty)]
    assert train_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"bpnet-train: error: --data-dir: expected the Fashion-MNIST IDX .gz files "
        f"in {empty}; missing train-images-idx3-ubyte.gz"
    )
    assert "pass --data-dir" not in err


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="--epochs"):
        train_main(["--epochs", "0", "--debug"])


@pytest.mark.parametrize(
    "args, match",
    [
        (["--activation", "swish"], "argument --activation: invalid choice: 'swish'"),
        (["--optimizer", "no-such-rule"], "argument --optimizer: invalid choice"),
        (["--epochs", "ten"], "argument --epochs: invalid int value"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (
            ["--seed", "-1"],
            "argument --seed: expected an integer in [0, 4294967295], got '-1'",
        ),
        (
            ["--seed", "x"],
            "argument --seed: expected an integer in [0, 4294967295], got 'x'",
        ),
        (  # scikit-learn's split refuses it, in words that named no flag
            ["--seed", "99999999999999999999"],
            "argument --seed: expected an integer in [0, 4294967295], got "
            "'99999999999999999999'",
        ),
    ],
)
def test_usage_mistakes_are_one_line(args, match, capsys):
    with pytest.raises(SystemExit) as info:
        train_main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


@pytest.mark.parametrize(
    "args, match",
    [
        *(
            (
                ["--optimizer", opt, flag, value],
                f"{flag}: has no effect with --optimizer {opt}",
            )
            for opt, flag, value in [
                ("cg", "--dropout", "0.2"),
                ("tnc", "--early-stopping", None),
                ("lbfgs", "--iterations", "100"),
                ("cg", "--schedule", "cosine"),
                ("cg", "--batch-size", "64"),
                ("cg", "--validation-fraction", "0.1"),
                ("cg", "--lr", "0.5"),
                ("cg", "--weight-decay", "0.01"),
                # typed at their default values, they would still be ignored
                ("cg", "--batch-size", "32"),
                ("cg", "--dropout", "0"),
                ("tnc", "--schedule", "none"),
            ]
        ),
        (["--patience", "10"], "--patience: counts epochs for --early-stopping"),
        (["--epochs", "30", "--iterations", "100"], "--epochs: --iterations 100 sets"),
        (["--data-dir", "somewhere"], "--data-dir: is where (Fashion-)MNIST's IDX"),
        (
            ["--data", "X.npy", "--labels", "y.npy", "--dataset", "fashion-mnist"],
            "--dataset: names a bundled or downloaded data set, and --data X.npy",
        ),
        (
            ["--data", "X.npy", "--labels", "y.npy", "--dataset", "digits"],
            "got --dataset digits too; give one of them",
        ),
        (
            ["--optimizer", "sgd", "--weight-decay", "0.01"],
            "--weight-decay: is Adam's decoupled weight decay, but --optimizer is sgd",
        ),
        (["--patience", "3"], "--patience: counts epochs for --early-stopping"),
        (
            ["--dataset", "mnist", "--test-size", "0.3"],
            "--test-size: mnist comes with its own test split",
        ),
    ],
)
def test_flags_the_run_would_ignore_are_errors(args, match, capsys):
    assert train_main([a for a in args if a is not None]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


@pytest.mark.parametrize(
    "args, match",
    [
        (
            ["--test-size", "0.9999"],
            "--test-size: 0.9999 of the 1797 samples of digits",
        ),
        (
            ["--patience", "0", "--early-stopping"],
            "--patience: expected an integer >= 1",
        ),
        (
            ["--validation-fraction", "1"],
            "--validation-fraction: expected the fraction",
        ),
        (
            ["--validation-fraction", "nan"],
            "--validation-fraction: expected the fraction",
        ),
    ],
)
def test_bad_values_are_named_by_flag_before_any_output(args, match, capsys):
    # they were reported by fit's argument names, after the network's summary
    assert train_main([*args, "--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


def test_a_missing_extra_is_one_line():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from bpnet.cli.train import train_main\n"
        "sys.exit(train_main(['--epochs', '1']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "bpnet-train: error: scikit-learn is not installed; install it with: "
        "pip install 'bpnet-arrayapi[train]'"
    )


@pytest.mark.parametrize(
    "flag, expected",
    [("--out", "a folder name"), ("--resume", "a checkpoint file")],
)
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_out_or_resume_is_an_error_naming_the_flag(
    flag, expected, value, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # nothing may be written, here or anywhere
    with pytest.raises(SystemExit) as info:
        train_main([flag, value, "--epochs", "1", "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"argument {flag}: expected {expected}" in err[0]
    assert list(tmp_path.iterdir()) == []
