"""One test tree; the backend is a fixture parameter.

``backend`` runs a test on NumPy, array-api-strict's ``device1`` (which refuses
host shortcuts exactly as a GPU does), array-api-strict's CPU device, PyTorch
CPU and JAX (its default device, 64-bit mode on) when installed, dpnp when a
SYCL device answers, and CuPy / torch-CUDA when a CUDA device answers.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

# With one pytest-xdist worker per core, each worker's BLAS and OpenMP take
# their share of the cores instead of all of them each (which oversubscribes
# and slows every worker). Set before numpy or torch load their thread pools;
# a value the user set is kept.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _SHARE = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _SHARE)

# JAX compiles every operation for each shape it meets, and each test builds
# its networks anew: a compilation cache on disk, one per worker (read by the
# bpnet-train subprocesses it waits for), compiles each once per machine
# instead of once per test. With filelock installed JAX also locks it, which
# makes it safe for two test runs at once.
_CACHE = os.path.join(tempfile.gettempdir(), "bpnet-tests-jax-cache-")
# a worker inherits the controller's value: replace that one, keep a user's
if os.environ.get("JAX_COMPILATION_CACHE_DIR", _CACHE).startswith(_CACHE):
    _WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE + _WORKER
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
if importlib.util.find_spec("filelock") is not None:
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2**30))

import backends  # noqa: E402

try:
    import array_api_strict

    # Pin the standard's version so a new array-api-strict release cannot
    # silently change what the tests accept.
    array_api_strict.set_array_api_strict_flags(api_version="2024.12")
except ImportError:  # pragma: no cover - part of the test extra
    array_api_strict = None

HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_JAX = importlib.util.find_spec("jax") is not None


def jax_x64() -> None:
    """Turn on JAX's 64-bit mode, so that the float64 tests run on JAX too
    (without it bpnet refuses float64 there, saying how to turn it on)."""
    import jax

    jax.config.update("jax_enable_x64", True)


def _cuda_reason() -> str | None:
    """None when CuPy sees a CUDA device, else why not (never raises)."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'bpnet-arrayapi[cuda]')"
    from backends.cupy_backend import cuda_device_count

    if cuda_device_count() == 0:
        return "no CUDA device answered (CuPy is installed, but no GPU or driver)"
    return None


CUDA_REASON = _cuda_reason()

BACKENDS = [
    pytest.param("cpu", id="numpy"),
    pytest.param("array-api-strict", id="strict-device1"),
    pytest.param("array-api-strict:CPU_DEVICE", id="strict-cpu"),
    pytest.param(
        "torch",
        id="torch-cpu",
        marks=pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed"),
    ),
    pytest.param(
        "jax",
        id="jax",
        marks=pytest.mark.skipif(not HAVE_JAX, reason="JAX is not installed"),
    ),
    # skips with the backend's one-line reason where dpnp or a SYCL device is absent
    pytest.param("dpnp", id="dpnp"),
    pytest.param("cuda", id="cupy-cuda", marks=pytest.mark.cuda),
    pytest.param("torch:cuda", id="torch-cuda", marks=pytest.mark.cuda),
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "cuda" not in item.keywords:
            continue
        reason = CUDA_REASON
        if reason is None and "torch-cuda" in item.nodeid:
            if not HAVE_TORCH:
                reason = "PyTorch is not installed"
            else:
                import torch

                if not torch.cuda.is_available():
                    reason = "PyTorch sees no CUDA device"
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(params=BACKENDS)
def backend(request):
    """A ``backends.Backend`` for every array library and device present."""
    if request.param.startswith("jax"):
        jax_x64()
    try:
        return backends.get_backend(request.param)
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def to_numpy(backend):
    return backend.to_numpy


SHARED_FASHION = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-mnist"
)


def fashion_places() -> list[Path]:
    """Where the tests look for Fashion-MNIST's four IDX files, in order: the
    project's shared folder, then the folder bpnet downloads them to
    (``$BPNET_DATA_DIR/fashion`` when that is set) and ``~/.cache/bpnet/fashion``.
    """
    from bpnet.data import default_cache_dir

    places = [SHARED_FASHION, default_cache_dir("fashion")]
    places.append(Path.home() / ".cache" / "bpnet" / "fashion")
    return list(dict.fromkeys(places))


def find_fashion() -> tuple[Path | None, str]:
    """(the first folder holding all four files, or None; why none did)."""
    from bpnet.data import IDX_FILES

    places = fashion_places()
    for place in places:
        if all((place / name).is_file() for name in IDX_FILES.values()):
            return place, ""
    env = "" if os.environ.get("BPNET_DATA_DIR") else " ($BPNET_DATA_DIR is not set)"
    looked = ", ".join(str(p) for p in places)
    return None, f"Fashion-MNIST's four IDX .gz files are in none of: {looked}{env}"


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """A folder with the Fashion-MNIST IDX files, or a skip naming where it looked."""
    path, why = find_fashion()
    if path is None:
        pytest.skip(why)
    return path
