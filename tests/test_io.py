"""Model files: round trips on every backend, atomic writes, and refusal of
every damaged or hostile file with a ModelFileError that names it.
"""

from __future__ import annotations

import builtins
import io as pyio
import json
import os
import pickle
import stat
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backends
import bpnet
import bpnet.io as bio
from bpnet.io import ModelFileError, kinds

DEVICES = backends.available_backends()


def _net(device="cpu", dtype="float32", loss="sigmoid"):
    layers = [
        bpnet.Dense(5, 7),
        bpnet.Tanh(),
        bpnet.Dropout(0.25),
        bpnet.Dense(7, 6),
        bpnet.LeakyReLU(0.1),
        bpnet.Dense(6, 4),
    ]
    return bpnet.Sequential(layers, device=device, dtype=dtype, seed=3, loss=loss)


def _X(n=9):
    return np.random.default_rng(1).normal(size=(n, 5))


def _host_params(net):
    return [net.backend.to_numpy(p) for p in net.parameters()]


def _write_zip(path, members, compression=zipfile.ZIP_STORED):
    """A zip of raw .npy members, with none of write_model_file's checks."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, arr in members.items():
            buf = pyio.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
            zf.writestr(name, buf.getvalue())
    return path


def _rewrite(path, arrays, meta):
    """Write ``arrays`` and ``meta`` as a model file, bypassing validation."""
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    members = {"__metadata__.npy": blob}
    members.update({f"{k}.npy": v for k, v in arrays.items()})
    return _write_zip(path, members)


def _refused(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        bio.load(path)
    assert str(path) in str(info.value) and info.value.path == path
    return info.value


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


# --- atomic writes ----------------------------------------------------------------
def _only(tmp_path, *names):
    assert sorted(os.listdir(tmp_path)) == sorted(names)


def test_crash_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    old = _net()
    path = bio.save(old, tmp_path / "m.npz")
    os.chmod(path, 0o640)
    new = _net()
    new.set_parameters([p + 1 for p in _host_params(new)])
    real, calls = np.lib.format.write_array, []

    def write_then_crash(fp, array, *args, **kwargs):
        calls.append(array.shape)
        if len(calls) == 3:  # the metadata and one array are already in the zip
            fp.write(b"partial")
            raise OSError("disk full")
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_crash)
    with pytest.raises(OSError, match="disk full"):
        bio.save(new, path)
    monkeypatch.undo()
    assert len(calls) == 3
    _only(tmp_path, "m.npz")
    for a, b in zip(_host_params(old), _host_params(bio.load(path))):
        np.testing.assert_array_equal(a, b)

    def fail_replace(src, dst):
        raise OSError("no")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="no"):
        bio.save(new, path)
    with pytest.raises(OSError, match="no"):
        bio.save(new, tmp_path / "fresh.npz")
    monkeypatch.undo()
    _only(tmp_path, "m.npz")
    np.testing.assert_array_equal(_host_params(bio.load(path))[0], _host_params(old)[0])
    bio.save(new, path)  # a clean write replaces it and keeps its mode
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    np.testing.assert_array_equal(_host_params(bio.load(path))[0], _host_params(new)[0])


def test_atomic_write_text_and_bytes(tmp_path, monkeypatch):
    p = tmp_path / "history.json"
    assert bio.atomic_write_text(p, '{"loss": [1.0]}\n') == p
    assert p.read_text() == '{"loss": [1.0]}\n'

    def crash(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="fsync failed"):
        bio.atomic_write_bytes(p, b"half")
    monkeypatch.undo()
    assert p.read_text() == '{"loss": [1.0]}\n'
    _only(tmp_path, "history.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bio.atomic_write_text(tmp_path / "no" / "x.txt", "x")
    with pytest.raises(TypeError, match="data"):
        bio.atomic_write_bytes(p, "text")


def test_atomic_writes_remove_only_their_own_temporary_files(tmp_path):
    """Files of other programs that look like leftovers stay, whatever their
    name; a leftover of a killed bpnet write (its name's tag checks out) goes."""
    from bpnet.io.atomic import temporary_name

    others = [
        ".notes.0123456789ab.tmp",
        ".my report.deadbeef0000.tmp",
        ".model.npz.bpnet-0123456789abcdef0123.tmp",  # our pattern, a wrong tag
    ]
    for name in others:
        (tmp_path / name).write_text("a user's file")
    leftover = tmp_path / temporary_name("model.npz")
    leftover.write_bytes(b"half a model")
    bio.save(_net(), tmp_path / "model.npz")
    _only(tmp_path, "model.npz", *others)
    for name in others:
        assert (tmp_path / name).read_text() == "a user's file"


def test_a_link_in_place_of_the_file_is_refused_and_its_target_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "d"
    folder.mkdir()
    link = folder / "model.npz"
    link.symlink_to(victim)
    with pytest.raises(ValueError, match=r"model\.npz.* is a symbolic link"):
        bio.save(_net(), link)
    with pytest.raises(ValueError, match="symbolic link"):
        bio.atomic_write_text(link, "x")
    assert link.is_symlink() and victim.read_text() == "precious"
    assert sorted(os.listdir(folder)) == ["model.npz"]  # no temporary file left


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    path = tmp_path / "model.npz"
    with pytest.raises(OSError, match="No space left on device") as info:
        bio.save(_net(), path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert str(path) in str(info.value)
    _only(tmp_path)


# --- damaged and hostile files --------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = bio.save(_net(), tmp_path / "m.npz")
    arrays, meta = bio.read_model_file(path)
    return path, arrays, meta


def test_empty_random_truncated_and_flipped_files(saved, tmp_path):
    path, _, _ = saved
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"")
    _refused(bad, "empty")
    bad.write_bytes(np.random.default_rng(0).bytes(3000))
    _refused(bad, "not a zip")
    bad.write_bytes(data[: len(data) // 2])
    _refused(bad, "not a zip|truncated")
    offset = data.index(_host_params(_net())[2].tobytes()[:8])  # inside param_2
    flipped = bytearray(data)
    flipped[offset + 3] ^= 0x10
    bad.write_bytes(bytes(flipped))
    _refused(bad, "damaged.*CRC.*param_2")
    np.save(bad.with_suffix(".npy"), np.zeros(3))
    _refused(bad.with_suffix(".npy"), "not a zip")


def test_pickled_object_array_is_refused_without_running_it(saved, tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (exec, ("import builtins; builtins._bpnet_pwned = True",))

    _, arrays, meta = saved
    evil = dict(arrays)
    evil["param_0"] = np.array([RunsCode()], dtype=object)
    path = _rewrite(tmp_path / "evil.npz", evil, meta)
    err = _refused(path, "param_0.*Python objects.*pickle")
    assert not hasattr(builtins, "_bpnet_pwned")
    assert "run code" in str(err)
    # the file really is dangerous: NumPy with allow_pickle=True runs it
    try:
        with np.load(path, allow_pickle=True) as npz:
            npz["param_0"]
        assert builtins._bpnet_pwned is True
    finally:
        builtins.__dict__.pop("_bpnet_pwned", None)
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"W": np.zeros(2)}))
    _refused(raw, "not a zip")


def test_newer_format_version_says_upgrade(saved, tmp_path):
    path, arrays, meta = saved
    _rewrite(path, arrays, {**meta, "format_version": 2, "bpnet_version": "9.0"})
    _refused(path, r"newer bpnet \(9.0, format_version 2\).*upgrade")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a, m: (a, {**m, "format": "other"}), "not a bpnet model file"),
        (lambda a, m: (a, {**m, "format_version": "1"}), "invalid format_version"),
        (lambda a, m: (a, {k: v for k, v in m.items() if k != "arrays"}), "manifest"),
        (lambda a, m: ({**a, "param_1": a["param_1"][:3]}, m), "param_1.*shape"),
        (
            lambda a, m: ({**a, "param_1": a["param_1"].astype(np.float64)}, m),
            "param_1.*float64",
        ),
        (lambda a, m: ({k: v for k, v in a.items() if k != "param_3"}, m), "missing"),
        (lambda a, m: ({**a, "sneaky": np.zeros(2)}, m), "not listed"),
        (
            lambda a, m: ({**a, "param_5": np.full_like(a["param_5"], np.inf)}, m),
            "param_5.*NaN or Inf",
        ),
        (lambda a, m: (a, {**m, "kind": "Nope"}), "kind 'Nope'"),
        (lambda a, m: (a, {**m, "kind": ["x"]}), "kind"),
        (lambda a, m: (a, {**m, "training": 3}), "training"),
    ],
)
def test_inconsistent_files_are_refused(saved, edit, match):
    path, arrays, meta = saved
    _rewrite(path, *edit(arrays, meta))
    _refused(path, match)


