"""Input files from strangers: ex4 .mat files, IDX files and a run folder's
files for bpnet-plot. Every problem is one error naming the file and the
variable; on the command line, one line and exit status 2, never a traceback."""

import gzip
import io as pyio
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import scipy.io

from bpnet import data
from bpnet.data import DataError

rng = np.random.default_rng(0)
X_OK = rng.random((20, 16))
Y_OK = (np.arange(20) % 10 + 1).reshape(-1, 1)


def _with_nan():
    X = X_OK.copy()
    X[3, 5] = np.nan
    return X


@pytest.mark.parametrize(
    "variables, match",
    [
        ({"X": X_OK + 1j}, r"X: holds complex numbers"),
        ({"X": np.zeros((0, 16)), "y": np.zeros((0, 1))}, r"X: is empty"),
        ({"X": np.array(["some", "text"])}, r"X: is text"),
        ({"X": np.array([[1.0, 2.0], "ab"], dtype=object)}, r"X: is a cell array"),
        ({"X": {"a": X_OK}}, r"X: is a struct"),
        ({"X": _with_nan()}, r"X: contains 1 NaN or Inf value\(s\)"),
        (
            {"y": np.array(["a"] * 20)},
            r"y: expected integer class labels .*got text labels such as 'a'",
        ),
        ({"y": np.array([[1]] * 19 + [["x"]], dtype=object)}, r"y: is a cell array"),
        ({"Theta1": np.ones((3, 5)) * 1j}, r"Theta1: holds complex numbers"),
    ],
)
def test_mat_errors_name_the_file_and_the_variable(tmp_path, variables, match):
    path = tmp_path / "bad.mat"
    contents = {"X": X_OK, "y": Y_OK}
    contents.update(variables)
    scipy.io.savemat(path, contents)
    with pytest.raises(DataError, match=match) as info:
        data.load_mat_dataset(path)
    assert str(path) in str(info.value)


