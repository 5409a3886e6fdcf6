"""bpnet-train end to end, in a subprocess, as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

import bpnet
import bpnet.data
from bpnet.cli.train import train_main
from bpnet.train.optimizers import OPTIMIZERS


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "bpnet.cli.train", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_short_digits_run_with_json_and_out(tmp_path):
    proc = _run("--epochs", "8", "--json", "--out", str(tmp_path / "run"), "--report")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in (
        "device",
        "dataset",
        "epochs",
        "train_accuracy",
        "test_accuracy",
        "final_loss",
        "seconds",
        "seconds_per_epoch",
    ):
        assert key in summary
    assert summary["device"] == "cpu" and summary["dataset"] == "digits"
    assert summary["epochs"] == 8 and summary["test_accuracy"] > 0.9
    assert "precision" in proc.stdout and "Epoch 8/8" in proc.stdout
    run = tmp_path / "run"
    for name in (
        "model.npz",
        "history.json",
        "history.png",
        "samples.png",
        "first_layer.png",
        "confusion.png",
    ):
        assert (run / name).stat().st_size > 0, name
    net = bpnet.load(run / "model.npz")
    from bpnet.data import load_digits

    ds = load_digits()
    assert net.evaluate(ds.X_test, ds.y_test)[1] == pytest.approx(
        summary["test_accuracy"]
    )
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 8
    # without --validation-fraction the curve watched is the test split's
    assert len(history["test_accuracy"]) == 8 and "val_accuracy" not in history
    assert history["test_accuracy"][-1] == pytest.approx(summary["test_accuracy"])
    assert "test_accuracy: " in proc.stdout and "val_accuracy" not in proc.stdout
    meta = bpnet.io.read_model_file(run / "model.npz")[1]
    assert meta["data"] == {
        "dataset": "digits",
        "seed": 0,
        "test_size": 0.2,
        "test_split": "shuffled",
    }


def test_a_validation_fraction_is_named_validation(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--epochs", "2", "--validation-fraction", "0.2", "--out", str(out)]
    assert train_main(args) == 0
    assert "val_accuracy: " in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert len(history["val_accuracy"]) == 2 and "test_accuracy" not in history


def test_missing_gpu_exits_2_with_one_line():
    from conftest import CUDA_REASON

    if CUDA_REASON is None:
        pytest.skip("a CUDA device is present here")
    proc = _run("--device", "cuda", "--epochs", "1")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpnet-train: error: device: 'cuda'")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("optimizer", ["cg", "tnc", "lbfgs"])
def test_full_batch_optimizers(optimizer, capsys):
    code = train_main(
        [
            "--optimizer",
            optimizer,
            "--epochs",
            "30",
            "--hidden",
            "25",
            "--activation",
            "sigmoid",
            "--loss",
            "sigmoid",
            "--l2",
            "1",
            "--quiet",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_accuracy"] > 0.85 and summary["batch_size"] is None


def test_summary_line_says_its_train_figures_are_after_training(tmp_path, capsys):
    # history.json's last loss is the mean over the last epoch's batches (the
    # plot's "train, while training"); the summary line's is the whole set after
    assert train_main(["--epochs", "3", "--json", "--out", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    line = next(s for s in lines if s.startswith("test accuracy: "))
    loss = f"{summary['final_loss']:.4f}"
    assert f"and loss {loss} after training, " in line
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert history["loss"][-1] != pytest.approx(summary["final_loss"], rel=1e-3)


def test_ex4_mat_file(tmp_path, capsys):
    from bpnet.data import load_digits

    ds = load_digits()
    X = np.vstack([ds.X_train, ds.X_test])[:500]
    y = np.concatenate([ds.y_train, ds.y_test])[:500]
    y = np.where(y == 0, 10, y).reshape(-1, 1)  # ex4's labels: 1..10
    scipy.io.savemat(tmp_path / "ex4.mat", {"X": X, "y": y})
    args = ["--data", str(tmp_path / "ex4.mat"), "--epochs", "15", "--quiet"]
    assert train_main([*args, "--json", "--seed", "3", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["dataset"] == "ex4" and summary["test_accuracy"] > 0.85
    # bpnet-predict scores the same held-out part of the same file
    from bpnet.cli.predict import predict_main

    assert predict_main([str(tmp_path / "model.npz"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["data"] == "ex4.mat:test" and scored["seed"] == 3
    assert scored["accuracy"] == pytest.approx(summary["test_accuracy"])


def test_iterations_round_up_to_epochs(capsys):
    assert (
        train_main(["--iterations", "100", "--batch-size", "100", "--quiet", "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 7  # 1437 samples / 100 = 15 steps per epoch


def test_data_that_are_not_images_get_no_image_plots(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(1, 301) % 15 + 1  # 1..15: not ex4's digits
    scipy.io.savemat(tmp_path / "m.mat", {"X": rng.random((300, 20)), "y": y})
    out = tmp_path / "run"
    proc = _run(
        "--data",
        str(tmp_path / "m.mat"),
        "--epochs",
        "2",
        "--json",
        "--out",
        str(out),
        "--hidden",
        "8",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["test_accuracy"] > 0
    assert (out / "history.png").exists() and (out / "confusion.png").exists()
    assert not (out / "samples.png").exists()  # 20 values are no image
    assert bpnet.load(out / "model.npz").n_outputs == 15


def test_help_describes_every_flag_and_says_each_default_once(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    for flag in ("--batch-size", "--schedule", "--patience", "--optimizer", "--seed"):
        entry = flat.split(f" {flag} ", 1)[1].split(" --", 1)[0]
        assert len(entry.split()) > 3, f"{flag} has no help: {entry!r}"
    # --lr states every optimizer's own default once (the list grows with
    # the registry, so it is checked name by name)
    lr_entry = flat.split(" --lr LR ", 1)[1].split(" --", 1)[0]
    assert lr_entry.count("(default: ") == 1 and "0.1 otherwise" in lr_entry
    for name in OPTIMIZERS.names():
        lr = OPTIMIZERS.get(name).suggested_lr
        shown = f"{lr:g} otherwise" if lr == 0.1 else f"{lr:g} for "
        assert shown in lr_entry and (lr == 0.1 or name in lr_entry), lr_entry
    assert "0.003 for adam" in lr_entry
    assert "(default: None)" not in flat and "(default: False)" not in flat
    assert "rows per step (default: 32)" in flat


@pytest.mark.filterwarnings("default::bpnet.train.history.TrainingWarning")
def test_a_full_batch_run_that_stops_short_says_why(monkeypatch, capsys):
    import bpnet.train.fullbatch as fullbatch

    real = fullbatch.minimize

    def stalls(net, *args, **kwargs):
        result = real(net, *args, **{**kwargs, "maxiter": 2})
        result.success, result.message = False, "ABNORMAL: the line search failed"
        return result

    monkeypatch.setattr(fullbatch, "minimize", stalls)
    assert train_main(["--optimizer", "lbfgs", "--epochs", "30", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: lbfgs: ABNORMAL: the line search failed" in err


def test_a_full_batch_run_that_uses_its_epochs_says_nothing_more(capsys):
    assert train_main(["--optimizer", "cg", "--epochs", "3", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
