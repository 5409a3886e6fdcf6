import numpy as np
import pytest

import backends
import bpnet
from backends import BackendUnavailableError, get_backend
from bpnet.nn.mutation import writes_in_place


def test_available_backends_lists_cpu_and_never_raises():
    names = backends.available_backends()
    assert names[0] == "cpu"
    for name in names:
        assert get_backend(name).name  # every listed backend really works


@pytest.mark.parametrize(
    "spec", ["tpu", "cuda:x", "torch:metal", "cpu:1", "", "array-api-strict:gpu"]
)
def test_unknown_names_raise_value_error_naming_the_argument(spec):
    with pytest.raises(ValueError, match="device"):
        get_backend(spec)


def test_non_string_spec_is_a_type_error():
    with pytest.raises(TypeError, match="device"):
        get_backend(3)


def test_missing_cuda_says_what_is_missing():
    from conftest import CUDA_REASON

    if CUDA_REASON is None:
        pytest.skip("a CUDA device is present here")
    with pytest.raises(BackendUnavailableError) as info:
        get_backend("cuda")
    msg = str(info.value)
    assert "cuda" in msg and ("pip install" in msg or "no CUDA device" in msg)


def test_backend_instances_are_cached_and_passed_through():
    be = get_backend("cpu")
    assert get_backend("cpu") is be
    assert get_backend(be) is be
    assert get_backend(None) is be


def test_round_trip_and_dtypes(backend):
    host = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    for name in ("float32", "float64"):
        a = backend.asarray(host, dtype=name)
        assert backend.dtype_name(a.dtype) == name
        assert backend.owns(a)
        back = backend.to_numpy(a)
        assert isinstance(back, np.ndarray)
        np.testing.assert_allclose(back, host, rtol=1e-6 if name == "float32" else 0)


def test_owns_rejects_host_arrays_off_the_numpy_backend(backend):
    if backend.name == "cpu":
        assert backend.owns(np.zeros(2))
    else:
        assert not backend.owns(np.zeros(2))


