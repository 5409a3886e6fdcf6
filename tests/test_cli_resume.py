"""bpnet-train --resume: a run continues from its checkpoint, and a resume
that does not fit the checkpoint is refused."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import bpnet
import bpnet.data
from bpnet.cli.train import train_main


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
