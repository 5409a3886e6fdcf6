"""bpnet-train end to end, in a subprocess, as a user runs it."""

import json
import re
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


def test_resume_continues_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(["--epochs", "3", "--quiet", "--out", str(out)]) == 0
    assert (out / "checkpoint.npz").exists()
    assert (
        train_main(
            [
                "--epochs",
                "5",
                "--quiet",
                "--json",
                "--out",
                str(out),
                "--resume",
                str(out / "checkpoint.npz"),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 5
    straight = tmp_path / "straight"
    assert (
        train_main(["--epochs", "5", "--quiet", "--json", "--out", str(straight)]) == 0
    )
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["final_loss"] == summary["final_loss"]


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


def test_sigkill_then_resume_from_the_command_line(tmp_path):
    """Kill a real bpnet-train with SIGKILL while it writes checkpoints every
    epoch; the checkpoint left behind loads, and --resume finishes the run."""
    import os
    import signal
    import time

    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "bpnet.cli.train",
        "--epochs",
        "100000",
        "--quiet",
        "--batch-size",
        "512",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = out / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ck.exists() and bpnet.io.load_checkpoint(ck)[2]["epoch"] >= 3:
            break
        time.sleep(0.05)
    time.sleep(0.037)  # land somewhere in an epoch or a checkpoint write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    net, _, training = bpnet.io.load_checkpoint(ck)
    done = training["epoch"]
    assert done >= 3
    code = train_main(
        ["--resume", str(ck), "--epochs", str(done + 2), "--quiet", "--out", str(out)]
    )
    assert code == 0
    assert bpnet.io.load_checkpoint(ck)[2]["epoch"] == done + 2


def _train(*args):
    return train_main([*map(str, args), "--quiet"])


MOMENTUM_RUN = (
    "--optimizer momentum --lr 0.05 --batch-size 64 --schedule step "
    "--hidden 32 --seed 2"
).split()


def test_resume_takes_the_run_from_the_checkpoint(tmp_path):
    """Only --resume and --epochs: the model, optimizer, learning rate, batch
    size, schedule and seed come from the checkpoint, and the resumed run ends
    where an unbroken one does."""
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert _train(*MOMENTUM_RUN, "--epochs", 4, "--out", straight) == 0
    assert _train(*MOMENTUM_RUN, "--epochs", 2, "--out", broken) == 0
    ck = broken / "checkpoint.npz"
    assert _train("--resume", ck, "--epochs", 4, "--out", broken) == 0
    assert bpnet.io.load_checkpoint(ck)[2]["epoch"] == 4
    a, b = bpnet.load(straight / "model.npz"), bpnet.load(broken / "model.npz")
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    ha = json.loads((straight / "history.json").read_text())
    hb = json.loads((broken / "history.json").read_text())
    assert ha["summary"]["test_accuracy"] == hb["summary"]["test_accuracy"]
    assert ha["loss"] == hb["loss"] and ha["lr"] == hb["lr"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck")
    assert _train(*MOMENTUM_RUN, "--epochs", 3, "--out", out) == 0
    return out / "checkpoint.npz"


@pytest.mark.parametrize(
    "args, match",
    [
        (
            ["--batch-size", "32"],
            "--batch-size: the checkpoint .* was trained with "
            "--batch-size 64, got 32; leave --batch-size out",
        ),
        (
            ["--optimizer", "adam"],
            "--optimizer: .* with --optimizer momentum, got adam",
        ),
        (["--lr", "0.003"], "--lr: .* with --lr 0.05, got 0.003"),
        (["--schedule", "none"], "--schedule: .* with --schedule step, got none"),
        (["--hidden", "128"], "--hidden: .* with --hidden 32, got 128"),
        (["--seed", "0"], "--seed: .* with --seed 2, got 0"),
        (["--dataset", "mnist"], "--dataset: .* with --dataset digits, got mnist"),
        (["--init", "he"], "--init: picks the initial weights"),
        (["--epochs", "2"], "--epochs: the checkpoint .* already has 3 epochs"),
        (["--dtype", "float64"], "--dtype: the checkpoint .* was trained in float32"),
    ],
)
def test_resume_refuses_flags_that_disagree(checkpoint, args, match, capsys):
    assert train_main(["--resume", str(checkpoint), *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and re.search(match, err[0]), err
    assert captured.out == ""


def test_resume_accepts_flags_that_agree(checkpoint, tmp_path, capsys):
    import shutil

    ck = shutil.copy(checkpoint, tmp_path / "checkpoint.npz")
    args = ["--resume", str(ck), "--epochs", "4", "--batch-size", "64"]
    assert train_main([*args, "--lr", "0.05", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["epochs"] == 4


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


def test_resume_without_out_moves_the_run_folder_on(tmp_path):
    run = tmp_path / "run"
    assert _train(*MOMENTUM_RUN, "--epochs", 2, "--out", run) == 0
    assert _train("--resume", run / "checkpoint.npz", "--epochs", 4) == 0
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 4  # model, history and plots went on too
    assert bpnet.io.load_checkpoint(run / "checkpoint.npz")[2]["epoch"] == 4


def test_resume_into_another_folder_leaves_the_source_run_as_it_was(tmp_path, capsys):
    first, second, straight = tmp_path / "first", tmp_path / "second", tmp_path / "s"
    assert _train(*MOMENTUM_RUN, "--epochs", 2, "--out", first) == 0
    before = (first / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert (
        _train("--resume", first / "checkpoint.npz", "--epochs", 4, "--out", second)
        == 0
    )
    assert (first / "checkpoint.npz").read_bytes() == before
    assert len(json.loads((first / "history.json").read_text())["loss"]) == 2
    # the new folder holds the whole run, its checkpoint included: it resumes
    assert bpnet.io.load_checkpoint(second / "checkpoint.npz")[2]["epoch"] == 4
    assert _train("--resume", second / "checkpoint.npz", "--epochs", 5) == 0
    assert _train(*MOMENTUM_RUN, "--epochs", 5, "--out", straight) == 0
    resumed = json.loads((second / "history.json").read_text())
    unbroken = json.loads((straight / "history.json").read_text())
    for key in ("loss", "accuracy", "test_loss", "test_accuracy", "lr"):
        assert resumed[key] == unbroken[key], key


def test_resume_from_another_file_of_the_folder_writes_back_into_that_file(tmp_path):
    run = tmp_path / "run"
    assert _train(*MOMENTUM_RUN, "--epochs", 2, "--out", run) == 0
    (run / "epoch2.npz").write_bytes((run / "checkpoint.npz").read_bytes())
    assert _train("--resume", run / "checkpoint.npz", "--epochs", 5) == 0
    assert _train("--resume", run / "epoch2.npz", "--epochs", 3) == 0
    epoch = {
        f: bpnet.io.load_checkpoint(run / f)[2]["epoch"]
        for f in ("checkpoint.npz", "epoch2.npz")
    }
    assert epoch == {"checkpoint.npz": 5, "epoch2.npz": 3}  # the newer one kept


def test_a_refused_resume_into_another_folder_leaves_it_free(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert _train(*MOMENTUM_RUN, "--epochs", 3, "--out", first) == 0
    ck = first / "checkpoint.npz"
    assert _train("--resume", ck, "--epochs", 2, "--out", second) == 2
    assert "already has 3 epochs" in capsys.readouterr().err
    assert not (second / "checkpoint.npz").exists()
    assert _train("--resume", ck, "--epochs", 4, "--out", second) == 0  # the retry
    assert bpnet.io.load_checkpoint(second / "checkpoint.npz")[2]["epoch"] == 4


def test_a_run_on_array_files_resumes(tmp_path):
    X, y = tmp_path / "X.npy", tmp_path / "y.npy"
    digits = bpnet.data.load_digits()
    np.save(X, digits.X_train[:300])
    np.save(y, digits.y_train[:300])
    run, straight = tmp_path / "run", tmp_path / "straight"
    files = ("--data", X, "--labels", y, *MOMENTUM_RUN)
    assert _train(*files, "--epochs", 2, "--out", run) == 0
    assert _train("--resume", run / "checkpoint.npz", "--epochs", 4) == 0
    assert _train(*files, "--epochs", 4, "--out", straight) == 0
    resumed = json.loads((run / "history.json").read_text())["loss"]
    assert resumed == json.loads((straight / "history.json").read_text())["loss"]


def test_a_cosine_run_cannot_be_resumed_past_its_schedule(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train("--epochs", 3, "--schedule", "cosine", "--out", run) == 0
    capsys.readouterr()
    assert _train("--resume", run / "checkpoint.npz", "--epochs", 6) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cosine schedule spans 3 epochs" in err[0], err


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


def test_resume_on_labels_replaced_by_a_permutation_is_refused(tmp_path, capsys):
    X, y = tmp_path / "X.npy", tmp_path / "y.npy"
    digits = bpnet.data.load_digits()
    np.save(X, digits.X_train[:300])
    np.save(y, digits.y_train[:300])
    run = tmp_path / "run"
    # the file's last rows as the test split: permuted labels leave X's rows
    # where they were (a stratified split would move them, and name X first)
    files = ("--data", X, "--labels", y, "--test-split", "tail", *MOMENTUM_RUN)
    assert _train(*files, "--epochs", 2, "--out", run) == 0
    model = (run / "model.npz").read_bytes()
    np.save(y, np.random.default_rng(0).permutation(digits.y_train[:300]))
    capsys.readouterr()
    assert _train("--resume", run / "checkpoint.npz", "--epochs", 4) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bpnet-train: error: --labels: y:"), err
    assert "was trained on y = int64 of shape (240)" in err[0]
    assert (run / "model.npz").read_bytes() == model  # nothing trained or written


def test_a_checkpoint_of_fit_on_other_data_does_not_resume_on_digits(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 64)), rng.integers(0, 10, 200)
    net = bpnet.Sequential(
        [bpnet.Dense(64, 8), bpnet.ReLU(), bpnet.Dense(8, 10)], seed=0
    )
    ck = tmp_path / "ck.npz"
    net.fit(X, y, epochs=1, optimizer="momentum", checkpoint=ck)
    capsys.readouterr()
    assert _train("--resume", ck, "--epochs", 3) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dataset: X: the checkpoint" in err[0], err
    assert "float64 of shape (200x64)" in err[0]


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


def test_resume_with_the_runs_own_epochs_rewrites_its_outputs(tmp_path, capsys):
    # --epochs of the run's own length asks for nothing more: as --resume alone
    run = tmp_path / "run"
    assert _train(*MOMENTUM_RUN, "--epochs", 3, "--out", run) == 0
    capsys.readouterr()
    (run / "model.npz").unlink()
    for extra in ([], ["--epochs", "3"]):
        assert _train("--resume", run / "checkpoint.npz", *extra) == 0
        out = capsys.readouterr().out
        assert "is complete (3 epochs): writing its outputs" in out
        assert (run / "model.npz").is_file()
        (run / "model.npz").unlink()
    assert bpnet.io.load_checkpoint(run / "checkpoint.npz")[2]["epoch"] == 3