def _set_layers(meta, layers):
    return {**meta, "config": {**meta["config"], "layers": layers}}


@pytest.mark.parametrize(
    "layers, match",
    [
        ([{"type": "Dense", "n_in": 5, "n_out": 7}], "param_0..param_1"),
        (
            [{"type": "Dense", "n_in": 5, "n_out": 7}, {"type": "ReLU"}] * 3,
            r"layers\[2\]: Dense\(5, 7\) receives 7 features.*do not chain",
        ),
        ([{"type": "ReLU"}], "first layer is 'ReLU', not Dense"),
        ([{"type": "Dense", "n_in": 5, "n_out": -7}], "positive integer"),
        ([{"type": "Dense", "n_in": 5.0, "n_out": 7}], "positive integer"),
        ("Dense", "no network config"),
    ],
)
def test_config_that_does_not_fit_the_arrays_is_refused(saved, layers, match):
    path, arrays, meta = saved
    _rewrite(path, arrays, _set_layers(meta, layers))
    _refused(path, match)


def test_config_with_the_right_shapes_but_invalid_layers(saved):
    path, arrays, meta = saved
    layers = list(meta["config"]["layers"])
    layers[1] = {"type": "Softsign"}
    _rewrite(path, arrays, _set_layers(meta, layers))
    _refused(path, "valid Sequential.*Softsign")
    layers[1] = {"type": "Tanh", "evil": 1}
    _rewrite(path, arrays, _set_layers(meta, layers))
    _refused(path, "valid Sequential.*evil")
    # shapes that fit the manifest but not the config (Dense(5, 7) -> (7, 5))
    arrays = {**arrays, "param_0": arrays["param_0"].T.copy()}
    meta["arrays"]["param_0"]["shape"] = [7, 5]
    _rewrite(path, arrays, meta)
    _refused(path, r"param_0.*\(7, 5\).*config needs.*\(5, 7\)")


