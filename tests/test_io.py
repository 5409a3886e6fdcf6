"""Model files: round trips on every backend, what a file holds, and the
arguments save and load take.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from _io_helpers import _host_params, _net, _refused, _rewrite

import backends
import bpnet
import bpnet.io as bio
from bpnet.io import kinds

DEVICES = backends.available_backends()


def _X(n=9):
    return np.random.default_rng(1).normal(size=(n, 5))


# --- round trips ------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_round_trip_on_every_backend_predicts_identically(tmp_path, device):
    net = _net(device)
    path = bio.save(net, tmp_path / "model.npz", classes=["a", "b", "c", "d"])
    same = bio.load(path, device=device)
    assert isinstance(same, bpnet.Sequential)
    assert same.backend.name == net.backend.name
    assert same.get_config() == net.get_config()
    for a, b in zip(_host_params(net), _host_params(same)):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        net.backend.to_numpy(net.predict_proba(_X())),
        same.backend.to_numpy(same.predict_proba(_X())),
    )
    assert type(same.loss) is bpnet.SigmoidCrossEntropy
    _, meta = bio.read_model_file(path)
    assert meta["kind"] == "Sequential" and meta["classes"] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("device", DEVICES)
def test_float64_is_kept(tmp_path, device):
    be = backends.get_backend(device)
    if not be.supports(be.xp.float64):  # JAX without jax_enable_x64
        pytest.skip(f"{device} has no float64 here")
    net = _net(device, "float64")
    rng = np.random.default_rng(5)
    exact = [rng.normal(size=s) for s in net.shapes]  # not representable in float32
    net.set_parameters(exact)
    path = bio.save(net, tmp_path / "m64.npz", classes=np.arange(4))
    same = bio.load(path, device=device)
    assert same.dtype_name == "float64"
    for a, b in zip(exact, _host_params(same)):
        assert b.dtype == np.float64
        np.testing.assert_array_equal(a, b)
    _, meta = bio.read_model_file(path)
    assert meta["arrays"]["param_0"] == {"shape": [5, 7], "dtype": "float64"}
    assert meta["classes"] == [0, 1, 2, 3]


def test_load_moves_between_devices_and_dtypes(tmp_path):
    net = _net("array-api-strict")
    path = bio.save(net, tmp_path / "m.npz")
    on_cpu = bio.load(path, device="cpu", dtype="float64")
    assert on_cpu.backend.name == "cpu" and on_cpu.dtype_name == "float64"
    for a, b in zip(_host_params(net), _host_params(on_cpu)):
        np.testing.assert_array_equal(a.astype(np.float64), b)
    with pytest.raises(ValueError, match="device.*'tpu'"):
        bio.load(path, device="tpu")
    with pytest.raises(ValueError, match="dtype.*'float16'"):
        bio.load(path, dtype="float16")


def test_float64_file_on_a_device_without_float64(tmp_path):
    path = bio.save(_net("cpu", "float64"), tmp_path / "m.npz")
    with pytest.raises(backends.BackendUnavailableError, match="float64"):
        bio.load(path, device="array-api-strict:no_float64")
    net = bio.load(path, device="array-api-strict:no_float64", dtype="float32")
    assert net.dtype_name == "float32"


def test_file_is_a_plain_npz_readable_without_pickle(tmp_path):
    net = _net()
    path = bio.save(net, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["param_4"], _host_params(net)[4])
        meta = json.loads(npz["__metadata__"].tobytes())
    assert meta["format"] == "bpnet-model" and meta["format_version"] == 1
    assert meta["bpnet_version"] == bpnet.__version__
    assert meta["config"] == net.get_config()


def test_npz_suffix_is_added_and_found(tmp_path):
    net = _net()
    assert bio.save(net, tmp_path / "model") == tmp_path / "model.npz"
    assert bio.save(net, str(tmp_path / "m.ckpt")) == tmp_path / "m.ckpt.npz"
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt.npz", "model.npz"]
    assert bio.load(tmp_path / "model").get_config() == net.get_config()


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        bio.load(tmp_path / "nothere.npz")
    (tmp_path / "adir").mkdir()
    _refused(tmp_path / "adir", "is a directory")


@pytest.mark.parametrize("name", [".", "..", "adir", "adir/", "new/", ""])
def test_save_refuses_a_folder_by_name(tmp_path, monkeypatch, name):
    # each once became a file beside the folder: adir.npz, new.npz, "...npz"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    with pytest.raises(
        ValueError, match=r"path: (expected a file name|'.*' is a folder)"
    ):
        bio.save(_net(), name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]
    assert not list((tmp_path / "adir").iterdir()) and not list(
        tmp_path.parent.glob("*.npz")
    )


def test_checkpoint_keeps_training_state(tmp_path):
    net = _net("array-api-strict")
    m = [net.xp.ones_like(p) * 0.5 for p in net.parameters()]
    training = {"epoch": 7, "optimizer": {"t": 70, "lr": 0.01}, "history": [0.5]}
    path = bio.save(
        net,
        tmp_path / "ckpt",
        extra_arrays={f"m/{i}": a for i, a in enumerate(m)} | {"step": np.int64(70)},
        training=training,
    )
    again, state, got = bio.load_checkpoint(path, device="cpu")
    assert again.backend.name == "cpu" and got == training
    assert sorted(state) == ["m/0", "m/1", "m/2", "m/3", "m/4", "m/5", "step"]
    np.testing.assert_array_equal(state["m/2"], np.full((7, 6), 0.5, np.float32))
    assert state["step"].dtype == np.int64 and int(state["step"]) == 70
    # a plain load ignores the training state
    assert bio.load(path).shapes == net.shapes
    assert bio.load_checkpoint(bio.save(net, tmp_path / "plain"))[1:] == ({}, {})


def test_save_rejects_bad_arguments(tmp_path):
    net = _net()
    with pytest.raises(ValueError, match="extra_arrays.*'../x'"):
        bio.save(net, tmp_path / "m", extra_arrays={"../x": np.zeros(2)})
    with pytest.raises(TypeError, match=r"extra_arrays\['w'\].*list"):
        bio.save(net, tmp_path / "m", extra_arrays={"w": [1.0, 2.0]})
    with pytest.raises(ValueError, match="config"):
        bio.save(net, tmp_path / "m", config={})
    with pytest.raises(TypeError, match="classes"):
        bio.save(net, tmp_path / "m", classes="abc")
    with pytest.raises(TypeError, match="training"):
        bio.save(net, tmp_path / "m", training=[1])
    with pytest.raises(
        TypeError,
        match=r"savable types \(MLPClassifier, MLPRegressor, Sequential\), got str",
    ):
        bio.save("not a model", tmp_path / "m")
    with pytest.raises(TypeError, match="path"):
        bio.save(net, 3)
    net.parameters()[2][0, 0] = np.nan  # as a diverged fit leaves them
    with pytest.raises(ValueError, match="param_2.*NaN"):
        bio.save(net, tmp_path / "m")
    assert os.listdir(tmp_path) == []


def test_write_model_file_validates(tmp_path):
    p = tmp_path / "f.npz"
    with pytest.raises(TypeError, match="Python objects"):
        bio.write_model_file(p, {"a": np.array([object()])}, {})
    with pytest.raises(TypeError, match="numpy.ndarray.*list"):
        bio.write_model_file(p, {"a": [1, 2]}, {})
    with pytest.raises(ValueError, match="created"):
        bio.write_model_file(p, {}, {"created": "yesterday"})
    with pytest.raises(TypeError, match="JSON.*set"):
        bio.write_model_file(p, {}, {"x": {1, 2}})
    with pytest.raises(ValueError, match="__metadata__"):
        bio.write_model_file(p, {"__metadata__": np.zeros(1)}, {})
    assert os.listdir(tmp_path) == []
    meta = {"n": np.float32(0.5), "grid": np.arange(3), "t": (1, 2)}
    bio.write_model_file(p, {"a": np.ones((2, 0)), "flag": np.array(True)}, meta)
    arrays, got = bio.read_model_file(p)
    assert arrays["a"].shape == (2, 0) and arrays["flag"].dtype == bool
    assert (got["n"], got["grid"], got["t"]) == (0.5, [0, 1, 2], [1, 2])


# --- registry -----------------------------------------------------------------
class _Table:
    def __init__(self, values):
        self.values = values


def test_register_kind_plugs_in_another_model_type(tmp_path, monkeypatch):
    # the registry lives in bpnet.io.kinds, where register_kind and load look
    monkeypatch.setattr(kinds, "_KINDS", dict(kinds._KINDS))

    def saver(obj):
        return {"values": obj.values}, {"n": int(obj.values.size)}

    def loader(arrays, meta, backend, dtype):
        if meta["n"] != arrays["values"].size:
            raise ValueError("n does not match the values")
        return _Table(arrays["values"])

    bio.register_kind("Table", saver, loader, types=_Table)
    path = bio.save(_Table(np.arange(4.0)), tmp_path / "t")
    np.testing.assert_array_equal(bio.load(path).values, np.arange(4.0))
    arrays, meta = bio.read_model_file(path)
    _rewrite(path, arrays, {**meta, "n": 5})
    _refused(path, "valid Table.*n does not match")
    kinds._KINDS.pop("Table")
    _refused(path, "kind 'Table'.*Sequential")