def test_device_random_is_seeded(backend):
    dt = backend.dtype("float32")
    a = backend.to_numpy(backend.random(5).uniform((3, 4), dt))
    b = backend.to_numpy(backend.random(5).uniform((3, 4), dt))
    c = backend.to_numpy(backend.random(6).uniform((3, 4), dt))
    assert a.shape == (3, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert ((a >= 0) & (a < 1)).all()


def test_pack_unpack_is_lossless(backend):
    rng = np.random.default_rng(0)
    arrays = [backend.asarray(rng.normal(size=s), "float64") for s in [(3, 2), (2,)]]
    vec = backend.pack(arrays)
    assert vec.dtype == np.float64 and vec.shape == (8,)
    back = backend.unpack(vec, [(3, 2), (2,)], backend.dtype("float64"))
    for a, b in zip(arrays, back):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    with pytest.raises(ValueError, match="theta: expected a flat vector of 8"):
        backend.unpack(vec[:5], [(3, 2), (2,)], backend.dtype("float64"))


def test_synchronize_and_describe(backend):
    backend.synchronize()
    assert isinstance(backend.describe(), str) and backend.describe()


def test_float64_on_a_device_without_it_is_a_clear_error():
    be = get_backend("array-api-strict:no_float64")
    assert not be.supports("float64")
    with pytest.raises(
        BackendUnavailableError, match="float64 is not supported.*float32"
    ):
        be.dtype("float64")
    assert be.dtype_name(be.dtype("float32")) == "float32"


def test_unknown_dtype_name():
    for bad in ("float16", np.float16, np.dtype("complex64")):
        with pytest.raises(ValueError, match="dtype: expected 'float32' or 'float64'"):
            get_backend("cpu").dtype(bad)


def test_numpy_dtypes_are_accepted(backend):
    for dt, name in ((np.float32, "float32"), (np.dtype("float64"), "float64")):
        assert backend.dtype_name(backend.dtype(dt)) == name


def test_host_random_is_the_numpy_generator():
    r = backends.HostRandom(3)
    np.testing.assert_array_equal(
        r.permutation(10), np.random.default_rng(3).permutation(10)
    )


def test_take_rows_is_take_along_the_first_axis(backend):
    xp = backend.xp
    host = np.arange(24, dtype=np.float64).reshape(6, 4)
    x = backend.asarray(host, dtype="float32")
    idx = backend.asarray(np.array([5, 0, 3, 3], dtype=np.int64))
    rows = backend.take_rows(x, idx)
    np.testing.assert_array_equal(
        backend.to_numpy(rows), backend.to_numpy(xp.take(x, idx, axis=0))
    )
    np.testing.assert_array_equal(backend.to_numpy(rows), host[[5, 0, 3, 3], :])
    labels = backend.asarray(np.array([9, 8, 7, 6, 5, 4], dtype=np.int64))
    got = backend.to_numpy(backend.take_rows(labels, idx))
    np.testing.assert_array_equal(got, [4, 9, 6, 6])


@pytest.mark.parametrize("batch_size", [32, 50])
def test_torch_fast_path_keeps_the_plain_paths_weights(monkeypatch, batch_size):
    # The torch backend gathers batches with index_select directly instead of
    # array-api-compat's take; a shuffled fit must end on identical weights.
    pytest.importorskip("torch")
    import bpnet
    from backends._base import Backend

    rng = np.random.default_rng(3)
    X = rng.random((300, 20), dtype=np.float32)
    y = rng.integers(0, 4, 300)

    def train() -> list[np.ndarray]:
        net = bpnet.Sequential(
            [bpnet.Dense(20, 16), bpnet.ReLU(), bpnet.Dense(16, 4)],
            device="torch",
            seed=0,
        )
        bpnet.fit(
            net, X, y, epochs=3, batch_size=batch_size, optimizer="sgd", verbose=0
        )
        return [net.backend.to_numpy(p) for p in net.parameters()]

    fast = train()
    with monkeypatch.context() as m:
        m.setattr(
            backends.get_backend("torch"),
            "take_rows",
            Backend.take_rows.__get__(backends.get_backend("torch")),
        )
        plain = train()
    start = bpnet.Sequential(
        [bpnet.Dense(20, 16), bpnet.ReLU(), bpnet.Dense(16, 4)], device="cpu", seed=0
    ).parameters()
    for a, b, p0 in zip(fast, plain, start):
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, p0)  # the steps did move the weights


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize(
    "alpha,beta", [(1.0, 0.0), (0.5, 0.0), (-0.1, 1.0), (2.0, 0.9)]
)
def test_matmul_into_is_alpha_product_plus_beta_out(
    backend, to_numpy, dtype, trans, alpha, beta
):
    """Every layout of the operands (a transposed view is how Dense passes
    x.T) gives alpha * a @ b + beta * out, written into out itself."""
    if not backend.supports(getattr(backend.xp, dtype)):
        pytest.skip(f"{backend.name} has no float64")
    rng = np.random.default_rng(0)
    ta, tb = trans
    A = rng.standard_normal((5, 7) if ta else (7, 5))
    B = rng.standard_normal((3, 5) if tb else (5, 3))
    O = rng.standard_normal((7, 3))
    a, b = backend.asarray(A, dtype=dtype), backend.asarray(B, dtype=dtype)
    a, b = (a.T if ta else a), (b.T if tb else b)
    out = backend.asarray(O.copy(), dtype=dtype)  # asarray may not copy
    in_place = writes_in_place(out)
    got = backend.matmul_into(a, b, out, alpha, beta)
    if in_place:  # else a new array: JAX's cannot be written
        assert got is out
    want = alpha * (A.T if ta else A) @ (B.T if tb else B) + beta * O
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(to_numpy(got), want, rtol=tol, atol=tol)


def test_matmul_into_with_beta_zero_ignores_what_out_held(backend, to_numpy):
    """beta == 0 must not read out: NaNs left there from a failed step stay out."""
    a = backend.asarray(np.ones((2, 3)), dtype="float32")
    b = backend.asarray(np.ones((3, 4)), dtype="float32")
    out = backend.asarray(np.full((2, 4), np.nan), dtype="float32")
    for alpha in (1.0, 0.25):
        out = backend.matmul_into(a, b, out, alpha)
        np.testing.assert_array_equal(to_numpy(out), np.full((2, 4), 3.0 * alpha))


