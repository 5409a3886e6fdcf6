"""bpnet-train's test split of --data files (and digits): seeded, shuffled
and stratified by default, the file's last rows with --test-split tail, none
with --test-size 0; --resume and bpnet-predict make the same split again."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from bpnet.cli.predict import predict_main
from bpnet.cli.train import train_main
from bpnet.io.plain import read_npz
from bpnet.train.checkpoint import read_checkpoint


@pytest.fixture
def sorted_files(tmp_path):
    """90 rows sorted by class (0, 1, 2): the last 20% are all class 2."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    X = (rng.normal(size=(90, 6)) + y[:, None]).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return tmp_path, X, y


def _train(tmp_path, out, *extra):
    args = ["--data", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy")]
    args += ["--hidden", "4", "--epochs", "2", "--quiet", "--out", str(out), *extra]
    return train_main(args)


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_npy_files_split_shuffled_and_stratified_by_seed(sorted_files):
    tmp_path, X, y = sorted_files
    assert _train(tmp_path, tmp_path / "r", "--seed", "4") == 0
    _, _, _, want = train_test_split(X, y, test_size=0.2, random_state=4, stratify=y)
    y_true = read_npz(tmp_path / "r" / "predictions.npz")["y_true"]
    np.testing.assert_array_equal(y_true, want)
    assert np.bincount(y_true).tolist() == [6, 6, 6]


def test_tail_keeps_the_last_rows(sorted_files):
    tmp_path, _, y = sorted_files
    assert _train(tmp_path, tmp_path / "r", "--test-split", "tail") == 0
    y_true = read_npz(tmp_path / "r" / "predictions.npz")["y_true"]
    np.testing.assert_array_equal(y_true, y[-18:])


def test_predict_scores_the_split_the_run_made(sorted_files, capsys):
    tmp_path, X, y = sorted_files
    assert _train(tmp_path, tmp_path / "r", "--seed", "4", "--json") == 0
    trained = _last_json(capsys)
    assert predict_main([str(tmp_path / "r" / "model.npz"), "--json"]) == 0
    scored = _last_json(capsys)
    assert scored["n"] == 18
    assert scored["accuracy"] == pytest.approx(trained["test_accuracy"])


def test_resume_makes_the_same_split(sorted_files):
    tmp_path, _, _ = sorted_files
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert _train(tmp_path, straight, "--seed", "5", "--epochs", "4") == 0
    assert _train(tmp_path, halves, "--seed", "5", "--epochs", "2") == 0
    meta = read_checkpoint(halves / "checkpoint.npz")[2]
    assert meta["data"]["test_split"] == "shuffled" and meta["data"]["seed"] == 5
    resumed = ["--resume", str(halves / "checkpoint.npz"), "--epochs", "4"]
    assert train_main([*resumed, "--quiet"]) == 0
    a, b = (read_npz(d / "model.npz") for d in (straight, halves))
    for key in a:
        if a[key].dtype.kind == "f":
            np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(
        read_npz(straight / "predictions.npz")["y_true"],
        read_npz(halves / "predictions.npz")["y_true"],
    )


def test_test_size_0_trains_on_every_row(sorted_files, capsys):
    tmp_path, _, y = sorted_files
    out = tmp_path / "r"
    assert _train(tmp_path, out, "--test-size", "0", "--json") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["test_accuracy"] is None and summary["test_size"] == 0
    assert any("test accuracy: none (--test-size 0" in line for line in lines)
    assert not (out / "predictions.npz").exists()
    # bpnet-predict scores the rows it trained on, and names the missing split
    model = str(out / "model.npz")
    assert predict_main([model, "--split", "train", "--json"]) == 0
    assert _last_json(capsys)["n"] == len(y)
    assert predict_main([model]) == 2
    assert "trained on every row" in capsys.readouterr().err
    # and the run resumes
    resumed = ["--resume", str(out / "checkpoint.npz"), "--epochs", "3", "--json"]
    assert train_main([*resumed, "--quiet"]) == 0
    assert _last_json(capsys)["epochs"] == 3


def test_digits_take_test_size_0_too(capsys):
    assert train_main(["--test-size", "0", "--epochs", "1", "--quiet", "--json"]) == 0
    summary = _last_json(capsys)
    assert summary["test_accuracy"] is None


def test_help_names_the_split(capsys):
    from bpnet.cli.parsing import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "--test-split {shuffled,tail}" in text
    assert "0 trains on every row" in text
