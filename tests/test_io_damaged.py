"""Model files: refusal of every damaged or hostile file with a ModelFileError
that names it.
"""

from __future__ import annotations

import builtins
import io as pyio
import json
import pickle
import zipfile

import numpy as np
import pytest
from _io_helpers import _host_params, _net, _refused, _rewrite, _write_zip
from hypothesis import given, settings
from hypothesis import strategies as st

import bpnet
import bpnet.io as bio
from bpnet.io import ModelFileError


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
