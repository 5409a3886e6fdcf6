"""bpnet.distributed in one process, without MPI: row shards, buckets, host
views on every backend, the memory-mapped path, and the missing-extra error.

A one-rank communicator stands in for MPI here (its reductions are the
identity), so the data-parallel step runs on every backend the suite has.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pytest

import bpnet
from backends import get_backend
from bpnet.distributed import comm as comm_mod
from bpnet.distributed import shard
from bpnet.distributed.strategy import DataParallel


class OneRank(comm_mod.MPICommunicator):
    """MPICommunicator's buffer handling, with one rank and no MPI."""

    def __init__(self, overlap=False, bucket_mb=4.0):
        self.rank, self.size, self.local_rank = 0, 1, 0
        self.overlap, self.bucket_bytes = overlap, int(bucket_mb * 2**20)
        self.timeout, self.device = 0.0, "cpu"
        self.started: list[tuple[int, int]] = []

    def start(self, view, lo, hi):
        self.started.append((lo, hi))
        return None

    def progress(self, requests):
        pass

    def wait(self, requests, what=""):
        pass

    def allreduce_host(self, *parts, what=""):
        return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])

    def bcast(self, obj):
        return obj

    def allgather(self, obj):
        return [obj]

    def barrier(self):
        pass


def _data(n=101, d=6, k=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)), rng.integers(0, k, n)


def _net(device="cpu", dtype="float64", dropout=0.25):
    return bpnet.Sequential(
        [
            bpnet.Dense(6, 8),
            bpnet.ReLU(),
            bpnet.Dropout(dropout),
            bpnet.Dense(8, 8),
            bpnet.Tanh(),
            bpnet.Dense(8, 3),
        ],
        device=device,
        dtype=dtype,
        seed=1,
    )


@pytest.mark.parametrize("n", [0, 1, 2, 7, 10])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shards_cover_the_rows_once_in_order_and_rank_0_is_never_empty(n, size):
    spans = [shard(n, r, size) for r in range(size)]
    assert spans[0][0] == 0 and spans[-1][1] == n
    for (_, stop), (start, _) in zip(spans, spans[1:]):
        assert stop == start
    sizes = [b - a for a, b in spans]
    assert max(sizes) - min(sizes) <= 1
    if n:
        assert sizes[0] >= 1


def test_without_mpi4py_distributed_training_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"pip install 'bpnet-arrayapi\[mpi\]'"):
        comm_mod.init("cpu")


def _host_view_or_skip(backend):
    """Skip, with MPI's own refusal, on a backend whose arrays have no host
    view for MPI to sum in place (dpnp: its DLPack device is a SYCL one)."""
    try:
        OneRank().wrap(backend.asarray(np.zeros(2), "float32"), backend)
    except ValueError as exc:
        assert "\n" not in str(exc) and backend.name in str(exc)
        pytest.skip(str(exc))


@pytest.mark.parametrize("overlap", [False, True])
def test_one_rank_data_parallel_is_plain_fit_on_every_backend(backend, overlap):
    _host_view_or_skip(backend)
    X, y = _data()
    dtype = "float64" if backend.supports("float64") else "float32"
    plain, par = _net(backend, dtype), _net(backend, dtype)
    kw = {"epochs": 2, "batch_size": 16, "optimizer": "adam", "lr": 0.01, "l2": 0.1}
    h1 = bpnet.fit(plain, X, y, **kw)
    h2 = bpnet.fit(par, X, y, comm=OneRank(overlap, bucket_mb=1e-6), **kw)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    for a, b in zip(plain.parameters(), par.parameters()):
        np.testing.assert_allclose(
            backend.to_numpy(b), backend.to_numpy(a), rtol=rtol, atol=rtol
        )
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=rtol)
    np.testing.assert_allclose(h2["accuracy"], h1["accuracy"], rtol=rtol)


