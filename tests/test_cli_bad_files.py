"""bpnet-predict and bpnet-train name a bad input file with its flag."""

import numpy as np
import pytest
from _predict_cli_helpers import trained_fixture  # noqa: F401 (a fixture, found by name)

from bpnet.cli.predict import predict_main
from bpnet.cli.train import train_main
from bpnet.data import load_digits


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
