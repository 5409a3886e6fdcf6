"""Bounded decompression: a model file's arrays are checked against what its
metadata describes (the network's config, the checkpoint's optimizer) from
their headers and declared sizes, before a byte of them is unpacked. A 2 MB
file that inflates to 2 GiB of float64 zeros costs nothing to refuse."""

import io as pyio
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import bpnet
import bpnet.io as bio

LINUX_PROC = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="measures memory with /proc"
)
CHUNK = 1 << 24
N_BOMB = 2**28 - 1024  # float64 zeros: just under the 2 GiB max_bytes


def _deflated_zeros(header, n_bytes):
    """(raw deflate stream, crc32) of ``header`` + ``n_bytes`` zero bytes,
    made in a second: after a full flush deflate starts afresh, so one chunk's
    compressed form repeats."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(CHUNK)) + c.flush(zlib.Z_FULL_FLUSH)
    k, rest = divmod(n_bytes, CHUNK)
    tail = c.compress(bytes(rest)) + c.flush(zlib.Z_FINISH)
    crc = zlib.crc32(header)
    for _ in range(k):
        crc = zlib.crc32(bytes(CHUNK), crc)
    return head + block * k + tail, zlib.crc32(bytes(rest), crc)


def _zip(path, members):
    """A zip of (name, data, crc, size, deflated) members; zip64 sizes."""
    out, central = bytearray(), bytearray()
    for name, data, crc, size, deflated in members:
        extra = struct.pack("<HHQQ", 1, 16, size, len(data))
        fields = (45, 0, 8 if deflated else 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF)
        offset = len(out)
        out += struct.pack("<IHHHHHIII", 0x04034B50, *fields)
        out += struct.pack("<HH", len(name), len(extra)) + name.encode() + extra
        out += data
        central += struct.pack("<IH", 0x02014B50, 45) + struct.pack(
            "<HHHHHIII", *fields
        )
        central += struct.pack("<HHHHHII", len(name), len(extra), 0, 0, 0, 0, offset)
        central += name.encode() + extra
    n = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def _npy(arr):
    buf = pyio.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _stored(name, arr):
    data = _npy(arr)
    return (name, data, zlib.crc32(data), len(data), False)


def _bomb(path, tmp_path, member):
    """A real checkpoint with ``member`` replaced by 2 GiB of deflated zeros
    that the manifest (but not the network or the optimizer) agrees with."""
    net = bpnet.Sequential([bpnet.Dense(3, 4), bpnet.ReLU(), bpnet.Dense(4, 2)])
    rng = np.random.default_rng(0)
    X, y = rng.random((8, 3)).astype(np.float32), np.arange(8) % 2
    net.fit(X, y, epochs=1, optimizer="adam", checkpoint=tmp_path / "ck.npz")
    arrays, meta = bio.read_model_file(tmp_path / "ck.npz")
    meta["arrays"][member] = {"shape": [N_BOMB], "dtype": "float64"}
    blob = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    members = [_stored("__metadata__.npy", blob)]
    members += [_stored(f"{k}.npy", v) for k, v in arrays.items() if k != member]
    buf = pyio.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (N_BOMB,)}
    )
    header = buf.getvalue()
    data, crc = _deflated_zeros(header, N_BOMB * 8)
    members.append((f"{member}.npy", data, crc, len(header) + N_BOMB * 8, True))
    return _zip(path, members)


LOAD = """
import sys, time
import bpnet.io as bio
from bpnet.train.checkpoint import read_checkpoint
t = time.perf_counter()
try:
    {call}
except bio.ModelFileError as exc:
    print("refused:", " ".join(str(exc).split()))
print("seconds:", time.perf_counter() - t)
# VmHWM: this process's own peak (ru_maxrss keeps the forking parent's peak
# across exec on Linux, so a big pytest process would count)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
print("max_rss_mb:", int(hwm[0].split()[1]) / 1024)
"""


def _load_in_subprocess(call):
    proc = subprocess.run(
        [sys.executable, "-c", LOAD.format(call=call)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())
    return lines, float(lines["seconds"]), float(lines["max_rss_mb"])


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    return {
        member: _bomb(folder / f"{member.replace('/', '_')}.npz", folder, member)
        for member in ("param_0", "state/opt/m/0")
    }


@LINUX_PROC
@pytest.mark.parametrize(
    "member, call, match",
    [
        ("param_0", "bio.load(sys.argv[1])", "array 'param_0' is stored as float64"),
        (
            "state/opt/m/0",
            "read_checkpoint(sys.argv[1])",
            "training.optimizer: state array 'opt/m/0' is float64 of shape",
        ),
    ],
)
def test_a_2_mb_file_inflating_to_2_gib_is_refused_fast_in_little_memory(
    bombs, member, call, match
):
    path = bombs[member]
    assert path.stat().st_size < 3 * 2**20
    lines, seconds, rss = _load_in_subprocess(
        call.replace("sys.argv[1]", repr(str(path)))
    )
    assert match in lines.get("refused", ""), lines
    # main took 57 s and 2.4 GB; a loaded machine must not fail this
    assert seconds < 30 and rss < 500, (seconds, rss)


@LINUX_PROC
def test_a_model_load_never_unpacks_the_training_state(bombs):
    """bpnet.load needs the weights only: a checkpoint's state is checked
    against its manifest but not read."""
    path = bombs["state/opt/m/0"]
    lines, seconds, rss = _load_in_subprocess(f"bio.load({str(path)!r})")
    assert "refused" not in lines and seconds < 30 and rss < 500, (lines, rss)


# --- a memory budget for everything a file declares -------------------------------
def _estimator_file(path, **change):
    """A real MLPClassifier file whose estimator metadata gets ``change``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils._testing import ignore_warnings

    from bpnet.sklearn.classifier import MLPClassifier

    rng = np.random.default_rng(0)
    X, y = rng.random((30, 4)), np.arange(30) % 3
    with ignore_warnings(category=ConvergenceWarning):
        clf = MLPClassifier((5,), max_iter=2, random_state=0).fit(X, y)
    arrays, meta = bio.read_model_file(clf.save(path))
    for key in bio.modelfile.RESERVED_KEYS:
        meta.pop(key)
    est = meta["estimator"]
    for key, value in change.items():
        if key == "hidden_layer_sizes":
            est["params"][key] = est["network"][key] = value
        else:
            est[key] = value
    bio.write_model_file(path, arrays, meta)
    return path


