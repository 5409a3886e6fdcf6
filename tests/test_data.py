import gzip
import hashlib

import numpy as np
import pytest
import scipy.io

from bpnet import data
from bpnet.data import DataError


def _write_idx(path, array, gz=True):
    codes = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}
    a = np.asarray(array)
    header = bytes([0, 0, codes[a.dtype.type], a.ndim])
    header += np.asarray(a.shape, dtype=">u4").tobytes()
    payload = header + a.astype(a.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if gz else open)(path, "wb") as fh:
        fh.write(payload)
    return path


def test_digits_are_scaled_and_stratified():
    ds = data.load_digits()
    assert ds.X_train.shape == (1437, 64) and ds.X_test.shape == (360, 64)
    assert (
        ds.X_train.dtype == np.float32 and 0 <= ds.X_train.min() < ds.X_train.max() <= 1
    )
    assert ds.y_train.dtype == np.int64 and set(ds.y_test) == set(range(10))
    counts = np.bincount(ds.y_test)
    assert counts.max() - counts.min() <= 2  # stratified
    assert ds.image_shape == (8, 8)
    again = data.load_digits()
    np.testing.assert_array_equal(again.y_test, ds.y_test)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(5, dtype=np.uint8),
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([[-1, 2], [3, 4]], dtype=np.int32),
        np.array([0.5, -2.0], dtype=np.float32),
    ],
)
def test_read_idx_round_trip(tmp_path, array, gz):
    path = _write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), array, gz)
    got = data.read_idx(path)
    np.testing.assert_array_equal(got, array)
    assert got.shape == array.shape


def test_read_idx_rejects_damaged_files(tmp_path):
    good = _write_idx(tmp_path / "g.gz", np.arange(100, dtype=np.uint8).reshape(10, 10))
    blob = gzip.open(good).read()
    cases = {
        "truncated": blob[:-7],
        "magic": b"\x01\x02" + blob[2:],
        "type": blob[:2] + b"\x42" + blob[3:],
        "header": blob[:6],
        "huge": blob[:4] + np.asarray([2**31, 2**31], ">u4").tobytes(),
        "extra": blob + b"\x00",
    }
    for name, payload in cases.items():
        p = tmp_path / f"{name}.idx"
        p.write_bytes(payload)
        with pytest.raises(DataError, match=str(p.name)):
            data.read_idx(p)
    (tmp_path / "notgz.gz").write_bytes(b"plain bytes")
    with pytest.raises(DataError, match="cannot be read"):
        data.read_idx(tmp_path / "notgz.gz")