def test_a_bad_mat_file_is_one_line_from_bpnet_train(tmp_path):
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, {"X": _with_nan(), "y": Y_OK})
    proc = subprocess.run(
        [sys.executable, "-m", "bpnet.cli.train", "--data", str(path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert str(path) in line and "X: contains 1 NaN" in line


def _idx(path, array):
    codes = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}
    a = np.asarray(array)
    header = bytes([0, 0, codes[a.dtype.type], a.ndim])
    header += np.asarray(a.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(header + a.astype(a.dtype.newbyteorder(">")).tobytes())


def _mnist(folder, **replace):
    arrays = {
        "train_images": np.zeros((6, 4, 4), np.uint8),
        "train_labels": np.arange(6, dtype=np.uint8),
        "test_images": np.zeros((3, 4, 4), np.uint8),
        "test_labels": np.arange(3, dtype=np.uint8),
    }
    arrays.update(replace)
    for key, name in data.IDX_FILES.items():
        _idx(folder / name, arrays[key])


@pytest.mark.parametrize(
    "replace, variable, match",
    [
        (
            {"train_images": np.full((6, 4, 4), np.nan, np.float32)},
            "train_images",
            "contains 96 NaN",
        ),
        ({"test_labels": np.full(3, 0.5, np.float32)}, "test_labels", "integer"),
        ({"test_labels": np.array([0, -1, 2], np.int32)}, "test_labels", ">= 0"),
        ({"train_images": np.zeros((0, 4, 4), np.uint8)}, "train_images", "no sam"),
        ({"train_images": np.zeros((6, 16), np.uint8)}, "train_images", "images"),
        ({"test_labels": np.arange(4, dtype=np.uint8)}, "test_images", "4 labels"),
    ],
)
def test_idx_errors_name_the_file_and_the_variable(tmp_path, replace, variable, match):
    _mnist(tmp_path, **replace)
    with pytest.raises(DataError, match=match) as info:
        data.load_mnist(data_dir=tmp_path, verify=False)
    file = data.IDX_FILES[variable]
    assert f"{tmp_path / file}: {variable}:" in str(info.value)


# bpnet-plot with its address space limited (the machine's memory must not
# decide the outcome), set by the child itself: a preexec_fn after fork is not
# safe in a test process that already runs threads (JAX's, PyTorch's)
_LIMITED_PLOT = """
import resource, runpy, sys
size = int(sys.argv.pop(1))
if size:
    resource.setrlimit(resource.RLIMIT_AS, (size, size))
sys.argv[0] = "bpnet-plot"
runpy.run_module("bpnet.cli.plot", run_name="__main__")
"""


def _plot(run, limit_gib=None):
    size = str(int(limit_gib * 2**30) if limit_gib else 0)
    return subprocess.run(
        [sys.executable, "-c", _LIMITED_PLOT, size, str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _history(run):
    run.mkdir()
    (run / "history.json").write_text(json.dumps({"loss": [1.0, 0.5]}))
    return run


def test_bpnet_plot_on_deeply_nested_history_is_one_line(tmp_path):
    run = _history(tmp_path / "run")
    (run / "history.json").write_text("[" * 100_000 + "]" * 100_000)
    proc = _plot(run)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "history.json" in line and "nested too deeply" in line


def _claims(shape, dtype="<f8"):
    head = pyio.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(head, header)
    return head.getvalue() + b"\0" * 64


def test_bpnet_plot_on_predictions_asking_for_6_gib_is_one_line(tmp_path):
    run = _history(tmp_path / "run")
    with zipfile.ZipFile(run / "predictions.npz", "w") as zf:
        zf.writestr("y_true.npy", _claims((6 * 2**30 // 8,)))
        zf.writestr("y_pred.npy", _claims((3,), "<i8")[:-40])
    proc = _plot(run, limit_gib=3)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "predictions.npz" in line and "y_true" in line, line
    np.save(run / "first_layer.npy", np.zeros((64, 4)))
    (run / "predictions.npz").unlink()
    with open(run / "first_layer.npy", "r+b") as fh:  # a header that lies
        fh.write(_claims((2**30, 6))[:128])
    proc = _plot(run, limit_gib=3)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "first_layer.npy" in proc.stderr


# --- a memory-mapped --data file changed during a run ---------------------------
def _mapped(tmp_path, n=300, d=8):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r"), y


def _small_net():
    import bpnet

    return bpnet.Sequential(
        [bpnet.Dense(8, 4), bpnet.ReLU(), bpnet.Dense(4, 2)], seed=0
    )


@pytest.mark.parametrize("how", ["rewritten", "truncated", "replaced"])
def test_a_mapped_file_changed_between_epochs_stops_training_naming_it(tmp_path, how):
    import bpnet
    from bpnet.io.fingerprint import DataFileChangedError

    X, y = _mapped(tmp_path)
    path = tmp_path / "X.npy"
    one = _small_net()
    one.fit(np.array(X), y, epochs=1, batch_size=32)

    def change(epoch, logs, net):
        if how == "rewritten":  # same size, same inode, within the clock's tick
            st = path.stat()
            mm = np.load(path, mmap_mode="r+")
            mm[...] = -mm
            mm.flush()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        elif how == "truncated":
            os.truncate(path, path.stat().st_size // 2)
        else:
            np.save(tmp_path / "other.npy", np.zeros((300, 8), np.float32))
            os.replace(tmp_path / "other.npy", path)

    net = _small_net()
    ck = tmp_path / "ck.npz"
    with pytest.raises(DataFileChangedError, match=f"^X: the file {path} changed"):
        net.fit(X, y, epochs=3, batch_size=32, callbacks=[change], checkpoint=ck)
    for a, b in zip(one.parameters(), net.parameters()):  # epoch 1's weights
        np.testing.assert_array_equal(a, b)
    assert bpnet.io.load_checkpoint(ck)[2]["epoch"] == 1


def test_bpnet_train_reading_a_map_that_shrinks_says_one_line_not_bus_error(
    tmp_path,
):
    # A page past the file's new end faults inside NumPy's copy (SIGBUS),
    # where no Python code can catch it: the handler's line is what is left.
    script = tmp_path / "shrink.py"
    script.write_text(
        "import os, sys\n"
        "import numpy as np\n"
        "from bpnet.cli.bus_error import say_on_bus_error\n"
        "np.save(sys.argv[1], np.ones((4096, 64), dtype=np.float32))\n"
        "X = np.load(sys.argv[1], mmap_mode='r')\n"
        "say_on_bus_error('bpnet-train: error: --data: X.npy shrank')\n"
        "os.truncate(sys.argv[1], 128)\n"
        "print(float(X[3000:].sum()))\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "X.npy")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 135
    assert proc.stderr == "bpnet-train: error: --data: X.npy shrank\n"
    assert proc.stdout == ""


# --- bpnet-train --data X.npz: read whole, so bounded ----------------------------
def _npz_claiming(path, shape):
    """An .npz whose X.npy header claims ``shape`` of float32 over 16 bytes."""
    buf = pyio.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", buf.getvalue() + bytes(16))
        y = pyio.BytesIO()
        np.save(y, np.arange(4) % 2)
        zf.writestr("y.npy", y.getvalue())
    return path


def test_an_npz_header_claiming_373_gib_is_one_line(tmp_path, capsys):
    from bpnet.cli.train import train_main

    path = _npz_claiming(tmp_path / "big.npz", (100_000_000_000,))
    assert train_main(["--data", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bpnet-train: error: --data: ") and "\n" not in err
    assert "X.npy: its header says shape (100000000000,)" in err


def test_an_npz_over_the_memory_budget_is_refused_before_it_is_read(
    tmp_path, capsys, monkeypatch
):
    from bpnet.cli.train import train_main

    X = np.zeros((20_000, 64), np.float32)  # 5 MiB that deflate to 5 KiB
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, X=X, y=np.arange(20_000) % 2)
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("BPNET_MAX_MEMORY", "4M")
    assert train_main(["--data", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--data: " in err and "asks for about 5.04 MiB of memory, over the " in err
    assert "budget of 4 MiB" in err and "BPNET_MAX_MEMORY" in err