@pytest.mark.parametrize("views", [True, False])
def test_a_step_sums_the_weighted_gradients_in_the_flat_buffer(
    backend, monkeypatch, views
):
    """Dense layers write their gradients straight into the buffer (or, where
    a backend's reshape of a slice were a copy, they are copied in); either
    way the step's gradients are n / n_global times plain backprop's."""
    from bpnet.nn.evaluation import _labels

    _host_view_or_skip(backend)
    if not views:
        monkeypatch.setattr(DataParallel, "_are_views", lambda *a: False)
    X, y = _data()
    dtype = "float64" if backend.supports("float64") else "float32"
    net, ref = _net(backend, dtype, dropout=0.0), _net(backend, dtype, dropout=0.0)
    dp = DataParallel(OneRank(), net)
    assert sorted(dp.dest) == ([0, 3, 5] if views else [])
    Xd, T = net._prepare(X[:10], y[:10], net.loss)
    L, grads, _ = dp.step(Xd, T, _labels(T, net.loss), net.loss, 0.0, 40, False)
    L0, want = ref._loss_and_grad(Xd, T, ref.loss)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(float(L), float(L0) / 4, rtol=rtol)
    for g, g0 in zip(grads, want):
        np.testing.assert_allclose(
            backend.to_numpy(g), backend.to_numpy(g0) / 4, rtol=rtol, atol=rtol
        )
    assert all(layer.grad_out is None for layer in net.layers)
    if views and backend.library == "numpy":
        assert np.shares_memory(net.layers[0].grads["W"], dp.buf)


def test_buckets_are_whole_layers_last_first_and_cover_the_buffer():
    net = _net()
    comm = OneRank(overlap=True, bucket_mb=1e-6)  # one layer per bucket
    dp = DataParallel(comm, net)
    spans = sorted(dp.buckets.values())
    assert spans[0][0] == 0 and spans[-1][1] == net.n_parameters + 3
    for (_, hi), (lo, _) in zip(spans, spans[1:]):
        assert hi == lo
    assert len(spans) == 3  # three Dense layers
    X, y = _data()
    bpnet.fit(net, X, y, epochs=1, batch_size=200, comm=comm)
    # started in backward order: the last layer's bucket first
    assert comm.started == sorted(comm.started, reverse=True)
    whole = DataParallel(OneRank(overlap=True, bucket_mb=64), _net())
    assert list(whole.buckets.values()) == [(0, net.n_parameters + 3)]


def test_a_memory_mapped_X_is_read_a_batch_at_a_time(tmp_path, monkeypatch):
    X, y = _data()
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    reads = []
    gather = DataParallel.gather

    def spy(self, a, b, T, labels, W=None):
        reads.append(b - a)
        return gather(self, a, b, T, labels, W)

    monkeypatch.setattr(DataParallel, "gather", spy)
    plain, par = _net(), _net()
    kw = {"epochs": 2, "batch_size": 16, "optimizer": "momentum", "lr": 0.05}
    bpnet.fit(plain, X, y, **kw)
    bpnet.fit(par, Xm, y, comm=OneRank(), **kw)
    assert sum(reads) == 2 * X.shape[0] and max(reads) == 16
    for a, b in zip(plain.parameters(), par.parameters()):
        np.testing.assert_allclose(b, a, rtol=1e-12)


@pytest.mark.parametrize("shuffle", [True, False])
def test_sample_weights_with_a_memory_map_skip_the_zero_rows_in_place(
    tmp_path, shuffle
):
    """Rows of weight 0 leave T and the weights; the memory map stays whole
    and each step reads the rows that remain, so the weights match plain
    weighted fit's."""
    X, y = _data()
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    w = np.random.default_rng(4).uniform(0.5, 2.0, X.shape[0])
    w[::5] = 0.0
    plain, par = _net(), _net()
    kw = {"epochs": 2, "batch_size": 16, "optimizer": "adam", "lr": 0.01, "l2": 0.1}
    h1 = bpnet.fit(plain, X, y, sample_weight=w, shuffle=shuffle, **kw)
    h2 = bpnet.fit(par, Xm, y, sample_weight=w, shuffle=shuffle, comm=OneRank(), **kw)
    for a, b in zip(plain.parameters(), par.parameters()):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-12)


def test_a_memory_mapped_X_refuses_a_held_out_fraction(tmp_path):
    X, y = _data()
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="validation_fraction: X is read from"):
        bpnet.fit(_net(), Xm, y, validation_fraction=0.2, comm=OneRank())


def test_mpi_refuses_gpu_arrays_with_a_pointer_to_nccl():
    class GPU:
        is_gpu, name = True, "cuda:0"

    with pytest.raises(ValueError, match="reduces with NCCL"):
        OneRank().wrap(None, GPU())


def test_mpi_refuses_other_gpu_arrays_without_pointing_to_nccl():
    class GPU:  # dpnp:gpu, an Intel GPU: NCCL is for CUDA ones
        is_gpu, name = True, "dpnp:gpu"

    with pytest.raises(ValueError, match="arrays live on a GPU") as info:
        OneRank().wrap(None, GPU())
    assert "NCCL" not in str(info.value) and "'cpu'" in str(info.value)