def test_foreign_archives_are_refused(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, W=np.zeros(3))
    _refused(plain, "no __metadata__")
    odd = tmp_path / "odd.npz"
    with zipfile.ZipFile(odd, "w") as zf:
        zf.writestr("__metadata__.npy", b"")
        zf.writestr("run_me.py", b"print('hi')")
    _refused(odd, "damaged|unexpected member")
    blob = np.frombuffer(b"{not json", dtype=np.uint8)
    _write_zip(odd, {"__metadata__.npy": blob})
    _refused(odd, "not valid JSON")
    _write_zip(odd, {"__metadata__.npy": np.zeros(3)})
    _refused(odd, "uint8")


def test_size_limits_stop_bombs_before_allocating(saved, tmp_path):
    path, arrays, meta = saved
    # a deflated member that unpacks to 8 MB from a few kB
    big = {**arrays, "param_0": np.zeros((1000, 1000))}
    meta["arrays"]["param_0"] = {"shape": [1000, 1000], "dtype": "float64"}
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    members = {"__metadata__.npy": blob} | {f"{k}.npy": v for k, v in big.items()}
    bomb = _write_zip(tmp_path / "bomb.npz", members, zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ModelFileError, match="max_bytes=1000000"):
        bio.load(bomb, max_bytes=1_000_000)
    with pytest.raises(ModelFileError, match="max_elements=100000"):
        bio.load(bomb, max_elements=100_000)
    with pytest.raises(ModelFileError, match="over max_bytes=100"):
        bio.load(path, max_bytes=100)
    # a header that claims 2**40 numbers in a few bytes of data
    header = pyio.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    )
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as zf:
        zf.writestr("__metadata__.npy", _npy(np.frombuffer(b"{}", np.uint8)))
        zf.writestr("param_0.npy", header.getvalue() + b"\0" * 64)
    _refused(tmp_path / "liar.npz", "not a bpnet model file")
    meta_ok = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as zf:
        zf.writestr("__metadata__.npy", meta_ok)
        zf.writestr("param_0.npy", header.getvalue() + b"\0" * 64)
    _refused(tmp_path / "liar.npz", r"param_0.*max_elements|does not fit")