def _fake_mnist(folder, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(
            folder / f"{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8),
        )
        _write_idx(
            folder / f"{split}-labels-idx1-ubyte.gz",
            (np.arange(n) % 10).astype(np.uint8),
        )
    return folder


def test_load_mnist_from_a_folder(tmp_path):
    folder = _fake_mnist(tmp_path / "m")
    ds = data.load_mnist("mnist", data_dir=folder, verify=False)
    assert ds.X_train.shape == (12, 784) and ds.X_test.shape == (5, 784)
    assert ds.X_train.dtype == np.float32 and ds.X_train.max() <= 1.0
    raw = data.read_idx(folder / "train-images-idx3-ubyte.gz")
    np.testing.assert_allclose(ds.X_train[3], raw[3].ravel() / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, np.arange(5) % 10)
    with pytest.raises(DataError, match="SHA-256 .* does not match"):
        data.load_mnist("mnist", data_dir=folder)  # not the real MNIST bytes


def test_missing_files_say_where_to_put_them(tmp_path):
    (tmp_path / "empty").mkdir()
    # data_dir was given: the message names it, and does not ask for it again
    with pytest.raises(DataError) as info:
        data.load_mnist("fashion", data_dir=tmp_path / "empty")
    msg = str(info.value)
    assert msg.startswith("data_dir: expected the Fashion-MNIST IDX .gz files in ")
    assert "missing train-images-idx3-ubyte.gz" in msg and "--data-dir" not in msg
    with pytest.raises(DataError, match="not a folder"):
        data.load_mnist("fashion", data_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="kind: expected 'mnist' or 'fashion'"):
        data.load_mnist("cifar")


def test_download_checks_sha256_and_writes_atomically(tmp_path, monkeypatch):
    real = _fake_mnist(tmp_path / "src")
    files = {p.name: p.read_bytes() for p in real.iterdir()}
    sums = {name: (hashlib.sha256(b).hexdigest(),) for name, b in files.items()}
    monkeypatch.setitem(
        data.SOURCES, "mnist", {"mirrors": ("mirror/",), "sha256": sums}
    )
    monkeypatch.setenv("BPNET_DATA_DIR", str(tmp_path / "cache"))
    served = []

    def fake_download(url, timeout=30.0):
        served.append(url)
        return files[url.removeprefix("mirror/")]

    monkeypatch.setattr(data, "_download", fake_download)
    ds = data.load_mnist("mnist")
    assert len(served) == 4 and ds.X_train.shape == (12, 784)
    data.load_mnist("mnist")
    assert len(served) == 4  # cached, verified, not fetched again

    tampered = dict(files)
    tampered["t10k-labels-idx1-ubyte.gz"] = b"evil"
    monkeypatch.setattr(data, "_download", lambda url, timeout=30.0: tampered[url[7:]])
    monkeypatch.setenv("BPNET_DATA_DIR", str(tmp_path / "cache2"))
    with pytest.raises(DataError, match="SHA-256 .* != expected"):
        data.load_mnist("mnist")
    assert not (tmp_path / "cache2" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_load_mnist_reads_and_fetches_only_the_splits_asked_for(tmp_path, monkeypatch):
    real = _fake_mnist(tmp_path / "src")
    files = {p.name: p.read_bytes() for p in real.iterdir()}
    sums = {name: (hashlib.sha256(b).hexdigest(),) for name, b in files.items()}
    monkeypatch.setitem(data.SOURCES, "mnist", {"mirrors": ("m/",), "sha256": sums})
    monkeypatch.setenv("BPNET_DATA_DIR", str(tmp_path / "cache"))
    served = []

    def fake_download(url, timeout=30.0):
        served.append(url.removeprefix("m/"))
        return files[url.removeprefix("m/")]

    monkeypatch.setattr(data, "_download", fake_download)
    ds = data.load_mnist("mnist", splits=("test",))
    assert sorted(served) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert ds.X_train.shape == (0, 784) and ds.y_train.shape == (0,)
    full = data.load_mnist("mnist")  # the training files come when asked for
    np.testing.assert_array_equal(ds.X_test, full.X_test)
    assert len(served) == 4 and full.X_train.shape[0] > 0
    for bad in ("test", (), ("valid",), 3):
        with pytest.raises(ValueError, match="splits: expected a non-empty sequence"):
            data.load_mnist("mnist", splits=bad)


def test_real_fashion_mnist(fashion_dir):
    ds = data.load_mnist("fashion", data_dir=fashion_dir)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.y_train.min() == 0 and ds.y_train.max() == 9
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.image_shape == (28, 28)


def test_load_mat(tmp_path):
    X = np.random.default_rng(0).random((20, 16))
    y = np.arange(1, 21).reshape(-1, 1) % 10
    y[y == 0] = 10  # ex4 writes digit 0 as label 10
    scipy.io.savemat(tmp_path / "d.mat", {"X": X, "y": y})
    out = data.load_mat(tmp_path / "d.mat")
    np.testing.assert_array_equal(out["X"], X)
    assert out["y"].tolist() == (np.arange(1, 21) % 10).tolist()
    ds = data.load_mat_dataset(tmp_path / "d.mat", test_size=0.25)
    assert ds.X_train.shape == (15, 16) and ds.image_shape == (4, 4)

    scipy.io.savemat(
        tmp_path / "w.mat", {"Theta1": np.ones((3, 5)), "Theta2": np.ones((2, 4))}
    )
    assert set(data.load_mat(tmp_path / "w.mat")) == {"Theta1", "Theta2"}
    with pytest.raises(DataError, match="weights only"):
        data.load_mat_dataset(tmp_path / "w.mat")

    scipy.io.savemat(tmp_path / "n.mat", {"A": np.ones(3)})
    with pytest.raises(DataError, match=r"expected X and y .* found \['A'\]"):
        data.load_mat(tmp_path / "n.mat")
    scipy.io.savemat(tmp_path / "x.mat", {"X": X})
    with pytest.raises(DataError, match=r"expected both X .* it has X but no y$"):
        data.load_mat(tmp_path / "x.mat")
    scipy.io.savemat(tmp_path / "y_only.mat", {"y": np.arange(3)})
    with pytest.raises(DataError, match=r"expected both X .* it has y but no X$"):
        data.load_mat(tmp_path / "y_only.mat")
    (tmp_path / "bad.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="not a readable .mat"):
        data.load_mat(tmp_path / "bad.mat")


def test_load_mat_keeps_labels_that_are_not_ex4_s_digits(tmp_path):
    X = np.random.default_rng(0).random((30, 4))
    y = np.arange(30) % 15  # 15 classes, 0..14: nothing to remap
    scipy.io.savemat(tmp_path / "c15.mat", {"X": X, "y": y.reshape(-1, 1)})
    np.testing.assert_array_equal(data.load_mat(tmp_path / "c15.mat")["y"], y)
    ds = data.load_mat_dataset(tmp_path / "c15.mat", test_size=0.5)
    assert ds.classes == tuple(range(15))
    assert sorted(set(ds.y_train) | set(ds.y_test)) == list(range(15))
    # 1..12 has no 10-means-zero reading either
    scipy.io.savemat(tmp_path / "c12.mat", {"X": X[:12], "y": np.arange(1, 13)})
    assert data.load_mat(tmp_path / "c12.mat")["y"].tolist() == list(range(1, 13))


def test_load_mat_dataset_indexes_the_label_values_present(tmp_path):
    X = np.random.default_rng(0).random((45, 4))
    y = np.arange(45) % 15 + 1  # 1..15
    scipy.io.savemat(tmp_path / "m.mat", {"X": X, "y": y})
    ds = data.load_mat_dataset(tmp_path / "m.mat", test_size=1 / 3)
    assert ds.classes == tuple(range(1, 16))  # 15 classes, no unused 0
    assert sorted(set(ds.y_train)) == list(range(15))
    back = np.array(ds.classes)[np.concatenate([ds.y_train, ds.y_test])]
    np.testing.assert_array_equal(np.sort(back), np.sort(y))  # every label kept


@pytest.mark.parametrize(
    "y, match",
    [
        (np.array([0, -1, 2]), "y: expected class labels >= 0, got -1"),
        (np.array([0.5, 1.0, 2.0]), "y: expected integer class labels"),
    ],
)
def test_load_mat_rejects_labels_that_are_not_classes(tmp_path, y, match):
    scipy.io.savemat(tmp_path / "y.mat", {"X": np.ones((3, 2)), "y": y})
    with pytest.raises(DataError, match=match):
        data.load_mat(tmp_path / "y.mat")


def test_text_labels_are_shown_as_text_not_as_cell_array_reprs(tmp_path):
    # MATLAB cell arrays of strings load as object arrays of 1x1 arrays
    cells = np.empty((3, 1), dtype=object)
    for i, name in enumerate(["cat", "dog", "cat"]):
        cells[i, 0] = name
    chars = np.array(["cat", "dog", "cat"])
    for y in cells, chars:
        scipy.io.savemat(tmp_path / "t.mat", {"X": np.ones((3, 2)), "y": y})
        with pytest.raises(DataError) as info:
            data.load_mat(tmp_path / "t.mat")
        msg = str(info.value)
        assert msg.endswith(
            "y: expected integer class labels (0, 1, ... or ex4's 1..10), "
            "got text labels such as 'cat', 'dog', 'cat'"
        )
        assert "array(" not in msg and "dtype" not in msg


def test_a_data_dir_without_the_files_says_so_without_asking_for_it(tmp_path):
    with pytest.raises(DataError) as info:
        data.load_mnist("fashion", data_dir=tmp_path)
    msg = str(info.value)
    assert msg.startswith(
        f"data_dir: expected the Fashion-MNIST IDX .gz files in {tmp_path}"
    )
    assert "missing train-images-idx3-ubyte.gz" in msg and "--data-dir" not in msg
    # without data_dir and without downloads: the cache folder is named
    cache = tmp_path / "cache"
    with pytest.MonkeyPatch.context() as m:
        m.setenv("BPNET_DATA_DIR", str(cache))
        with pytest.raises(
            DataError, match="in the cache folder .*cache.*pass data_dir"
        ):
            data.load_mnist("mnist", download=False)


def test_one_hot_and_load_dataset():
    np.testing.assert_array_equal(
        data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]]
    )
    with pytest.raises(ValueError, match=r"labels in \[0, 2\]"):
        data.one_hot(np.array([3]), 3)
    with pytest.raises(ValueError, match="dataset: expected"):
        data.load_dataset("imagenet")
    assert data.load_dataset("digits").name == "digits"


def test_fashion_tests_look_in_bpnet_data_dir_and_say_where_they_looked(
    tmp_path, monkeypatch
):
    import conftest

    root = tmp_path / "data"
    monkeypatch.setenv("BPNET_DATA_DIR", str(root))
    monkeypatch.setattr(conftest, "SHARED_FASHION", tmp_path / "no-shared")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path, why = conftest.find_fashion()
    assert path is None
    for place in (tmp_path / "no-shared", root / "fashion", tmp_path / "home"):
        assert str(place) in why
    assert "BPNET_DATA_DIR is not set" not in why
    (root / "fashion").mkdir(parents=True)
    for name in data.IDX_FILES.values():
        (root / "fashion" / name).write_bytes(b"")
    assert conftest.find_fashion() == (root / "fashion", "")
    monkeypatch.delenv("BPNET_DATA_DIR")
    path, why = conftest.find_fashion()
    assert path is None and why.endswith("($BPNET_DATA_DIR is not set)")
    assert str(tmp_path / "home" / ".cache" / "bpnet" / "fashion") in why


@pytest.mark.parametrize(
    "spelling", ["fashion", "fashion-mnist", "fashion_mnist", "Fashion-MNIST"]
)
def test_fashion_has_one_set_of_spellings(tmp_path, spelling):
    # load_mnist and load_dataset take the same names, and mean the same files
    for load in (data.load_mnist, data.load_dataset):
        with pytest.raises(DataError, match="expected the Fashion-MNIST IDX"):
            load(spelling, data_dir=tmp_path)
