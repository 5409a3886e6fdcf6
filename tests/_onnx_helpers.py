"""What the ONNX test modules share: a graph run by onnxruntime, the tolerance
of its outputs, and the data.
"""

import importlib.util
from typing import Any

import numpy as np
import pytest

for _name in ("ndonnx", "onnx", "onnxscript", "onnxruntime"):
    if importlib.util.find_spec(_name) is None:
        pytest.skip(
            f"{_name} is not installed (pip install 'bpnet-arrayapi[onnx]')",
            allow_module_level=True,
        )

import onnxruntime as ort  # noqa: E402

ROWS = 1000
RTOL = {"float32": 1e-6, "float64": 1e-12}


def run(proto: Any, X: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X})))


def assert_close(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    """Within RTOL of the largest value (probabilities near 0 have no
    relative precision to keep)."""
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


@pytest.fixture(scope="module", name="data")
def data_fixture() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS, 6))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 1)
    return X, y
