"""Backend-specific acceleration must not change the numbers: training with a
captured CUDA graph ends with the weights of the plain loop."""

import numpy as np
import pytest

import backends
import bpnet


def _data(n=300, d=12, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, size=n)


def _train(device, graph, opt, dtype="float64"):
    X, y = _data()
    net = bpnet.Sequential(
        [
            bpnet.Dense(12, 16),
            bpnet.ReLU(),
            bpnet.Dense(16, 8),
            bpnet.Tanh(),
            bpnet.Dense(8, 4),
        ],
        device=device,
        dtype=dtype,
        seed=3,
    )
    h = net.fit(X, y, epochs=4, batch_size=32, optimizer=opt, cuda_graph=graph, l2=0.1)
    return net, h


@pytest.mark.cuda
@pytest.mark.parametrize(
    "make_opt",
    [
        lambda: bpnet.SGD(0.1),
        lambda: bpnet.Momentum(0.05, nesterov=True),
        lambda: bpnet.Adam(0.01, weight_decay=0.01),
    ],
    ids=["sgd", "nesterov", "adamw"],
)
def test_cuda_graph_matches_the_plain_loop(make_opt):
    try:
        be = backends.get_backend("cuda")
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    plain, h_plain = _train(be, False, make_opt())
    graph, h_graph = _train(be, True, make_opt())
    np.testing.assert_allclose(h_graph.loss, h_plain.loss, rtol=1e-10)
    for a, b in zip(plain.parameters(), graph.parameters()):
        np.testing.assert_allclose(
            be.to_numpy(a), be.to_numpy(b), rtol=1e-10, atol=1e-12
        )
    cpu, h_cpu = _train("cpu", False, make_opt())
    np.testing.assert_allclose(h_graph.loss, h_cpu.loss, rtol=1e-8)


def test_asking_for_graphs_where_there_are_none_is_a_clear_error():
    with pytest.raises(ValueError, match="cuda_graph: the 'cpu' backend cannot"):
        _train("cpu", True, bpnet.SGD(0.1))


def test_in_place_updates_equal_the_functional_step(backend):
    """update() (used by fit) and step() (returns new arrays) are one rule."""
    rng = np.random.default_rng(1)
    for make in (
        lambda: bpnet.SGD(0.1),
        lambda: bpnet.Momentum(0.1, nesterov=True),
        lambda: bpnet.Adam(0.01, weight_decay=0.1),
    ):
        a, b = make(), make()
        p = [backend.asarray(rng.normal(size=(3, 2)), "float64")]
        q = [backend.asarray(backend.to_numpy(p[0]), "float64")]
        for _ in range(3):
            g = [backend.asarray(rng.normal(size=(3, 2)), "float64")]
            p = a.step(p, g)
            b.update(q, g)
        np.testing.assert_allclose(
            backend.to_numpy(p[0]), backend.to_numpy(q[0]), rtol=1e-14
        )


def test_fit_never_writes_into_the_callers_arrays():
    net = bpnet.Sequential([bpnet.Dense(12, 4)], dtype="float64")
    W = np.ones((12, 4))
    net.set_parameters([W, np.zeros(4)])
    X, y = _data()
    net.fit(X, y, epochs=1)
    assert (W == 1).all()
    assert not (np.asarray(net.parameters()[0]) == 1).all()


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_capture_gemm_matches_matmul_for_every_layout(dtype):
    try:
        be = backends.get_backend("cuda")
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    import cupy

    from backends.cupy_backend import _Gemm

    gemm = _Gemm(cupy)
    rng = np.random.default_rng(0)
    a = be.asarray(rng.normal(size=(7, 5)), dtype)
    b = be.asarray(rng.normal(size=(5, 3)), dtype)
    at = be.asarray(rng.normal(size=(5, 7)), dtype).T  # a transposed view
    bt = be.asarray(rng.normal(size=(3, 5)), dtype).T
    stream = cupy.cuda.get_current_stream().ptr
    for x, y in [(a, b), (at, b), (a, bt), (at, bt)]:
        got = be.to_numpy(gemm(x, y, stream))
        np.testing.assert_allclose(got, be.to_numpy(x @ y), rtol=1e-5)


@pytest.mark.cuda
def test_cuda_graph_with_dropout_draws_the_plain_loops_masks():
    """The device generator's state lives on the GPU: replayed epochs draw the
    same masks the plain loop draws, so the weights match."""
    try:
        be = backends.get_backend("cuda")
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    X, y = _data()

    def run(graph):
        net = bpnet.Sequential(
            [bpnet.Dense(12, 32), bpnet.ReLU(), bpnet.Dropout(0.3), bpnet.Dense(32, 4)],
            device=be,
            dtype="float64",
            seed=3,
        )
        h = net.fit(
            X, y, epochs=4, batch_size=32, optimizer=bpnet.SGD(0.1), cuda_graph=graph
        )
        return net, h

    plain, h_plain = run(False)
    graph, h_graph = run(None)
    assert h_graph.cuda_graph and not h_plain.cuda_graph
    np.testing.assert_allclose(h_graph.loss, h_plain.loss, rtol=1e-10)
    for a, b in zip(plain.parameters(), graph.parameters()):
        np.testing.assert_allclose(be.to_numpy(a), be.to_numpy(b), rtol=1e-10)


def test_a_failed_capture_falls_back_to_the_plain_loop(monkeypatch):
    be = backends.get_backend("cpu")
    monkeypatch.setattr(type(be), "supports_graphs", True)

    def broken(fn):
        raise RuntimeError("capture refused")

    monkeypatch.setattr(be, "capture_graph", broken)
    # A fit that may record a graph never folds SGD into the backward pass
    # (bpnet.train.fused): the reference does not either, to compare bits.
    monkeypatch.setattr(type(be), "folds_matmul_update", False)
    net, h = _train(be, None, bpnet.SGD(0.1))
    ref, h_ref = _train("cpu", False, bpnet.SGD(0.1))
    assert not h.cuda_graph and h.loss == h_ref.loss
