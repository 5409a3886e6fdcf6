"""What the model-file test modules share: a small network of every kind of
layer, its weights on the host, and files written or refused without the checks.
"""

from __future__ import annotations

import io as pyio
import json
import zipfile

import numpy as np
import pytest

import bpnet
import bpnet.io as bio
from bpnet.io import ModelFileError


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