@pytest.mark.parametrize("blas", ["numpy", "scipy"])
def test_numpy_matmul_into_writes_in_place_without_the_fallback(monkeypatch, blas):
    """The NumPy backend's BLAS paths (NumPy's own gemm through ctypes, and
    SciPy's where NumPy's cannot be found) serve every float layout Dense
    uses."""
    from backends import numpy_backend
    from backends._base import Backend

    if blas == "numpy" and numpy_backend._numpy_gemm() is None:
        pytest.skip("this NumPy's BLAS gemm cannot be reached (not scipy-openblas64)")
    if blas == "scipy":
        pytest.importorskip("scipy")
        monkeypatch.setattr(numpy_backend, "_numpy_gemm", lambda: None)

    def refuse(*args, **kwargs):
        raise AssertionError("took the pure fallback")

    monkeypatch.setattr(Backend, "matmul_into", refuse)
    be = get_backend("cpu")
    monkeypatch.setattr(be, "fold_min_size", 0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    dy = rng.standard_normal((6, 3)).astype(np.float32)
    W = rng.standard_normal((4, 3)).astype(np.float32)
    W0 = W.copy()
    assert be.matmul_into(x.T, dy, W, -0.1, 1.0) is W
    np.testing.assert_allclose(W, W0 - 0.1 * x.T @ dy, rtol=1e-5, atol=1e-6)
    for dtype in (np.float32, np.float64):  # every layout, both dtypes
        for ta, tb in [(0, 0), (1, 0), (0, 1), (1, 1)]:
            A = rng.standard_normal((5, 7) if ta else (7, 5)).astype(dtype)
            B = rng.standard_normal((3, 5) if tb else (5, 3)).astype(dtype)
            a, b = (A.T if ta else A), (B.T if tb else B)
            out = rng.standard_normal((7, 3)).astype(dtype)
            want = 2.0 * (a @ b) + 0.9 * out
            be.matmul_into(a, b, out, 2.0, 0.9)
            np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    ro = np.ones((6, 4), dtype=np.float32)
    ro.setflags(write=False)  # read-only operands are read in place too
    W = np.zeros((4, 3), dtype=np.float32)
    be.matmul_into(ro.T, dy, W, 1.0, 1.0)
    np.testing.assert_allclose(W, ro.T @ dy, rtol=1e-6)


def test_a_torch_input_that_tracks_gradients_leaves_no_graph_in_the_weights():
    # its history once reached the weights: memory grew every step, and
    # predict's tensors could not be read back
    torch = pytest.importorskip("torch")
    X = torch.rand(60, 4, requires_grad=True)
    y = np.arange(60) % 3
    net = bpnet.Sequential(
        [bpnet.Dense(4, 8), bpnet.ReLU(), bpnet.Dense(8, 3)], device="torch"
    )
    net.fit(X, y, epochs=2, verbose=0)
    assert not any(p.requires_grad for p in net.parameters())
    _, grads = net.loss_and_grad(X, y)
    assert not any(g.requires_grad for g in grads)
    assert net.backend.to_numpy(net.forward(X)).shape == (60, 3)


def test_big_endian_input_is_taken_by_every_backend(backend):
    X = np.linspace(-1, 1, 12).reshape(3, 4).astype(">f4")
    net = bpnet.Sequential([bpnet.Dense(4, 2)], device=backend, seed=0)
    same = bpnet.Sequential([bpnet.Dense(4, 2)], device=backend, seed=0)
    got = backend.to_numpy(net.forward(X))
    np.testing.assert_array_equal(got, backend.to_numpy(same.forward(X.astype("<f4"))))


def test_a_torch_generator_takes_only_a_state_of_its_own_kind():
    # a CUDA (Philox) state is 16 bytes, a CPU one's 5056: moving or resuming
    # a network between them once failed inside torch's set_state
    pytest.importorskip("torch")
    rng = get_backend("torch").random(0)
    assert rng.takes_state(rng.get_state())
    assert not rng.takes_state([0] * 16)
    assert not rng.takes_state({"bit_generator": "PCG64"})  # NumPy's
    assert not get_backend("cpu").random(0).takes_state(rng.get_state())


def test_missing_torch_names_the_cpu_wheel_too(monkeypatch):
    import sys

    from backends.torch_backend import TorchBackend

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "array_api_compat.torch", None)
    with pytest.raises(BackendUnavailableError) as info:
        TorchBackend("cpu")
    msg = str(info.value)
    assert "pip install 'bpnet-arrayapi[torch]'" in msg
    # the README's command for machines without a GPU
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in msg


@pytest.mark.parametrize(
    "alias, name", [("gpu", "cuda"), ("gpu:0", "cuda:0"), ("torch:gpu", "torch:cuda")]
)
def test_gpu_is_another_name_for_cuda(alias, name):
    try:
        want = get_backend(name)
    except BackendUnavailableError as exc:
        with pytest.raises(BackendUnavailableError) as info:
            get_backend(alias)
        said = str(exc).removeprefix("device: ")
        assert str(info.value) == f"device: {alias!r} (an alias of {name!r}): {said}"
    else:
        assert get_backend(alias) is want
        assert get_backend(alias.upper()) is want