@LINUX_PROC
@pytest.mark.parametrize(
    "change, match",
    [
        ({"hidden_layer_sizes": [30000, 30000]}, "moments.m: expected 6 arrays"),
        ({"hidden_layer_sizes": [200000, 200000]}, "moments.m: expected 6 arrays"),
        ({"n_features_in": 10**9}, "array 'coef_0' is stored as float64 of shape"),
        ({"classes_dtype": "<U400000000"}, "classes_dtype: '<U400000000' for 3"),
        ({"classes": ["a", "a", "b"], "classes_dtype": "<U1"}, "labels repeat"),
        ({"classes": [0, 1]}, "expected 3 labels for a network of 3 output"),
    ],
)
def test_estimator_files_are_checked_before_anything_is_built(tmp_path, change, match):
    path = _estimator_file(tmp_path / "est.npz", **change)
    assert path.stat().st_size < 20_000
    lines, _, rss = _load_in_subprocess(f"bio.load({str(path)!r})")
    assert match in lines.get("refused", ""), lines
    # main reached 7.1 GB for [30000, 30000]; [200000, 200000] was a raw
    # _ArrayMemoryError and '<U400000000' a bare MemoryError
    assert rss < 300, rss


def _compressed_dense(path, n_out):
    """A consistent Sequential file, Dense(64, n_out), its weights deflated
    zeros: 2**27 float32 weights (512 MiB) fit in 0.6 MB."""
    net = bpnet.Sequential([bpnet.Dense(64, 2)])
    _, meta = bio.read_model_file(bpnet.save(net, path))
    meta["config"]["layers"][0]["n_out"] = n_out
    meta["arrays"] = {
        "param_0": {"shape": [64, n_out], "dtype": "float32"},
        "param_1": {"shape": [n_out], "dtype": "float32"},
    }
    blob = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    members = [_stored("__metadata__.npy", blob)]
    for name, shape in (("param_0", (64, n_out)), ("param_1", (n_out,))):
        buf = pyio.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {"descr": "<f4", "fortran_order": False, "shape": shape}
        )
        header, size = buf.getvalue(), int(np.prod(shape)) * 4
        data, crc = _deflated_zeros(header, size)
        members.append((f"{name}.npy", data, crc, len(header) + size, True))
    return _zip(path, members)


@LINUX_PROC
def test_a_consistent_file_over_the_budget_is_refused_with_the_size_and_the_way_up(
    tmp_path,
):
    path = _compressed_dense(tmp_path / "wide.npz", 2**21)
    assert path.stat().st_size < 2**20
    lines, _, rss = _load_in_subprocess(f"bio.load({str(path)!r})")
    refused = lines.get("refused", "")
    assert "asks for about 2.54 GiB of memory, over the budget of 2 GiB" in refused
    assert "max_memory=" in refused and "BPNET_MAX_MEMORY" in refused
    assert rss < 300, rss  # main took 2.2 GB
    small = _compressed_dense(tmp_path / "small.npz", 2**12)
    with pytest.raises(bio.ModelFileError, match="over the budget of 1 MiB"):
        bpnet.load(small, max_memory="1M")
    assert bpnet.load(small, max_memory=2**30).shapes == [(64, 2**12), (2**12,)]


@pytest.mark.parametrize("text, expected", [("8G", 8 * 2**30), ("512MiB", 2**29)])
def test_the_budget_comes_from_the_environment(monkeypatch, text, expected):
    assert bio.memory_budget() == bio.MAX_MEMORY
    monkeypatch.setenv("BPNET_MAX_MEMORY", text)
    assert bio.memory_budget() == expected
    assert bio.memory_budget(1000) == 1000  # the argument wins
    monkeypatch.setenv("BPNET_MAX_MEMORY", "lots")
    with pytest.raises(ValueError, match="BPNET_MAX_MEMORY: expected a size"):
        bio.memory_budget()