def test_nccl_refuses_arrays_that_are_not_cupy():
    import backends

    c = comm_mod.NCCLCommunicator.__new__(comm_mod.NCCLCommunicator)
    c.device = "cuda:0"
    with pytest.raises(ValueError, match=r"build it with device=comm.device"):
        c.wrap(None, backends.get_backend("cpu"))


def test_array_files_load_as_a_contiguous_split_of_memory_maps(tmp_path):
    from bpnet.distributed.files import load_arrays

    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    y = np.array([5, 7] * 5)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    X_tr, y_tr, X_te, _, classes = load_arrays(
        tmp_path / "X.npy", tmp_path / "y.npy", test_size=0.3
    )
    assert isinstance(X_tr, np.memmap) and isinstance(X_te, np.memmap)
    np.testing.assert_array_equal(X_te, X[7:])
    assert classes == (5, 7)
    np.testing.assert_array_equal(y_tr, (y[:7] == 7).astype(int))
    with pytest.raises(ValueError, match="--labels: .* holds X only"):
        load_arrays(tmp_path / "X.npy")
    np.savez(tmp_path / "bad.npz", X=X)
    with pytest.raises(ValueError, match=r"missing \['y'\]"):
        load_arrays(tmp_path / "bad.npz")


def test_bpnet_train_distributed_without_mpi4py_names_the_extra(monkeypatch, capsys):
    from bpnet.cli.train import train_main

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert train_main(["--distributed", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'bpnet-arrayapi[mpi]'" in err


def test_data_parallel_refuses_a_cuda_graph_it_could_not_honour():
    X, y = _data()
    with pytest.raises(ValueError, match="cuda_graph: a data-parallel step"):
        bpnet.fit(_net(), X, y, cuda_graph=True, comm=OneRank())


def test_data_parallel_minimize_refuses_an_objective_it_cannot_shard():
    net = _net()
    X, y = _data()
    with pytest.raises(ValueError, match="comm: data-parallel minimize.*objective"):
        bpnet.minimize(
            net, X, y, objective=lambda: net.loss_and_grad(X, y), comm=OneRank()
        )


def test_one_rank_weighted_minimize_is_plain_weighted_minimize():
    X, y = _data()
    w = np.random.default_rng(5).uniform(0.0, 2.0, X.shape[0])
    w[:7] = 0.0
    plain, par = _net(dropout=0.0), _net(dropout=0.0)
    kw = {"l2": 0.3, "method": "L-BFGS-B", "maxiter": 15, "sample_weight": w}
    r1 = bpnet.minimize(plain, X, y, **kw)
    r2 = bpnet.minimize(par, X, y, comm=OneRank(), **kw)
    np.testing.assert_allclose(r2.loss_curve, r1.loss_curve, rtol=1e-10)
    for a, b in zip(plain.parameters(), par.parameters()):
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-10)


def test_a_dense_subclass_with_its_own_backward_gets_its_gradients_copied():
    """grad_out counts only where the class that defines backward says so."""
    from bpnet.nn.layers import Dense, writes_grad_out

    class Clipped(Dense):
        def backward(self, dy, need_dx=True):
            return super().backward(dy, need_dx)

    class Inherits(Dense):
        pass

    assert writes_grad_out(Dense(2, 3)) and writes_grad_out(Inherits(2, 3))
    assert not writes_grad_out(Clipped(2, 3))
    net = bpnet.Sequential([Clipped(6, 4), bpnet.ReLU(), bpnet.Dense(4, 3)])
    X, y = _data()
    bpnet.fit(net, X, y, epochs=1, batch_size=50, comm=OneRank())
    dp = DataParallel(OneRank(), net)
    assert sorted(dp.dest) == [2]


def test_one_rank_takes_the_folded_sgd_step_and_still_hears_ctrl_c(monkeypatch):
    """A job of one rank has nothing to reduce, so plain SGD folds its update
    as one process does; the same weights, and Ctrl-C still stops it."""
    from bpnet.train import fused

    be = get_backend("cpu")
    if not be.folds_matmul_update:
        pytest.skip("this NumPy's BLAS cannot be reached: no folded step")
    monkeypatch.setattr(be, "fold_min_size", 1)  # these tiny layers fold too
    X, y = _data()
    w = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
    kw = {"epochs": 2, "batch_size": 16, "optimizer": "sgd", "lr": 0.05}
    plain, par = _net(dropout=0.2), _net(dropout=0.2)
    h1 = bpnet.fit(plain, X, y, sample_weight=w, **kw)
    calls = []
    step = fused.SGDStep.__call__
    monkeypatch.setattr(
        fused.SGDStep, "__call__", lambda *a: calls.append(1) or step(*a)
    )
    h2 = bpnet.fit(par, X, y, sample_weight=w, comm=OneRank(), **kw)
    assert len(calls) == 2 * 7
    for a, b in zip(plain.parameters(), par.parameters()):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-12)

    def ctrl_c(epoch, logs, net):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    opt = bpnet.SGD(lr=0.05)
    with pytest.raises(KeyboardInterrupt):
        bpnet.fit(
            _net(),
            X,
            y,
            epochs=5,
            batch_size=16,
            optimizer=opt,
            comm=OneRank(),
            callbacks=[ctrl_c],
        )
    assert opt.t == 2 * 7 + 1  # the step after the signal, as on every rank


