"""dpnp, mlx and dask: each trains through the stack or is refused by name.

dpnp trains where a SYCL device answers (the ``backend`` fixture then runs every
backend test on it) and says in one line why not where none does; mlx and dask
are refused with what they lack, or with what to install where they are absent.
The refusals are checked with the library's device list or import made to fail,
so they run wherever the library is installed, and mostly where it is not.
"""

import sys

import numpy as np
import pytest

import backends
import bpnet
from backends import BackendUnavailableError, get_backend
from bpnet.cli.train import train_main


@pytest.fixture(autouse=True)
def _fresh_backends():
    # get_backend caches what it made: each test sees its own device list
    backends._make.cache_clear()
    yield
    backends._make.cache_clear()


class _FakeDevice:
    def __init__(self, dpctl, kind):
        self.device_type = getattr(dpctl.device_type, kind)
        self.filter_string = f"opencl:{kind}:0"


@pytest.fixture
def no_sycl_device(monkeypatch):
    """dpctl as on a machine without an OpenCL ICD or a GPU driver."""
    pytest.importorskip("dpnp", reason="dpnp is not installed")
    import dpctl

    monkeypatch.setattr(dpctl, "get_devices", lambda *a, **k: [])
    return dpctl


@pytest.mark.parametrize("spec", ["dpnp", "dpnp:gpu", "dpnp:cpu", "dpnp:0"])
def test_dpnp_without_a_device_is_one_line_saying_how_to_get_one(no_sycl_device, spec):
    with pytest.raises(BackendUnavailableError) as info:
        get_backend(spec)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"device: {spec!r}: dpnp is installed but no SYCL device")
    assert "OCL_ICD_FILENAMES=" in msg  # the fix, not only the symptom


def test_available_backends_leaves_out_dpnp_without_a_device(no_sycl_device):
    names = backends.available_backends()
    assert "dpnp" not in names and names[0] == "cpu"


def test_dpnp_names_a_missing_gpu_or_index_with_the_devices_there(monkeypatch):
    pytest.importorskip("dpnp", reason="dpnp is not installed")
    import dpctl

    monkeypatch.setattr(
        dpctl, "get_devices", lambda *a, **k: [_FakeDevice(dpctl, "cpu")]
    )
    with pytest.raises(BackendUnavailableError, match="SYCL GPU.*opencl:cpu:0"):
        get_backend("dpnp:gpu")
    with pytest.raises(BackendUnavailableError, match="'dpnp:3' does not exist"):
        get_backend("dpnp:3")


def test_dpnp_bad_device_name_is_a_value_error():
    with pytest.raises(ValueError, match="'dpnp:gpu', 'dpnp:cpu' or 'dpnp:N'"):
        get_backend("dpnp:tpu")


def test_dpnp_not_installed_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dpnp", None)  # import dpnp -> ImportError
    with pytest.raises(BackendUnavailableError, match=r"bpnet-arrayapi\[dpnp\]"):
        get_backend("dpnp")


def test_mlx_is_refused_by_name_with_what_it_lacks():
    try:
        import mlx.core as mx
    except (ImportError, OSError) as exc:
        pytest.skip(f"mlx is not importable here: {exc}")
    with pytest.raises(BackendUnavailableError) as info:
        get_backend("mlx")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("device: 'mlx' is not supported")
    from backends.mlx_backend import lacks

    assert lacks(mx)  # the reason given is still true of this mlx
    for what in lacks(mx):
        assert what in msg


def test_mlx_without_libmlx_names_mlx_cpu(monkeypatch):
    # on Linux, mlx alone fails with "libmlx.so: cannot open shared object file"
    monkeypatch.setitem(sys.modules, "mlx", None)
    monkeypatch.setitem(sys.modules, "mlx.core", None)
    with pytest.raises(BackendUnavailableError) as info:
        get_backend("mlx")
    msg = str(info.value)
    assert "\n" not in msg and "mlx-cpu" in msg and "libmlx.so" in msg


def test_dask_is_refused_by_name_with_what_it_lacks():
    pytest.importorskip("dask", reason="dask is not installed")
    with pytest.raises(BackendUnavailableError) as info:
        get_backend("dask")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("device: 'dask' is not supported")
    assert "in-place" in msg and "'cpu'" in msg


def test_dask_not_installed_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'dask\[array\]'"):
        get_backend("dask")


def test_refused_libraries_are_never_listed():
    names = backends.available_backends()
    assert "mlx" not in names and "dask" not in names


@pytest.mark.parametrize("spec", ["mlx", "dask", "dpnp"])
def test_bpnet_train_refuses_in_one_line(spec, monkeypatch, capsys):
    if spec == "dpnp":
        try:
            import dpctl
        except ImportError:
            pass  # then the line says what to install
        else:
            monkeypatch.setattr(dpctl, "get_devices", lambda *a, **k: [])
    assert train_main(["--device", spec, "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"bpnet-train: error: device: {spec!r}")


def test_dpnp_trains_like_numpy():
    try:
        be = get_backend("dpnp")
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)

    def fit(device):
        net = bpnet.Sequential(
            [bpnet.Dense(5, 8), bpnet.ReLU(), bpnet.Dense(8, 2)],
            device=device,
            dtype="float64",
            seed=0,
        )
        before = [net.backend.to_numpy(p).copy() for p in net.parameters()]
        net.fit(X, y, epochs=3, batch_size=16, lr=0.1)
        return before, [net.backend.to_numpy(p) for p in net.parameters()]

    start, got = fit(be)
    _, want = fit("cpu")
    for a, b, s in zip(got, want, start):
        assert not np.array_equal(a, s)  # every parameter moved
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