def _npy(arr):
    buf = pyio.BytesIO()
    np.lib.format.write_array(buf, arr)
    return buf.getvalue()


# --- fuzzing: only ModelFileError, whatever the bytes -------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    net = bpnet.Sequential([bpnet.Dense(3, 4), bpnet.ReLU(), bpnet.Dense(4, 2)], seed=0)
    path = bio.save(net, folder / "m.npz", training={"epoch": 1})
    arrays, meta = bio.read_model_file(path)
    return path.read_bytes(), arrays, meta, folder / "fuzzed.npz"


FUZZ = settings(max_examples=50, deadline=None)


def _load_fuzzed(path, data):
    path.write_bytes(data)
    return bio.read_model_file(path), bio.load(path)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10**9))
def test_truncated_files_raise_model_file_error(pristine, cut):
    data, _, _, path = pristine
    with pytest.raises(ModelFileError):
        _load_fuzzed(path, data[: cut % len(data)])


@FUZZ
@given(bits=st.lists(st.integers(min_value=0), min_size=1, max_size=3))
def test_bit_flips_raise_model_file_error_or_load_unchanged(pristine, bits):
    data, arrays, meta, path = pristine
    flipped = bytearray(data)
    for bit in bits:
        bit %= len(data) * 8
        flipped[bit // 8] ^= 1 << (bit % 8)
    try:
        (got, got_meta), net = _load_fuzzed(path, bytes(flipped))
    except ModelFileError:
        return
    # a flip the archive does not protect (a timestamp, a version field)
    # must not change what is loaded
    assert got_meta == meta and sorted(got) == sorted(arrays)
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
    assert isinstance(net, bpnet.Sequential)


@FUZZ
@given(
    head=st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY"]),
    body=st.binary(max_size=600),
)
def test_random_bytes_raise_model_file_error(pristine, head, body):
    _, _, _, path = pristine
    with pytest.raises(ModelFileError):
        _load_fuzzed(path, head + body)


@pytest.mark.parametrize(
    "classes, match",
    [
        (["a", "a", "b"], "the label 'a' appears more than once"),
        ([{"a": 1}, "b", "c"], "expected a list of class labels"),
        ({"a": 0, "b": 1, "c": 2}, "expected a list of class labels"),
        (
            [str(i) for i in range(10**6)],
            "expected one label per output of the model \\(3\\)",
        ),
        (["a", "b"], "expected one label per output of the model \\(3\\), got 2"),
    ],
)
def test_classes_that_do_not_name_the_outputs_are_refused_at_load(
    tmp_path, classes, match
):
    net = bpnet.Sequential([bpnet.Dense(4, 3)])
    arrays, meta = bio.read_model_file(bio.save(net, tmp_path / "m.npz"))
    for key in bio.modelfile.RESERVED_KEYS:
        meta.pop(key)
    meta["classes"] = classes
    bio.write_model_file(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(ModelFileError, match=f"its metadata classes: {match}"):
        bio.load(tmp_path / "bad.npz")
    with pytest.raises((TypeError, ValueError), match=f"classes: {match}"):
        bio.save(net, tmp_path / "again.npz", classes=classes)
    assert not (tmp_path / "again.npz").exists()
    bio.save(net, tmp_path / "two.npz", classes=["x", "y", "z"])  # one per output
    one = bpnet.Sequential([bpnet.Dense(4, 1)], loss="sigmoid")
    bio.load(bio.save(one, tmp_path / "one.npz", classes=["no", "yes"]))