def test_a_rank_past_the_last_row_keeps_an_empty_shard():
    """Fewer rows than ranks (or than rows of nonzero weight): the last
    rank's shard is empty, and it adds zeros instead of refusing no rows."""
    from types import SimpleNamespace

    from bpnet.train.fullbatch import _shard

    second = SimpleNamespace(rank=1, size=2, shard=lambda n: shard(n, 1, 2))
    X, y = _data()
    net = _net(dropout=0.0)
    Xd, T, W, share = _shard(net, X[:1], y[:1], net.loss, None, second)
    assert Xd.shape[0] == 0 and W is None and share == 0.0
    w = np.zeros(len(y))
    w[5] = 2.0
    Xd, T, W, share = _shard(net, X, y, net.loss, w, second)
    assert Xd.shape[0] == 0 and share == 0.0
    with pytest.raises(ValueError, match="X: expected at least one sample"):
        _shard(net, X[:0], y[:0], net.loss, None, second)  # no rows at all


class RankOneOfTwo(OneRank):
    """Rank 1 of a two-rank job whose rank 0 has ``root``'s settings."""

    def __init__(self, root):
        super().__init__()
        self.rank, self.size, self.root = 1, 2, root

    def bcast(self, obj):
        return {**obj, **self.root}

    def allgather(self, obj):
        return [None, obj]


@pytest.mark.parametrize(
    "root, match",
    [
        ({"batch_size": 64}, "batch_size is 32, rank 0 has 64"),
        ({"epochs": 5}, "epochs is 2, rank 0 has 5"),
        (
            {"optimizer": {"type": "sgd", "lr": 0.3, "schedule": None}},
            "optimizer.lr is 0.1, rank 0 has 0.3",
        ),
        ({"X": {"shape": [9, 6], "dtype": "float64", "blake2b": "0" * 32}}, "X is"),
    ],
    ids=["batch-size", "epochs", "lr", "X"],
)
def test_a_rank_that_disagrees_with_rank_0_stops_fit_before_a_step(root, match):
    from bpnet.distributed import RankMismatchError

    X, y = _data()
    net = _net()
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(RankMismatchError, match=f"^rank 1 of 2: {match}"):
        bpnet.fit(net, X, y, epochs=2, batch_size=32, comm=RankOneOfTwo(root))
    for a, b in zip(before, net.parameters()):
        np.testing.assert_array_equal(a, b)


def test_the_first_difference_names_a_setting_one_side_lacks():
    from bpnet.distributed.agree import first_difference

    assert first_difference({"a": 1}, {"a": 1}) is None
    assert first_difference({"a": 1, "b": 2}, {"a": 1}) == "b is 2, rank 0 has not set"
    assert first_difference({"--hidden": [8, 4]}, {"--hidden": [8]}) == (
        "--hidden is 8 4, rank 0 has 8"
    )


class _PassThrough(OneRank):
    """A communicator that reduces the buffer itself (as NCCL's does), so
    no host view stands between the step and the buffer's writes."""

    def wrap(self, buf, backend):
        return buf


def test_data_parallel_on_jax_refuses_in_one_line_naming_the_backend():
    pytest.importorskip("jax")
    X, y = _data()
    with pytest.raises(ValueError, match="comm: .*'jax' arrays cannot be written") as e:
        bpnet.fit(_net("jax", "float32"), X, y, epochs=1, comm=_PassThrough())
    assert "\n" not in str(e.value)
